package canary

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

// simCluster starts two single-node broker groups hosting the probe topic.
func simCluster(t *testing.T, spec rmqsim.Spec) *rmqsim.Cluster {
	t.Helper()
	skipUnderRace(t)
	if len(spec.Groups) == 0 {
		spec.Groups = []rmqsim.GroupSpec{{Cluster: "C", Name: "broker-a"}, {Cluster: "C", Name: "broker-b"}}
	}
	c, err := rmqsim.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, g := range spec.Groups {
		if err := c.CreateTopic(g.Name, DefaultTopic, 2); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// syncBuffer is a log sink safe for the library's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newAdmin is the exporter's own client, as the binary hands it over.
func newAdmin(t *testing.T, creds *rocketmq.Credentials) *rocketmq.Admin {
	t.Helper()
	cl := rocketmq.NewClient(rocketmq.ClientOptions{RequestTimeout: 3 * time.Second, Credentials: creds})
	t.Cleanup(func() { _ = cl.Close() })
	return rocketmq.NewAdmin(cl)
}

func fastConfig(t *testing.T, c *rmqsim.Cluster) Config {
	return Config{
		NameServers: c.NameServerAddrs(),
		Admin:       newAdmin(t, nil),
		Interval:    50 * time.Millisecond,
		SLA:         200 * time.Millisecond,
		LostAfter:   3 * time.Second,
		SendTimeout: 2 * time.Second,
	}
}

// skipUnderRace skips tests that run the client library, whose own data
// races (race_test.go) would fail them under -race.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceDetector {
		t.Skip("rocketmq-client-go v2.1.2 races internally; see race_test.go")
	}
}

func startCanary(t *testing.T, cfg Config) (*Canary, *syncBuffer) {
	t.Helper()
	skipUnderRace(t)
	logs := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.ClientLogLevel == 0 {
		cfg.ClientLogLevel = ClientLogInfo
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Error(err)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("canary logs:\n%s", logs.String())
		}
	})
	return c, logs
}

// gather collects the canary's families by name.
func gather(t *testing.T, c *Canary) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// byBroker maps a family's series to a value per broker label.
func byBroker(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if mf == nil {
		return out
	}
	for _, m := range mf.GetMetric() {
		b := labelOf(m, "broker")
		switch {
		case m.Counter != nil:
			out[b] = m.GetCounter().GetValue()
		case m.Gauge != nil:
			out[b] = m.GetGauge().GetValue()
		case m.Histogram != nil:
			out[b] = float64(m.GetHistogram().GetSampleCount())
		}
	}
	return out
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ourGoroutines lists goroutines started by this package (test files
// excluded): after Close there must be none. A goroutine is attributed by
// its entry function (the bottom frame, past sync.WaitGroup.Go's wrapper),
// so library goroutines that merely call into the canary's callbacks or its
// log adapter are the library's.
func ourGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		type frame struct{ fn, file string }
		var frames []frame
		for i := 1; i+1 < len(lines); i += 2 {
			if strings.HasPrefix(lines[i], "created by ") {
				break
			}
			frames = append(frames, frame{lines[i], lines[i+1]})
		}
		for i := len(frames) - 1; i >= 0; i-- {
			f := frames[i]
			if strings.HasPrefix(f.fn, "sync.") || strings.HasPrefix(f.fn, "runtime.") {
				continue
			}
			if strings.HasPrefix(f.fn, "github.com/rocketmq-exporter/rocketmq_exporter/canary.") && !strings.Contains(f.file, "_test.go") {
				out = append(out, g)
			}
			break
		}
	}
	return out
}

func TestRoundTripsAgainstTheSimulator(t *testing.T) {
	sim := simCluster(t, rmqsim.Spec{})
	c, _ := startCanary(t, fastConfig(t, sim))

	var first map[string]float64
	waitFor(t, "round trips through both broker groups", 20*time.Second, func() bool {
		mfs := gather(t, c)
		first = byBroker(mfs["rocketmq_canary_last_round_trip_timestamp_seconds"])
		e2e := byBroker(mfs["rocketmq_canary_end_to_end_latency_seconds"])
		return first["broker-a"] > 0 && first["broker-b"] > 0 && e2e["broker-a"] >= 3 && e2e["broker-b"] >= 3
	})
	mfs := gather(t, c)
	if up := mfs["rocketmq_canary_up"].GetMetric()[0].GetGauge().GetValue(); up != 1 {
		t.Errorf("rocketmq_canary_up = %v", up)
	}
	produced, failed := byBroker(mfs["rocketmq_canary_produce_total"]), byBroker(mfs["rocketmq_canary_produce_failures_total"])
	platency := byBroker(mfs["rocketmq_canary_produce_latency_seconds"])
	for _, b := range []string{"broker-a", "broker-b"} {
		if produced[b] < 3 || failed[b] != 0 || platency[b] < 3 {
			t.Errorf("%s: produced %v, failed %v, produce latency samples %v", b, produced[b], failed[b], platency[b])
		}
	}
	// Loss and duplicate counters exist at 0 for every probed broker group
	// from the start, so an alert's increase() sees the first one.
	for _, name := range []string{"rocketmq_canary_messages_lost_total", "rocketmq_canary_messages_duplicated_total"} {
		got := byBroker(mfs[name])
		if len(got) != 2 || got["broker-a"] != 0 || got["broker-b"] != 0 {
			t.Errorf("%s = %v, want 0 for broker-a and broker-b", name, got)
		}
	}
	// The buckets follow the SLA (200ms × factors).
	h := mfs["rocketmq_canary_end_to_end_latency_seconds"].GetMetric()[0].GetHistogram()
	if got := h.GetBucket()[4].GetUpperBound(); got != 0.2 {
		t.Errorf("SLA bucket = %v, want 0.2", got)
	}
	if sla := mfs["rocketmq_canary_sla_seconds"].GetMetric()[0].GetGauge().GetValue(); sla != 0.2 {
		t.Errorf("sla gauge %v", sla)
	}

	// The last round trip keeps advancing.
	waitFor(t, "a newer round trip", 10*time.Second, func() bool {
		now := byBroker(gather(t, c)["rocketmq_canary_last_round_trip_timestamp_seconds"])
		return now["broker-a"] > first["broker-a"] && now["broker-b"] > first["broker-b"]
	})

	// The brokers saw the traffic the exporter's collectors read: offsets
	// advanced and the group is registered.
	var stored int64
	for _, g := range []string{"broker-a", "broker-b"} {
		for q := 0; q < 2; q++ {
			stored += sim.MaxOffset(g, DefaultTopic, q)
		}
	}
	if stored < 6 {
		t.Errorf("only %d probes stored in the simulator", stored)
	}
	if ids := sim.ConsumerClients(DefaultGroup); len(ids) != 1 {
		t.Errorf("consumer clients registered: %v", ids)
	}

	if len(ourGoroutines()) == 0 {
		t.Fatal("the goroutine attribution finds nothing while the canary runs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if g := ourGoroutines(); len(g) > 0 {
		t.Errorf("goroutines of the canary left after Close:\n%s", strings.Join(g, "\n\n"))
	}
	if up := gather(t, c)["rocketmq_canary_up"].GetMetric()[0].GetGauge().GetValue(); up != 0 {
		t.Errorf("rocketmq_canary_up after Close = %v", up)
	}
}

// TestLibraryGoroutinesDrainAfterClose documents what the client library
// leaves behind: after Close nothing of ours runs, and once the cluster
// closes its connections every goroutine ends within the library's own
// timeouts (parked pulls: 30 s; startup sleeps: 10 s).
func TestLibraryGoroutinesDrainAfterClose(t *testing.T) {
	if testing.Short() {
		t.Skip("waits up to a minute for the client library's timers")
	}
	skipUnderRace(t)
	before := goleak.IgnoreCurrent()
	sim := simCluster(t, rmqsim.Spec{})
	c, _ := startCanary(t, fastConfig(t, sim))
	waitFor(t, "a round trip", 20*time.Second, func() bool {
		return byBroker(gather(t, c)["rocketmq_canary_end_to_end_latency_seconds"])["broker-a"] > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	sim.Close()
	// The statistics printers of each consumer sleep until the next minute,
	// hour and month boundary before they look at their stop signal.
	stats := []goleak.Option{before}
	for _, f := range []string{"func4", "func5", "func6"} {
		stats = append(stats, goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*statsItemSet).init."+f))
	}
	var err error
	for time.Since(begin) < time.Minute {
		if err = goleak.Find(stats...); err == nil {
			t.Logf("client library goroutines gone %v after Close", time.Since(begin).Round(time.Second))
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Errorf("goroutines left a minute after Close: %v", err)
}

func TestSidecarProbesTheLocalBrokerOnly(t *testing.T) {
	sim := simCluster(t, rmqsim.Spec{})
	cfg := fastConfig(t, sim)
	cfg.NameServers = nil // from the local broker's namesrvAddr
	cfg.LocalBrokers = []string{sim.Group("broker-a")[0].Addr()}
	c, _ := startCanary(t, cfg)
	waitFor(t, "round trips through broker-a", 20*time.Second, func() bool {
		return byBroker(gather(t, c)["rocketmq_canary_end_to_end_latency_seconds"])["broker-a"] >= 5
	})
	mfs := gather(t, c)
	for _, name := range []string{"rocketmq_canary_produce_total", "rocketmq_canary_end_to_end_latency_seconds",
		"rocketmq_canary_last_round_trip_timestamp_seconds", "rocketmq_canary_produce_latency_seconds"} {
		if got := byBroker(mfs[name]); len(got) != 1 || got["broker-a"] == 0 {
			t.Errorf("%s: %v", name, got)
		}
	}
	if mode := labelOf(mfs["rocketmq_canary_info"].GetMetric()[0], "mode"); mode != "sidecar" {
		t.Errorf("mode %q", mode)
	}
	for q := 0; q < 2; q++ {
		if n := sim.MaxOffset("broker-b", DefaultTopic, q); n != 0 {
			t.Errorf("broker-b queue %d got %d messages", q, n)
		}
		// Offsets are committed (every 5 s and at shutdown) for the
		// allocated queues only.
		if off := sim.ConsumerOffset("broker-b", DefaultGroup, DefaultTopic, q); off != -1 {
			t.Errorf("broker-b queue %d has a committed offset %d", q, off)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var committed int64
	for q := 0; q < 2; q++ {
		committed += max(sim.ConsumerOffset("broker-a", DefaultGroup, DefaultTopic, q), 0)
	}
	if committed == 0 {
		t.Error("shutdown committed no offset on broker-a")
	}
}

func TestConsumerCountsOnlyItsRunFromProbedBrokers(t *testing.T) {
	l := newLedger("mine", time.Minute, 100)
	c := &Canary{run: "mine", ledger: l, m: newMetrics(1)}
	tg := target{local: map[string]bool{"a": true}}
	seq := l.nextSeq()
	now := time.Now()
	l.sent(seq, "a", now)
	msg := func(run, broker string) *primitive.MessageExt {
		m := &primitive.MessageExt{Message: primitive.Message{Body: encodeBody(run, seq, now)}}
		m.Queue = &primitive.MessageQueue{Topic: DefaultTopic, BrokerName: broker}
		return m
	}
	other := &primitive.MessageExt{Message: primitive.Message{Body: []byte("user data"), Queue: &primitive.MessageQueue{BrokerName: "a"}}}
	res, err := c.onMessages(tg)(context.Background(), msg("theirs", "a"), msg("mine", "b"), other)
	if res != consumer.ConsumeSuccess || err != nil {
		t.Fatalf("callback: %v %v", res, err)
	}
	if n := testutil.CollectAndCount(c.m.e2eLatency); n != 0 {
		t.Errorf("foreign probes observed: %d series", n)
	}
	c.onMessages(tg)(context.Background(), msg("mine", "a"), msg("mine", "a"))
	if got := testutil.ToFloat64(c.m.duplicates.WithLabelValues("a")); got != 1 {
		t.Errorf("duplicates = %v", got)
	}
	if n := testutil.CollectAndCount(c.m.e2eLatency); n != 1 {
		t.Errorf("own probe not observed: %d series", n)
	}
}

func TestBrokerFaultsShowAsFailuresAndLoss(t *testing.T) {
	sim := simCluster(t, rmqsim.Spec{Timing: rmqsim.Timing{LongPollMax: 300 * time.Millisecond}})
	cfg := fastConfig(t, sim)
	cfg.LostAfter = time.Second
	c, _ := startCanary(t, cfg)
	waitFor(t, "round trips", 20*time.Second, func() bool {
		e2e := byBroker(gather(t, c)["rocketmq_canary_end_to_end_latency_seconds"])
		return e2e["broker-a"] > 0 && e2e["broker-b"] > 0
	})
	a := sim.Group("broker-a")[0]

	t.Run("sends refused", func(t *testing.T) {
		a.SetFault(rmqsim.ErrorCode(14, "service not available now").For(10))
		defer a.ClearFault()
		base := byBroker(gather(t, c)["rocketmq_canary_produce_failures_total"])
		waitFor(t, "produce failures on broker-a", 10*time.Second, func() bool {
			return byBroker(gather(t, c)["rocketmq_canary_produce_failures_total"])["broker-a"] >= base["broker-a"]+3
		})
		if got := byBroker(gather(t, c)["rocketmq_canary_produce_failures_total"])["broker-b"]; got != base["broker-b"] {
			t.Errorf("broker-b failures moved from %v to %v", base["broker-b"], got)
		}
	})
	t.Run("acknowledged and lost", func(t *testing.T) {
		if err := sim.DropSends("broker-a", true); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "loss on broker-a", 15*time.Second, func() bool {
			return byBroker(gather(t, c)["rocketmq_canary_messages_lost_total"])["broker-a"] >= 3
		})
		if err := sim.DropSends("broker-a", false); err != nil {
			t.Fatal(err)
		}
		if lost := byBroker(gather(t, c)["rocketmq_canary_messages_lost_total"])["broker-b"]; lost != 0 {
			t.Errorf("broker-b lost %v", lost)
		}
	})
	t.Run("consumers stalled", func(t *testing.T) {
		lostBefore := byBroker(gather(t, c)["rocketmq_canary_messages_lost_total"])["broker-b"]
		if err := sim.StallPulls("broker-b", true); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "probes in flight and lost on broker-b", 15*time.Second, func() bool {
			mfs := gather(t, c)
			return byBroker(mfs["rocketmq_canary_messages_lost_total"])["broker-b"] >= lostBefore+3 &&
				byBroker(mfs["rocketmq_canary_messages_in_flight"])["broker-b"] > 0
		})
		stale := byBroker(gather(t, c)["rocketmq_canary_last_round_trip_timestamp_seconds"])["broker-b"]
		if err := sim.StallPulls("broker-b", false); err != nil {
			t.Fatal(err)
		}
		// The backlog arrives: late probes fill the slow buckets and the
		// round trip recovers.
		waitFor(t, "recovery on broker-b", 15*time.Second, func() bool {
			mfs := gather(t, c)
			return byBroker(mfs["rocketmq_canary_last_round_trip_timestamp_seconds"])["broker-b"] > stale
		})
		var slow uint64
		for _, m := range gather(t, c)["rocketmq_canary_end_to_end_latency_seconds"].GetMetric() {
			if labelOf(m, "broker") == "broker-b" {
				h := m.GetHistogram()
				slow = h.GetSampleCount() - h.GetBucket()[len(h.GetBucket())-4].GetCumulativeCount()
			}
		}
		if slow == 0 {
			t.Error("no late probe observed above 2×SLA after the stall")
		}
	})
	for b, n := range byBroker(gather(t, c)["rocketmq_canary_messages_duplicated_total"]) {
		if n != 0 {
			t.Errorf("duplicates through %s: %v", b, n)
		}
	}
}

func TestProbeTopicMissingThenAutoCreated(t *testing.T) {
	skipUnderRace(t)
	sim, err := rmqsim.Start(rmqsim.Spec{Groups: []rmqsim.GroupSpec{{Cluster: "C", Name: "broker-a"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	master := sim.Group("broker-a")[0]
	master.SetConfigValue("autoCreateTopicEnable", "false")
	// TBW102 is still routed, but the broker refuses to create the topic.
	cfg := fastConfig(t, sim)
	c, logs := startCanary(t, cfg)
	waitFor(t, "a failed start", 10*time.Second, func() bool {
		return testutil.ToFloat64(c.m.startFailures) >= 1
	})
	if up := gather(t, c)["rocketmq_canary_up"].GetMetric()[0].GetGauge().GetValue(); up != 0 {
		t.Errorf("up while the clients cannot start: %v", up)
	}
	master.SetConfigValue("autoCreateTopicEnable", "true")
	waitFor(t, "the clients started on an auto-created topic", 20*time.Second, func() bool {
		return c.up.Load() && byBroker(gather(t, c)["rocketmq_canary_end_to_end_latency_seconds"])["broker-a"] > 0
	})
	if !strings.Contains(logs.String(), "probe topic auto-created") {
		t.Error("no log line for the auto-creation")
	}
}

func TestCloseWhileTheClientsCannotStart(t *testing.T) {
	cfg := Config{NameServers: []string{"127.0.0.1:1"}, Admin: newAdmin(t, nil)}
	c, _ := startCanary(t, cfg)
	waitFor(t, "a failed start", 10*time.Second, func() bool { return testutil.ToFloat64(c.m.startFailures) >= 1 })
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(begin); el > 2*time.Second {
		t.Errorf("Close took %v", el)
	}
	if g := ourGoroutines(); len(g) > 0 {
		t.Errorf("goroutines left: %v", g)
	}
}

func TestProbesUnderACL(t *testing.T) {
	acct := rmqsim.Account{AccessKey: "canary", SecretKey: "canary-secret"}
	sim := simCluster(t, rmqsim.Spec{ACL: &rmqsim.ACL{Accounts: []rmqsim.Account{acct}}})
	creds := &rocketmq.Credentials{AccessKey: acct.AccessKey, SecretKey: acct.SecretKey}
	cfg := fastConfig(t, sim)
	cfg.Admin = newAdmin(t, creds)
	cfg.Credentials = creds
	c, _ := startCanary(t, cfg)
	waitFor(t, "signed round trips", 20*time.Second, func() bool {
		e2e := byBroker(gather(t, c)["rocketmq_canary_end_to_end_latency_seconds"])
		return e2e["broker-a"] > 0 && e2e["broker-b"] > 0
	})
}
