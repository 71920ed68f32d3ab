// Package scenario builds the simulated clusters the scale benchmarks scrape:
// one DLedger group of three and master/slave pairs behind one NameServer,
// topics spread over the groups, and consumer groups in every state the
// consumer collector distinguishes (caught up, lagging, stalled, offline,
// broadcasting), with retry and dead-letter traffic. It only uses the public
// model API of rmqsim, so every body the exporter decodes has the shape a
// real 4.9 broker sends.
//
// It lives under cmd/rmqbench because the benchmark driver starts it in its
// own process, and the collector benchmarks import it too.
package scenario

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

// Spec sizes a scenario.
type Spec struct {
	// Topics normal topics of Queues queues each, topic i on broker group
	// i mod BrokerGroups.
	Topics int
	Queues int
	// Groups consumer groups; see GroupState for the mix.
	Groups int
	// BrokerGroups: the first is a DLedger group of three nodes, the others
	// master/slave pairs (at least 1).
	BrokerGroups int
	// Version is the simulated RocketMQ version (default 4.9.7).
	Version string
	Clock   func() time.Time
	Logger  *slog.Logger
}

// Issue7 is the size the scale issue asks for: 10,000 topics × 8 queues over
// four broker groups and 2,000 consumer groups.
var Issue7 = Spec{Topics: 10_000, Queues: 8, Groups: 2_000, BrokerGroups: 4}

// Cluster name of every broker group of a scenario.
const Cluster = "ScaleCluster"

// BrokerGroup names the i-th broker group: RaftNode00 (DLedger) first, then
// broker-a, broker-b, …
func BrokerGroup(i int) string {
	if i == 0 {
		return "RaftNode00"
	}
	return fmt.Sprintf("broker-%c", 'a'+i-1)
}

// Topic names the i-th topic.
func Topic(i int) string { return fmt.Sprintf("Topic-%05d", i) }

// Group names the i-th consumer group.
func Group(i int) string { return fmt.Sprintf("Group-%05d", i) }

// GroupState is what a consumer group of the scenario is doing.
type GroupState int

// The mix, by i mod 10: four caught up, three lagging, one stalled, one
// offline, one broadcasting.
const (
	CaughtUp GroupState = iota
	Lagging
	Stalled
	Offline
	Broadcasting
)

func (s GroupState) String() string {
	return [...]string{"caught-up", "lagging", "stalled", "offline", "broadcasting"}[s]
}

// State returns the state of group i.
func State(i int) GroupState {
	switch i % 10 {
	case 0, 1, 2, 3:
		return CaughtUp
	case 4, 5, 6:
		return Lagging
	case 7:
		return Stalled
	case 8:
		return Offline
	}
	return Broadcasting
}

// Subscriptions returns the topics group i subscribes to: one, and a second
// one for every fourth group. When Topics is a multiple of 50, groups that
// share a topic are in the same state (i ≡ j mod 10).
func Subscriptions(i int, s Spec) []int {
	first := (i * 5) % s.Topics
	if i%4 == 3 && s.Topics > 1 {
		return []int{first, (first + 1) % s.Topics}
	}
	return []int{first}
}

// messages is how many messages topic i holds: between 8 and 23 per queue.
func messages(i int, s Spec) int { return s.Queues * (8 + i%16) }

// Start builds the scenario. Building the issue-sized one takes a few
// seconds; callers share it between benchmarks.
func Start(s Spec) (*rmqsim.Cluster, error) {
	if s.Topics <= 0 || s.Queues <= 0 || s.Groups < 0 {
		return nil, errors.New("scenario: need topics and queues")
	}
	if s.BrokerGroups <= 0 {
		s.BrokerGroups = 4
	}
	spec := rmqsim.Spec{Version: s.Version, Clock: s.Clock, Logger: s.Logger}
	for i := range s.BrokerGroups {
		g := rmqsim.GroupSpec{Cluster: Cluster, Name: BrokerGroup(i), Mode: rmqsim.MasterSlave, Replicas: 2}
		if i == 0 {
			g.Mode, g.Replicas = rmqsim.DLedger, 3
		}
		spec.Groups = append(spec.Groups, g)
	}
	c, err := rmqsim.Start(spec)
	if err != nil {
		return nil, err
	}
	if err := populate(c, s); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func populate(c *rmqsim.Cluster, s Spec) error {
	for i := range s.Topics {
		if err := c.CreateTopic(BrokerGroup(i%s.BrokerGroups), Topic(i), s.Queues); err != nil {
			return err
		}
		if _, err := c.Produce(Topic(i), messages(i, s)); err != nil {
			return err
		}
	}
	for i := range s.Groups {
		name, st := Group(i), State(i)
		c.CreateConsumerGroup(name, st == Broadcasting)
		for _, t := range Subscriptions(i, s) {
			if err := c.Subscribe(name, Topic(t)); err != nil {
				return err
			}
			var n int
			switch st {
			case CaughtUp, Broadcasting:
				n = -1
			case Lagging:
				n = messages(t, s) / 2
			case Stalled, Offline:
				n = messages(t, s) / 4
			}
			if n != 0 {
				if _, err := c.Consume(name, Topic(t), n); err != nil {
					return err
				}
			}
		}
		online := 1 + i%3
		if st == Offline {
			online = 0
		}
		c.SetOnline(name, online)
		// Some clustering groups have retried and dead-lettered messages.
		if st != Broadcasting && i%20 == 4 {
			if err := c.SendToRetry(name, 10); err != nil {
				return err
			}
		}
		if st != Broadcasting && i%100 == 5 {
			if err := c.SendToDLQ(name, 3); err != nil {
				return err
			}
		}
	}
	return nil
}

// Advance makes the topics of the lagging groups receive perTopic messages
// and those groups consume as many, as between two real scrapes: their
// offsets move (so lag in seconds must be asked again for them, and only for
// them) and they keep lagging however often it is called. With Topics a
// multiple of 50 no group in another state reads those topics. It returns
// how many (group, topic) pairs moved.
func Advance(c *rmqsim.Cluster, s Spec, perTopic int) (int, error) {
	moved := 0
	for i := range s.Groups {
		if State(i) != Lagging {
			continue
		}
		for _, t := range Subscriptions(i, s) {
			if _, err := c.Produce(Topic(t), perTopic); err != nil {
				return moved, err
			}
			n, err := c.Consume(Group(i), Topic(t), perTopic)
			if err != nil {
				return moved, err
			}
			if n > 0 {
				moved++
			}
		}
	}
	return moved, nil
}

// Counts summarises a scenario for reports.
type Counts struct {
	Topics, Queues, Groups, BrokerGroups, Nodes int
	States                                      map[GroupState]int
}

// Count returns what Start(s) creates.
func Count(s Spec) Counts {
	if s.BrokerGroups <= 0 {
		s.BrokerGroups = 4
	}
	c := Counts{Topics: s.Topics, Queues: s.Topics * s.Queues, Groups: s.Groups, BrokerGroups: s.BrokerGroups,
		Nodes: 3 + 2*(s.BrokerGroups-1), States: map[GroupState]int{}}
	for i := range s.Groups {
		c.States[State(i)]++
	}
	return c
}

// Endpoints lists every address a client of c may dial: NameServers, broker
// nodes, DLedger ports and the controller.
func Endpoints(c *rmqsim.Cluster) []string {
	out := append([]string(nil), c.NameServerAddrs()...)
	for _, n := range c.Nodes() {
		out = append(out, n.Addr())
		if a := n.DLedgerAddr(); a != "" {
			out = append(out, a)
		}
	}
	if a := c.ControllerAddr(); a != "" {
		out = append(out, a)
	}
	return out
}
