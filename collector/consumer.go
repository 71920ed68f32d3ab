package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// Values of rocketmq_consumer_group_status{status}.
const (
	statusOK      = "ok"
	statusLagging = "lagging"
	statusStalled = "stalled"
	statusStopped = "stopped"
)

var consumerStatuses = []string{statusOK, statusLagging, statusStalled, statusStopped}

// messageModelBroadcasting is ConsumerConnection.messageModel of groups whose
// clients keep their offsets locally.
const messageModelBroadcasting = "BROADCASTING"

// consumerCollector reports consumer groups from the masters only: each
// master owns the offsets of its own queues, so sums over brokers are exact
// and a former master's series vanish at failover.
type consumerCollector struct {
	opts   Options
	logger *slog.Logger
	lag    *lagCache
	status *statusTracker

	lagMessages *prometheus.Desc
	consumed    *prometheus.Desc
	lagSeconds  *prometheus.Desc
	retryLag    *prometheus.Desc
	retried     *prometheus.Desc
	dlq         *prometheus.Desc
	consumers   *prometheus.Desc
	info        *prometheus.Desc
	tps         *prometheus.Desc
	statusDesc  *prometheus.Desc
	queueLag    *prometheus.Desc

	ln       labelNames
	statuses []*dto.LabelPair // status label pairs in label order, shared by all scrapes
}

func newConsumerCollector(o Options, logger *slog.Logger) (Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	name := func(n string) string { return prometheus.BuildFQName(Namespace, "consumer", n) }
	gl := []string{"cluster", "broker", "group", "topic"}
	grp := []string{"cluster", "broker", "group"}
	ln := newLabelNames()
	var statuses []*dto.LabelPair
	for _, st := range slices.Sorted(slices.Values(consumerStatuses)) {
		statuses = append(statuses, labelPair(ln.status, st))
	}
	return &consumerCollector{
		opts:     o,
		logger:   logger,
		ln:       ln,
		statuses: statuses,
		lag:      newLagCache(time.Now),
		status:   newStatusTracker(),
		lagMessages: prometheus.NewDesc(name("group_lag_messages"),
			"Messages of the topic on this broker group not yet consumed by the group: sum over queues of max(0, brokerOffset - consumerOffset) (GET_BROKER_CONSUME_STATS). Not reported for online BROADCASTING groups, whose offsets live in the clients.",
			gl, nil),
		consumed: prometheus.NewDesc(name("group_consumed_messages_total"),
			"Sum over queues of the group's committed consumer offset on this broker group (GET_BROKER_CONSUME_STATS consumerOffset). Not reported for online BROADCASTING groups.",
			gl, nil),
		lagSeconds: prometheus.NewDesc(name("group_lag_seconds"),
			"Age of the oldest message the group has not consumed at the scrape's time, max over queues (QUERY_CONSUME_TIME_SPAN delayTime; now - minTimeStamp for a queue whose message at the consumer offset is gone; cached per queue while the consumer offset stands still); 0 when caught up; absent when some lagging queue's age is unknown (it stores no message, or the answer left it out). Not reported for online BROADCASTING groups.",
			gl, nil),
		retryLag: prometheus.NewDesc(name("group_retry_lag_messages"),
			"Messages waiting in the group's %RETRY% topic on this broker group: max(0, brokerOffset - consumerOffset) summed over its queues (GET_BROKER_CONSUME_STATS).",
			grp, nil),
		retried: prometheus.NewDesc(name("group_retry_messages_total"),
			"Messages put into the group's %RETRY% topic on this broker group (consumption failed and was sent back for a later retry): brokerOffset summed over its queues (GET_BROKER_CONSUME_STATS), the %RETRY% topic's rocketmq_topic_messages_total.",
			grp, nil),
		dlq: prometheus.NewDesc(name("group_dlq_messages"),
			"Messages held in the group's %DLQ% topic on this broker group: sum over queues of maxOffset - minOffset (GET_TOPIC_STATS_INFO); only for groups that have a DLQ topic there.",
			grp, nil),
		consumers: prometheus.NewDesc(name("group_consumers"),
			"Consumer connections of the group on this broker (GET_CONSUMER_CONNECTION_LIST connectionSet; 0 when the broker answers CONSUMER_NOT_ONLINE). Like every per-broker group series, absent for a group with neither offsets nor consumers on this broker.",
			grp, nil),
		info: prometheus.NewDesc(name("group_info"),
			"Message model and consume type of an online group (GET_CONSUMER_CONNECTION_LIST messageModel, consumeType). BROADCASTING groups get no lag or status series: the broker holds no offsets for them.",
			[]string{"cluster", "broker", "group", "message_model", "consume_type"}, nil),
		tps: prometheus.NewDesc(name("group_consume_messages_per_second"),
			"Messages per second the group pulled from this broker over the last minute, as the broker reports it (GET_BROKER_CONSUME_STATS consumeTps summed over topics).",
			grp, nil),
		statusDesc: prometheus.NewDesc(name("group_status"),
			"Verdict on the group, 1 for the current one: stopped = lag and no consumer online; stalled = lag, consumers online, and a lagging queue's consumer offset did not move since the previous evaluation (at least 10s earlier); lagging = lag grew while offsets moved; ok otherwise (GET_BROKER_CONSUME_STATS, GET_CONSUMER_CONNECTION_LIST). Not reported for BROADCASTING groups.",
			[]string{"cluster", "broker", "group", "status"}, nil),
		queueLag: prometheus.NewDesc(name("queue_lag_messages"),
			"max(0, brokerOffset - consumerOffset) of one queue (GET_BROKER_CONSUME_STATS); only with per-queue detail enabled.",
			[]string{"cluster", "broker", "group", "topic", "queue_id"}, nil),
	}, nil
}

// consumerTopic is one group's offsets on one topic of one broker.
type consumerTopic struct {
	topic  string
	queues []queueOffsets // by queue id
	age    lagResult
}

func (t *consumerTopic) lagMessages() int64 {
	var n int64
	for _, q := range t.queues {
		n += max(0, q.broker-q.consumer)
	}
	return n
}

// brokerMessages is what the topic's queues hold and ever held: the sum of
// their max offsets.
func (t *consumerTopic) brokerMessages() int64 {
	var n int64
	for _, q := range t.queues {
		n += q.broker
	}
	return n
}

func (t *consumerTopic) consumedMessages() int64 {
	var n int64
	for _, q := range t.queues {
		n += q.consumer
	}
	return n
}

// consumerGroup is one group as one broker sees it.
type consumerGroup struct {
	name   string
	topics []*consumerTopic // without the group's own retry topic; by name
	retry  *consumerTopic
	tps    float64
	stats  bool // the broker holds offsets for the group
	// active: the group has used this broker — offsets of a topic it
	// consumes (filtered or not), or a retry entry that ever held a message
	// or an offset. Every client registers an empty %RETRY% entry with each
	// master it heartbeats to, which alone says nothing.
	active bool

	// What the connection list said: only the count and the group's
	// model are kept, not the answer, whose subscription tables and client
	// names would stay live for every group until the scrape ends (~10 MB
	// at 2,000 groups × 4 masters).
	connKnown    bool
	consumers    int
	messageModel string
	consumeType  string
}

func (g *consumerGroup) consumerCount() int {
	return g.consumers
}

// broadcasting: the clients of such a group keep their offsets locally, so
// whatever offsets the broker still has are stale leftovers.
func (g *consumerGroup) broadcasting() bool {
	return g.consumerCount() > 0 && g.messageModel == messageModelBroadcasting
}

func (g *consumerGroup) lagMessages() int64 {
	var n int64
	for _, t := range g.topics {
		n += t.lagMessages()
	}
	return n
}

// consumerBroker collects what one master said in this scrape.
type consumerBroker struct {
	b *Broker

	mu       sync.Mutex
	groups   []*consumerGroup
	fallback []string // groups to read one by one (broker without 317)
	dlqNames []string // groups with a DLQ topic on this broker
	dlq      map[string]int64
}

func (cb *consumerBroker) addGroup(g *consumerGroup) {
	cb.mu.Lock()
	cb.groups = append(cb.groups, g)
	cb.mu.Unlock()
}

func (c *consumerCollector) wantGroup(group string) bool {
	return c.opts.Groups.Match(group) && (c.opts.SystemTopics || !isSystemGroup(group))
}

func (c *consumerCollector) Update(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
	now := s.Now
	if now.IsZero() {
		now = time.Now()
	}
	defer c.lag.sweep(now)
	defer c.status.sweep(now)

	owners := groupOwners(s)
	if len(owners) == 0 {
		return nil
	}
	var (
		errMu sync.Mutex
		errs  []error
	)
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
	}

	// Each master's stages run as a sequence of their own: a master that
	// answers its offsets and then stalls holds back nobody else.
	brokers := make([]*consumerBroker, len(owners))
	cut := runLanes(ctx, scrapeConcurrency(s, c.opts), len(owners), func(i int, ln *lane) {
		cb := &consumerBroker{b: owners[i], dlq: make(map[string]int64)}
		brokers[i] = cb
		c.collectBroker(ctx, s, cb, ln, now, fail)
	})

	// In label order (broker, cluster, then group), so the registry's sort
	// finds the series already sorted.
	sort.SliceStable(brokers, func(i, j int) bool {
		a, b := brokers[i].b, brokers[j].b
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Cluster < b.Cluster
	})
	for _, cb := range brokers {
		c.emit(ch, cb, now)
	}
	if cut {
		errs = append(errs, deadlineError(ctx))
	}
	return errors.Join(errs...)
}

// collectBroker reads one master, stage after stage: offsets of every group
// and the topic table (to learn the DLQ topics); groups one by one where the
// bulk request is unknown; connection lists and DLQ depths; lag in seconds.
// A request that fails costs only what depends on it.
func (c *consumerCollector) collectBroker(ctx context.Context, s *Scrape, cb *consumerBroker, ln *lane, now time.Time, fail func(error)) {
	addr := cb.b.Addr
	ln.each(2, func(i int) {
		var err error
		if i == 0 {
			err = c.readOffsets(ctx, s, cb, ln)
		} else {
			err = c.readDLQTopics(ctx, s, cb, ln)
		}
		if err != nil && !errors.Is(err, errNotSent) {
			fail(err)
		}
	})

	ln.each(len(cb.fallback), func(i int) {
		group := cb.fallback[i]
		if !ln.acquire(ctx) {
			return
		}
		st, err := s.Client.ConsumeStats(ctx, addr, group, "")
		ln.release()
		switch {
		case rocketmq.IsCode(err, rocketmq.ResponseSubscriptionGroupAbsent):
			c.logger.Debug("consumer group vanished during the scrape", "broker", addr, "group", group)
			return
		case err != nil:
			fail(fmt.Errorf("broker %s: group %q consume stats: %w", addr, group, err))
			return
		}
		var stats []rocketmq.ConsumeStats
		if st != nil {
			stats = []rocketmq.ConsumeStats{*st}
		}
		cb.addGroup(c.groupFromStats(group, stats))
	})
	sort.Slice(cb.groups, func(i, j int) bool { return cb.groups[i].name < cb.groups[j].name })

	// Online consumers per group, and DLQ depths.
	groups, dlqs := cb.groups, cb.dlqNames
	ln.each(len(groups)+len(dlqs), func(i int) {
		if i < len(groups) {
			g := groups[i]
			if !ln.acquire(ctx) {
				return
			}
			conn, err := s.Client.ConsumerConnectionSummary(ctx, addr, g.name)
			ln.release()
			switch {
			case rocketmq.IsCode(err, rocketmq.ResponseConsumerNotOnline):
				g.connKnown = true
			case err != nil:
				fail(fmt.Errorf("broker %s: group %q connections: %w", addr, g.name, err))
			default:
				g.connKnown = true
				g.consumers, g.messageModel, g.consumeType = conn.Connections, conn.MessageModel, conn.ConsumeType
			}
			return
		}
		group := dlqs[i-len(groups)]
		if !ln.acquire(ctx) {
			return
		}
		st, err := topicStats(ctx, s, addr, dlqTopic(group))
		ln.release()
		switch {
		case rocketmq.IsCode(err, rocketmq.ResponseTopicNotExist):
			c.logger.Debug("DLQ topic vanished during the scrape", "broker", addr, "group", group)
			return
		case err != nil:
			fail(fmt.Errorf("broker %s: topic %q stats: %w", addr, dlqTopic(group), err))
			return
		}
		var depth int64
		if st != nil {
			for _, off := range st.OffsetTable {
				depth += max(0, off.MaxOffset-off.MinOffset)
			}
		}
		cb.mu.Lock()
		cb.dlq[group] = depth
		cb.mu.Unlock()
	})

	if !c.opts.LagSeconds {
		return
	}
	type ageJob struct {
		g *consumerGroup
		t *consumerTopic
	}
	var ages []ageJob
	for _, g := range groups {
		if g.broadcasting() {
			continue
		}
		for _, t := range g.topics {
			ages = append(ages, ageJob{g, t})
		}
	}
	ln.each(len(ages), func(i int) {
		j := ages[i]
		req := lagRequest{addr: addr, group: j.g.name, topic: j.t.topic, queues: j.t.queues}
		res, err := c.lag.resolve(ctx, req, now, func(ctx context.Context) ([]rocketmq.QueueTimeSpan, error) {
			if !ln.acquire(ctx) {
				return nil, errNotSent
			}
			defer ln.release()
			return s.Client.ConsumeTimeSpan(ctx, addr, j.t.topic, j.g.name)
		})
		switch {
		case errors.Is(err, errNotSent):
		case rocketmq.IsCode(err, rocketmq.ResponseTopicNotExist):
			c.logger.Debug("topic vanished during the scrape", "broker", addr, "topic", j.t.topic)
		case err != nil:
			fail(fmt.Errorf("broker %s: group %q topic %q consume time span: %w", addr, j.g.name, j.t.topic, err))
		default:
			j.t.age = res
		}
	})
}

// errNotSent: the scrape's deadline passed before the request could be
// sent; the collector reports that once (deadlineError), not per request.
var errNotSent = errors.New("request not sent: the scrape's deadline passed")

// readOffsets reads every group's offsets with GET_BROKER_CONSUME_STATS. A
// broker that does not know that request gets one GET_CONSUME_STATS per group
// instead.
func (c *consumerCollector) readOffsets(ctx context.Context, s *Scrape, cb *consumerBroker, ln *lane) error {
	addr := cb.b.Addr
	if !ln.acquire(ctx) {
		return errNotSent
	}
	list, err := s.Client.BrokerConsumeStats(ctx, addr)
	ln.release()
	if rocketmq.IsNotSupported(err) {
		if !ln.acquire(ctx) {
			return errNotSent
		}
		sg, err := s.Client.AllSubscriptionGroupConfig(ctx, addr)
		ln.release()
		if err != nil {
			return fmt.Errorf("broker %s: subscription groups: %w", addr, err)
		}
		if sg != nil {
			for name := range sg.SubscriptionGroupTable {
				if c.wantGroup(name) {
					cb.fallback = append(cb.fallback, name)
				}
			}
		}
		sort.Strings(cb.fallback)
		return nil
	}
	if err != nil {
		return fmt.Errorf("broker %s: broker consume stats: %w", addr, err)
	}
	if list == nil {
		return nil
	}
	// One entry per group is what brokers send; merge if not.
	var order []string
	stats := make(map[string][]rocketmq.ConsumeStats)
	for _, gs := range list.ConsumeStatsList {
		if !c.wantGroup(gs.Group) {
			continue
		}
		if _, dup := stats[gs.Group]; !dup {
			order = append(order, gs.Group)
		}
		stats[gs.Group] = append(stats[gs.Group], gs.Stats...)
	}
	for _, name := range order {
		cb.groups = append(cb.groups, c.groupFromStats(name, stats[name]))
	}
	return nil
}

// readDLQTopics learns which groups have a DLQ topic on the broker, so DLQ
// depth costs one request per group that has ever dead-lettered a message.
func (c *consumerCollector) readDLQTopics(ctx context.Context, s *Scrape, cb *consumerBroker, ln *lane) error {
	if !ln.acquire(ctx) {
		return errNotSent
	}
	names, err := s.TopicNames(ctx, cb.b)
	ln.release()
	if isNoTopicError(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("broker %s: topic config: %w", cb.b.Addr, err)
	}
	// names is sorted, and so is what its DLQ topics name.
	for _, name := range names {
		if g, ok := strings.CutPrefix(name, dlqTopicPrefix); ok && g != "" && c.wantGroup(g) {
			cb.dlqNames = append(cb.dlqNames, g)
		}
	}
	return nil
}

// groupFromStats turns the ConsumeStats of one group (one per topic) into
// per-topic queue offsets, splitting off the group's own retry topic.
func (c *consumerCollector) groupFromStats(name string, stats []rocketmq.ConsumeStats) *consumerGroup {
	g := &consumerGroup{name: name, stats: len(stats) > 0}
	retry := retryTopic(name)
	byTopic := make(map[string]*consumerTopic)
	for _, cs := range stats {
		g.tps += cs.ConsumeTps
		// Rows come in queue order, topic first: each topic's rows are one
		// run, looked up once and appended with at most one growth.
		for rows := cs.OffsetTable; len(rows) > 0; {
			topic, n := rows[0].Topic, 1
			for n < len(rows) && rows[n].Topic == topic {
				n++
			}
			t := byTopic[topic]
			if t == nil {
				t = &consumerTopic{topic: topic}
				byTopic[topic] = t
			}
			t.queues = slices.Grow(t.queues, n)
			for _, ow := range rows[:n] {
				if topic != retry || ow.BrokerOffset > 0 || ow.ConsumerOffset > 0 {
					g.active = true
				}
				// 4.9 clamps a missing offset (-1) to 0; 5.x static topics
				// may still send -1.
				t.queues = append(t.queues, queueOffsets{queue: ow.QueueID, broker: ow.BrokerOffset, consumer: max(0, ow.ConsumerOffset)})
			}
			rows = rows[n:]
		}
	}
	topics := make([]string, 0, len(byTopic))
	for topic := range byTopic {
		topics = append(topics, topic)
	}
	sort.Strings(topics)
	byQueue := func(a, b queueOffsets) int { return cmp.Compare(a.queue, b.queue) }
	for _, topic := range topics {
		t := byTopic[topic]
		// Already in order when the topic came in one table (every broker
		// answer); queues of one id under several broker names stay in
		// broker-name order.
		if !slices.IsSortedFunc(t.queues, byQueue) {
			slices.SortStableFunc(t.queues, byQueue)
		}
		switch {
		case topic == retry:
			g.retry = t
		case c.opts.Topics.Match(topic):
			g.topics = append(g.topics, t)
		}
	}
	return g
}

func (c *consumerCollector) emit(ch chan<- prometheus.Metric, cb *consumerBroker, now time.Time) {
	cluster, broker := cb.b.Cluster, cb.b.Name
	bl := newBrokerLabels(c.ln, cb.b)
	for _, g := range cb.groups {
		if !g.active && g.consumerCount() == 0 {
			// Five or more series per group and master saying nothing.
			continue
		}
		gp := labelPair(c.ln.group, g.name)
		gv := sortedLabels(bl.broker, bl.cluster, gp)
		if g.connKnown {
			ch <- newSeries(c.consumers, prometheus.GaugeValue, float64(g.consumerCount()), gv)
			if g.consumerCount() > 0 {
				ch <- newSeries(c.info, prometheus.GaugeValue, 1, sortedLabels(bl.broker, bl.cluster, gp,
					labelPair(c.ln.messageModel, g.messageModel), labelPair(c.ln.consumeType, g.consumeType)))
			}
		}
		if g.stats {
			ch <- newSeries(c.tps, prometheus.GaugeValue, g.tps, gv)
		}
		if g.broadcasting() {
			continue
		}
		for _, t := range g.topics {
			tp := labelPair(c.ln.topic, t.topic)
			tv := sortedLabels(bl.broker, bl.cluster, gp, tp)
			ch <- newSeries(c.lagMessages, prometheus.GaugeValue, float64(t.lagMessages()), tv)
			ch <- newSeries(c.consumed, prometheus.CounterValue, float64(t.consumedMessages()), tv)
			if c.opts.LagSeconds && t.age.Known {
				ch <- newSeries(c.lagSeconds, prometheus.GaugeValue, t.age.Seconds, tv)
			}
			if c.opts.PerQueue {
				for _, q := range t.queues {
					qv := sortedLabels(bl.broker, bl.cluster, gp, labelPair(c.ln.queueID, strconv.Itoa(q.queue)), tp)
					ch <- newSeries(c.queueLag, prometheus.GaugeValue, float64(max(0, q.broker-q.consumer)), qv)
				}
			}
		}
		if g.retry != nil {
			ch <- newSeries(c.retryLag, prometheus.GaugeValue, float64(g.retry.lagMessages()), gv)
			ch <- newSeries(c.retried, prometheus.CounterValue, float64(g.retry.brokerMessages()), gv)
		}
		if g.connKnown {
			m := c.status.observe(statusKey{cb.b.Addr, cluster, broker, g.name}, now, g.topics)
			verdict := consumerVerdict(g.lagMessages(), g.consumerCount(), m)
			for _, st := range c.statuses {
				v := 0.0
				if *st.Value == verdict {
					v = 1
				}
				ch <- newSeries(c.statusDesc, prometheus.GaugeValue, v, sortedLabels(bl.broker, bl.cluster, gp, st))
			}
		}
	}
	for _, g := range cb.dlqNames {
		if depth, ok := cb.dlq[g]; ok {
			ch <- newSeries(c.dlq, prometheus.GaugeValue, float64(depth), sortedLabels(bl.broker, bl.cluster, labelPair(c.ln.group, g)))
		}
	}
}

// consumerVerdict is the Burrow-style status of a group.
func consumerVerdict(lag int64, consumers int, m movement) string {
	switch {
	case lag <= 0:
		return statusOK
	case consumers == 0:
		return statusStopped
	case !m.compared:
		return statusOK
	case m.stalled:
		return statusStalled
	case m.grew:
		return statusLagging
	}
	return statusOK
}

const (
	// statusMinInterval: offsets are compared with a snapshot at least this
	// old. Clients commit offsets every 5s (and with their pulls), so closer
	// scrapes, e.g. from an HA pair of Prometheus servers, would see a
	// healthy consumer standing still.
	statusMinInterval = 10 * time.Second
	statusTTL         = 15 * time.Minute
	statusMaxGroups   = 100_000
)

// statusKey names one group on one broker node. addr is the dialed address
// (Broker.Addr): /metrics and every /probe target share the collector, and
// two clusters left at their default names (DefaultCluster/broker-a) differ
// only there. After a failover the new master starts a history of its own
// (the first evaluation there says ok).
type statusKey struct{ addr, cluster, broker, group string }

type queueRef struct {
	topic string
	queue int
}

type statusSnapshot struct {
	at      time.Time
	offsets map[queueRef]queueOffsets
	lag     int64
}

type statusState struct {
	ref  statusSnapshot
	m    movement
	seen time.Time
}

// movement is what changed between two snapshots of a group.
type movement struct {
	compared bool // a comparison exists at all
	stalled  bool // some queue lagged in both and its consumer offset did not move
	grew     bool // total lag grew
}

// statusTracker keeps, per group, the offsets of the last evaluation: the
// least state that tells a stalled consumer from a slow one.
type statusTracker struct {
	mu     sync.Mutex
	states map[statusKey]*statusState
}

func newStatusTracker() *statusTracker {
	return &statusTracker{states: make(map[statusKey]*statusState)}
}

func (t *statusTracker) observe(k statusKey, now time.Time, topics []*consumerTopic) movement {
	snap := statusSnapshot{at: now, offsets: make(map[queueRef]queueOffsets)}
	for _, tp := range topics {
		for _, q := range tp.queues {
			snap.offsets[queueRef{tp.topic, q.queue}] = q
			snap.lag += max(0, q.broker-q.consumer)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.states[k]
	if st == nil {
		if len(t.states) < statusMaxGroups {
			t.states[k] = &statusState{ref: snap, seen: now}
		}
		return movement{}
	}
	st.seen = now
	if now.Sub(st.ref.at) < statusMinInterval {
		return st.m
	}
	m := movement{compared: true, grew: snap.lag > st.ref.lag}
	for ref, cur := range snap.offsets {
		prev, ok := st.ref.offsets[ref]
		if ok && prev.broker > prev.consumer && cur.broker > cur.consumer && cur.consumer == prev.consumer {
			m.stalled = true
			break
		}
	}
	st.ref, st.m = snap, m
	return m
}

func (t *statusTracker) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, st := range t.states {
		if now.Sub(st.seen) > statusTTL {
			delete(t.states, k)
		}
	}
}

// eachBounded runs fn(0..n-1) on at most limit goroutines. The workers
// live for the whole fan-out rather than one goroutine per call: a scrape of
// a large cluster makes tens of thousands of calls, and each new goroutine
// would grow its stack again for the decoders.
//
// A panic in fn does not end the process nor the other calls: the first one
// is raised again in the caller's goroutine once all calls are done, where
// the Exporter turns it into a failed collector.
func eachBounded(limit, n int, fn func(i int)) {
	workers := min(max(1, limit), n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var panicked atomic.Pointer[error]
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if p := catchPanic(func() { fn(i) }); p != nil {
					panicked.CompareAndSwap(nil, &p)
				}
			}
		})
	}
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(*p)
	}
}
