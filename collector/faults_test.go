package collector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

// The fault matrix: every way a RocketMQ peer can misbehave on the wire,
// against the simulated cluster over the real protocol (rocketmq.Client,
// Admin, Resolve and every default collector, gathered through a registry
// with a scrape deadline). Each case checks what an operator relies on: the
// scrape ends within its deadline, the faulty target reads as down (or its
// collector as failed) with one warn/error log line naming it, the healthy
// targets' series are exactly what they were before the fault, nothing is
// left running and a hostile length prefix is not honoured with memory.

const (
	// faultDeadline is the scrape deadline of the matrix: long enough for a
	// loaded CI machine to scrape five simulated nodes, short enough to wait
	// for in every case that has to run into it.
	faultDeadline = 2 * time.Second
	// faultSlack is what a scrape may take past its deadline: sending the
	// metrics gathered so far and unwinding the requests.
	faultSlack = time.Second
	// faultAllocLimit bounds what one scrape may allocate in the cases that
	// announce a huge frame. A normal scrape of the matrix' cluster
	// allocates a few MiB; honouring any announced length would be 60 MiB
	// or more.
	faultAllocLimit = 24 << 20
)

var faultEpoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// faultLogs collects the log lines of one rig.
type faultLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *faultLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// take returns the lines logged since the last call and forgets them.
func (l *faultLogs) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimRight(l.buf.String(), "\n")
	l.buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// faultRig is one simulated cluster, one client and one set of collectors,
// as one exporter process has them.
type faultRig struct {
	t          *testing.T
	sim        *rmqsim.Cluster
	client     *rocketmq.Client
	admin      *rocketmq.Admin
	collectors map[string]Collector
	logs       *faultLogs
	logger     *slog.Logger
}

// faultSpec is the matrix' cluster: two master-only groups and a 3-node
// DLedger group, with a frozen clock so that two scrapes of an unchanged
// cluster read the same values.
func faultSpec() rmqsim.Spec {
	return rmqsim.Spec{
		Groups: []rmqsim.GroupSpec{
			{Cluster: "FaultCluster", Name: "broker-a", Mode: rmqsim.MasterSlave, Replicas: 1},
			{Cluster: "FaultCluster", Name: "broker-b", Mode: rmqsim.MasterSlave, Replicas: 1},
			{Cluster: "FaultCluster", Name: "raft", Mode: rmqsim.DLedger, Replicas: 3},
		},
		Clock:  func() time.Time { return faultEpoch },
		Timing: rmqsim.Timing{Manual: true},
	}
}

// newFaultRig starts the cluster with some traffic on every group. The leak
// check is registered first so that it runs after the client and the
// simulated cluster are closed.
func newFaultRig(t *testing.T, spec rmqsim.Spec) *faultRig {
	t.Helper()
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })

	sim, err := rmqsim.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	client := rocketmq.NewClient(rocketmq.ClientOptions{DialTimeout: time.Second})
	t.Cleanup(func() {
		_ = client.Close()
		sim.Close()
	})
	logs := &faultLogs{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cs, err := NewCollectors(Registrations(), nil, Options{LagSeconds: true, Concurrency: 4}, logger)
	if err != nil {
		t.Fatal(err)
	}
	r := &faultRig{t: t, sim: sim, client: client, admin: rocketmq.NewAdmin(client), collectors: cs, logs: logs, logger: logger}
	r.traffic()
	return r
}

func (r *faultRig) traffic() {
	t, sim := r.t, r.sim
	t.Helper()
	for _, g := range []struct{ group, topic, cg string }{
		{"broker-a", "TopicA", "GroupA"},
		{"broker-b", "TopicB", "GroupB"},
		{"raft", "TopicR", "GroupR"},
	} {
		if sim.Group(g.group) == nil {
			continue
		}
		must(t, sim.CreateTopic(g.group, g.topic, 2))
		sim.CreateConsumerGroup(g.cg, false)
		must(t, sim.Subscribe(g.cg, g.topic))
		if _, err := sim.Produce(g.topic, 40); err != nil {
			t.Fatal(err)
		}
		if _, err := sim.Consume(g.cg, g.topic, 10); err != nil {
			t.Fatal(err)
		}
		sim.SetOnline(g.cg, 1)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (r *faultRig) addrOf(group string, idx int) string { return r.sim.Group(group)[idx].Addr() }

func (r *faultRig) clusterTargets() Targets {
	return Targets{Mode: ModeCluster, NameServers: r.sim.NameServerAddrs()}
}

// faultScrape is the outcome of one gather.
type faultScrape struct {
	elapsed time.Duration
	// samples by series key (see seriesKey).
	samples map[string]float64
	labels  map[string]map[string]string
	// loud are the warn and error log lines of the scrape.
	loud []string
	// alloc is what the process allocated during the scrape.
	alloc uint64
}

// scrape gathers once, like a /metrics request with the given deadline.
func (r *faultRig) scrape(targets Targets, deadline time.Duration) faultScrape {
	t := r.t
	t.Helper()
	r.logs.take()
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	must(t, reg.Register(New(ctx, targets, r.admin, r.collectors, r.logger)))

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	mfs, err := reg.Gather()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := faultScrape{
		elapsed: elapsed,
		samples: map[string]float64{},
		labels:  map[string]map[string]string{},
		alloc:   after.TotalAlloc - before.TotalAlloc,
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key, lbl := seriesKey(mf.GetName(), m)
			out.samples[key] = metricValue(m)
			out.labels[key] = lbl
		}
	}
	for _, line := range r.logs.take() {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out.loud = append(out.loud, line)
		}
	}
	return out
}

func seriesKey(name string, m *dto.Metric) (string, map[string]string) {
	lbl := map[string]string{}
	parts := make([]string, 0, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		lbl[lp.GetName()] = lp.GetValue()
		parts = append(parts, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}", lbl
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// up returns rocketmq_up of a target and whether it was exported.
func (s faultScrape) up(kind, addr string) (float64, bool) {
	v, ok := s.samples[fmt.Sprintf("rocketmq_up{address=%q,kind=%q}", addr, kind)]
	return v, ok
}

func (s faultScrape) success(collector string) (float64, bool) {
	v, ok := s.samples[fmt.Sprintf("rocketmq_scrape_collector_success{collector=%q}", collector)]
	return v, ok
}

// failedCollectors lists the collectors whose success is 0.
func (s faultScrape) failedCollectors() []string {
	var out []string
	for key, v := range s.samples {
		if strings.HasPrefix(key, "rocketmq_scrape_collector_success{") && v == 0 {
			out = append(out, s.labels[key]["collector"])
		}
	}
	sort.Strings(out)
	return out
}

// subset keeps the series of the healthy part of the cluster: those whose
// broker or address label is one of keep, without the timing series that
// differ in every scrape.
func (s faultScrape) subset(keep ...string) map[string]float64 {
	out := map[string]float64{}
	for key, v := range s.samples {
		lbl := s.labels[key]
		if strings.HasPrefix(key, "rocketmq_scrape_collector_duration_seconds") {
			continue
		}
		if slices.Contains(keep, lbl["broker"]) || slices.Contains(keep, lbl["address"]) {
			out[key] = v
		}
	}
	return out
}

// loudAbout returns the warn/error lines that mention any of needles.
func (s faultScrape) loudAbout(needles ...string) []string {
	var out []string
	for _, line := range s.loud {
		for _, n := range needles {
			if strings.Contains(line, n) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

func diffSamples(before, after map[string]float64) string {
	var b strings.Builder
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		v1, ok1 := before[k]
		v2, ok2 := after[k]
		switch {
		case !ok1:
			fmt.Fprintf(&b, "  + %s %g\n", k, v2)
		case !ok2:
			fmt.Fprintf(&b, "  - %s %g\n", k, v1)
		case v1 != v2:
			fmt.Fprintf(&b, "  ~ %s %g -> %g\n", k, v1, v2)
		}
	}
	return b.String()
}

// checkTimely fails when a scrape overran its deadline.
func checkTimely(t *testing.T, s faultScrape, deadline time.Duration) {
	t.Helper()
	if s.elapsed > deadline+faultSlack {
		t.Errorf("scrape took %v, deadline %v (+%v slack)", s.elapsed, deadline, faultSlack)
	}
}

// checkOneLine requires exactly one warn/error line naming the target.
func checkOneLine(t *testing.T, s faultScrape, target string) {
	t.Helper()
	if lines := s.loudAbout(target); len(lines) != 1 {
		t.Errorf("want exactly one warn/error line naming %s, got %d:\n%s\nall loud lines:\n%s",
			target, len(lines), strings.Join(lines, "\n"), strings.Join(s.loud, "\n"))
	}
}

func checkUnchanged(t *testing.T, before, after faultScrape, keep ...string) {
	t.Helper()
	b, a := before.subset(keep...), after.subset(keep...)
	if len(b) == 0 {
		t.Fatalf("no healthy series in the baseline for %v", keep)
	}
	if d := diffSamples(b, a); d != "" {
		t.Errorf("healthy targets' series changed:\n%s", d)
	}
}

// TestFaultMatrixSimulated injects the simulated cluster's own faults into
// one broker (broker-b's master), in cluster mode.
func TestFaultMatrixSimulated(t *testing.T) {
	cases := []struct {
		name  string
		fault rmqsim.Fault
		// waits: the fault makes the scrape run into its deadline.
		waits bool
		huge  bool
		// fail: the fault hits one read only; the broker stays up and
		// these collectors fail (others too if the fault breaks the
		// connection).
		fail   []string
		breaks bool
	}{
		{name: "accepts-never-answers", fault: rmqsim.NoAnswer(), waits: true},
		{name: "slow-past-deadline", fault: rmqsim.Slow(3 * faultDeadline), waits: true},
		{name: "reset-mid-frame", fault: rmqsim.ResetMidFrame()},
		{name: "garbage", fault: rmqsim.Garbage()},
		{name: "oversized-length", fault: rmqsim.OversizedLength(), huge: true},
		{name: "close-without-answer", fault: rmqsim.CloseConn()},
		{name: "error-code", fault: rmqsim.ErrorCode(1, "injected failure")},
		{name: "one-read-never-answered", fault: rmqsim.NoAnswer().For(rocketmq.CodeGetBrokerRuntimeInfo), waits: true,
			fail: []string{"broker"}},
		// Garbage breaks the connection, and with it the requests other
		// collectors have in flight on it at that moment.
		{name: "one-read-garbage", fault: rmqsim.Garbage().For(rocketmq.CodeGetBrokerRuntimeInfo), fail: []string{"broker"}, breaks: true},
		{name: "one-read-startup-window", fault: rmqsim.NoSuchElement(), fail: []string{"broker"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newFaultRig(t, faultSpec())
			victim := r.addrOf("broker-b", 0)
			healthy := []string{"broker-a", "raft"}
			before := r.scrape(r.clusterTargets(), faultDeadline)
			if v, _ := before.up(KindBroker, victim); v != 1 {
				t.Fatalf("baseline: %s not up", victim)
			}
			if failed := before.failedCollectors(); len(failed) > 0 {
				t.Fatalf("baseline: collectors failed: %v\n%s", failed, strings.Join(before.loud, "\n"))
			}

			r.sim.Group("broker-b")[0].SetFault(tc.fault)
			after := r.scrape(r.clusterTargets(), faultDeadline)
			checkTimely(t, after, faultDeadline)
			down := len(tc.fail) == 0
			if v, ok := after.up(KindBroker, victim); !ok || v != boolValue(!down) {
				t.Errorf("rocketmq_up of the faulty broker = %v (exported %v), want %v", v, ok, boolValue(!down))
			}
			failed := after.failedCollectors()
			for _, c := range tc.fail {
				if !slices.Contains(failed, c) {
					t.Errorf("collector %s did not fail (failed: %v)", c, failed)
				}
			}
			if !tc.breaks && !slices.Equal(failed, tc.fail) {
				t.Errorf("failed collectors %v, want %v", failed, tc.fail)
			}
			checkLines(t, after, victim, down)
			checkUnchanged(t, before, after, healthy...)
			if tc.huge && after.alloc > faultAllocLimit {
				t.Errorf("scrape allocated %d MiB", after.alloc>>20)
			}
			if !tc.waits && after.elapsed > faultDeadline/2 {
				t.Errorf("a fault that ends the connection took %v: nothing should wait for the deadline", after.elapsed)
			}

			// The broker heals: the next scrape is complete again.
			r.sim.Group("broker-b")[0].ClearFault()
			healed := r.scrape(r.clusterTargets(), faultDeadline)
			if v, _ := healed.up(KindBroker, victim); v != 1 {
				t.Errorf("after the fault cleared: %s up = %v", victim, v)
			}
			if failed := healed.failedCollectors(); len(failed) > 0 {
				t.Errorf("after the fault cleared: collectors failed: %v\n%s", failed, strings.Join(healed.loud, "\n"))
			}
		})
	}
}

// hostilePeer is a remoting server standing in front of a real (simulated)
// peer: it forwards every request through its own client and answers with
// the real answer, except where tamper returns raw bytes to send instead.
// That way a case changes one answer of an otherwise working broker.
type hostilePeer struct {
	ln       net.Listener
	up       *rocketmq.Client
	upstream string

	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	tamp  tamper
}

// then is what a hostile peer does after writing a tampered answer.
type then int

const (
	keepServing then = iota
	stallConn        // keep the connection open and silent
	closeConn        // close it
)

// tamper returns the bytes to write instead of the real answer (nil = the
// real answer) and what to do next.
type tamper func(req, resp *rocketmq.Command) ([]byte, then)

func passThrough(*rocketmq.Command, *rocketmq.Command) ([]byte, then) { return nil, keepServing }

// startHostile listens on a fresh port. It is closed by a cleanup that runs
// before the rig's (so before the leak check).
func startHostile(t *testing.T, upstream string) *hostilePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hostilePeer{
		ln: ln, upstream: upstream, tamp: passThrough,
		up:    rocketmq.NewClient(rocketmq.ClientOptions{DialTimeout: time.Second}),
		done:  make(chan struct{}),
		conns: map[net.Conn]struct{}{},
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *hostilePeer) Addr() string { return p.ln.Addr().String() }

func (p *hostilePeer) set(f tamper) {
	p.mu.Lock()
	p.tamp = f
	p.mu.Unlock()
}

func (p *hostilePeer) get() tamper {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tamp
}

func (p *hostilePeer) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() {
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
				c.Close()
			}()
			p.serve(c)
		}()
	}
}

// serve answers one request at a time: enough for the exporter, which
// multiplexes but does not need parallel answers to be correct.
func (p *hostilePeer) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := rocketmq.ReadFrame(br, 1<<20)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := p.up.Invoke(ctx, p.upstream, req)
		cancel()
		if err != nil || resp == nil {
			return
		}
		resp.Opaque = req.Opaque
		raw, next := p.get()(req, resp)
		if raw == nil {
			if raw, err = rocketmq.EncodeFrame(resp); err != nil {
				return
			}
		}
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(raw); err != nil {
			return
		}
		switch next {
		case stallConn:
			<-p.done
			return
		case closeConn:
			return
		}
	}
}

func (p *hostilePeer) close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	_ = p.up.Close()
}

// rawFrame builds a frame from its parts without any check: total is the
// length prefix, word the header-length word (serialize type in the top
// byte).
func rawFrame(total, word uint32, rest []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, total)
	b = binary.BigEndian.AppendUint32(b, word)
	return append(b, rest...)
}

// withBody is resp re-encoded with another body.
func withBody(resp *rocketmq.Command, body []byte) []byte {
	c := *resp
	c.Body = body
	b, err := rocketmq.EncodeFrame(&c)
	if err != nil {
		panic(err)
	}
	return b
}

// onCode tampers with the answers to one request code only.
func onCode(code int, f tamper) tamper {
	return func(req, resp *rocketmq.Command) ([]byte, then) {
		if req.Code != code {
			return nil, keepServing
		}
		return f(req, resp)
	}
}

// always answers every request with the same bytes.
func always(raw []byte, next then) tamper {
	return func(*rocketmq.Command, *rocketmq.Command) ([]byte, then) { return raw, next }
}

// bodyOf replaces the body of the answer.
func bodyOf(body []byte) tamper {
	return func(_, resp *rocketmq.Command) ([]byte, then) { return withBody(resp, body), keepServing }
}

// runtimeBody is a GET_BROKER_RUNTIME_INFO body whose table has one more
// entry x holding raw JSON.
func runtimeBody(x string) []byte {
	return []byte(`{"table":{"brokerVersionDesc":"V4_9_7","x":` + x + `}}`)
}

// checkLines requires exactly one warn/error line naming the target per
// failed read: one for a target that is down (its identity read failed),
// else one per failed collector (each names every target it failed on).
func checkLines(t *testing.T, s faultScrape, target string, down bool) {
	t.Helper()
	lines := s.loudAbout(target)
	if down {
		if len(lines) != 1 {
			t.Errorf("want one warn/error line naming %s, got %d:\n%s", target, len(lines), strings.Join(lines, "\n"))
		}
		return
	}
	failed := s.failedCollectors()
	seen := map[string]int{}
	for _, line := range lines {
		for _, c := range failed {
			if strings.Contains(line, "collector="+c+" ") {
				seen[c]++
			}
		}
	}
	for _, c := range failed {
		if seen[c] != 1 {
			t.Errorf("collector %s failed with %d lines naming %s, want 1", c, seen[c], target)
		}
	}
	if len(lines) != len(failed) {
		t.Errorf("%d warn/error lines name %s for %d failed collectors:\n%s", len(lines), target, len(failed), strings.Join(lines, "\n"))
	}
}

// TestFaultMatrixHostile puts a hostile peer in front of broker-b's master
// and scrapes in sidecar mode (the peer's address is a target like any
// other), for the faults rmqsim does not produce itself.
func TestFaultMatrixHostile(t *testing.T) {
	const jsonHeader = `{"code":0,"flag":1,"language":"JAVA","opaque":1,"version":409}`
	// The big answers are built before any scrape so that the scrape's
	// allocation figure is the exporter's alone.
	overLimit := rawFrame(uint32(4+len(jsonHeader)+rocketmq.DefaultMaxFrameSize), uint32(len(jsonHeader)),
		append([]byte(jsonHeader), bytes.Repeat([]byte("a"), rocketmq.DefaultMaxFrameSize)...))
	truncated := rawFrame(4+8<<20, uint32(len(jsonHeader)), append([]byte(jsonHeader), bytes.Repeat([]byte("b"), 3<<20)...))
	large := runtimeBody(`"` + strings.Repeat("c", 5<<20) + `"`)
	manyKeys := []byte(`{"table":{"brokerVersionDesc":"V4_9_7"` + strings.Repeat(`,"k":"v"`, 200000) + `}}`)

	cases := []struct {
		name   string
		tamper tamper
		// down: the identity read fails, so rocketmq_up is 0; otherwise
		// the target stays up and the collectors in fail fail.
		down bool
		fail []string
		// breaks: the answer breaks the shared connection, so collectors
		// with requests in flight on it at that moment fail too.
		breaks bool
		waits  bool // runs into the scrape deadline
		huge   bool // announces a frame the exporter must not allocate
	}{
		{name: "negative-length", down: true, huge: true,
			tamper: always(rawFrame(0x80000000, 0, nil), stallConn)},
		{name: "length-all-ones", down: true, huge: true,
			tamper: always(rawFrame(0xFFFFFFFF, 0, nil), stallConn)},
		{name: "length-below-header-word", down: true,
			tamper: always(rawFrame(2, 0, nil), stallConn)},
		{name: "header-longer-than-frame", down: true,
			tamper: always(rawFrame(4+uint32(len(jsonHeader)), uint32(len(jsonHeader)+100), []byte(jsonHeader)), stallConn)},
		{name: "binary-header-overruns-itself", down: true,
			tamper: always(rawFrame(4+21, 1<<24|21, append(make([]byte, 13), 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0)), stallConn)},
		{name: "header-not-json", down: true,
			tamper: always(rawFrame(4+9, 9, []byte("{not json")), stallConn)},
		{name: "unknown-serialize-type", down: true,
			tamper: always(rawFrame(4+2, 7<<24|2, []byte("{}")), stallConn)},
		{name: "huge-length-then-silence", down: true, waits: true, huge: true,
			// Announces a frame just under the client's limit and sends
			// nothing more: the client must not reserve it up front.
			tamper: always(rawFrame(rocketmq.DefaultMaxFrameSize-16, uint32(len(jsonHeader)), []byte(jsonHeader)), stallConn)},
		{name: "enormous-json-over-limit", fail: []string{"broker"}, breaks: true, huge: true,
			tamper: onCode(rocketmq.CodeGetBrokerRuntimeInfo, always(overLimit, keepServing))},
		{name: "large-frame-cut-short", fail: []string{"broker"}, breaks: true,
			tamper: onCode(rocketmq.CodeGetBrokerRuntimeInfo, always(truncated, closeConn))},
		{name: "deeply-nested-json", fail: []string{"broker"},
			tamper: onCode(rocketmq.CodeGetBrokerRuntimeInfo, bodyOf(runtimeBody(strings.Repeat("[", 1<<20)+strings.Repeat("]", 1<<20))))},
		{name: "nested-object-keys", fail: []string{"broker"},
			tamper: onCode(rocketmq.CodeGetBrokerRuntimeInfo, bodyOf([]byte(`{"table":`+strings.Repeat("{{", 5000)+`}}`)))},
		{name: "invalid-utf8-in-json", fail: nil,
			tamper: onCode(rocketmq.CodeGetAllTopicConfig, func(_, resp *rocketmq.Command) ([]byte, then) {
				return withBody(resp, bytes.ReplaceAll(resp.Body, []byte("TopicB"), []byte("Topic\xff\xfeB"))), keepServing
			})},
		{name: "invalid-utf8-in-header", fail: nil,
			tamper: func(_, resp *rocketmq.Command) ([]byte, then) {
				c := *resp
				c.Remark = "bad \xff remark"
				c.ExtFields = map[string]string{"k\xfe": "v\xff"}
				c.SerializeType = rocketmq.SerializeRocketMQ
				b, err := rocketmq.EncodeFrame(&c)
				if err != nil {
					panic(err)
				}
				return b, keepServing
			}},
		{name: "truncated-json", fail: []string{"consumer", "topic"},
			tamper: onCode(rocketmq.CodeGetAllTopicConfig, func(_, resp *rocketmq.Command) ([]byte, then) {
				return withBody(resp, resp.Body[:len(resp.Body)/2]), keepServing
			})},
		{name: "json-of-wrong-shape", fail: []string{"broker"},
			tamper: onCode(rocketmq.CodeGetBrokerRuntimeInfo, bodyOf([]byte(`{"table":[1,2,3]}`)))},
		{name: "large-json-within-limit",
			tamper: onCode(rocketmq.CodeGetBrokerRuntimeInfo, bodyOf(large))},
		{name: "many-keys-within-limit",
			tamper: onCode(rocketmq.CodeGetBrokerRuntimeInfo, bodyOf(manyKeys))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newFaultRig(t, faultSpec())
			p := startHostile(t, r.addrOf("broker-b", 0))
			targets := Targets{Mode: ModeSidecar, Brokers: []string{
				r.addrOf("broker-a", 0), r.addrOf("raft", 0), r.addrOf("raft", 1), r.addrOf("raft", 2), p.Addr(),
			}}
			healthy := []string{"broker-a", "raft"}
			before := r.scrape(targets, faultDeadline)
			if v, _ := before.up(KindBroker, p.Addr()); v != 1 {
				t.Fatalf("baseline: the proxied broker is not up\n%s", strings.Join(before.loud, "\n"))
			}
			checkClean(t, before, "baseline")

			p.set(tc.tamper)
			after := r.scrape(targets, faultDeadline)
			checkTimely(t, after, faultDeadline)
			up, _ := after.up(KindBroker, p.Addr())
			switch {
			case tc.down && up != 0:
				t.Errorf("rocketmq_up of the hostile broker = %v, want 0", up)
			case !tc.down && up != 1:
				t.Errorf("rocketmq_up of the hostile broker = %v, want 1 (only some of its answers are bad)", up)
			}
			failed := after.failedCollectors()
			for _, c := range tc.fail {
				if !slices.Contains(failed, c) {
					t.Errorf("collector %s did not fail (failed: %v)", c, failed)
				}
			}
			if !tc.breaks && !slices.Equal(failed, tc.fail) {
				t.Errorf("failed collectors %v, want %v", failed, tc.fail)
			}
			checkLines(t, after, p.Addr(), tc.down)
			if !tc.down && len(tc.fail) == 0 && len(after.loud) > 0 {
				t.Errorf("warn/error lines for answers that were fine:\n%s", strings.Join(after.loud, "\n"))
			}
			checkUnchanged(t, before, after, healthy...)
			for key, lbl := range after.labels {
				for name, v := range lbl {
					if !utf8.ValidString(v) {
						t.Errorf("%s: label %s is not UTF-8", key, name)
					}
				}
			}
			if tc.huge && after.alloc > faultAllocLimit {
				t.Errorf("scrape allocated %d MiB", after.alloc>>20)
			}
			if !tc.waits && after.elapsed > faultDeadline/2 {
				t.Errorf("took %v: a refused answer should not wait for the deadline", after.elapsed)
			}
		})
	}
}

// deadAddr is a local port nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// checkClean requires a scrape without failed collectors or loud lines.
func checkClean(t *testing.T, s faultScrape, what string) {
	t.Helper()
	if failed := s.failedCollectors(); len(failed) > 0 {
		t.Errorf("%s: collectors failed: %v\n%s", what, failed, strings.Join(s.loud, "\n"))
	} else if len(s.loud) > 0 {
		t.Errorf("%s: warn/error lines:\n%s", what, strings.Join(s.loud, "\n"))
	}
}

// TestFaultRestartBetweenScrapes restarts a broker between two scrapes: the
// pooled connection to the old process is dead, and the next scrape must
// read the new one without a failure, in both modes.
func TestFaultRestartBetweenScrapes(t *testing.T) {
	r := newFaultRig(t, faultSpec())
	node := r.sim.Group("broker-b")[0]
	sidecar := Targets{Mode: ModeSidecar, Brokers: []string{r.addrOf("broker-a", 0), node.Addr()}}
	for _, targets := range []Targets{r.clusterTargets(), sidecar} {
		before := r.scrape(targets, faultDeadline)
		checkClean(t, before, targets.Mode.String()+" before")
		node.Kill()
		must(t, node.Restart())
		r.sim.RegisterNow(node)
		after := r.scrape(targets, faultDeadline)
		checkTimely(t, after, faultDeadline)
		if v, _ := after.up(KindBroker, node.Addr()); v != 1 {
			t.Errorf("%s: restarted broker up = %v, want 1", targets.Mode, v)
		}
		checkClean(t, after, targets.Mode.String()+" after the restart")
		checkUnchanged(t, before, after, "broker-a")
	}

	// Killed for good: in sidecar mode the target is down with one line.
	node.Kill()
	before := r.scrape(sidecar, faultDeadline)
	if v, _ := before.up(KindBroker, node.Addr()); v != 0 {
		t.Errorf("killed broker up = %v, want 0", v)
	}
	checkOneLine(t, before, node.Addr())
}

// TestFaultNameServers covers NameServers that are down or hang, and one
// that lists a broker that is gone.
func TestFaultNameServers(t *testing.T) {
	twoNS := func() rmqsim.Spec {
		s := faultSpec()
		s.NameServers = 2
		return s
	}
	allBrokers := []string{"broker-a", "broker-b", "raft"}

	// The preferred (first) of two NameServers fails; the brokers come from
	// the other one, unchanged.
	for _, tc := range []struct {
		name   string
		inject func(*rmqsim.NameServer)
		waits  bool
	}{
		{"preferred-down", (*rmqsim.NameServer).Kill, false},
		{"preferred-hangs", func(ns *rmqsim.NameServer) { ns.SetFault(rmqsim.NoAnswer()) }, true},
		{"preferred-garbage", func(ns *rmqsim.NameServer) { ns.SetFault(rmqsim.Garbage()) }, false},
		{"preferred-oversized-length", func(ns *rmqsim.NameServer) { ns.SetFault(rmqsim.OversizedLength()) }, false},
		{"preferred-error-code", func(ns *rmqsim.NameServer) { ns.SetFault(rmqsim.ErrorCode(1, "injected")) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFaultRig(t, twoNS())
			ns := r.sim.NameServers()[0]
			before := r.scrape(r.clusterTargets(), faultDeadline)
			checkClean(t, before, "before")
			tc.inject(ns)
			after := r.scrape(r.clusterTargets(), faultDeadline)
			checkTimely(t, after, faultDeadline)
			if !tc.waits && after.elapsed > faultDeadline/2 {
				t.Errorf("took %v: nothing should wait for the deadline", after.elapsed)
			}
			if v, _ := after.up(KindNameServer, ns.Addr()); v != 0 {
				t.Errorf("faulty NameServer up = %v", v)
			}
			if v, _ := after.up(KindNameServer, r.sim.NameServers()[1].Addr()); v != 1 {
				t.Errorf("healthy NameServer up = %v", v)
			}
			checkOneLine(t, after, ns.Addr())
			if failed := after.failedCollectors(); len(failed) > 0 {
				t.Errorf("collectors failed: %v", failed)
			}
			checkUnchanged(t, before, after, allBrokers...)
		})
	}

	t.Run("only-one-down", func(t *testing.T) {
		r := newFaultRig(t, faultSpec())
		ns := r.sim.NameServers()[0]
		ns.Kill()
		after := r.scrape(r.clusterTargets(), faultDeadline)
		checkTimely(t, after, faultDeadline)
		if v, _ := after.up(KindNameServer, ns.Addr()); v != 0 {
			t.Errorf("dead NameServer up = %v", v)
		}
		if after.elapsed > faultDeadline/2 {
			t.Errorf("a refused NameServer took %v", after.elapsed)
		}
		checkOneLine(t, after, ns.Addr())
		for key := range after.samples {
			if strings.HasPrefix(key, "rocketmq_up{") && after.labels[key]["kind"] == KindBroker {
				t.Errorf("a broker without any NameServer: %s", key)
			}
		}
	})

	t.Run("lists-a-gone-broker", func(t *testing.T) {
		r := newFaultRig(t, faultSpec())
		gone := deadAddr(t)
		p := startHostile(t, r.sim.NameServerAddrs()[0])
		targets := Targets{Mode: ModeCluster, NameServers: []string{p.Addr()}}
		before := r.scrape(targets, faultDeadline)
		checkClean(t, before, "before")
		p.set(onCode(rocketmq.CodeGetBrokerClusterInfo, func(_, resp *rocketmq.Command) ([]byte, then) {
			ci, err := rocketmq.DecodeClusterInfo(resp.Body)
			if err != nil {
				panic(err)
			}
			ci.BrokerAddrTable["broker-b"].BrokerAddrs[1] = gone
			body, err := json.Marshal(ci)
			if err != nil {
				panic(err)
			}
			return withBody(resp, body), keepServing
		}))
		after := r.scrape(targets, faultDeadline)
		checkTimely(t, after, faultDeadline)
		if v, ok := after.up(KindBroker, gone); !ok || v != 0 {
			t.Errorf("gone broker up = %v (exported %v), want 0", v, ok)
		}
		if after.elapsed > faultDeadline/2 {
			t.Errorf("a refused broker took %v", after.elapsed)
		}
		checkOneLine(t, after, gone)
		if failed := after.failedCollectors(); len(failed) > 0 {
			t.Errorf("collectors failed: %v", failed)
		}
		// broker-b's member count rightly says 2 now; its master and the
		// other groups read as before.
		checkUnchanged(t, before, after, "broker-a", "raft", r.addrOf("broker-b", 0))
	})
}

// TestFaultDLedgerPortClosed points one DLedger peer at a closed port (in
// every member's dLegerPeers): that peer's remoting port still answers, so
// the broker is up, and the group view counts it as a missing peer.
func TestFaultDLedgerPortClosed(t *testing.T) {
	r := newFaultRig(t, faultSpec())
	nodes := r.sim.Group("raft")
	before := r.scrape(r.clusterTargets(), faultDeadline)
	checkClean(t, before, "before")

	closed := deadAddr(t)
	peers := make([]string, len(nodes))
	for i, n := range nodes {
		addr := n.DLedgerAddr()
		if i == 0 {
			addr = closed
		}
		peers[i] = n.SelfID() + "-" + addr
	}
	for _, n := range nodes {
		n.SetConfigValue("dLegerPeers", strings.Join(peers, ";"))
	}
	after := r.scrape(r.clusterTargets(), faultDeadline)
	checkTimely(t, after, faultDeadline)
	if after.elapsed > faultDeadline/2 {
		t.Errorf("a closed DLedger port took %v", after.elapsed)
	}
	if v, _ := after.up(KindBroker, nodes[0].Addr()); v != 1 {
		t.Errorf("n0's remoting port answers, up = %v", v)
	}
	group := `{broker="raft",cluster="FaultCluster",dledger_group="raft"}`
	for name, want := range map[string]float64{
		"rocketmq_dledger_group_peers": 3, "rocketmq_dledger_group_peers_up": 2,
		"rocketmq_dledger_group_quorum": 1, "rocketmq_dledger_group_has_leader": 0,
	} {
		if got, ok := after.samples[name+group]; !ok || got != want {
			t.Errorf("%s = %v (exported %v), want %v", name, got, ok, want)
		}
	}
	checkOneLine(t, after, closed)
	checkUnchanged(t, before, after, "broker-a", "broker-b")
}

// TestFaultInvalidUTF8 gives a sidecar's broker an identity that is not
// UTF-8 (the config is key=value text, not JSON, so nothing on the way
// repairs it). Label values must be valid UTF-8, and a collector goroutine
// that panicked on one would take the whole process down.
func TestFaultInvalidUTF8(t *testing.T) {
	r := newFaultRig(t, faultSpec())
	node := r.sim.Group("broker-b")[0]
	targets := Targets{Mode: ModeSidecar, Brokers: []string{r.addrOf("broker-a", 0), node.Addr()}}
	before := r.scrape(targets, faultDeadline)
	checkClean(t, before, "before")

	node.SetConfigValue("brokerName", "broker-\xff\xfe")
	node.SetConfigValue("brokerClusterName", "Fault\xc3(Cluster")
	node.SetRuntimeValue("brokerVersionDesc", "V4_9_7\xff")
	after := r.scrape(targets, faultDeadline)
	checkTimely(t, after, faultDeadline)
	for key, lbl := range after.labels {
		for name, v := range lbl {
			if !utf8.ValidString(v) {
				t.Errorf("%s: label %s is not UTF-8", key, name)
			}
		}
	}
	if _, ok := after.samples["rocketmq_broker_id{address=\""+node.Addr()+"\",broker=\"broker-\uFFFD\",cluster=\"Fault\uFFFD(Cluster\"}"]; !ok {
		t.Errorf("no series for the repaired identity:\n%s", strings.Join(slices.Sorted(maps.Keys(after.subset(node.Addr()))), "\n"))
	}
	checkUnchanged(t, before, after, "broker-a")
}
