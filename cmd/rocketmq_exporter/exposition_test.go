package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rocketmq-exporter/rocketmq_exporter/cmd/rmqbench/scenario"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

func textParser() *expfmt.TextParser {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return &p
}

// recorded sends a fixed list of metrics, so that two handlers can serve
// exactly the same scrape.
type recorded []prometheus.Metric

func (r recorded) Describe(chan<- *prometheus.Desc) {}
func (r recorded) Collect(ch chan<- prometheus.Metric) {
	for _, m := range r {
		ch <- m
	}
}

// recordScrape runs one real scrape (every collector, per-queue detail)
// against a simulated cluster with traffic and keeps what it sent: shared
// series of the topic and consumer collectors and const metrics of the
// others.
func recordScrape(t *testing.T) recorded {
	t.Helper()
	sim, err := rmqsim.Start(concurrencySpec())
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	seedTraffic(t, sim)
	return recordScrapeOf(t, sim, "--collector.per-queue")
}

// recordScrapeOf is what one scrape of sim with the exporter's flags sent.
func recordScrapeOf(tb testing.TB, sim *rmqsim.Cluster, flags ...string) recorded {
	tb.Helper()
	cfg, err := parseConfig(append([]string{"--rocketmq.namesrv-address=" + sim.NameServerAddrs()[0]}, flags...), noEnv)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := newServer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	defer srv.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch := make(chan prometheus.Metric, 256)
	go func() {
		srv.shared.New(ctx, cfg.targets, srv.client, srv.collectors, nil).Collect(ch)
		close(ch)
	}()
	var out recorded
	for m := range ch {
		out = append(out, m)
	}
	return out
}

// logRecorder keeps the error lines a server logs.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelError,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logRecorder) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

// staticSelf is a self registry whose values do not move between gathers.
func staticSelf(t testing.TB) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rocketmq_exporter_build_info", Help: "Build \\ info."}, []string{"version"})
	g.WithLabelValues("1.0\"x").Set(1)
	// Const: a live histogram carries its creation time in protobuf.
	h := prometheus.MustNewConstHistogram(prometheus.NewDesc("go_gc_duration_seconds", "A histogram.", nil, nil),
		2, math.Inf(1), map[float64]uint64{0.1: 0, 1: 1})
	reg.MustRegister(g, recorded{h})
	return reg
}

// testServer is the part of server the handlers need, as newServer builds
// it, with its error log recorded.
func testServer(t testing.TB, self *prometheus.Registry) (*server, *logRecorder) {
	t.Helper()
	logs := &logRecorder{}
	s := &server{logger: logs.logger(), selfReg: self}
	var err error
	if s.expose, err = newExposer(s.selfReg, s.promHandler, func(msg string) { s.logger.Error("Serving metrics", "err", msg) }); err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// answer is what a client sees of a response.
type answer struct {
	code                 int
	contentType, vary    string
	contentEncoding      string
	body                 []byte // decompressed
	compressedBodyLength int
}

func serveOnce(t *testing.T, h http.Handler, target string, header ...string) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{code: rec.Code, contentType: rec.Header().Get("Content-Type"), vary: strings.Join(rec.Header().Values("Vary"), ","),
		contentEncoding: rec.Header().Get("Content-Encoding"), body: rec.Body.Bytes(), compressedBodyLength: rec.Body.Len()}
	if a.contentEncoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(a.body))
		if err != nil {
			t.Fatalf("%s: gzip: %v", target, err)
		}
		if a.body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: gunzip: %v", target, err)
		}
	}
	if strings.HasPrefix(a.contentType, "application/vnd.google.protobuf") {
		// Compared as text: counters carry their creation time in
		// protobuf, and each server made its own.
		a.body = protoAsText(t, a.body)
	}
	return a
}

func protoAsText(t *testing.T, body []byte) []byte {
	t.Helper()
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeProtoDelim))
	var out bytes.Buffer
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("protobuf: %v", err)
			}
			return out.Bytes()
		}
		if _, err := expfmt.MetricFamilyToText(&out, mf); err != nil {
			t.Fatal(err)
		}
	}
}

// The exposer's answer to /metrics is the one promhttp gave for the same
// scrape (a registry per scrape concatenated after the self registry), byte
// for byte after decompression, with the same headers and error log, for
// every Accept and Accept-Encoding a client may send; protobuf is served by
// promhttp itself.
func TestExposerMatchesPromhttp(t *testing.T) {
	scrape := recordScrape(t)
	if len(scrape) < 100 {
		t.Fatalf("the simulated scrape sent only %d metrics", len(scrape))
	}
	failing := append(slices.Clone(scrape),
		prometheus.NewInvalidMetric(prometheus.NewDesc("rocketmq_broken", "h", nil, nil), errors.New("broken on purpose")))
	prometheusAccept := "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5," +
		"text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
	protobuf := "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
	cases := []struct {
		name    string
		metrics recorded
		target  string
		header  []string
	}{
		{"plain", scrape, "/metrics", nil},
		{"gzip", scrape, "/metrics", []string{"Accept-Encoding", "gzip"}},
		{"prometheus", scrape, "/metrics", []string{"Accept", prometheusAccept, "Accept-Encoding", "gzip"}},
		{"text 0.0.4", scrape, "/metrics", []string{"Accept", "text/plain;version=0.0.4"}},
		{"text utf-8", scrape, "/metrics", []string{"Accept", "text/plain;version=1.0.0;escaping=allow-utf-8"}},
		{"text escaping=values", scrape, "/metrics", []string{"Accept", "text/plain;version=0.0.4;escaping=values"}},
		{"openmetrics only", scrape, "/metrics", []string{"Accept", "application/openmetrics-text;version=1.0.0"}},
		{"protobuf", scrape, "/metrics", []string{"Accept", protobuf, "Accept-Encoding", "gzip"}},
		{"gzip refused", scrape, "/metrics", []string{"Accept-Encoding", "gzip;q=0, identity"}},
		{"identity preferred", scrape, "/metrics", []string{"Accept-Encoding", "gzip;q=0.5, identity;q=0.8"}},
		{"gzip preferred", scrape, "/metrics", []string{"Accept-Encoding", "identity;q=0.5, gzip;q=0.8"}},
		{"any encoding", scrape, "/metrics", []string{"Accept-Encoding", "*"}},
		{"two lines", scrape, "/metrics", []string{"Accept-Encoding", "br", "Accept-Encoding", "deflate, gzip"}},
		{"name filter", scrape, "/metrics?name[]=rocketmq_up&name[]=go_gc_duration_seconds&name[]=rocketmq_topic_messages_total", []string{"Accept-Encoding", "gzip"}},
		{"failing metric", failing, "/metrics", []string{"Accept-Encoding", "gzip"}},
		{"failing metric, protobuf", failing, "/metrics", []string{"Accept", protobuf}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Each its own server: the error counter is a self-metric.
			oldSelf, newSelf := staticSelf(t), staticSelf(t)
			old, oldLogs := testServer(t, oldSelf)
			s, logs := testServer(t, newSelf)
			before := prometheus.NewRegistry()
			before.MustRegister(c.metrics)
			want := serveOnce(t, old.promHandler(gatherAll{oldSelf, before}), c.target, c.header...)
			wantLogs := oldLogs.take()
			got := serveOnce(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.expose.serve(w, r, c.metrics, newSelf)
			}), c.target, c.header...)
			gotLogs := logs.take()
			if got.code != want.code || got.contentType != want.contentType || got.vary != want.vary || got.contentEncoding != want.contentEncoding {
				t.Errorf("headers differ:\n got  %d %q vary %q encoding %q\n want %d %q vary %q encoding %q", got.code, got.contentType, got.vary, got.contentEncoding,
					want.code, want.contentType, want.vary, want.contentEncoding)
			}
			if !bytes.Equal(got.body, want.body) {
				t.Errorf("bodies differ (%d and %d bytes)", len(got.body), len(want.body))
			}
			if !slices.Equal(gotLogs, wantLogs) {
				t.Errorf("logs differ:\n got  %q\n want %q", gotLogs, wantLogs)
			}
			if len(got.body) == 0 {
				t.Error("empty body")
			}
			if strings.Contains(c.name, "failing") && (len(gotLogs) != 1 || !strings.Contains(gotLogs[0], "broken on purpose")) {
				t.Errorf("the failing metric was not logged: %q", gotLogs)
			}
			t.Logf("%s: %s, %d bytes (%d on the wire)", c.name, got.contentType, len(got.body), got.compressedBodyLength)
		})
	}
}

// The exposer counts gathering errors in promhttp's own counter, which the
// protobuf path (promhttp) finds registered and shares.
func TestExposerErrorCounter(t *testing.T) {
	self := prometheus.NewRegistry()
	s, _ := testServer(t, self)
	bad := recorded{prometheus.NewInvalidMetric(prometheus.NewDesc("rocketmq_broken", "h", nil, nil), errors.New("broken"))}
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.expose.serve(w, r, bad, self) })
	serveOnce(t, serve, "/metrics")
	serveOnce(t, serve, "/metrics", "Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	a := serveOnce(t, serve, "/metrics")
	fams, err := textParser().TextToMetricFamilies(bytes.NewReader(a.body))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range fams["promhttp_metric_handler_errors_total"].GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	// Two earlier scrapes failed to gather; the third one's count is taken
	// before its own failure.
	if want := map[string]float64{"gathering": 2, "encoding": 0}; !maps.Equal(got, want) {
		t.Errorf("promhttp_metric_handler_errors_total = %v, want %v", got, want)
	}
}

// With nothing to serve but an error, the answer is promhttp's 500.
func TestExposerNothingButErrors(t *testing.T) {
	s, logs := testServer(t, prometheus.NewRegistry())
	bad := recorded{prometheus.NewInvalidMetric(prometheus.NewDesc("rocketmq_broken", "h", nil, nil), errors.New("broken"))}
	a := serveOnce(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.expose.serve(w, r, bad, nil) }), "/probe", "Accept-Encoding", "gzip")
	if a.code != http.StatusInternalServerError || a.contentEncoding != "" || !strings.Contains(string(a.body), "broken") {
		t.Errorf("got %d %q %q, want a plain 500 naming the error", a.code, a.contentEncoding, a.body)
	}
	if l := logs.take(); len(l) != 1 {
		t.Errorf("logged %q, want one line", l)
	}
}

// A client that hangs up mid-answer costs one logged error, not one per
// family.
func TestExposerClientGone(t *testing.T) {
	self := staticSelf(t)
	// Self-metrics larger than the write buffer, in several families.
	for f := range 3 {
		big := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "go_big_" + string(rune('a'+f)), Help: "h"}, []string{"i"})
		for i := range 3000 {
			big.WithLabelValues(strings.Repeat("y", 20) + strconv.Itoa(i)).Set(float64(i))
		}
		self.MustRegister(big)
	}
	s, logs := testServer(t, self)
	scrape := recorded{}
	for i := range 20000 {
		d := prometheus.NewDesc("rocketmq_many", "h", []string{"i"}, nil)
		scrape = append(scrape, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(i), strings.Repeat("x", i%50)+string(rune('a'+i%26))+string(rune(i))))
	}
	// Gone at once (while the self-metrics are written) or midway.
	for _, limit := range []int{0, 100_000} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		w := &brokenWriter{header: http.Header{}, limit: limit}
		s.expose.serve(w, req, scrape, self)
		got := logs.take()
		if len(got) != 1 || !strings.Contains(got[0], "error encoding and sending metric family") || !strings.Contains(got[0], "connection reset") {
			t.Errorf("gone after %d bytes: logs %q, want one encoding error", limit, got)
		}
	}
}

type brokenWriter struct {
	header   http.Header
	n, limit int
}

func (w *brokenWriter) Header() http.Header { return w.header }
func (w *brokenWriter) WriteHeader(int)     {}
func (w *brokenWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		return 0, errors.New("connection reset by peer")
	}
	w.n += len(p)
	return len(p), nil
}

func TestAcceptsGzip(t *testing.T) {
	for _, c := range []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{"gzip"}, true},
		{[]string{"gzip, deflate, br"}, true},
		{[]string{"br"}, false},
		{[]string{"*"}, false}, // identity first on a tie, as promhttp
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip;q=0.1"}, true},
		{[]string{"gzip;q=0.5, identity;q=0.6"}, false},
		{[]string{"identity;q=0.5, gzip;q=0.6"}, true},
		{[]string{"identity;q=0, *;q=0.3"}, false}, // "*" counts for identity too
		{[]string{"identity;q=0, gzip;q=0.3"}, true},
		{[]string{"br", "gzip"}, true},
		{[]string{"gzip;q=x"}, false},
		{[]string{"GZip"}, true},
	} {
		h := http.Header{}
		for _, v := range c.header {
			h.Add("Accept-Encoding", v)
		}
		if got := acceptsGzip(h); got != c.want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", c.header, got, c.want)
		}
	}
}

// The real binary: text with and without gzip, protobuf, the same
// families every way, the negotiated content types.
func TestBinaryMetricsEncodings(t *testing.T) {
	sim := startSim(t, concurrencySpec())
	seedTraffic(t, sim)
	p := startExporter(t, nil, "--rocketmq.namesrv-address="+sim.NameServerAddrs()[0], `--probe.allowed-targets=127\.0\.0\.1:\d+`)
	get := func(path string, header ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, p.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		// Our own Accept-Encoding: the transport does not decompress.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return resp, body
	}
	names := func(fams map[string]*dto.MetricFamily) []string { return slices.Sorted(maps.Keys(fams)) }
	textFamilies := func(body []byte) map[string]*dto.MetricFamily {
		t.Helper()
		fams, err := textParser().TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("invalid exposition: %v", err)
		}
		return fams
	}

	resp, plain := get("/metrics")
	if ct, ce := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"); ct != "text/plain; version=0.0.4; charset=utf-8; escaping=underscores" || ce != "" {
		t.Errorf("plain: Content-Type %q, Content-Encoding %q", ct, ce)
	}
	plainFams := textFamilies(plain)
	for _, n := range []string{"rocketmq_up", "rocketmq_topic_messages_total", "rocketmq_consumer_group_lag_messages", "go_goroutines", "promhttp_metric_handler_errors_total"} {
		if plainFams[n] == nil {
			t.Errorf("%s missing", n)
		}
	}

	resp, compressed := get("/metrics", "Accept-Encoding", "gzip")
	if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Fatalf("gzip asked: Content-Encoding %q", ce)
	}
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := names(textFamilies(unzipped)), names(plainFams); !slices.Equal(g, w) {
		t.Errorf("gzip families %v, plain %v", g, w)
	}

	resp, pb := get("/metrics", "Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.google.protobuf;") || !strings.Contains(ct, "encoding=delimited") {
		t.Errorf("protobuf: Content-Type %q", ct)
	}
	dec := expfmt.NewDecoder(bytes.NewReader(pb), expfmt.NewFormat(expfmt.TypeProtoDelim))
	pbFams := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("protobuf: %v", err)
			}
			break
		}
		pbFams[mf.GetName()] = mf
	}
	if g, w := names(pbFams), names(plainFams); !slices.Equal(g, w) {
		t.Errorf("protobuf families %v, text %v", g, w)
	}

	resp, probe := get("/probe?target="+sim.Nodes()[0].Addr(), "Accept-Encoding", "gzip")
	if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Errorf("/probe: Content-Encoding %q", ce)
	}
	if zr, err = gzip.NewReader(bytes.NewReader(probe)); err != nil {
		t.Fatal(err)
	}
	if probe, err = io.ReadAll(zr); err != nil {
		t.Fatal(err)
	}
	probeFams := textFamilies(probe)
	if probeFams["rocketmq_up"] == nil || probeFams["go_goroutines"] != nil {
		t.Errorf("/probe families: %v", names(probeFams))
	}
	if strings.Contains(p.logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", p.logs)
	}
}

// BenchmarkExposerServe answers /metrics for a recorded scrape of the
// issue-7 scenario (10,000 topics, 2,000 groups; about 118,000 series, 14 MB
// of text) as Prometheus asks for it (gzip) and uncompressed: the TextWriter's
// collection, the text and its compression, into a discarding
// ResponseWriter.
func BenchmarkExposerServe(b *testing.B) {
	if testing.Short() {
		b.Skip("builds the 10,000-topic scenario")
	}
	sim, err := scenario.Start(scenario.Issue7)
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	scrape := recordScrapeOf(b, sim)
	self := staticSelf(b)
	s, logs := testServer(b, self)
	for _, enc := range []string{"gzip", "identity"} {
		b.Run(enc, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", enc)
			w := &countingWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.n = 0
				s.expose.serve(w, req, scrape, self)
			}
			b.ReportMetric(float64(w.n), "bytes")
			b.ReportMetric(float64(len(scrape)), "series")
			if l := logs.take(); len(l) > 0 {
				b.Fatalf("errors: %q", l)
			}
		})
	}
}

// countingWriter is a ResponseWriter that only counts.
type countingWriter struct {
	header http.Header
	n      int
}

func (w *countingWriter) Header() http.Header { return w.header }
func (w *countingWriter) WriteHeader(int)     {}
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}
