package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// topicLabels are the labels of every per-topic series. There is no address
// label on purpose: topic data is read from the master of each group only, so
// after a failover the same series continues from the new master.
var topicLabels = []string{"cluster", "broker", "topic", "type"}

type topicCollector struct {
	opts   Options
	logger *slog.Logger

	messages   *prometheus.Desc
	minOffset  *prometheus.Desc
	retained   *prometheus.Desc
	queues     *prometheus.Desc
	lastUpdate *prometheus.Desc
	queueMax   *prometheus.Desc
	queueMin   *prometheus.Desc

	ln    labelNames
	types map[string]*dto.LabelPair // type label pairs, shared by all scrapes
}

func newTopicCollector(o Options, logger *slog.Logger) (Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	name := func(n string) string { return prometheus.BuildFQName(Namespace, "topic", n) }
	queueLabels := append(append([]string(nil), topicLabels...), "queue_id")
	ln := newLabelNames()
	types := map[string]*dto.LabelPair{}
	for _, t := range []string{topicTypeNormal, topicTypeRetry, topicTypeDLQ, topicTypeSystem} {
		types[t] = labelPair(ln.typ, t)
	}
	return &topicCollector{
		opts:   o,
		logger: logger,
		ln:     ln,
		types:  types,
		messages: prometheus.NewDesc(name("messages_total"),
			"Messages written to the topic on this broker group: sum over its queues of maxOffset (GET_TOPIC_STATS_INFO offsetTable.maxOffset), read from the group's master.",
			topicLabels, nil),
		minOffset: prometheus.NewDesc(name("min_offset"),
			"Sum over the topic's queues on this broker group of the oldest offset still stored (GET_TOPIC_STATS_INFO offsetTable.minOffset).",
			topicLabels, nil),
		retained: prometheus.NewDesc(name("retained_messages"),
			"Messages of the topic still stored on this broker group: sum over queues of maxOffset - minOffset (GET_TOPIC_STATS_INFO).",
			topicLabels, nil),
		queues: prometheus.NewDesc(name("queues"),
			"Write queues of the topic on this broker group (entries of GET_TOPIC_STATS_INFO offsetTable).",
			topicLabels, nil),
		lastUpdate: prometheus.NewDesc(name("last_update_timestamp_seconds"),
			"Store time of the newest message of the topic on this broker group: max over queues of GET_TOPIC_STATS_INFO offsetTable.lastUpdateTimestamp (absent while the topic is empty).",
			topicLabels, nil),
		queueMax: prometheus.NewDesc(name("queue_max_offset"),
			"Next offset to be written in one queue (GET_TOPIC_STATS_INFO offsetTable.maxOffset); only with per-queue detail enabled.",
			queueLabels, nil),
		queueMin: prometheus.NewDesc(name("queue_min_offset"),
			"Oldest offset still stored in one queue (GET_TOPIC_STATS_INFO offsetTable.minOffset); only with per-queue detail enabled.",
			queueLabels, nil),
	}, nil
}

// topicJob is one GET_TOPIC_STATS_INFO request to make.
type topicJob struct {
	b     *Broker
	bl    brokerLabels
	topic string
	typ   string
}

// topicResult is what one topic's answer reports, kept until every answer is
// in so that the series go out already in the order the registry sorts them
// into (sorting 100,000 series that arrive shuffled costs more than
// collecting them).
type topicResult struct {
	ok       bool
	sum      rocketmq.TopicStatsSummary
	perQueue []queueStat // by queue id, with per-queue detail only
}

type queueStat struct {
	id       int
	max, min int64
}

func (c *topicCollector) Update(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
	owners := groupOwners(s)
	if len(owners) == 0 {
		return nil
	}
	internal := internalNames(s)

	var (
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}

	// Each owner's topic table and then its topics' stats, as a sequence of
	// its own: a broker that answers the first and stalls on the second
	// holds back nobody else.
	jobs := make([][]topicJob, len(owners))
	results := make([][]topicResult, len(owners))
	cut := runLanes(ctx, scrapeConcurrency(s, c.opts), len(owners), func(i int, ln *lane) {
		b := owners[i]
		if !ln.acquire(ctx) {
			return
		}
		names, err := s.TopicNames(ctx, b)
		ln.release()
		if err != nil && !isNoTopicError(err) {
			fail(fmt.Errorf("broker %s: topic config: %w", b.Addr, err))
			return
		}
		mine := c.selectTopics(b, names, internal)
		res := make([]topicResult, len(mine))
		ln.each(len(mine), func(k int) {
			j := mine[k]
			if !ln.acquire(ctx) {
				return
			}
			var (
				r   topicResult
				st  *rocketmq.TopicStatsTable
				err error
			)
			full := c.opts.PerQueue || strings.HasPrefix(j.topic, dlqTopicPrefix)
			if full {
				// Queue by queue, or shared with the consumer collector.
				st, err = topicStats(ctx, s, j.b.Addr, j.topic)
			} else {
				r.sum, err = s.Client.TopicStatsSummary(ctx, j.b.Addr, j.topic)
				r.ok = err == nil
			}
			ln.release()
			if full {
				r = c.summarise(st)
			}
			switch {
			case rocketmq.IsCode(err, rocketmq.ResponseTopicNotExist):
				// Deleted between the two requests: nothing to report.
				c.logger.Debug("topic vanished during the scrape", "broker", j.b.Addr, "topic", j.topic)
				return
			case err != nil:
				fail(fmt.Errorf("broker %s: topic %q stats: %w", j.b.Addr, j.topic, err))
				return
			}
			res[k] = r
		})
		jobs[i], results[i] = mine, res
	})

	// The label order of every topic series: broker, cluster, topic (each
	// owner's jobs are sorted by topic already).
	order := make([]int, len(owners))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool {
		a, b := owners[order[x]], owners[order[y]]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Cluster < b.Cluster
	})
	for _, i := range order {
		for k, j := range jobs[i] {
			c.emit(ch, j, &results[i][k])
		}
	}
	if cut {
		errs = append(errs, deadlineError(ctx))
	}
	return errors.Join(errs...)
}

// topicStats reads GET_TOPIC_STATS_INFO. The topic and the consumer
// collector both read DLQ topics, so those answers are shared within a
// scrape; every other topic is read once anyway and not kept.
func topicStats(ctx context.Context, s *Scrape, addr, topic string) (*rocketmq.TopicStatsTable, error) {
	if !strings.HasPrefix(topic, dlqTopicPrefix) {
		return s.Client.TopicStats(ctx, addr, topic)
	}
	return memoize(s, "topicstats\x00"+addr+"\x00"+topic, func() (*rocketmq.TopicStatsTable, error) {
		return s.Client.TopicStats(ctx, addr, topic)
	})
}

// selectTopics applies the filters before any per-topic request is made, so
// excluded topics cost nothing. names are sorted, and so are the jobs.
func (c *topicCollector) selectTopics(b *Broker, names []string, internal map[string]bool) []topicJob {
	if len(names) == 0 {
		return nil
	}
	bl := newBrokerLabels(c.ln, b)
	out := make([]topicJob, 0, len(names))
	for _, name := range names {
		if !c.opts.Topics.Match(name) {
			continue
		}
		typ := classifyTopic(name, internal)
		if typ == topicTypeSystem && !c.opts.SystemTopics || typ == topicTypeRetry && !c.opts.RetryTopics {
			continue
		}
		out = append(out, topicJob{b: b, bl: bl, topic: name, typ: typ})
	}
	return out
}

func (c *topicCollector) summarise(st *rocketmq.TopicStatsTable) topicResult {
	if st == nil {
		return topicResult{}
	}
	r := topicResult{ok: true, sum: st.Summary()}
	for _, off := range st.OffsetTable {
		if c.opts.PerQueue {
			r.perQueue = append(r.perQueue, queueStat{off.QueueID, off.MaxOffset, off.MinOffset})
		}
	}
	sort.Slice(r.perQueue, func(i, j int) bool { return r.perQueue[i].id < r.perQueue[j].id })
	return r
}

func (c *topicCollector) emit(ch chan<- prometheus.Metric, j topicJob, r *topicResult) {
	if !r.ok {
		return
	}
	typ := c.types[j.typ]
	if typ == nil {
		typ = labelPair(c.ln.typ, j.typ)
	}
	topic := labelPair(c.ln.topic, j.topic)
	lv := sortedLabels(j.bl.broker, j.bl.cluster, topic, typ)
	ch <- newSeries(c.messages, prometheus.CounterValue, float64(r.sum.SumMaxOffset), lv)
	ch <- newSeries(c.minOffset, prometheus.GaugeValue, float64(r.sum.SumMinOffset), lv)
	ch <- newSeries(c.retained, prometheus.GaugeValue, float64(r.sum.Retained), lv)
	ch <- newSeries(c.queues, prometheus.GaugeValue, float64(r.sum.Queues), lv)
	if r.sum.LastUpdateTimestamp > 0 {
		ch <- newSeries(c.lastUpdate, prometheus.GaugeValue, float64(r.sum.LastUpdateTimestamp)/1000, lv)
	}
	for _, q := range r.perQueue {
		qv := sortedLabels(j.bl.broker, j.bl.cluster, labelPair(c.ln.queueID, strconv.Itoa(q.id)), topic, typ)
		ch <- newSeries(c.queueMax, prometheus.GaugeValue, float64(q.max), qv)
		ch <- newSeries(c.queueMin, prometheus.GaugeValue, float64(q.min), qv)
	}
}

// isNoTopicError recognises the SYSTEM_ERROR a broker sends for
// GET_ALL_TOPIC_CONFIG when its topic table is empty.
func isNoTopicError(err error) bool {
	var re *rocketmq.ResponseError
	return errors.As(err, &re) && re.Code == rocketmq.ResponseSystemError &&
		strings.Contains(re.Remark, "No topic in this broker")
}

// groupOwners returns one owner per broker group. Two nodes of one group can
// both claim brokerId 0 for a moment (a deposed DLedger leader that has not
// yet noticed); topic and consumer series carry no address label, so
// reading both would produce duplicate series and fail the whole scrape. The
// node the NameServer lists as master wins, else the first in scrape order.
func groupOwners(s *Scrape) []*Broker {
	type group struct{ cluster, name string }
	var order []group
	picked := make(map[group]*Broker)
	for _, b := range s.Owners() {
		g := group{b.Cluster, b.Name}
		cur, seen := picked[g]
		switch {
		case !seen:
			order = append(order, g)
			picked[g] = b
		case s.ClusterInfo != nil && s.ClusterInfo.BrokerAddrTable[b.Name].BrokerAddrs[0] == b.Address &&
			s.ClusterInfo.BrokerAddrTable[cur.Name].BrokerAddrs[0] != cur.Address:
			picked[g] = b
		}
		if seen && s.Logger != nil {
			s.Logger.Warn("two masters in one broker group; reading one", "cluster", b.Cluster, "broker", b.Name,
				"addresses", []string{cur.Address, b.Address})
		}
	}
	out := make([]*Broker, 0, len(order))
	for _, g := range order {
		out = append(out, picked[g])
	}
	return out
}

// scrapeConcurrency is the fan-out bound of one collector in one scrape.
func scrapeConcurrency(s *Scrape, o Options) int {
	switch {
	case s.Concurrency > 0:
		return s.Concurrency
	case o.Concurrency > 0:
		return o.Concurrency
	}
	return 1
}

// laneLimiter bounds the requests one collector has in flight in one scrape
// (the scrape's concurrency) while each owner broker's requests run as a
// sequence of their own, its lane. A lane holds at most an equal share of
// the bound while other lanes are unfinished, so a broker that stops
// answering ties up its share only and the others go on; a lane's share
// grows as the others finish. With more lanes than the bound every lane
// still gets one slot, and only that many stalled brokers at once can hold
// up the rest.
type laneLimiter struct {
	mu     sync.Mutex
	limit  int
	used   int
	active int // lanes not finished
	lanes  []*lane
	next   int  // where the search for a lane to hand a slot to starts
	cut    bool // a request was not sent because the context ended
}

// lane is one owner broker's sequence of requests.
type lane struct {
	l       *laneLimiter
	cond    *sync.Cond // on l.mu
	held    int
	waiting int // goroutines in cond.Wait not yet signalled
	done    bool
}

// runLanes runs fn(i, lane) for i in 0..n-1, each on its own goroutine, with
// the requests of all of them bounded by limit, and reports whether a
// request was not sent because ctx ended.
func runLanes(ctx context.Context, limit, n int, fn func(i int, ln *lane)) (cut bool) {
	l := &laneLimiter{limit: max(1, limit), active: n}
	for range n {
		ln := &lane{l: l}
		ln.cond = sync.NewCond(&l.mu)
		l.lanes = append(l.lanes, ln)
	}
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.wakeAllLocked()
		l.mu.Unlock()
	})
	defer stop()
	// A panic in one lane ends that lane only; the first one is raised again
	// in the caller's goroutine once every lane is done (see eachBounded).
	var wg sync.WaitGroup
	var panicked atomic.Pointer[error]
	for i, ln := range l.lanes {
		wg.Go(func() {
			defer ln.finish()
			if p := catchPanic(func() { fn(i, ln) }); p != nil {
				panicked.CompareAndSwap(nil, &p)
			}
		})
	}
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(*p)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut
}

func (l *laneLimiter) mayTakeLocked(ln *lane) bool {
	return l.used < l.limit && ln.held < max(1, l.limit/max(1, l.active))
}

// wakeOneLocked hands a free slot to a waiter of a lane that may take it.
// A waiter that wakes and finds it may not (another goroutine was quicker)
// calls it again before waiting, so a free slot never sits idle while an
// eligible lane waits.
func (l *laneLimiter) wakeOneLocked() {
	n := len(l.lanes)
	for i := range n {
		ln := l.lanes[(l.next+i)%n]
		if ln.waiting > 0 && l.mayTakeLocked(ln) {
			l.next = (l.next + i + 1) % n
			ln.waiting--
			ln.cond.Signal()
			return
		}
	}
}

func (l *laneLimiter) wakeAllLocked() {
	for _, ln := range l.lanes {
		ln.waiting = 0
		ln.cond.Broadcast()
	}
}

// acquire waits for a slot; false when ctx ended first (the request must
// not be sent).
func (ln *lane) acquire(ctx context.Context) bool {
	l := ln.l
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if ctx.Err() != nil {
			l.cut = true
			return false
		}
		if l.mayTakeLocked(ln) {
			l.used++
			ln.held++
			return true
		}
		l.wakeOneLocked()
		ln.waiting++
		ln.cond.Wait()
	}
}

func (ln *lane) release() {
	l := ln.l
	l.mu.Lock()
	l.used--
	ln.held--
	l.wakeOneLocked()
	l.mu.Unlock()
}

// finish ends the lane; the others' shares grow.
func (ln *lane) finish() {
	l := ln.l
	l.mu.Lock()
	if !ln.done {
		ln.done = true
		l.active--
		l.wakeAllLocked()
	}
	l.mu.Unlock()
}

// each runs fn(0..n-1) on up to the scrape's bound of workers; fn takes a
// slot for each request it sends.
func (ln *lane) each(n int, fn func(i int)) {
	eachBounded(ln.l.limit, n, fn)
}

// deadlineError is a collector's error when the scrape's deadline left
// requests unsent: what was read is reported, but not as a success.
func deadlineError(ctx context.Context) error {
	return fmt.Errorf("the scrape's deadline passed before every request was sent; the series are partial: %w", context.Cause(ctx))
}

// Series over shared label pairs. A scrape of a large cluster sends well
// over 100,000 series, and prometheus.MustNewConstMetric gives each one its
// own label pairs (a struct and two strings per label) which the registry
// keeps until the whole exposition is written: they were most of the
// exporter's memory. The registry treats a metric's label pairs as
// immutable, so series carrying the same label can share one pair; the
// topic and consumer collectors build each pair once (per broker, per topic,
// per group) and a series then costs little more than its value.

// labelNames are the label names every shared pair points to.
type labelNames struct {
	cluster, broker, topic, typ, queueID, group, status, messageModel, consumeType *string
}

func newLabelNames() labelNames {
	n := func(s string) *string { return &s }
	return labelNames{
		cluster: n("cluster"), broker: n("broker"), topic: n("topic"), typ: n("type"), queueID: n("queue_id"),
		group: n("group"), status: n("status"), messageModel: n("message_model"), consumeType: n("consume_type"),
	}
}

func labelPair(name *string, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: name, Value: &value}
}

// brokerLabels are the pairs every series of one broker shares.
type brokerLabels struct{ cluster, broker *dto.LabelPair }

func newBrokerLabels(ln labelNames, b *Broker) brokerLabels {
	return brokerLabels{cluster: labelPair(ln.cluster, b.Cluster), broker: labelPair(ln.broker, b.Name)}
}

// sortedLabels orders pairs by name, as the registry expects them.
func sortedLabels(pairs ...*dto.LabelPair) []*dto.LabelPair {
	for i := 1; i < len(pairs); i++ {
		for j := i; j > 0 && *pairs[j].Name < *pairs[j-1].Name; j-- {
			pairs[j], pairs[j-1] = pairs[j-1], pairs[j]
		}
	}
	return pairs
}

// sharedSeries is a const metric over shared, name-sorted label pairs that
// match its Desc's variable labels.
type sharedSeries struct {
	desc   *prometheus.Desc
	typ    prometheus.ValueType
	val    float64
	labels []*dto.LabelPair
}

func newSeries(desc *prometheus.Desc, typ prometheus.ValueType, val float64, labels []*dto.LabelPair) prometheus.Metric {
	return &sharedSeries{desc: desc, typ: typ, val: val, labels: labels}
}

func (m *sharedSeries) Desc() *prometheus.Desc { return m.desc }

func (m *sharedSeries) Write(out *dto.Metric) error {
	out.Label = m.labels
	v := m.val
	switch m.typ {
	case prometheus.CounterValue:
		out.Counter = &dto.Counter{Value: &v}
	case prometheus.GaugeValue:
		out.Gauge = &dto.Gauge{Value: &v}
	default:
		out.Untyped = &dto.Untyped{Value: &v}
	}
	return nil
}
