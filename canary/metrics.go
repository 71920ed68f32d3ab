package canary

import (
	"github.com/prometheus/client_golang/prometheus"
)

const (
	namespace = "rocketmq"
	subsystem = "canary"
)

// slaFactors shape the latency buckets around the SLA: fine below it, where
// a healthy cluster sits, and doubling above it up to where a probe counts
// as late.
var slaFactors = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16}

func slaBuckets(slaSeconds float64) []float64 {
	out := make([]float64, len(slaFactors))
	for i, f := range slaFactors {
		out[i] = slaSeconds * f
	}
	return out
}

// metrics are the canary's series. Counters and histograms live in vectors
// updated by the prober and the consumer callback; the per-broker gauges are
// computed from the ledger at scrape time.
type metrics struct {
	produced       *prometheus.CounterVec
	produceFailed  *prometheus.CounterVec
	produceLatency *prometheus.HistogramVec
	e2eLatency     *prometheus.HistogramVec
	lost           *prometheus.CounterVec
	duplicates     *prometheus.CounterVec
	startFailures  prometheus.Counter

	upDesc, infoDesc, slaDesc, lastRoundTripDesc, inFlightDesc *prometheus.Desc
}

// initBroker creates broker's series of every per-broker counter and
// histogram at zero. A counter that first appears at 1 hides its first
// increment from rate() and increase().
func (m *metrics) initBroker(broker string) {
	m.produced.WithLabelValues(broker)
	m.produceFailed.WithLabelValues(broker)
	m.lost.WithLabelValues(broker)
	m.duplicates.WithLabelValues(broker)
	m.produceLatency.WithLabelValues(broker)
	m.e2eLatency.WithLabelValues(broker)
}

func fq(name string) string { return prometheus.BuildFQName(namespace, subsystem, name) }

func newMetrics(slaSeconds float64) *metrics {
	broker := []string{"broker"}
	return &metrics{
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: fq("produce_total"),
			Help: "Probe messages the canary tried to send, by target broker group (empty when the send failed before a queue was chosen).",
		}, broker),
		produceFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: fq("produce_failures_total"),
			Help: "Probe sends that failed or timed out (no SEND_OK), by target broker group (empty when no queue could be chosen).",
		}, broker),
		produceLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    fq("produce_latency_seconds"),
			Help:    "Time from the send call to the broker's acknowledgement of successful probe sends; buckets are multiples of the SLA.",
			Buckets: slaBuckets(slaSeconds),
		}, broker),
		e2eLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    fq("end_to_end_latency_seconds"),
			Help:    "Time from a probe's send call to its delivery to the canary's consumer; buckets are multiples of the SLA.",
			Buckets: slaBuckets(slaSeconds),
		}, broker),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: fq("messages_lost_total"),
			Help: "Acknowledged probes the consumer had not received within the loss timeout (--canary.lost-after).",
		}, broker),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: fq("messages_duplicated_total"),
			Help: "Probes the consumer received more than once.",
		}, broker),
		startFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: fq("client_start_failures_total"),
			Help: "Failed attempts to start the canary's producer and consumer (no route to the probe topic, NameServer unreachable, …); retried with backoff.",
		}),
		upDesc: prometheus.NewDesc(fq("up"),
			"1 while the canary's producer and consumer are started, 0 while they are being (re)started.", nil, nil),
		infoDesc: prometheus.NewDesc(fq("info"),
			"The canary's probe topic, consumer group and mode (cluster: every broker group of the topic; sidecar: the local broker group only).",
			[]string{"topic", "group", "mode"}, nil),
		slaDesc: prometheus.NewDesc(fq("sla_seconds"),
			"The configured end-to-end latency target (--canary.sla) the histogram buckets are built around.", nil, nil),
		lastRoundTripDesc: prometheus.NewDesc(fq("last_round_trip_timestamp_seconds"),
			"Unix time of the last probe received by the canary's consumer, per broker group; 0 when none yet.",
			broker, nil),
		inFlightDesc: prometheus.NewDesc(fq("messages_in_flight"),
			"Acknowledged probes not received yet and not counted lost yet.", broker, nil),
	}
}

func (m *metrics) vectors() []prometheus.Collector {
	return []prometheus.Collector{m.produced, m.produceFailed, m.produceLatency, m.e2eLatency, m.lost, m.duplicates, m.startFailures}
}

// forget drops a broker group's series once it left the topic's route.
func (m *metrics) forget(broker string) {
	for _, v := range []interface{ DeleteLabelValues(...string) bool }{
		m.produced, m.produceFailed, m.produceLatency, m.e2eLatency, m.lost, m.duplicates,
	} {
		v.DeleteLabelValues(broker)
	}
}

// Describe implements prometheus.Collector.
func (c *Canary) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range c.m.vectors() {
		v.Describe(ch)
	}
	ch <- c.m.upDesc
	ch <- c.m.infoDesc
	ch <- c.m.slaDesc
	ch <- c.m.lastRoundTripDesc
	ch <- c.m.inFlightDesc
}

// Collect implements prometheus.Collector. It only reads what the prober
// and the consumer recorded; it never calls the client library.
func (c *Canary) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.m.vectors() {
		v.Collect(ch)
	}
	up := 0.0
	if c.up.Load() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.m.upDesc, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.m.infoDesc, prometheus.GaugeValue, 1, c.cfg.Topic, c.cfg.Group, c.mode())
	ch <- prometheus.MustNewConstMetric(c.m.slaDesc, prometheus.GaugeValue, c.cfg.SLA.Seconds())
	for _, b := range c.ledger.view() {
		ts := 0.0
		if !b.lastRoundTrip.IsZero() {
			ts = float64(b.lastRoundTrip.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(c.m.lastRoundTripDesc, prometheus.GaugeValue, ts, b.name)
		ch <- prometheus.MustNewConstMetric(c.m.inFlightDesc, prometheus.GaugeValue, float64(b.pending), b.name)
	}
}
