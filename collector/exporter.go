package collector

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	upDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "up"),
		"1 if the target answered its identity read in this scrape (GET_BROKER_CONFIG for brokers, GET_BROKER_CLUSTER_INFO for NameServers), 0 otherwise.",
		[]string{"kind", "address"}, nil,
	)
	collectorSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "scrape", "collector_success"),
		"1 if the collector succeeded for every target in this scrape, 0 otherwise.",
		[]string{"collector"}, nil,
	)
	collectorDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "scrape", "collector_duration_seconds"),
		"Duration of the collector in this scrape.",
		[]string{"collector"}, nil,
	)
)

// Kind values of the rocketmq_up "kind" label.
const (
	KindBroker     = "broker"
	KindNameServer = "namesrv"
)

// Exporter is the prometheus.Collector of one scrape. Like mysqld_exporter it
// is built per HTTP request with that request's context, so the scrape's
// deadline reaches every remoting call and nothing outlives the request.
type Exporter struct {
	ctx        context.Context
	targets    Targets
	client     Client
	collectors map[string]Collector
	logger     *slog.Logger
}

// New returns the Exporter of one scrape. collectors are the enabled ones by
// name (see NewCollectors); they are shared between scrapes.
func New(ctx context.Context, t Targets, client Client, collectors map[string]Collector, logger *slog.Logger) *Exporter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Exporter{ctx: ctx, targets: t, client: client, collectors: collectors, logger: logger}
}

// Describe sends nothing, which makes the Exporter an unchecked collector: the
// series it sends depend on what the cluster answers (brokers, topics, groups
// and even which collectors have data), so there is no fixed set of
// descriptors to announce. The registry still checks every gathered metric
// for consistency and duplicates.
func (e *Exporter) Describe(chan<- *prometheus.Desc) {}

// Collect resolves the brokers once, runs every enabled collector on that
// shared view in parallel and then sends the up metrics. A failing collector
// only sets its own success to 0; whatever it and the others sent is kept.
// rocketmq_up goes out last so that a scrape cut short still shows which
// targets were read.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	s := Resolve(e.ctx, e.client, e.targets, e.logger)

	names := make([]string, 0, len(e.collectors))
	for name := range e.collectors {
		names = append(names, name)
	}
	sort.Strings(names)
	var wg sync.WaitGroup
	for _, name := range names {
		c := e.collectors[name]
		wg.Go(func() { e.run(name, c, s, ch) })
	}
	wg.Wait()

	for _, ns := range s.NameServers {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, boolValue(ns.Err == nil), KindNameServer, ns.Addr)
	}
	for _, b := range s.Brokers {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, boolValue(b.Up()), KindBroker, b.Addr)
	}
}

func (e *Exporter) run(name string, c Collector, s *Scrape, ch chan<- prometheus.Metric) {
	start := time.Now()
	err := update(e.ctx, c, s, ch)
	d := time.Since(start)
	if err != nil {
		e.logger.Error("collector failed", "collector", name, "duration_seconds", d.Seconds(), "err", err)
	} else {
		e.logger.Debug("collector succeeded", "collector", name, "duration_seconds", d.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(collectorDurationDesc, prometheus.GaugeValue, d.Seconds(), name)
	ch <- prometheus.MustNewConstMetric(collectorSuccessDesc, prometheus.GaugeValue, boolValue(err == nil), name)
}

// update turns a panicking collector into a failed one: a decoding bug
// triggered by one odd broker answer must not take the whole exporter down.
func update(ctx context.Context, c Collector, s *Scrape, ch chan<- prometheus.Metric) (err error) {
	defer recoverPanic(&err)
	return c.Update(ctx, s, ch)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewCollectors builds the enabled collectors. A collector is enabled when
// enabled[name] says so, or by its Registration.Default when the name is not
// in enabled. A name in enabled that no Registration has is an error, so a
// typo in a flag or query parameter is not silently ignored.
func NewCollectors(regs []Registration, enabled map[string]bool, opts Options, logger *slog.Logger) (map[string]Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	known := make(map[string]bool, len(regs))
	for _, r := range regs {
		known[r.Name] = true
	}
	for name := range enabled {
		if !known[name] {
			return nil, fmt.Errorf("unknown collector %q", name)
		}
	}
	out := map[string]Collector{}
	for _, r := range regs {
		on, set := enabled[r.Name]
		if !set {
			on = r.Default
		}
		if !on {
			continue
		}
		c, err := r.New(opts, logger.With("collector", r.Name))
		if err != nil {
			return nil, fmt.Errorf("collector %s: %w", r.Name, err)
		}
		out[r.Name] = c
	}
	return out, nil
}
