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

	"github.com/prometheus/client_golang/prometheus"

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
}

func newTopicCollector(o Options, logger *slog.Logger) (Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	name := func(n string) string { return prometheus.BuildFQName(Namespace, "topic", n) }
	queueLabels := append(append([]string(nil), topicLabels...), "queue_id")
	return &topicCollector{
		opts:   o,
		logger: logger,
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
	topic string
	typ   string
}

func (c *topicCollector) Update(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
	owners := groupOwners(s)
	if len(owners) == 0 {
		return nil
	}
	internal := internalNames(s)
	limit := scrapeConcurrency(s, c.opts)

	var (
		mu   sync.Mutex
		errs []error
		jobs []topicJob
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}

	eachBounded(limit, len(owners), func(i int) {
		b := owners[i]
		tc, err := s.TopicConfig(ctx, b)
		if err != nil && !isNoTopicError(err) {
			fail(fmt.Errorf("broker %s: topic config: %w", b.Addr, err))
			return
		}
		mine := c.selectTopics(b, tc, internal)
		mu.Lock()
		jobs = append(jobs, mine...)
		mu.Unlock()
	})

	eachBounded(limit, len(jobs), func(i int) {
		j := jobs[i]
		st, err := topicStats(ctx, s, j.b.Addr, j.topic)
		switch {
		case rocketmq.IsCode(err, rocketmq.ResponseTopicNotExist):
			// Deleted between the two requests: nothing to report.
			c.logger.Debug("topic vanished during the scrape", "broker", j.b.Addr, "topic", j.topic)
			return
		case err != nil:
			fail(fmt.Errorf("broker %s: topic %q stats: %w", j.b.Addr, j.topic, err))
			return
		}
		c.emit(ch, j, st)
	})
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
// excluded topics cost nothing.
func (c *topicCollector) selectTopics(b *Broker, tc *rocketmq.TopicConfigWrapper, internal map[string]bool) []topicJob {
	if tc == nil {
		return nil
	}
	names := make([]string, 0, len(tc.TopicConfigTable))
	for name := range tc.TopicConfigTable {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []topicJob
	for _, name := range names {
		if !c.opts.Topics.Match(name) {
			continue
		}
		typ := classifyTopic(name, internal)
		if typ == topicTypeSystem && !c.opts.SystemTopics {
			continue
		}
		out = append(out, topicJob{b: b, topic: name, typ: typ})
	}
	return out
}

func (c *topicCollector) emit(ch chan<- prometheus.Metric, j topicJob, st *rocketmq.TopicStatsTable) {
	if st == nil {
		return
	}
	var sumMax, sumMin, retained, last int64
	for _, off := range st.OffsetTable {
		sumMax += off.MaxOffset
		sumMin += off.MinOffset
		if d := off.MaxOffset - off.MinOffset; d > 0 {
			retained += d
		}
		last = max(last, off.LastUpdateTimestamp)
	}
	lv := []string{j.b.Cluster, j.b.Name, j.topic, j.typ}
	ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(sumMax), lv...)
	ch <- prometheus.MustNewConstMetric(c.minOffset, prometheus.GaugeValue, float64(sumMin), lv...)
	ch <- prometheus.MustNewConstMetric(c.retained, prometheus.GaugeValue, float64(retained), lv...)
	ch <- prometheus.MustNewConstMetric(c.queues, prometheus.GaugeValue, float64(len(st.OffsetTable)), lv...)
	if last > 0 {
		ch <- prometheus.MustNewConstMetric(c.lastUpdate, prometheus.GaugeValue, float64(last)/1000, lv...)
	}
	if !c.opts.PerQueue {
		return
	}
	for mq, off := range st.OffsetTable {
		qv := append(append([]string(nil), lv...), strconv.Itoa(mq.QueueID))
		ch <- prometheus.MustNewConstMetric(c.queueMax, prometheus.GaugeValue, float64(off.MaxOffset), qv...)
		ch <- prometheus.MustNewConstMetric(c.queueMin, prometheus.GaugeValue, float64(off.MinOffset), qv...)
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
