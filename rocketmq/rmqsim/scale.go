package rmqsim

import (
	"errors"
	"fmt"
	"log/slog"
)

// ScaleSpec describes a large single-cluster deployment for benchmarks.
type ScaleSpec struct {
	// Topics × Queues normal topics, spread round-robin over BrokerGroups
	// master-only broker groups (defaults: 100 topics, 8 queues, 4 groups).
	Topics       int
	Queues       int
	BrokerGroups int
	// Groups consumer groups; group i subscribes to topic i mod Topics and
	// has consumed half of it (default: Topics / 5).
	Groups int
	// Messages stored per topic (default 100).
	Messages int
	// Online is how many of the groups have one connected consumer.
	Online  int
	Cluster string // default "ScaleCluster"
	Version string
	Logger  *slog.Logger
}

// StartScale starts the deployment described by s, already populated.
func StartScale(s ScaleSpec) (*Cluster, error) {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&s.Topics, 100)
	def(&s.Queues, 8)
	def(&s.BrokerGroups, 4)
	if s.Groups < 0 {
		return nil, errors.New("rmqsim: negative number of groups")
	}
	if s.Groups == 0 {
		s.Groups = s.Topics / 5
	}
	def(&s.Messages, 100)
	if s.Cluster == "" {
		s.Cluster = "ScaleCluster"
	}
	spec := Spec{Version: s.Version, Logger: s.Logger}
	for i := 0; i < s.BrokerGroups; i++ {
		spec.Groups = append(spec.Groups, GroupSpec{Cluster: s.Cluster, Name: fmt.Sprintf("broker-%d", i)})
	}
	c, err := Start(spec)
	if err != nil {
		return nil, err
	}
	if err := c.populateScale(s); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ScaleTopic and ScaleGroup name the objects StartScale creates.
func ScaleTopic(i int) string { return fmt.Sprintf("Topic-%05d", i) }

// ScaleGroup names the i-th consumer group of StartScale.
func ScaleGroup(i int) string { return fmt.Sprintf("Group-%05d", i) }

func (c *Cluster) populateScale(s ScaleSpec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.nowMs()
	for i := 0; i < s.Topics; i++ {
		g := c.groups[i%len(c.groups)]
		g.addTopic(newTopic(ScaleTopic(i), s.Queues, 6), now)
		if _, err := c.produce(ScaleTopic(i), s.Messages); err != nil {
			return err
		}
	}
	for i := 0; i < s.Groups; i++ {
		name := ScaleGroup(i)
		topic := ScaleTopic(i % s.Topics)
		cg := c.consumerGroupLocked(name)
		cg.topics = append(cg.topics, topic)
		cg.subTime[topic] = now
		retry := retryPrefix + name
		cg.subTime[retry] = now
		if i < s.Online {
			cg.online = 1
		}
		for _, g := range c.groups {
			g.addSub(name, now)
			if g.topics[topic] != nil {
				g.ensureOffsets(name, topic)
			}
			g.addTopic(newTopic(retry, 1, 6), now)
			g.ensureOffsets(name, retry)
		}
		if _, err := c.consume(name, topic, s.Messages/2, false); err != nil {
			return err
		}
	}
	return nil
}
