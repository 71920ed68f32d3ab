package collector

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/rocketmq-exporter/rocketmq_exporter/cmd/rmqbench/proxy"
	"github.com/rocketmq-exporter/rocketmq_exporter/cmd/rmqbench/scenario"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

// Full scrapes (Resolve and every collector, through the real client over
// loopback) against the simulated scale scenario. The tests use small
// topologies and run in the normal suite; the issue-sized benchmarks only
// with -bench (or RMQ_BENCH=1 for the table test).

// codeCounter is an Invoker that counts the requests it passes on by code.
type codeCounter struct {
	inv rocketmq.Invoker
	mu  sync.Mutex
	n   map[int]int
}

func (c *codeCounter) Invoke(ctx context.Context, addr string, req *rocketmq.Command) (*rocketmq.Command, error) {
	c.mu.Lock()
	c.n[req.Code]++
	c.mu.Unlock()
	return c.inv.Invoke(ctx, addr, req)
}

// take returns the counts since the previous take.
func (c *codeCounter) take() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.n
	c.n = map[int]int{}
	return out
}

func total(counts map[int]int) int {
	n := 0
	for _, v := range counts {
		n += v
	}
	return n
}

// scaleEnv is one simulated cluster and one exporter (client, collectors)
// scraping it, directly or through a freezing proxy.
type scaleEnv struct {
	spec       scenario.Spec
	sim        *rmqsim.Cluster
	ownSim     bool
	frozen     *proxy.Proxy // nil: scrape the simulation itself
	client     *rocketmq.Client
	counter    *codeCounter
	admin      Client
	collectors map[string]Collector
	opts       Options
	text       *TextWriter // one per exporter, as the binary has
}

func newScaleEnv(tb testing.TB, spec scenario.Spec) *scaleEnv {
	tb.Helper()
	sim, err := scenario.Start(spec)
	if err != nil {
		tb.Fatal(err)
	}
	e := attachEnv(tb, spec, sim)
	e.ownSim = true
	return e
}

// attachEnv is a new exporter (client, collectors) for an existing
// simulation.
func attachEnv(tb testing.TB, spec scenario.Spec, sim *rmqsim.Cluster) *scaleEnv {
	tb.Helper()
	e := &scaleEnv{spec: spec, sim: sim}
	e.client = rocketmq.NewClient(rocketmq.ClientOptions{})
	e.counter = &codeCounter{inv: e.client, n: map[int]int{}}
	e.admin = rocketmq.NewAdmin(e.counter)
	e.opts = Options{LagSeconds: true}
	e.collectors = e.newCollectors(tb)
	e.text = NewTextWriter()
	return e
}

// newCollectors builds every default collector with the exporter's default
// options, i.e. fresh caches.
func (e *scaleEnv) newCollectors(tb testing.TB) map[string]Collector {
	tb.Helper()
	cs, err := NewCollectors(Registrations(), nil, e.opts, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

// freeze puts a replaying proxy between the exporter and the simulation:
// from the second scrape on, every answer comes from memory and the
// benchmark measures the exporter alone. New connections go through it.
func (e *scaleEnv) freeze(tb testing.TB) {
	tb.Helper()
	p, err := proxy.Start(scenario.Endpoints(e.sim), proxy.Options{Freeze: true})
	if err != nil {
		tb.Fatal(err)
	}
	e.frozen = p
}

func (e *scaleEnv) close() {
	_ = e.client.Close()
	if e.frozen != nil {
		e.frozen.Close()
	}
	if e.ownSim {
		e.sim.Close()
	}
}

// addr is where the exporter dials upstream.
func (e *scaleEnv) addr(upstream string) string {
	if e.frozen != nil {
		return e.frozen.Addr(upstream)
	}
	return upstream
}

func (e *scaleEnv) clusterTargets() Targets {
	var ns []string
	for _, a := range e.sim.NameServerAddrs() {
		ns = append(ns, e.addr(a))
	}
	return Targets{Mode: ModeCluster, NameServers: ns}
}

// sidecarTargets is the exporter next to the master of the first
// master/slave group: one broker's share of the cluster.
func (e *scaleEnv) sidecarTargets(tb testing.TB) Targets {
	tb.Helper()
	m := e.sim.Leader(scenario.BrokerGroup(1))
	if m == nil {
		tb.Fatal("no master in " + scenario.BrokerGroup(1))
	}
	return Targets{Mode: ModeSidecar, Brokers: []string{e.addr(m.Addr())}}
}

// scrapeResult is what one scrape produced.
type scrapeResult struct {
	series   int
	failed   []string // collectors whose success was 0
	requests map[int]int
	duration time.Duration
}

// scrape runs one full scrape as /metrics does (the shared collectors
// through a TextWriter, the text format written out) and counts what it
// sent. The text goes to a line counter, not to memory, as /metrics streams
// it into the response.
func (e *scaleEnv) scrape(tb testing.TB, t Targets) scrapeResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.counter.take()
	start := time.Now()
	exp, err := e.text.Collect(New(ctx, t, e.admin, e.collectors, nil))
	if err != nil {
		tb.Fatalf("collect: %v", err)
	}
	var lc lineCounter
	if err := exp.Encode(&lc, expfmt.NewFormat(expfmt.TypeTextPlain), nil); err != nil {
		tb.Fatalf("encode: %v", err)
	}
	lc.flush()
	d := time.Since(start)
	return scrapeResult{duration: d, requests: e.counter.take(), series: lc.series, failed: lc.failed}
}

// lineCounter counts the samples of a text exposition and notes the
// collectors whose rocketmq_scrape_collector_success is 0.
type lineCounter struct {
	line   []byte
	series int
	failed []string
}

func (c *lineCounter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.line = append(c.line, p...)
			break
		}
		c.line = append(c.line, p[:i]...)
		c.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (c *lineCounter) flush() {
	defer func() { c.line = c.line[:0] }()
	if len(c.line) == 0 || c.line[0] == '#' {
		return
	}
	c.series++
	const success = `rocketmq_scrape_collector_success{collector="`
	if rest, ok := bytes.CutPrefix(c.line, []byte(success)); ok && bytes.HasSuffix(rest, []byte(`} 0`)) {
		name, _, _ := bytes.Cut(rest, []byte(`"`))
		c.failed = append(c.failed, string(name))
	}
}

func (e *scaleEnv) mustScrape(tb testing.TB, t Targets) scrapeResult {
	tb.Helper()
	r := e.scrape(tb, t)
	if len(r.failed) > 0 {
		tb.Fatalf("collectors failed: %v", r.failed)
	}
	return r
}

func formatCounts(counts map[int]int) string {
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d:%d", code, counts[code]))
	}
	return strings.Join(parts, " ")
}

// Doubling the queues of every topic changes no request count: everything
// per queue comes in the per-topic and per-broker answers.
func TestScaleRequestsIndependentOfQueues(t *testing.T) {
	verifyNoLeaks(t)
	counts := func(queues int) (first, second map[int]int) {
		e := newScaleEnv(t, scenario.Spec{Topics: 40, Queues: queues, Groups: 30, BrokerGroups: 3})
		defer e.close()
		first = e.mustScrape(t, e.clusterTargets()).requests
		second = e.mustScrape(t, e.clusterTargets()).requests
		return first, second
	}
	first4, second4 := counts(4)
	first8, second8 := counts(8)
	if !maps.Equal(first4, first8) {
		t.Errorf("first scrape: 4 queues %s, 8 queues %s", formatCounts(first4), formatCounts(first8))
	}
	if !maps.Equal(second4, second8) {
		t.Errorf("second scrape: 4 queues %s, 8 queues %s", formatCounts(second4), formatCounts(second8))
	}
	t.Logf("first scrape %s; second %s", formatCounts(first8), formatCounts(second8))
}

// The request count of a scrape is the formula of the docs: a fixed handful
// per node, one topic-stats read per topic (normal and DLQ; retry topics
// only with Options.RetryTopics) on its master, one connection list per group and master, and lag in seconds only
// for (group, topic) pairs whose offsets moved.
func TestScaleRequestsFormula(t *testing.T) {
	verifyNoLeaks(t)
	spec := scenario.Spec{Topics: 60, Queues: 4, Groups: 40, BrokerGroups: 3}
	e := newScaleEnv(t, spec)
	defer e.close()
	e.mustScrape(t, e.clusterTargets())
	got := e.mustScrape(t, e.clusterTargets()).requests

	cnt := scenario.Count(spec)
	masters := spec.BrokerGroups
	clustering := cnt.Groups - cnt.States[scenario.Broadcasting]
	dlqs := 0
	for i := range spec.Groups {
		if scenario.State(i) != scenario.Broadcasting && i%100 == 5 {
			dlqs++
		}
	}
	// A DLQ topic exists on every broker group for the groups that have
	// one (the consumer collector reads it for the DLQ depth). Retry topics
	// (one per clustering group on each broker group) are not read: their
	// numbers come from GET_BROKER_CONSUME_STATS.
	topicStats := spec.Topics + dlqs*masters
	if n := got[rocketmq.CodeGetTopicStatsInfo]; n != topicStats {
		t.Errorf("GET_TOPIC_STATS_INFO: %d, want %d (topics %d + dlq %d; %d clustering groups' retry topics not read)", n, topicStats,
			spec.Topics, dlqs*masters, clustering)
	}
	// The groups the brokers know, i.e. those created plus the few system
	// groups, which the default filter drops before asking.
	if n, want := got[rocketmq.CodeGetConsumerConnectionList], cnt.Groups*masters; n != want {
		t.Errorf("GET_CONSUMER_CONNECTION_LIST: %d, want %d", n, want)
	}
	for _, code := range []int{rocketmq.CodeGetBrokerConsumeStats, rocketmq.CodeGetAllTopicConfig} {
		if n := got[code]; n != masters {
			t.Errorf("request %d: %d, want one per master (%d)", code, n, masters)
		}
	}
	if n := got[rocketmq.CodeGetBrokerConfig]; n != cnt.Nodes {
		t.Errorf("GET_BROKER_CONFIG: %d, want one per node (%d)", n, cnt.Nodes)
	}
	if n := got[rocketmq.CodeQueryConsumeTimeSpan]; n != 0 {
		t.Errorf("QUERY_CONSUME_TIME_SPAN on a second scrape with no offset moved: %d, want 0", n)
	}
	perNode := total(got) - topicStats - cnt.Groups*masters
	if perNode > 6*cnt.Nodes+4 {
		t.Errorf("%d requests beyond the per-topic and per-group ones for %d nodes: %s", perNode, cnt.Nodes, formatCounts(got))
	}
	t.Logf("second scrape: %d requests: %s", total(got), formatCounts(got))
}

// Lag in seconds costs QUERY_CONSUME_TIME_SPAN requests only for pairs whose
// consumer offset moved: none on a second scrape of an unchanged cluster,
// exactly the moved pairs after some groups consumed.
func TestScaleLagSecondsOnlyForMovedGroups(t *testing.T) {
	verifyNoLeaks(t)
	spec := scenario.Spec{Topics: 50, Queues: 4, Groups: 40, BrokerGroups: 2}
	e := newScaleEnv(t, spec)
	defer e.close()

	first := e.mustScrape(t, e.clusterTargets()).requests
	if first[rocketmq.CodeQueryConsumeTimeSpan] == 0 {
		t.Fatal("first scrape asked no QUERY_CONSUME_TIME_SPAN: nothing lags, the test proves nothing")
	}
	second := e.mustScrape(t, e.clusterTargets()).requests
	if n := second[rocketmq.CodeQueryConsumeTimeSpan]; n != 0 {
		t.Fatalf("second scrape with unchanged offsets: %d QUERY_CONSUME_TIME_SPAN, want 0", n)
	}
	moved, err := scenario.Advance(e.sim, spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	if moved == 0 {
		t.Fatal("Advance moved nothing")
	}
	third := e.mustScrape(t, e.clusterTargets()).requests
	if n := third[rocketmq.CodeQueryConsumeTimeSpan]; n != moved {
		t.Errorf("after %d (group, topic) pairs moved: %d QUERY_CONSUME_TIME_SPAN, want %d", moved, n, moved)
	}
	t.Logf("QUERY_CONSUME_TIME_SPAN: first %d, unchanged 0, after %d moved %d",
		first[rocketmq.CodeQueryConsumeTimeSpan], moved, third[rocketmq.CodeQueryConsumeTimeSpan])
}

// The issue-sized simulation is built once per test binary (it takes a few
// seconds) and shared by the benchmarks, each with its own exporter.
var (
	bigOnce sync.Once
	bigSim  *rmqsim.Cluster
	bigErr  error
)

func issueEnv(b *testing.B, frozen bool) *scaleEnv {
	b.Helper()
	if testing.Short() {
		b.Skip("builds the 10,000-topic scenario")
	}
	bigOnce.Do(func() {
		start := time.Now()
		bigSim, bigErr = scenario.Start(scenario.Issue7)
		b.Logf("scenario %+v built in %v", scenario.Count(scenario.Issue7), time.Since(start).Round(time.Millisecond))
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	e := attachEnv(b, scenario.Issue7, bigSim)
	if frozen {
		e.freeze(b)
	}
	b.Cleanup(e.close)
	return e
}

// benchScrape scrapes b.N times, between iterations (untimed) calling
// between, and reports requests, series and the lag-in-seconds requests per
// scrape.
func benchScrape(b *testing.B, e *scaleEnv, t Targets, between func()) {
	e.mustScrape(b, t) // connections dialled, lag cache warm, answers recorded
	var requests, spans, series int
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if between != nil {
			b.StopTimer()
			between()
			b.StartTimer()
		}
		r := e.mustScrape(b, t)
		requests += total(r.requests)
		spans += r.requests[rocketmq.CodeQueryConsumeTimeSpan]
		series = r.series
	}
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
	b.ReportMetric(float64(spans)/float64(b.N), "timespan-requests/op")
	b.ReportMetric(float64(series), "series")
}

// BenchmarkScaleCluster is a full cluster-mode scrape of the issue-sized
// scenario, against the live simulation (live/…) and against its answers
// replayed from memory (frozen/…), which leaves the exporter's own cost.
// steady: nothing changed since the last scrape; moving: the lagging groups
// consumed (and so need lag in seconds again); cold: fresh collectors, i.e.
// the first scrape after a start.
func BenchmarkScaleCluster(b *testing.B) {
	for _, frozen := range []bool{false, true} {
		name := "live"
		if frozen {
			name = "frozen"
		}
		b.Run(name, func(b *testing.B) {
			e := issueEnv(b, frozen)
			b.Run("steady", func(b *testing.B) { benchScrape(b, e, e.clusterTargets(), nil) })
			if !frozen {
				b.Run("moving", func(b *testing.B) {
					benchScrape(b, e, e.clusterTargets(), func() {
						if _, err := scenario.Advance(e.sim, e.spec, 1); err != nil {
							b.Fatal(err)
						}
					})
				})
			}
			b.Run("cold", func(b *testing.B) {
				benchScrape(b, e, e.clusterTargets(), func() { e.collectors = e.newCollectors(b) })
			})
		})
	}
}

// BenchmarkScaleSidecar is the scrape of an exporter next to one master: one
// broker group's share of the scenario.
func BenchmarkScaleSidecar(b *testing.B) {
	for _, frozen := range []bool{false, true} {
		name := "live"
		if frozen {
			name = "frozen"
		}
		b.Run(name, func(b *testing.B) {
			e := issueEnv(b, frozen)
			benchScrape(b, e, e.sidecarTargets(b), nil)
		})
	}
}

// TestScaleTable prints the figures of docs/benchmarks.md for the
// issue-sized scenario; it only runs with RMQ_BENCH=1 (make bench-scale).
func TestScaleTable(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("set RMQ_BENCH=1 to build the 10,000-topic scenario")
	}
	start := time.Now()
	e := newScaleEnv(t, scenario.Issue7)
	defer e.close()
	t.Logf("scenario built in %v", time.Since(start).Round(time.Millisecond))

	const n = 11
	type row struct {
		name    string
		targets Targets
		between func()
		cold    bool
	}
	rows := []row{
		{name: "cluster, first scrape", targets: e.clusterTargets(), cold: true},
		{name: "cluster, steady", targets: e.clusterTargets()},
		{name: "cluster, lagging groups moved", targets: e.clusterTargets(), between: func() {
			if _, err := scenario.Advance(e.sim, e.spec, 1); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "sidecar (one master), steady", targets: e.sidecarTargets(t)},
	}
	fmt.Printf("%-32s %10s %10s %10s %12s %8s\n", "scrape", "p50", "max", "requests", "timespan-req", "series")
	for _, r := range rows {
		var ds []time.Duration
		var last scrapeResult
		if !r.cold {
			e.mustScrape(t, r.targets)
		}
		for range n {
			if r.cold {
				e.collectors = e.newCollectors(t)
			}
			if r.between != nil {
				r.between()
			}
			last = e.mustScrape(t, r.targets)
			ds = append(ds, last.duration)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		fmt.Printf("%-32s %10v %10v %10d %12d %8d\n", r.name, ds[n/2].Round(time.Millisecond), ds[n-1].Round(time.Millisecond),
			total(last.requests), last.requests[rocketmq.CodeQueryConsumeTimeSpan], last.series)
		t.Logf("%s: %s", r.name, formatCounts(last.requests))
	}
}
