package collector

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// funcCollector adapts a function to Collector for framework tests.
type funcCollector func(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error

func (f funcCollector) Update(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
	return f(ctx, s, ch)
}

var testBrokerDesc = prometheus.NewDesc("rocketmq_test_broker", "Test metric per answering broker.", brokerLabelNames(), nil)

// perBroker sends one series per answering broker, as a real collector does.
var perBroker = funcCollector(func(_ context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
	for _, b := range s.UpBrokers() {
		ch <- prometheus.MustNewConstMetric(testBrokerDesc, prometheus.GaugeValue, float64(b.ID), b.LabelValues()...)
	}
	return nil
})

// twoClusters is one NameServer (plus a dead one listed first) in front of two
// clusters, one broker of which is down.
func twoClusters() *fakeClient {
	f := newFakeClient()
	f.addBroker("10.0.0.1:10911", "C1", "broker-a", 0, "ASYNC_MASTER")
	f.addBroker("10.0.0.2:10911", "C2", "broker-b", 0, "SYNC_MASTER")
	f.addBroker("10.0.0.3:10911", "C2", "broker-b", 1, "SLAVE")
	f.addNameServer("ns2:9876")
	f.down["ns1:9876"] = fakeDown("ns1:9876")
	f.down["10.0.0.3:10911"] = fakeDown("10.0.0.3:10911")
	return f
}

var clusterTargets = Targets{Mode: ModeCluster, NameServers: []string{"ns1:9876", "ns2:9876"}}

func TestExporterUpAndCollectors(t *testing.T) {
	f := twoClusters()
	logger, logs := newTestLogger()
	e := New(context.Background(), clusterTargets, f, map[string]Collector{
		"good": perBroker,
		"bad": funcCollector(func(_ context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
			// Partial data before the failure must survive.
			b := s.Brokers[0]
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("rocketmq_test_partial", "Partial.", brokerLabelNames(), nil),
				prometheus.GaugeValue, 1, b.LabelValues()...)
			return errors.New("broker 10.0.0.3:10911: connection refused")
		}),
		"panics": funcCollector(func(context.Context, *Scrape, chan<- prometheus.Metric) error {
			var m map[string]int
			m["x"]++
			return nil
		}),
	}, logger)

	want := `
# HELP rocketmq_scrape_collector_success 1 if the collector succeeded for every target in this scrape, 0 otherwise.
# TYPE rocketmq_scrape_collector_success gauge
rocketmq_scrape_collector_success{collector="bad"} 0
rocketmq_scrape_collector_success{collector="good"} 1
rocketmq_scrape_collector_success{collector="panics"} 0
# HELP rocketmq_test_broker Test metric per answering broker.
# TYPE rocketmq_test_broker gauge
rocketmq_test_broker{address="10.0.0.1:10911",broker="broker-a",cluster="C1"} 0
rocketmq_test_broker{address="10.0.0.2:10911",broker="broker-b",cluster="C2"} 0
# HELP rocketmq_test_partial Partial.
# TYPE rocketmq_test_partial gauge
rocketmq_test_partial{address="10.0.0.1:10911",broker="broker-a",cluster="C1"} 1
# HELP rocketmq_up 1 if the target answered its identity read in this scrape (GET_BROKER_CONFIG for brokers, GET_BROKER_CLUSTER_INFO for NameServers), 0 otherwise.
# TYPE rocketmq_up gauge
rocketmq_up{address="10.0.0.1:10911",kind="broker"} 1
rocketmq_up{address="10.0.0.2:10911",kind="broker"} 1
rocketmq_up{address="10.0.0.3:10911",kind="broker"} 0
rocketmq_up{address="ns1:9876",kind="namesrv"} 0
rocketmq_up{address="ns2:9876",kind="namesrv"} 1
`
	if err := testutil.CollectAndCompare(e, strings.NewReader(want),
		"rocketmq_up", "rocketmq_scrape_collector_success", "rocketmq_test_broker", "rocketmq_test_partial"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(e, "rocketmq_scrape_collector_duration_seconds"); n != 3 {
		t.Errorf("duration series = %d, want one per collector", n)
	}
	// CollectAndCompare plus CollectAndCount ran two scrapes.
	if got := logs.lines(`collector=bad`); len(got) != 2 || !strings.Contains(got[0], "connection refused") || !strings.Contains(got[0], "level=ERROR") {
		t.Errorf("want one ERROR line with the error per scrape for the failing collector, got %q", got)
	}
	if got := logs.lines(`collector=panics`); len(got) != 2 || !strings.Contains(got[0], "panic") {
		t.Errorf("panicking collector not reported as failed: %q", got)
	}
	if got := logs.lines(`collector failed collector=good`); len(got) != 0 {
		t.Errorf("good collector logged a failure: %q", got)
	}
}

func TestExporterHTTPSucceedsWhenCollectorFails(t *testing.T) {
	f := twoClusters()
	failing := funcCollector(func(context.Context, *Scrape, chan<- prometheus.Metric) error { return errors.New("boom") })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(New(r.Context(), clusterTargets, f, map[string]Collector{"good": perBroker, "failing": failing}, nil))
		// Default error handling: any gather error would turn into a 500.
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`rocketmq_scrape_collector_success{collector="failing"} 0`,
		`rocketmq_scrape_collector_success{collector="good"} 1`,
		`rocketmq_test_broker{address="10.0.0.2:10911",broker="broker-b",cluster="C2"} 0`,
		`rocketmq_up{address="10.0.0.3:10911",kind="broker"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %s in\n%s", want, body)
		}
	}
}

func TestExporterSidecarBrokerDown(t *testing.T) {
	f := newFakeClient()
	f.addBroker("127.0.0.1:10911", "C", "broker-a", 0, "ASYNC_MASTER")
	f.down["127.0.0.1:11911"] = fakeDown("127.0.0.1:11911")
	e := New(context.Background(), Targets{Brokers: []string{"127.0.0.1:10911", "127.0.0.1:11911"}}, f, map[string]Collector{"good": perBroker}, nil)
	want := `
# HELP rocketmq_up 1 if the target answered its identity read in this scrape (GET_BROKER_CONFIG for brokers, GET_BROKER_CLUSTER_INFO for NameServers), 0 otherwise.
# TYPE rocketmq_up gauge
rocketmq_up{address="127.0.0.1:10911",kind="broker"} 1
rocketmq_up{address="127.0.0.1:11911",kind="broker"} 0
# HELP rocketmq_test_broker Test metric per answering broker.
# TYPE rocketmq_test_broker gauge
rocketmq_test_broker{address="127.0.0.1:10911",broker="broker-a",cluster="C"} 0
`
	if err := testutil.CollectAndCompare(e, strings.NewReader(want), "rocketmq_up", "rocketmq_test_broker"); err != nil {
		t.Fatal(err)
	}
}

func TestExporterHonoursDeadline(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := twoClusters()
	// Identity reads answer, everything afterwards hangs like a stuck broker.
	f.before = func(ctx context.Context, key string) error {
		if strings.HasPrefix(key, "BrokerRuntimeInfo|") {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	slow := funcCollector(func(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
		for _, b := range s.UpBrokers() {
			if _, err := s.Client.BrokerRuntimeInfo(ctx, b.Addr); err != nil {
				return err
			}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	e := New(ctx, clusterTargets, f, map[string]Collector{"slow": slow, "good": perBroker}, nil)
	start := time.Now()
	want := `
# HELP rocketmq_scrape_collector_success 1 if the collector succeeded for every target in this scrape, 0 otherwise.
# TYPE rocketmq_scrape_collector_success gauge
rocketmq_scrape_collector_success{collector="good"} 1
rocketmq_scrape_collector_success{collector="slow"} 0
`
	if err := testutil.CollectAndCompare(e, strings.NewReader(want), "rocketmq_scrape_collector_success"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("scrape took %v past a 150ms deadline", d)
	}
}

func TestExporterLint(t *testing.T) {
	e := New(context.Background(), clusterTargets, twoClusters(), map[string]Collector{"good": perBroker}, nil)
	problems, err := testutil.CollectAndLint(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestExporterPedanticRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(context.Background(), clusterTargets, twoClusters(), map[string]Collector{"good": perBroker}, nil))
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

func TestNewCollectors(t *testing.T) {
	var gotOpts Options
	mk := func(name string) func(Options, *slog.Logger) (Collector, error) {
		return func(o Options, _ *slog.Logger) (Collector, error) {
			gotOpts = o
			if name == "broken" {
				return nil, errors.New("bad regexp")
			}
			return perBroker, nil
		}
	}
	regs := []Registration{
		{"on", true, "", mk("on")},
		{"off", false, "", mk("off")},
		{"broken", false, "", mk("broken")},
	}
	opts := Options{PerQueue: true, Concurrency: 7}

	cs, err := NewCollectors(regs, nil, opts, nil)
	if err != nil || len(cs) != 1 || cs["on"] == nil {
		t.Fatalf("defaults: %v %v", cs, err)
	}
	if !gotOpts.PerQueue || gotOpts.Concurrency != 7 {
		t.Errorf("options not passed: %+v", gotOpts)
	}
	cs, err = NewCollectors(regs, map[string]bool{"on": false, "off": true}, opts, nil)
	if err != nil || len(cs) != 1 || cs["off"] == nil {
		t.Fatalf("overrides: %v %v", cs, err)
	}
	if _, err := NewCollectors(regs, map[string]bool{"nope": true}, opts, nil); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown name: err = %v", err)
	}
	if _, err := NewCollectors(regs, map[string]bool{"broken": true}, opts, nil); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("factory error: err = %v", err)
	}
}

func TestRegistrationsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Registrations() {
		if r.Name == "" || r.New == nil || r.Help == "" || seen[r.Name] {
			t.Errorf("bad or repeated registration %q", r.Name)
		}
		seen[r.Name] = true
	}
}

// A collector fanning out per broker: a panic in one of its goroutines (a
// const metric with a wrong label count, say) fails that collector and
// nothing else.
func TestExporterFanOutPanic(t *testing.T) {
	f := twoClusters()
	logger, logs := newTestLogger()
	desc := prometheus.NewDesc("rocketmq_test_fanout", "Fan-out test metric.", brokerLabelNames(), nil)
	fanOut := funcCollector(func(_ context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
		var g safeGroup
		g.SetLimit(2)
		for _, b := range s.UpBrokers() {
			g.Go(func() error {
				lv := b.LabelValues()
				if b.Name == "broker-b" {
					lv = lv[:2]
				}
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, 1, lv...)
				return nil
			})
		}
		return g.Wait()
	})
	e := New(context.Background(), clusterTargets, f, map[string]Collector{"fanout": fanOut, "good": perBroker}, logger)
	want := `
# HELP rocketmq_scrape_collector_success 1 if the collector succeeded for every target in this scrape, 0 otherwise.
# TYPE rocketmq_scrape_collector_success gauge
rocketmq_scrape_collector_success{collector="fanout"} 0
rocketmq_scrape_collector_success{collector="good"} 1
`
	if err := testutil.CollectAndCompare(e, strings.NewReader(want), "rocketmq_scrape_collector_success"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(e, "rocketmq_test_fanout"); n != 1 {
		t.Errorf("fan-out series = %d, want broker-a's kept", n)
	}
	got := logs.lines("collector=fanout")
	if len(got) != 2 || !strings.Contains(got[0], "panic: inconsistent label cardinality") || !strings.Contains(got[0], "TestExporterFanOutPanic") {
		t.Errorf("want one ERROR line per scrape with the panic and its goroutine's stack, got %q", got)
	}
}
