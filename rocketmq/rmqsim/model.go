package rmqsim

import (
	"errors"
	"fmt"
	"sort"
)

// consumerGroup is a consumer group as the whole cluster sees it.
type consumerGroup struct {
	name         string
	broadcasting bool
	online       int
	tps          float64
	tpsSet       bool
	topics       []string         // subscribed topics, in subscription order
	subTime      map[string]int64 // subVersion per subscribed topic
	clientBase   int
}

// pullBatch is how many messages one simulated pull returns (the stats
// count one "time" per pull).
const pullBatch = 32

// System topics every broker creates at start (TopicConfigManager), with
// their queue counts and perms as recorded.
func systemTopics(cluster, broker string, v5 bool) []struct {
	name   string
	queues int
	perm   int
} {
	t := []struct {
		name   string
		queues int
		perm   int
	}{
		{"SELF_TEST_TOPIC", 1, 6},
		{"TBW102", 4, 7},
		{"BenchmarkTest", 1024, 6},
		{cluster, 16, 7},
		{broker, 1, 7},
		{"OFFSET_MOVED_EVENT", 1, 6},
		{"SCHEDULE_TOPIC_XXXX", 18, 6},
		{cluster + "_REPLY_TOPIC", 1, 6},
		{"RMQ_SYS_TRANS_HALF_TOPIC", 1, 6},
	}
	if v5 {
		t = append(t, []struct {
			name   string
			queues int
			perm   int
		}{
			{"rmq_sys_REVIVE_LOG_" + cluster, 8, 6},
			{"rmq_sys_SYNC_BROKER_MEMBER_" + broker, 1, 1},
			{"RMQ_SYS_TRANS_OP_HALF_TOPIC", 1, 6},
		}...)
	}
	return t
}

// systemGroups are the subscription groups every broker creates at start.
func systemGroups(v5 bool) []string {
	g := []string{"SELF_TEST_C_GROUP", "CID_ONSAPI_OWNER", "CID_ONSAPI_PERMISSION", "TOOLS_CONSUMER",
		"CID_ONS-HTTP-PROXY", "FILTERSRV_CONSUMER", "CID_ONSAPI_PULL"}
	if v5 {
		g = append(g, "CID_RMQ_SYS_TRANS")
	}
	return g
}

func (c *Cluster) initSystemMetadata(g *group, now int64) {
	for _, t := range systemTopics(g.spec.Cluster, g.spec.Name, c.ver.v5) {
		g.addTopic(newTopic(t.name, t.queues, t.perm), now)
	}
	for _, s := range systemGroups(c.ver.v5) {
		g.addSub(s, now)
	}
}

func (g *group) addTopic(t *topicConf, now int64) {
	if _, ok := g.topics[t.name]; ok {
		return
	}
	g.topics[t.name] = t
	g.topicOrder = append(g.topicOrder, t.name)
	g.topicVer.bump(now)
}

func (g *group) addSub(name string, now int64) {
	if g.subs[name] {
		return
	}
	g.subs[name] = true
	g.subOrder = append(g.subOrder, name)
	g.subVer.bump(now)
}

// offset is the committed offset of a consumer group on a queue (-1 = none).
func (g *group) offset(cg, topic string, q int) int64 {
	qs := g.offsets[cg][topic]
	if q < 0 || q >= len(qs) {
		return -1
	}
	return qs[q]
}

func (g *group) ensureOffsets(cg, topic string) []int64 {
	t := g.topics[topic]
	if t == nil {
		return nil
	}
	m := g.offsets[cg]
	if m == nil {
		m = make(map[string][]int64)
		g.offsets[cg] = m
	}
	qs := m[topic]
	for len(qs) < len(t.queues) {
		qs = append(qs, 0)
	}
	m[topic] = qs
	return qs
}

// offsetTopics lists the topics a consumer group has offsets for.
func (g *group) offsetTopics(cg string) []string {
	var out []string
	for t := range g.offsets[cg] {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// serving is the node that answers clients for the group: the master, or
// the first live node when there is none.
func (g *group) serving() *Node {
	if g.leader != nil && g.leader.alive {
		return g.leader
	}
	for _, n := range g.nodes {
		if n.alive {
			return n
		}
	}
	return nil
}

func (c *Cluster) countsPuts(n *Node) bool {
	return n.alive && (n.isMaster() || n.g.spec.Mode == DLedger || c.ver.v5)
}

// CreateTopic creates a topic with the given number of read/write queues on
// one broker group (call it per group for a topic spread over several).
func (c *Cluster) CreateTopic(group, topic string, queues int) error {
	if topic == "" || queues <= 0 {
		return errors.New("rmqsim: CreateTopic needs a name and at least one queue")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(group)
	if err != nil {
		return err
	}
	if t := g.topics[topic]; t != nil {
		if len(t.queues) != queues {
			return fmt.Errorf("rmqsim: topic %s already exists on %s with %d queues", topic, group, len(t.queues))
		}
		return nil
	}
	g.addTopic(newTopic(topic, queues, 6), c.nowMs())
	return nil
}

// Produce stores n messages of topic, spread round-robin over the queues of
// every group that hosts it and has a live master. Store times come from
// Spec.Clock. It returns how many were stored.
func (c *Cluster) Produce(topic string, n int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.produce(topic, n)
}

func (c *Cluster) produce(topic string, n int) (int, error) {
	type target struct {
		g *group
		q int
	}
	var targets []target
	hosted := false
	for _, g := range c.groups {
		t := g.topics[topic]
		if t == nil {
			continue
		}
		hosted = true
		if g.leader == nil || !g.leader.alive || t.perm&2 == 0 {
			continue
		}
		for q := range t.queues {
			targets = append(targets, target{g, q})
		}
	}
	if !hosted {
		return 0, fmt.Errorf("rmqsim: topic %q does not exist", topic)
	}
	if len(targets) == 0 {
		return 0, fmt.Errorf("rmqsim: no writable master for topic %q", topic)
	}
	if n <= 0 {
		return 0, nil
	}
	now := c.nowMs()
	per := n / len(targets)
	extra := n % len(targets)
	start := int(c.cursor(topic, extra) % int64(len(targets)))
	for i, tg := range targets {
		k := per
		if (i-start+len(targets))%len(targets) < extra {
			k++
		}
		if k > 0 {
			c.store(tg.g, topic, tg.q, int64(k), now)
		}
	}
	return n, nil
}

// cursor rotates the queue that receives the remainder of uneven batches.
func (c *Cluster) cursor(topic string, advance int) int64 {
	if c.cursors == nil {
		c.cursors = make(map[string]int64)
	}
	v := c.cursors[topic]
	c.cursors[topic] = v + int64(advance)
	return v
}

func (c *Cluster) store(g *group, topic string, q int, k, now int64) {
	t := g.topics[topic]
	t.queues[q].put(k, now)
	c.notifyPut(g, topic, q)
	bytes := k * msgSize
	g.commitLog += bytes
	for _, n := range g.nodes {
		if !c.countsPuts(n) {
			continue
		}
		s := n.stats
		s.puts.add(now, k, k)
		s.putBytes.add(now, bytes, k)
		s.putDays.add(now, k)
		s.putHist.add(now, k, k)
		if n.isMaster() {
			s.item("TOPIC_PUT_NUMS", topic).add(now, k, k)
			s.item("TOPIC_PUT_SIZE", topic).add(now, bytes, k)
			s.item("BROKER_PUT_NUMS", g.spec.Cluster).add(now, k, 0)
		}
	}
}

// ProduceTo stores n messages on one queue of one group.
func (c *Cluster) ProduceTo(group, topic string, queue, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(group)
	if err != nil {
		return err
	}
	t := g.topics[topic]
	if t == nil || queue < 0 || queue >= len(t.queues) {
		return fmt.Errorf("rmqsim: no queue %d of topic %q on %s", queue, topic, group)
	}
	if g.leader == nil || !g.leader.alive {
		return fmt.Errorf("rmqsim: %s has no live master", group)
	}
	if n > 0 {
		c.store(g, topic, queue, int64(n), c.nowMs())
	}
	return nil
}

func (c *Cluster) consumerGroupLocked(name string) *consumerGroup {
	cg := c.cgroups[name]
	if cg == nil {
		cg = &consumerGroup{name: name, subTime: make(map[string]int64), clientBase: 1212836487 + 7919*len(c.cgOrder)}
		c.cgroups[name] = cg
		c.cgOrder = append(c.cgOrder, name)
	}
	return cg
}

// CreateConsumerGroup creates a consumer group; its subscription config
// appears on every broker group, as when it is created with mqadmin on the
// whole cluster.
func (c *Cluster) CreateConsumerGroup(name string, broadcasting bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cg := c.consumerGroupLocked(name)
	cg.broadcasting = broadcasting
	now := c.nowMs()
	for _, g := range c.groups {
		g.addSub(name, now)
	}
}

// Subscribe subscribes a consumer group to a topic starting from the first
// offset: committed offsets 0 on every queue of every hosting group, and
// for clustering groups the retry topic %RETRY%<group> with an offset on
// every broker group (what a real consumer's start leaves behind).
// Broadcasting groups keep offsets on the client, so brokers hold none.
func (c *Cluster) Subscribe(group, topic string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	hosted := false
	for _, g := range c.groups {
		if g.topics[topic] != nil {
			hosted = true
		}
	}
	if !hosted {
		return fmt.Errorf("rmqsim: topic %q does not exist", topic)
	}
	now := c.nowMs()
	cg := c.consumerGroupLocked(group)
	for _, g := range c.groups {
		g.addSub(group, now)
	}
	if _, ok := cg.subTime[topic]; !ok {
		cg.topics = append(cg.topics, topic)
	}
	cg.subTime[topic] = now
	if cg.broadcasting {
		return nil
	}
	retry := retryPrefix + group
	if _, ok := cg.subTime[retry]; !ok {
		cg.subTime[retry] = now
	}
	for _, g := range c.groups {
		if g.topics[topic] != nil {
			g.ensureOffsets(group, topic)
		}
		g.addTopic(newTopic(retry, 1, 6), now)
		g.ensureOffsets(group, retry)
	}
	return nil
}

// Consume advances the group's committed offsets on topic by up to n
// messages in total (n < 0: everything), spread over the queues with lag,
// and counts the pulls on the serving nodes. It returns how many were
// consumed. A broadcasting group only counts pulls.
func (c *Cluster) Consume(cgName, topic string, n int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.consume(cgName, topic, n, true)
}

// CommitOffsets advances committed offsets like Consume but counts no pulls:
// the state a broker restarted after the consumption shows (offsets, but no
// GROUP_GET_* stats since boot), or an offset reset by an admin tool.
func (c *Cluster) CommitOffsets(cgName, topic string, n int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.consume(cgName, topic, n, false)
}

func (c *Cluster) consume(cgName, topic string, n int, countPulls bool) (int, error) {
	cg := c.cgroups[cgName]
	if cg == nil {
		return 0, fmt.Errorf("rmqsim: unknown consumer group %q", cgName)
	}
	if _, ok := cg.subTime[topic]; !ok {
		return 0, fmt.Errorf("rmqsim: group %q is not subscribed to %q", cgName, topic)
	}
	now := c.nowMs()
	if cg.broadcasting {
		if n < 0 {
			n = 0
		}
		for _, g := range c.groups {
			if g.topics[topic] != nil && countPulls {
				c.countGets(g, cgName, topic, int64(n), now)
				break
			}
		}
		return n, nil
	}
	type lagq struct {
		g  *group
		q  int
		qs []int64
	}
	var ls []lagq
	for _, g := range c.groups {
		t := g.topics[topic]
		if t == nil || g.serving() == nil {
			continue
		}
		qs := g.ensureOffsets(cgName, topic)
		for q := range t.queues {
			ls = append(ls, lagq{g, q, qs})
		}
	}
	remaining := int64(n)
	if n < 0 {
		remaining = 1 << 62
	}
	perGroup := make(map[*group]int64)
	var total int64
	for remaining > 0 {
		active := 0
		for _, l := range ls {
			if l.g.topics[topic].queues[l.q].max > l.qs[l.q] {
				active++
			}
		}
		if active == 0 {
			break
		}
		share := (remaining + int64(active) - 1) / int64(active)
		for _, l := range ls {
			q := l.g.topics[topic].queues[l.q]
			if l.qs[l.q] < q.min {
				l.qs[l.q] = q.min
			}
			lag := q.max - l.qs[l.q]
			if lag <= 0 || remaining == 0 {
				continue
			}
			k := min(lag, share, remaining)
			l.qs[l.q] += k
			remaining -= k
			total += k
			perGroup[l.g] += k
		}
	}
	if countPulls {
		for g, k := range perGroup {
			c.countGets(g, cgName, topic, k, now)
		}
	}
	return int(total), nil
}

func (c *Cluster) countGets(g *group, cg, topic string, k, now int64) {
	n := g.serving()
	if n == nil || k <= 0 {
		return
	}
	times := (k + pullBatch - 1) / pullBatch
	s := n.stats
	s.found.add(now, k, times)
	s.getDays.add(now, k)
	key := topic + "@" + cg
	s.item("GROUP_GET_NUMS", key).add(now, k, times)
	s.item("GROUP_GET_SIZE", key).add(now, k*msgSize, times)
	s.item("BROKER_GET_NUMS", g.spec.Cluster).add(now, k, 0)
}

// SetOnline sets how many consumer clients of the group are connected
// (0 = offline: GET_CONSUMER_CONNECTION_LIST answers 206).
func (c *Cluster) SetOnline(group string, clients int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if clients < 0 {
		clients = 0
	}
	c.consumerGroupLocked(group).online = clients
}

// SetConsumeTps fixes the consumeTps the brokers report for the group
// (default: GROUP_GET_NUMS of the last minute).
func (c *Cluster) SetConsumeTps(group string, tps float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cg := c.consumerGroupLocked(group)
	cg.tps, cg.tpsSet = tps, true
}

// SendToRetry stores n messages in the group's retry topic.
func (c *Cluster) SendToRetry(group string, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.produce(retryPrefix+group, n)
	return err
}

// SendToDLQ stores n messages in the group's dead-letter topic, creating
// %DLQ%<group> (1 queue) on every group
// hosting its retry topic.
func (c *Cluster) SendToDLQ(group string, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	dlq := dlqPrefix + group
	now := c.nowMs()
	for _, g := range c.groups {
		if g.topics[retryPrefix+group] != nil {
			g.addTopic(newTopic(dlq, 1, 6), now)
		}
	}
	_, err := c.produce(dlq, n)
	return err
}

// SetScheduleOffsets sets scheduleMessageOffset_<level> ("delay,max") of a
// broker group.
func (c *Cluster) SetScheduleOffsets(group string, level int, delayOffset, maxOffset int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(group)
	if err != nil {
		return err
	}
	g.schedule[level] = [2]int64{delayOffset, maxOffset}
	return nil
}

// Expire moves a queue's min offset up to upTo, as commitlog retention does;
// offsets below it no longer have messages.
func (c *Cluster) Expire(group, topic string, queue int, upTo int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(group)
	if err != nil {
		return err
	}
	t := g.topics[topic]
	if t == nil || queue < 0 || queue >= len(t.queues) {
		return fmt.Errorf("rmqsim: no queue %d of topic %q on %s", queue, topic, group)
	}
	t.queues[queue].expire(upTo)
	return nil
}

// MaxOffset is a queue's max offset (tests use it to check expectations).
func (c *Cluster) MaxOffset(group, topic string, queue int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.byName[group]
	if g == nil || g.topics[topic] == nil || queue < 0 || queue >= len(g.topics[topic].queues) {
		return 0
	}
	return g.topics[topic].queues[queue].max
}

// ConsumerOffset is a group's committed offset on a queue (-1 = none).
func (c *Cluster) ConsumerOffset(group, cg, topic string, queue int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.byName[group]
	if g == nil {
		return -1
	}
	return g.offset(cg, topic, queue)
}
