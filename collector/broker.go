package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// brokerRoles are the values of brokerRole (the Java BrokerRole enum), the
// states of the rocketmq_broker_role stateset.
var brokerRoles = [...]string{"ASYNC_MASTER", "SYNC_MASTER", "SLAVE"}

// Keys of the runtime table that need more than a number conversion.
const (
	keyVersionDesc      = "brokerVersionDesc"
	keyDistribution     = "putMessageDistributeTime"
	keyDirCapacity      = "commitLogDirCapacity"
	keyPathRatioPrefix  = "commitLogDiskRatio_"
	keySchedulePrefix   = "scheduleMessageOffset_"
	keyGetTotalTps      = "getTotalTps"
	keyGetFoundTps      = "getFoundTps"
	transientPoolAbsent = math.MaxInt32
)

// runtimeConv turns one runtime value into a sample value. ok is false, with
// a nil error, for the broker's "no value" sentinels (-1 ratios and
// timestamps, …), which are left out without a log line.
type runtimeConv func(string) (v float64, ok bool, err error)

// runtimeMetric is a runtime key that maps to one unlabelled series. keys are
// tried in order and the first one present is used (key names differ between
// versions).
type runtimeMetric struct {
	keys []string
	desc *prometheus.Desc
	vt   prometheus.ValueType
	conv runtimeConv
}

// tpsMetric is a TPS string exported per window.
type tpsMetric struct {
	keys []string
	desc *prometheus.Desc
}

// threadPool names the runtime keys of one broker thread pool queue; an empty
// key means the broker does not report that value for the pool.
type threadPool struct {
	pool, size, capacity, headWait string
}

// threadPools are the queues the broker reports: 4.9 has send, pull, query
// and end_transaction (whose keys are spelt differently and have no head wait
// time); 5.x adds lite_pull and, from 5.1, ack.
var threadPools = []threadPool{
	{"send", "sendThreadPoolQueueSize", "sendThreadPoolQueueCapacity", "sendThreadPoolQueueHeadWaitTimeMills"},
	{"pull", "pullThreadPoolQueueSize", "pullThreadPoolQueueCapacity", "pullThreadPoolQueueHeadWaitTimeMills"},
	{"query", "queryThreadPoolQueueSize", "queryThreadPoolQueueCapacity", "queryThreadPoolQueueHeadWaitTimeMills"},
	{"end_transaction", "EndTransactionQueueSize", "EndTransactionThreadPoolQueueCapacity", ""},
	{"lite_pull", "litePullThreadPoolQueueSize", "litePullThreadPoolQueueCapacity", "litePullThreadPoolQueueHeadWaitTimeMills"},
	{"ack", "ackThreadPoolQueueSize", "ackThreadPoolQueueCapacity", "ackThreadPoolQueueHeadWaitTimeMills"},
}

// brokerCollector exports broker identity (from the GET_BROKER_CONFIG answer
// Resolve already read) and GET_BROKER_RUNTIME_INFO, one request per broker
// that is up.
//
// Runtime keys deliberately not exported:
//   - msgPutTotalTodayMorning, msgPutTotalYesterdayMorning and the msgGet
//     pair are snapshots of the since-boot counters taken at local midnight
//     (BrokerStats.record). "Today" values derived from them fall back to 0
//     every midnight, so they are neither counters nor useful gauges; rate()
//     over the since-boot counters below gives any window.
//   - msgPutTotalTodayNow and msgGetTotalTodayNow despite their names are the
//     since-boot counters themselves (StoreStatsService totals): they are
//     exported as rocketmq_broker_put_messages_total and
//     rocketmq_broker_get_messages_total.
//   - runtime is bootTimestamp rendered as text; brokerVersion is the ordinal
//     of brokerVersionDesc; startAcceptSendRequestTimeStamp is a config value;
//     dispatchMaxBuffer is never updated by the broker (always 0).
type brokerCollector struct {
	logger      *slog.Logger
	concurrency int

	info, id, role       *prometheus.Desc
	latencyDistribution  *prometheus.Desc
	diskSize, diskFree   *prometheus.Desc
	pathDiskRatio        *prometheus.Desc
	scheduleDelay        *prometheus.Desc
	poolSize, poolCap    *prometheus.Desc
	poolHeadWait         *prometheus.Desc
	getTotalTps          *prometheus.Desc
	putMessagesTotal     *prometheus.Desc
	putMessagesTotalKeys []string
	simple               []runtimeMetric
	tps                  []tpsMetric
}

func newBrokerCollector(opts Options, logger *slog.Logger) (Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bl := brokerLabelNames()
	with := func(extra ...string) []string { return append(append([]string{}, bl...), extra...) }
	desc := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "broker", name), help, labels, nil)
	}
	c := &brokerCollector{
		logger:      logger,
		concurrency: opts.Concurrency,
		info: desc("info",
			"Broker identity, always 1: version is brokerVersionDesc from GET_BROKER_RUNTIME_INFO.", with("version")),
		id: desc("id",
			"Live brokerId from GET_BROKER_CONFIG: 0 for the master or DLedger leader, > 0 for slaves and followers; absent while unknown. It changes at failover.", bl),
		role: desc("role",
			"Live brokerRole from GET_BROKER_CONFIG as a stateset: 1 for the current role, 0 for the others. A DLedger node's role follows its elections; while its live brokerId is negative (it has not learnt the leader yet, e.g. right after a restart) its brokerRole is not live and the series are absent.", with("role")),
		latencyDistribution: desc("put_latency_last_minute_messages",
			"Messages put in the last full minute per put latency range (putMessageDistributeTime, GET_BROKER_RUNTIME_INFO); absent during the first minute after boot.", with("range")),
		diskSize: desc("commitlog_disk_size_bytes",
			"Size of the filesystem holding storePathRootDir (commitLogDirCapacity Total, GET_BROKER_RUNTIME_INFO; rounded by the broker to one decimal of its unit).", bl),
		diskFree: desc("commitlog_disk_free_bytes",
			"Free space on the filesystem holding storePathRootDir, usable space on 4.9 (commitLogDirCapacity Free, GET_BROKER_RUNTIME_INFO; rounded by the broker to one decimal of its unit).", bl),
		pathDiskRatio: desc("commitlog_path_disk_ratio",
			"Used fraction (0..1) of the disk of each configured commit log path (commitLogDiskRatio_<path>, GET_BROKER_RUNTIME_INFO).", with("path")),
		scheduleDelay: desc("schedule_delay_messages",
			"Scheduled (delayed) messages of a delay level not yet delivered: maxOffset - delayOffset of scheduleMessageOffset_<level> (GET_BROKER_RUNTIME_INFO).", with("level")),
		poolSize: desc("thread_pool_queue_size",
			"Tasks waiting in a broker thread pool queue (<pool>ThreadPoolQueueSize, GET_BROKER_RUNTIME_INFO).", with("pool")),
		poolCap: desc("thread_pool_queue_capacity",
			"Capacity of a broker thread pool queue (<pool>ThreadPoolQueueCapacity, GET_BROKER_RUNTIME_INFO); a full queue makes the broker reject requests.", with("pool")),
		poolHeadWait: desc("thread_pool_queue_head_wait_seconds",
			"Age of the oldest task waiting in a broker thread pool queue (<pool>ThreadPoolQueueHeadWaitTimeMills, GET_BROKER_RUNTIME_INFO).", with("pool")),
		getTotalTps: desc("get_total_messages_per_second",
			"Messages looked up by pulls, found or not, per second over the window (getTotalTps, GET_BROKER_RUNTIME_INFO); a window is absent until the broker has enough samples for it.", with("window")),
		putMessagesTotal: desc("put_messages_total",
			"Messages put (written) since broker boot (msgPutTotalTodayNow, or putMessageTimesTotal on brokers without it, GET_BROKER_RUNTIME_INFO).", bl),
		// putMessageTimesTotal is raised to 1 while nothing was put (to
		// divide by it), so the exact msgPutTotalTodayNow comes first.
		putMessagesTotalKeys: []string{"msgPutTotalTodayNow", "putMessageTimesTotal"},
	}
	simple := func(name, help string, vt prometheus.ValueType, conv runtimeConv, keys ...string) runtimeMetric {
		return runtimeMetric{keys: keys, desc: desc(name, help, bl), vt: vt, conv: conv}
	}
	const g, ctr = prometheus.GaugeValue, prometheus.CounterValue
	c.simple = []runtimeMetric{
		simple("boot_timestamp_seconds", "Time the broker's message store started, in seconds since the epoch (bootTimestamp, GET_BROKER_RUNTIME_INFO).", g, convEpochMillis, "bootTimestamp"),
		simple("put_bytes_total", "Bytes of messages put since broker boot (putMessageSizeTotal, GET_BROKER_RUNTIME_INFO).", ctr, convCount, "putMessageSizeTotal"),
		simple("put_failures_total", "Failed message puts since broker boot (putMessageFailedTimes, GET_BROKER_RUNTIME_INFO).", ctr, convCount, "putMessageFailedTimes"),
		simple("get_messages_total", "Messages transferred to consumers since broker boot (msgGetTotalTodayNow, GET_BROKER_RUNTIME_INFO).", ctr, convCount, "msgGetTotalTodayNow"),
		simple("put_latency_max_seconds", "Longest message put since broker boot (putMessageEntireTimeMax, GET_BROKER_RUNTIME_INFO).", g, convMillis, "putMessageEntireTimeMax"),
		simple("get_latency_max_seconds", "Longest message get since broker boot (getMessageEntireTimeMax, GET_BROKER_RUNTIME_INFO).", g, convMillis, "getMessageEntireTimeMax"),
		simple("put_latency_p99_seconds", "99th percentile of put latency over the last full minute (putLatency99, GET_BROKER_RUNTIME_INFO).", g, convMillisDouble, "putLatency99"),
		simple("put_latency_p999_seconds", "99.9th percentile of put latency over the last full minute (putLatency999, GET_BROKER_RUNTIME_INFO).", g, convMillisDouble, "putLatency999"),
		simple("put_message_average_size_bytes", "Average size of the messages put since broker boot (putMessageAverageSize, GET_BROKER_RUNTIME_INFO).", g, convNonNegative, "putMessageAverageSize"),
		simple("commitlog_disk_ratio", "Used fraction (0..1) of the commit log disk; with several commit log paths the lowest of them (commitLogDiskRatio, GET_BROKER_RUNTIME_INFO).", g, convRatio, "commitLogDiskRatio"),
		simple("consumequeue_disk_ratio", "Used fraction (0..1) of the consume queue disk (consumeQueueDiskRatio, GET_BROKER_RUNTIME_INFO).", g, convRatio, "consumeQueueDiskRatio"),
		simple("commitlog_min_offset_bytes", "Smallest physical commit log offset still stored (commitLogMinOffset, GET_BROKER_RUNTIME_INFO); absent while the store is empty.", g, convOffset, "commitLogMinOffset"),
		simple("commitlog_max_offset_bytes", "Physical commit log offset the next message is written at (commitLogMaxOffset, GET_BROKER_RUNTIME_INFO).", g, convOffset, "commitLogMaxOffset"),
		simple("dispatch_behind_bytes", "Commit log bytes not yet dispatched to consume queues and indexes (dispatchBehindBytes, GET_BROKER_RUNTIME_INFO).", g, convCount, "dispatchBehindBytes"),
		simple("flush_behind_bytes", "Commit log bytes written but not yet flushed to disk (remainHowManyDataToFlush, GET_BROKER_RUNTIME_INFO; rounded by the broker).", g, convBytes, "remainHowManyDataToFlush"),
		simple("commit_behind_bytes", "Bytes in the transient store pool not yet committed to the commit log file (remainHowManyDataToCommit, GET_BROKER_RUNTIME_INFO; only with transientStorePoolEnable).", g, convBytes, "remainHowManyDataToCommit"),
		simple("transient_store_pool_available_buffers", "Free buffers in the transient store pool (remainTransientStoreBufferNumbs, GET_BROKER_RUNTIME_INFO; only with transientStorePoolEnable). Puts fail when it reaches 0.", g, convTransientBuffers, "remainTransientStoreBufferNumbs"),
		simple("page_cache_lock_seconds", "How long the put in progress has held the commit log lock (pageCacheLockTimeMills, GET_BROKER_RUNTIME_INFO); long values mean a busy page cache.", g, convMillis, "pageCacheLockTimeMills"),
		simple("earliest_message_timestamp_seconds", "Store time of the oldest message in the commit log, in seconds since the epoch (earliestMessageTimeStamp, GET_BROKER_RUNTIME_INFO); absent when the broker reports -1.", g, convEpochMillis, "earliestMessageTimeStamp"),
		simple("active", "1 while the broker runs the master-only services (brokerActive, GET_BROKER_RUNTIME_INFO, 5.x only).", g, convBool, "brokerActive"),
		simple("timer_read_behind_seconds", "How far the timer wheel's read position lags the wall clock (timerReadBehind, GET_BROKER_RUNTIME_INFO, 5.x; 0 with the timer wheel disabled).", g, convCount, "timerReadBehind"),
		simple("timer_offset_behind_messages", "Timer messages not yet moved from the timer topic into the timer wheel (timerOffsetBehind, GET_BROKER_RUNTIME_INFO, 5.x).", g, convCount, "timerOffsetBehind"),
		simple("timer_wheel_messages", "Timer messages held in the slots of the timer wheel (timerCongestNum, GET_BROKER_RUNTIME_INFO, 5.x).", g, convCount, "timerCongestNum"),
		simple("timer_enqueue_messages_per_second", "Timer messages put into the timer wheel per second (timerEnqueueTps, GET_BROKER_RUNTIME_INFO, 5.x).", g, convNonNegative, "timerEnqueueTps"),
		simple("timer_dequeue_messages_per_second", "Timer messages taken out of the timer wheel when due, per second (timerDequeueTps, GET_BROKER_RUNTIME_INFO, 5.x).", g, convNonNegative, "timerDequeueTps"),
	}
	tps := func(name, help string, keys ...string) tpsMetric {
		return tpsMetric{keys: keys, desc: desc(name, help+" per second over the window (GET_BROKER_RUNTIME_INFO); a window is absent until the broker has enough samples for it.", with("window"))}
	}
	c.tps = []tpsMetric{
		tps("put_messages_per_second", "Messages put (putTps)", "putTps"),
		tps("get_found_messages_per_second", "Pulls that found messages (getFoundTps)", keyGetFoundTps),
		tps("get_miss_messages_per_second", "Pulls that found no message (getMissTps)", "getMissTps"),
		tps("get_transferred_messages_per_second", "Messages transferred to consumers (getTransferredTps on 5.x, getTransferedTps on 4.9)", "getTransferredTps", "getTransferedTps"),
	}
	return c, nil
}

// Describe sends every descriptor the collector may use, so a pedantic
// registry can check its output.
func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.info, c.id, c.role, c.latencyDistribution, c.diskSize, c.diskFree, c.pathDiskRatio,
		c.scheduleDelay, c.poolSize, c.poolCap, c.poolHeadWait, c.getTotalTps, c.putMessagesTotal,
	} {
		ch <- d
	}
	for _, m := range c.simple {
		ch <- m.desc
	}
	for _, m := range c.tps {
		ch <- m.desc
	}
}

// Update reads the runtime info of every broker that is up, at most
// s.Concurrency at a time. Brokers that are down are skipped: Resolve already
// logged them and rocketmq_up reports them. A broker whose runtime read fails
// (for example in its first seconds, when the 4.9 broker answers code 1 with
// NoSuchElementException) makes Update return an error naming it; its
// identity series and every other broker's series are still sent.
func (c *brokerCollector) Update(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
	logger := c.logger
	limit := s.Concurrency
	if limit <= 0 {
		limit = c.concurrency
	}
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	var (
		g    safeGroup
		mu   sync.Mutex
		errs []error
	)
	g.SetLimit(limit)
	for _, b := range s.Brokers {
		if !b.Up() {
			continue
		}
		g.Go(func() error {
			if err := c.collectBroker(ctx, s, b, ch, logger); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	// A panicking broker read is an error like any other; the series of
	// the other brokers are kept.
	errs = append(errs, g.Wait())
	return errors.Join(errs...)
}

// sink sends the samples of one broker.
type sink struct {
	ch     chan<- prometheus.Metric
	labels []string
	logger *slog.Logger
}

func (k *sink) send(d *prometheus.Desc, vt prometheus.ValueType, v float64, extra ...string) {
	lv := k.labels
	if len(extra) > 0 {
		lv = append(append(make([]string, 0, len(lv)+len(extra)), lv...), extra...)
	}
	k.ch <- prometheus.MustNewConstMetric(d, vt, v, lv...)
}

// skip logs a runtime value that could not be used. It is a debug message:
// the value is the broker's, and the same odd value would otherwise be logged
// at every scrape.
func (k *sink) skip(key, value string, err error) {
	k.logger.Debug("skipping runtime info value", "key", key, "value", value, "err", err)
}

func (c *brokerCollector) collectBroker(ctx context.Context, s *Scrape, b *Broker, ch chan<- prometheus.Metric, logger *slog.Logger) error {
	k := &sink{
		ch:     ch,
		labels: b.LabelValues(),
		logger: logger.With("address", b.Address, "cluster", b.Cluster, "broker", b.Name),
	}
	c.identity(b, k)

	// Through the scrape's memo: the ha collector reads the same answer.
	rt, err := s.RuntimeInfo(ctx, b)
	if err == nil && len(rt) == 0 {
		err = errors.New("empty runtime info table")
	}
	if err != nil {
		return fmt.Errorf("broker %s (%s, %s): GET_BROKER_RUNTIME_INFO: %w", b.Addr, b.Cluster, b.Name, err)
	}
	c.runtime(b, rt, k)
	return nil
}

// identity sends the series that come from the Broker itself.
func (c *brokerCollector) identity(b *Broker, k *sink) {
	if b.ID >= 0 {
		k.send(c.id, prometheus.GaugeValue, float64(b.ID))
	} else if dledgerEnabled(b.Config) {
		// A 4.9 DLedger node starts with brokerId -1 and the brokerRole of
		// its config file (ASYNC_MASTER by default) and keeps both until it
		// learns the leader: that role is not live, and reporting it would
		// show a second master right after every restart (PROTOCOL.md §2.6).
		return
	}
	role := b.Role
	if role == "" {
		role = b.Config["brokerRole"]
	}
	known := false
	for _, r := range brokerRoles {
		known = known || r == role
	}
	if !known {
		if role != "" {
			k.logger.Debug("unknown brokerRole, no role series", "role", role)
		}
		return
	}
	for _, r := range brokerRoles {
		k.send(c.role, prometheus.GaugeValue, boolValue(r == role), r)
	}
}

// runtime sends the series of one GET_BROKER_RUNTIME_INFO answer. Keys it
// does not know are ignored; a value it cannot parse skips that one series.
func (c *brokerCollector) runtime(b *Broker, rt rocketmq.RuntimeInfo, k *sink) {
	if version := rt[keyVersionDesc]; version != "" {
		k.send(c.info, prometheus.GaugeValue, 1, version)
	}

	for _, m := range c.simple {
		key, raw, ok := lookup(rt, m.keys)
		if !ok {
			continue
		}
		v, ok, err := m.conv(raw)
		if err != nil {
			k.skip(key, raw, err)
			continue
		}
		if ok {
			k.send(m.desc, m.vt, v)
		}
	}
	if key, raw, ok := lookup(rt, c.putMessagesTotalKeys); ok {
		if v, _, err := convCount(raw); err != nil {
			k.skip(key, raw, err)
		} else {
			k.send(c.putMessagesTotal, prometheus.CounterValue, v)
		}
	}

	c.sendTPS(rt, k)
	c.sendThreadPools(rt, k)

	if raw, ok := rt[keyDistribution]; ok {
		buckets, err := parseDistribution(raw)
		switch {
		case errors.Is(err, errNoData):
		case err != nil:
			k.skip(keyDistribution, raw, err)
		default:
			for _, bk := range buckets {
				k.send(c.latencyDistribution, prometheus.GaugeValue, bk.Count, bk.Range)
			}
		}
	}

	if raw, ok := rt[keyDirCapacity]; ok {
		if total, free, err := parseDirCapacity(raw); err != nil {
			k.skip(keyDirCapacity, raw, err)
		} else {
			k.send(c.diskSize, prometheus.GaugeValue, total)
			k.send(c.diskFree, prometheus.GaugeValue, free)
		}
	}

	paths := commitLogPaths(b.Config)
	for key, raw := range rt {
		switch {
		case strings.HasPrefix(key, keyPathRatioPrefix):
			path := strings.TrimPrefix(key, keyPathRatioPrefix)
			if !paths[path] {
				// The path becomes a label value, so only paths the
				// broker is configured with are accepted.
				k.skip(key, raw, errors.New("path is not a configured commit log path"))
				continue
			}
			v, ok, err := convRatio(raw)
			if err != nil {
				k.skip(key, raw, err)
			} else if ok {
				k.send(c.pathDiskRatio, prometheus.GaugeValue, v, path)
			}
		case strings.HasPrefix(key, keySchedulePrefix):
			level, err := parseDelayLevel(strings.TrimPrefix(key, keySchedulePrefix))
			if err != nil {
				k.skip(key, raw, err)
				continue
			}
			delay, maxOffset, err := parseScheduleOffset(raw)
			if err != nil {
				k.skip(key, raw, err)
				continue
			}
			// The delivered offset can pass the max offset a slave has
			// replicated so far; nothing is waiting then.
			k.send(c.scheduleDelay, prometheus.GaugeValue, float64(max(0, maxOffset-delay)), strconv.Itoa(level))
		}
	}
}

func (c *brokerCollector) sendTPS(rt rocketmq.RuntimeInfo, k *sink) {
	for _, m := range c.tps {
		key, raw, ok := lookup(rt, m.keys)
		if !ok {
			continue
		}
		ws, err := parseTPS(raw)
		if err != nil {
			k.skip(key, raw, err)
			continue
		}
		for _, w := range ws {
			k.send(m.desc, prometheus.GaugeValue, w.Value, w.Window)
		}
	}

	raw, ok := rt[keyGetTotalTps]
	if !ok {
		return
	}
	total, err := parseTPS(raw)
	if err != nil {
		k.skip(keyGetTotalTps, raw, err)
		return
	}
	// getTotalTps writes 0.0, not an empty field, for a window without
	// enough samples. Its windows are computed from the same sample lists
	// as getFoundTps, so a window getFoundTps leaves empty is not a real 0.
	var have map[string]bool
	if rawFound, ok := rt[keyGetFoundTps]; ok {
		if found, err := parseTPS(rawFound); err == nil {
			have = map[string]bool{}
			for _, w := range found {
				have[w.Window] = true
			}
		}
	}
	for _, w := range total {
		if have == nil || have[w.Window] {
			k.send(c.getTotalTps, prometheus.GaugeValue, w.Value, w.Window)
		}
	}
}

func (c *brokerCollector) sendThreadPools(rt rocketmq.RuntimeInfo, k *sink) {
	for _, p := range threadPools {
		for _, s := range []struct {
			key  string
			desc *prometheus.Desc
			conv runtimeConv
		}{
			{p.size, c.poolSize, convCount},
			{p.capacity, c.poolCap, convCount},
			{p.headWait, c.poolHeadWait, convMillis},
		} {
			if s.key == "" {
				continue
			}
			raw, ok := rt[s.key]
			if !ok {
				continue
			}
			if v, _, err := s.conv(raw); err != nil {
				k.skip(s.key, raw, err)
			} else {
				k.send(s.desc, prometheus.GaugeValue, v, p.pool)
			}
		}
	}
}

// lookup returns the first of keys present in rt.
func lookup(rt rocketmq.RuntimeInfo, keys []string) (key, value string, ok bool) {
	for _, key := range keys {
		if v, ok := rt[key]; ok {
			return key, v, true
		}
	}
	return "", "", false
}

// commitLogPaths are the commit log directories the broker reports a
// commitLogDiskRatio_<path> for: the entries of storePathCommitLog, or for a
// DLedger commit log storePathDLedgerCommitLog, which defaults to
// <storePathRootDir>/dledger-<dLegerSelfId>/data (DefaultMessageStore
// getStorePathPhysic, DLedgerCommitLog). Several paths are separated by
// commas (MixAll.MULTI_PATH_SPLITTER).
func commitLogPaths(cfg rocketmq.BrokerConfig) map[string]bool {
	list := cfg["storePathCommitLog"]
	if configTrue(cfg, "enableDLegerCommitLog") {
		list = cfg["storePathDLedgerCommitLog"]
		if list == "" && cfg["storePathRootDir"] != "" && cfg["dLegerSelfId"] != "" {
			list = cfg["storePathRootDir"] + "/dledger-" + cfg["dLegerSelfId"] + "/data"
		}
	}
	paths := map[string]bool{}
	for p := range strings.SplitSeq(strings.TrimSpace(list), ",") {
		if p != "" {
			paths[p] = true
		}
	}
	return paths
}

func convCount(s string) (float64, bool, error) {
	v, err := parseJavaLong(s)
	if err != nil {
		return 0, false, err
	}
	if v < 0 {
		return 0, false, fmt.Errorf("negative: %d", v)
	}
	return float64(v), true, nil
}

func convMillis(s string) (float64, bool, error) {
	v, ok, err := convCount(s)
	return v / 1000, ok, err
}

func convMillisDouble(s string) (float64, bool, error) {
	v, ok, err := convNonNegative(s)
	return v / 1000, ok, err
}

func convNonNegative(s string) (float64, bool, error) {
	v, err := parseJavaDouble(s)
	if err != nil {
		return 0, false, err
	}
	if v < 0 {
		return 0, false, fmt.Errorf("negative: %v", v)
	}
	return v, true, nil
}

// convRatio reads a disk usage fraction; the broker reports -1 for a path it
// cannot stat.
func convRatio(s string) (float64, bool, error) {
	v, err := parseJavaDouble(s)
	if err != nil {
		return 0, false, err
	}
	if v == -1 {
		return 0, false, nil
	}
	if v < 0 || v > 1 {
		return 0, false, fmt.Errorf("ratio out of 0..1: %v", v)
	}
	return v, true, nil
}

// convEpochMillis reads an epoch-ms timestamp; -1 (or 0) means none.
func convEpochMillis(s string) (float64, bool, error) {
	v, err := parseJavaLong(s)
	if err != nil {
		return 0, false, err
	}
	if v <= 0 {
		return 0, false, nil
	}
	return float64(v) / 1000, true, nil
}

// convOffset reads a physical offset; the minimum offset is -1 while the
// commit log has no file.
func convOffset(s string) (float64, bool, error) {
	v, err := parseJavaLong(s)
	if err != nil {
		return 0, false, err
	}
	if v < 0 {
		return 0, false, nil
	}
	return float64(v), true, nil
}

func convBytes(s string) (float64, bool, error) {
	v, err := parseHumanBytes(s)
	return v, err == nil, err
}

// convTransientBuffers reads remainTransientStoreBufferNumbs, which is
// Integer.MAX_VALUE when the transient store pool is disabled.
func convTransientBuffers(s string) (float64, bool, error) {
	v, ok, err := convCount(s)
	if err != nil || v == transientPoolAbsent {
		return 0, false, err
	}
	return v, ok, nil
}

func convBool(s string) (float64, bool, error) {
	v, err := parseJavaBool(s)
	return boolValue(v), err == nil, err
}
