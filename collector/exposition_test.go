package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rocketmq-exporter/rocketmq_exporter/cmd/rmqbench/scenario"
)

// viaRegistry is the plain path the TextWriter replaces: a fresh registry,
// Gather, and expfmt for every family.
func viaRegistry(t testing.TB, c prometheus.Collector, format expfmt.Format) ([]byte, error) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, gerr := reg.Gather()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatalf("expfmt: %v", err)
		}
	}
	return buf.Bytes(), gerr
}

// viaTextWriter is the fast path.
func viaTextWriter(t testing.TB, tw *TextWriter, c prometheus.Collector, format expfmt.Format) ([]byte, *Exposition, error) {
	t.Helper()
	e, cerr := tw.Collect(c)
	var buf bytes.Buffer
	if err := e.Encode(&buf, format, nil); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes(), e, cerr
}

func errorList(err error) []string {
	if err == nil {
		return nil
	}
	var me prometheus.MultiError
	if !errors.As(err, &me) {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range me {
		out = append(out, e.Error())
	}
	slices.Sort(out)
	return out
}

// parseText parses an exposition, failing the test if it is not valid.
func parseText(t testing.TB, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, b)
	}
	return fams
}

// fastSeries counts the series the TextWriter writes itself.
func fastSeries(e *Exposition) (fast, viaDTO int) {
	for _, f := range e.fams {
		if f.mf != nil {
			viaDTO += len(f.mf.Metric)
		} else {
			fast += len(f.series)
		}
	}
	return fast, viaDTO
}

// compare requires the TextWriter's output to be the registry's, byte for
// byte, with the same errors.
func compare(t *testing.T, tw *TextWriter, c prometheus.Collector, format expfmt.Format) *Exposition {
	t.Helper()
	want, werr := viaRegistry(t, c, format)
	got, e, gerr := viaTextWriter(t, tw, c, format)
	if !bytes.Equal(got, want) {
		t.Errorf("TextWriter and registry+expfmt differ (%s):\n%s", format, firstDiff(got, want))
	}
	if g, w := errorList(gerr), errorList(werr); !slices.Equal(g, w) {
		t.Errorf("errors differ:\n TextWriter: %q\n registry:   %q", g, w)
	}
	// Equal bytes parse alike; parsing proves they are a valid exposition.
	parseText(t, got)
	return e
}

func firstDiff(got, want []byte) string {
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gl), len(wl)) {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			return fmt.Sprintf("line %d:\n got  %q\n want %q", i+1, g, w)
		}
	}
	return "(same lines)"
}

// recorded is a collector that sends a fixed list of metrics, so both paths
// see exactly the same ones.
type recorded []prometheus.Metric

func (r recorded) Describe(chan<- *prometheus.Desc) {}
func (r recorded) Collect(ch chan<- prometheus.Metric) {
	for _, m := range r {
		ch <- m
	}
}

func record(c prometheus.Collector) recorded {
	ch := make(chan prometheus.Metric, 1024)
	go func() { c.Collect(ch); close(ch) }()
	var out recorded
	for m := range ch {
		out = append(out, m)
	}
	return out
}

// A real scrape of the simulated scale cluster (every default collector,
// with per-queue series, cluster and sidecar mode) comes out of the
// TextWriter exactly as out of a registry and expfmt, in arrival order and
// shuffled, the second time from cached Descs, in every text format
// escaping.
func TestTextWriterMatchesRegistryOnAScrape(t *testing.T) {
	verifyNoLeaks(t)
	e := newScaleEnv(t, scenario.Spec{Topics: 150, Queues: 4, Groups: 60, BrokerGroups: 3})
	defer e.close()
	e.opts.PerQueue = true
	e.collectors = e.newCollectors(t)
	tw := NewTextWriter()
	for _, mode := range []string{"cluster", "sidecar"} {
		targets := e.clusterTargets()
		if mode == "sidecar" {
			targets = e.sidecarTargets(t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		scrape := record(New(ctx, targets, e.admin, e.collectors, nil))
		cancel()
		if len(scrape) < 1000 {
			t.Fatalf("%s: only %d metrics: the scenario proves little", mode, len(scrape))
		}
		for _, format := range []expfmt.Format{expfmt.FmtText, expfmt.FmtText + "; escaping=allow-utf-8", expfmt.FmtText + "; escaping=values"} {
			ex := compare(t, tw, scrape, format)
			if ex.runs == 0 {
				t.Errorf("%s: no label runs: every label text is written anew", mode)
			}
			fast, slow := fastSeries(ex)
			if fast < len(scrape)*8/10 {
				t.Errorf("%s: only %d of %d series on the fast path (%d via dto)", mode, fast, len(scrape), slow)
			}
			t.Logf("%s %s: %d series, %d fast, %d via dto", mode, format, len(scrape), fast, slow)
		}
		shuffled := slices.Clone(scrape)
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		compare(t, tw, shuffled, expfmt.FmtText)
	}
}

// edgeCases are metrics whose text needs care, and metrics the registry
// rejects, on both paths.
func edgeCases() recorded {
	ln := newLabelNames()
	help := "Help with a backslash \\ a newline \n and \"quotes\" and ünïcode."
	shared := prometheus.NewDesc("rocketmq_edge_shared", help, []string{"broker", "cluster", "topic"}, nil)
	counter := prometheus.NewDesc("rocketmq_edge_total", "A counter.", []string{"group"}, nil)
	noLabels := prometheus.NewDesc("rocketmq_edge_nolabels", "", nil, nil)
	mixed := prometheus.NewDesc("rocketmq_edge_mixed", "Shared and const metrics under one name.", []string{"group"}, nil)
	unsorted := prometheus.NewDesc("rocketmq_edge_unsorted", "Label pairs not sorted by name.", []string{"topic", "broker"}, nil)
	failing := prometheus.NewDesc("rocketmq_edge_failing", "A metric whose Write fails.", nil, nil)
	typeA := prometheus.NewDesc("rocketmq_edge_conflict", "Same name.", []string{"group"}, nil)
	typeB := prometheus.NewDesc("rocketmq_edge_conflict", "Same name, other help.", []string{"group"}, nil)
	utf8Name := prometheus.NewDesc("rocketmq.edge.dotted", "A UTF-8 metric name.", []string{"topic"}, nil)
	hist := prometheus.NewDesc("rocketmq_edge_seconds", "A histogram.", []string{"group"}, nil)
	constFirst := prometheus.NewDesc("rocketmq_edge_conflict_const", "A const metric first.", []string{"group"}, nil)
	sharedLater := prometheus.NewDesc("rocketmq_edge_conflict_const", "Shared series later, other help.", []string{"group"}, nil)
	twinA := prometheus.NewDesc("rocketmq_edge_twins", "Two Descs, one family.", []string{"group"}, nil)
	twinB := prometheus.NewDesc("rocketmq_edge_twins", "Two Descs, one family.", []string{"group"}, nil)
	dimsA := prometheus.NewDesc("rocketmq_edge_dims", "Two label sets, one family.", []string{"group"}, nil)
	dimsB := prometheus.NewDesc("rocketmq_edge_dims", "Two label sets, one family.", []string{"group", "topic"}, nil)
	helpA := prometheus.NewDesc("rocketmq_edge_conflict_help", "One help.", []string{"group"}, nil)
	helpB := prometheus.NewDesc("rocketmq_edge_conflict_help", "Another help.", []string{"group"}, nil)
	byTopic := prometheus.NewDesc("rocketmq_edge_bytopic", "Other label names.", []string{"topic"}, nil)
	oneGroup := []*dto.LabelPair{labelPair(ln.group, "g")}
	summ := prometheus.NewDesc("rocketmq_edge_summary_seconds", "A summary.", nil, nil)

	bl := brokerLabels{cluster: labelPair(ln.cluster, "DefaultCluster"), broker: labelPair(ln.broker, "broker-a")}
	values := []string{
		`back\slash`, `dq"uote`, "new\nline", "ünïcödé 主题", "", `all \ " ` + "\n three", "trailing\\",
		"plain", "%RETRY%group", "%DLQ%group",
	}
	nums := []float64{
		math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, 1, -1, 1e300, -1e-300,
		0.1, 123456789012, 1 << 53, 1<<53 + 2, 3.14159, 1e21, 1e20, 999999, 1234567, 5e-324,
	}
	var out recorded
	for i, v := range values {
		lv := sortedLabels(bl.broker, bl.cluster, labelPair(ln.topic, v))
		out = append(out, newSeries(shared, prometheus.GaugeValue, nums[i%len(nums)], lv))
		out = append(out, newSeries(counter, prometheus.CounterValue, nums[(i+3)%len(nums)], []*dto.LabelPair{labelPair(ln.group, v)}))
	}
	for i, n := range nums {
		lv := sortedLabels(bl.broker, bl.cluster, labelPair(ln.topic, fmt.Sprintf("t%02d", i)))
		out = append(out, newSeries(shared, prometheus.GaugeValue, n, lv))
	}
	// Label runs (one label slice for several families in a row) over
	// values that need escaping, out of order, one of them with a series
	// that its family rejects (another type than its first).
	var runDescs []*prometheus.Desc
	for _, name := range []string{"rocketmq_edge_run_a", "rocketmq_edge_run_b", "rocketmq_edge_run_c"} {
		runDescs = append(runDescs, prometheus.NewDesc(name, "A family of a label run.", []string{"broker", "cluster", "topic"}, nil))
	}
	for i, v := range values {
		lv := sortedLabels(bl.broker, bl.cluster, labelPair(ln.topic, v))
		for k, d := range runDescs {
			typ := prometheus.GaugeValue
			if k == 2 && i == 3 {
				typ = prometheus.CounterValue
			}
			out = append(out, newSeries(d, typ, float64(i*k), lv))
		}
	}
	out = append(out,
		newSeries(noLabels, prometheus.UntypedValue, 42, nil),
		// Invalid UTF-8 in a value: the registry drops that series only.
		newSeries(shared, prometheus.GaugeValue, 1, sortedLabels(bl.broker, bl.cluster, labelPair(ln.topic, "bad\xff"))),
		newSeries(counter, prometheus.CounterValue, 2, []*dto.LabelPair{labelPair(ln.group, "\xc3")}),
		// A family with shared series and const metrics, interleaved.
		newSeries(mixed, prometheus.GaugeValue, 1, []*dto.LabelPair{labelPair(ln.group, "g2")}),
		prometheus.MustNewConstMetric(mixed, prometheus.GaugeValue, 2, "g1"),
		newSeries(mixed, prometheus.GaugeValue, 3, []*dto.LabelPair{labelPair(ln.group, "g0")}),
		prometheus.MustNewConstMetric(mixed, prometheus.GaugeValue, 4, "g3"),
		// Label pairs out of order: the registry sorts a copy.
		newSeries(unsorted, prometheus.GaugeValue, 5, []*dto.LabelPair{labelPair(ln.topic, "t"), labelPair(ln.broker, "b")}),
		newSeries(unsorted, prometheus.GaugeValue, 6, []*dto.LabelPair{labelPair(ln.topic, "a"), labelPair(ln.broker, "c")}),
		// A label name the Desc does not have, and a missing one.
		newSeries(counter, prometheus.CounterValue, 7, []*dto.LabelPair{labelPair(ln.topic, "x")}),
		newSeries(counter, prometheus.CounterValue, 8, nil),
		prometheus.NewInvalidMetric(failing, errors.New("broken on purpose")),
		// Same name, different help or type: the first one wins.
		newSeries(typeA, prometheus.GaugeValue, 1, []*dto.LabelPair{labelPair(ln.group, "a")}),
		newSeries(typeA, prometheus.CounterValue, 2, []*dto.LabelPair{labelPair(ln.group, "b")}),
		newSeries(typeB, prometheus.GaugeValue, 3, []*dto.LabelPair{labelPair(ln.group, "c")}),
		prometheus.MustNewConstMetric(typeA, prometheus.GaugeValue, 4, "d"),
		newSeries(utf8Name, prometheus.GaugeValue, 1, []*dto.LabelPair{labelPair(ln.topic, "t")}),
		// A const metric decides the family: the shared series disagree.
		prometheus.MustNewConstMetric(constFirst, prometheus.GaugeValue, 1, "a"),
		newSeries(sharedLater, prometheus.GaugeValue, 2, []*dto.LabelPair{labelPair(ln.group, "b")}),
		newSeries(sharedLater, prometheus.GaugeValue, 3, []*dto.LabelPair{labelPair(ln.group, "c")}),
		// Two Descs agreeing on everything, out of order, and two label
		// sets of different lengths under one name.
		newSeries(twinA, prometheus.GaugeValue, 1, []*dto.LabelPair{labelPair(ln.group, "b")}),
		newSeries(twinB, prometheus.GaugeValue, 2, []*dto.LabelPair{labelPair(ln.group, "a")}),
		newSeries(twinA, prometheus.GaugeValue, 3, []*dto.LabelPair{labelPair(ln.group, "c")}),
		newSeries(dimsB, prometheus.GaugeValue, 1, sortedLabels(labelPair(ln.group, "a"), labelPair(ln.topic, "t"))),
		newSeries(dimsA, prometheus.GaugeValue, 2, []*dto.LabelPair{labelPair(ln.group, "z")}),
		newSeries(dimsB, prometheus.GaugeValue, 3, sortedLabels(labelPair(ln.group, "a"), labelPair(ln.topic, "s"))),
		// Same type, other help: only the help tells them apart.
		newSeries(helpA, prometheus.GaugeValue, 1, []*dto.LabelPair{labelPair(ln.group, "a")}),
		newSeries(helpB, prometheus.GaugeValue, 2, []*dto.LabelPair{labelPair(ln.group, "b")}),
		// The same label pairs, right after each other, for a Desc with
		// other label names (written as they are, as the registry does).
		newSeries(counter, prometheus.CounterValue, 9, oneGroup),
		newSeries(byTopic, prometheus.GaugeValue, 10, oneGroup),
		prometheus.MustNewConstHistogram(hist, 10, 2.5, map[float64]uint64{0.1: 2, 1: 7, 5: 9}, "g"),
		prometheus.MustNewConstSummary(summ, 4, 1.5, map[float64]float64{0.5: 0.2, 0.99: 1.1}),
		prometheus.MustNewConstMetric(prometheus.NewDesc("rocketmq_edge_const", "Const \\ help.", []string{"a", "b"}, prometheus.Labels{"c": "const"}),
			prometheus.GaugeValue, math.Inf(-1), "x\"y", "\n"),
	)
	return out
}

func TestTextWriterEdgeCases(t *testing.T) {
	tw := NewTextWriter()
	cases := edgeCases()
	for _, format := range []expfmt.Format{expfmt.FmtText, expfmt.FmtText + "; escaping=allow-utf-8", expfmt.FmtText + "; escaping=dots"} {
		e := compare(t, tw, cases, format)
		fast, slow := fastSeries(e)
		if fast == 0 || slow == 0 {
			t.Errorf("%s: %d fast and %d dto series: both paths should be used", format, fast, slow)
		}
	}
	_, err := tw.Collect(cases)
	for _, want := range []string{"broken on purpose", "is not utf8", `has help "Same name, other help." but should have "Same name."`, "should be a Gauge"} {
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("errors do not mention %q: %v", want, err)
		}
	}
	// Shuffled: the same output again (the conflicts excepted, where
	// arrival order decides which variant wins).
	var plain recorded
	for _, m := range cases {
		if !strings.Contains(m.Desc().String(), "rocketmq_edge_conflict") {
			plain = append(plain, m)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 5 {
		r.Shuffle(len(plain), func(i, j int) { plain[i], plain[j] = plain[j], plain[i] })
		compare(t, tw, plain, expfmt.FmtText)
	}
}

// Every value of a float and every escaping need of a label value or HELP
// text, as written by both paths; label values come from the cluster
// (topic and group names), so they are untrusted.
func FuzzTextWriter(f *testing.F) {
	f.Add("topic", "help", 1.5, uint8(0))
	f.Add("a\\b\"c\nd", "h\\e\nl\"p", math.Inf(-1), uint8(1))
	f.Add("\xff", "", math.NaN(), uint8(2))
	f.Add("ü", "ü", math.Copysign(0, -1), uint8(3))
	f.Add("b", "", 1795269635567.0, uint8(1))
	f.Add("t", "", 1e21, uint8(0))
	ln := newLabelNames()
	tw := NewTextWriter()
	f.Fuzz(func(t *testing.T, value, help string, v float64, typ uint8) {
		d := prometheus.NewDesc("rocketmq_fuzz", help, []string{"broker", "topic"}, nil)
		run := prometheus.NewDesc("rocketmq_fuzz_run", help, []string{"broker", "topic"}, nil)
		vt := prometheus.ValueType(typ % 4)
		first := sortedLabels(labelPair(ln.broker, "b"), labelPair(ln.topic, value))
		// Label values that differ whatever value is: the TextWriter
		// does not look for duplicates.
		c := recorded{
			newSeries(d, vt, v, first),
			newSeries(run, vt, -v, first), // a label run: its text is kept
			newSeries(d, vt, -v, sortedLabels(labelPair(ln.broker, value), labelPair(ln.topic, "t"))),
			newSeries(d, vt, v*2, sortedLabels(labelPair(ln.broker, value), labelPair(ln.topic, value+"x"))),
			// appendFloat's fast paths: integers, milliseconds.
			newSeries(d, vt, math.Trunc(v), sortedLabels(labelPair(ln.broker, value+"x"), labelPair(ln.topic, "t"))),
			newSeries(d, vt, math.Round(v)/1000, sortedLabels(labelPair(ln.broker, value+"y"), labelPair(ln.topic, "t"))),
		}
		want, werr := viaRegistry(t, c, expfmt.FmtText)
		got, _, gerr := viaTextWriter(t, tw, c, expfmt.FmtText)
		if !bytes.Equal(got, want) {
			t.Fatalf("differ:\n%s", firstDiff(got, want))
		}
		if g, w := errorList(gerr), errorList(werr); !slices.Equal(g, w) {
			t.Fatalf("errors differ:\n TextWriter: %q\n registry:   %q", g, w)
		}
	})
}

// The metrics sent before a collector panics are written; the panic is an
// error, as a registry reports it.
func TestTextWriterCollectorPanic(t *testing.T) {
	d := prometheus.NewDesc("rocketmq_before_panic", "h", nil, nil)
	c := panicking{newSeries(d, prometheus.GaugeValue, 1, nil)}
	want, _ := viaRegistry(t, c, expfmt.FmtText)
	got, _, err := viaTextWriter(t, NewTextWriter(), c, expfmt.FmtText)
	if !bytes.Equal(got, want) || !strings.Contains(string(got), "rocketmq_before_panic 1\n") {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(fmt.Sprint(err), "panic recovered") || !strings.Contains(fmt.Sprint(err), "on purpose") {
		t.Errorf("err = %v, want the panic", err)
	}
}

type panicking []prometheus.Metric

func (p panicking) Describe(chan<- *prometheus.Desc) {}
func (p panicking) Collect(ch chan<- prometheus.Metric) {
	for _, m := range p {
		ch <- m
	}
	panic("on purpose")
}

func TestExpositionKeepAndFormat(t *testing.T) {
	ln := newLabelNames()
	a := prometheus.NewDesc("rocketmq_a", "a", []string{"group"}, nil)
	b := prometheus.NewDesc("rocketmq_b", "b", nil, nil)
	e, err := NewTextWriter().Collect(recorded{
		newSeries(a, prometheus.GaugeValue, 1, []*dto.LabelPair{labelPair(ln.group, "g")}),
		prometheus.MustNewConstMetric(b, prometheus.GaugeValue, 2),
	})
	if err != nil || e.Families() != 2 {
		t.Fatalf("Collect: %d families, %v", e.Families(), err)
	}
	var buf bytes.Buffer
	if err := e.Encode(&buf, expfmt.FmtText, func(name string) bool { return name == "rocketmq_b" }); err != nil {
		t.Fatal(err)
	}
	if want := "# HELP rocketmq_b b\n# TYPE rocketmq_b gauge\nrocketmq_b 2\n"; buf.String() != want {
		t.Errorf("kept only b:\n%s\nwant\n%s", buf.String(), want)
	}
	if err := e.Encode(&buf, expfmt.FmtProtoDelim, nil); err == nil {
		t.Error("Encode accepted protobuf")
	}
	// A write error ends the encoding and is returned.
	if err := e.Encode(failingWriter{}, expfmt.FmtText, nil); err == nil {
		t.Error("the write error was lost")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

// A collector that makes a fresh Desc per scrape cannot grow the cache
// without bound.
func TestTextWriterDescCacheBounded(t *testing.T) {
	tw := NewTextWriter()
	for round := range 3 {
		var c recorded
		for i := range maxCachedDescs/2 + 7 {
			d := prometheus.NewDesc(fmt.Sprintf("rocketmq_fresh_%d_%d", round, i), "h", nil, nil)
			c = append(c, newSeries(d, prometheus.GaugeValue, 1, nil))
		}
		e, err := tw.Collect(c)
		if err != nil || e.Families() != len(c) {
			t.Fatalf("round %d: %d families of %d, %v", round, e.Families(), len(c), err)
		}
		if n := len(tw.descs); n > maxCachedDescs {
			t.Fatalf("round %d: %d Descs cached, bound %d", round, n, maxCachedDescs)
		}
	}
}

// scaleSeries is a scrape-sized set of sharedSeries shaped like the
// topic and consumer collectors' (4-5 families of one topic over one label
// slice), already in registry order.
func scaleSeries(n int) recorded {
	ln := newLabelNames()
	var descs []*prometheus.Desc
	for i := range 5 {
		descs = append(descs, prometheus.NewDesc(fmt.Sprintf("rocketmq_bench_%d", i), "A benchmark family with a help text of realistic length, naming its source.", topicLabels, nil))
	}
	bl := brokerLabels{cluster: labelPair(ln.cluster, "DefaultCluster"), broker: labelPair(ln.broker, "broker-a")}
	typ := labelPair(ln.typ, "normal")
	out := make(recorded, 0, n)
	for i := 0; len(out) < n; i++ {
		lv := sortedLabels(bl.broker, bl.cluster, labelPair(ln.topic, fmt.Sprintf("benchmark-topic-%06d", i)), typ)
		for k, d := range descs {
			out = append(out, newSeries(d, prometheus.GaugeValue, float64(i*k)+0.5, lv))
		}
	}
	return out[:n]
}

// BenchmarkExposition writes a 140,000-series scrape: through a registry
// and expfmt (as /metrics did) and through the TextWriter.
func BenchmarkExposition(b *testing.B) {
	series := scaleSeries(140_000)
	b.Run("registry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reg := prometheus.NewRegistry()
			reg.MustRegister(series)
			mfs, err := reg.Gather()
			if err != nil {
				b.Fatal(err)
			}
			enc := expfmt.NewEncoder(discard{}, expfmt.FmtText)
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("textwriter", func(b *testing.B) {
		b.ReportAllocs()
		tw := NewTextWriter()
		for b.Loop() {
			e, err := tw.Collect(series)
			if err != nil {
				b.Fatal(err)
			}
			if err := e.Encode(discard{}, expfmt.FmtText, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// discard is io.Discard without its WriteString, like a network connection.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkExpositionScrape writes a recorded scrape of the issue-7 scenario
// (every default collector, cluster mode, frozen answers): its two phases
// separately, and the encoding compressed as /metrics compresses it.
func BenchmarkExpositionScrape(b *testing.B) {
	e := issueEnv(b, true)
	e.mustScrape(b, e.clusterTargets())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	scrape := record(New(ctx, e.clusterTargets(), e.admin, e.collectors, nil))
	cancel()
	tw := NewTextWriter()
	exp, err := tw.Collect(scrape)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("collect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tw.Collect(scrape); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := exp.Encode(discard{}, expfmt.FmtText, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-gzip", func(b *testing.B) {
		b.ReportAllocs()
		gz, _ := gzip.NewWriterLevel(discard{}, gzip.BestSpeed)
		for b.Loop() {
			gz.Reset(discard{})
			if err := exp.Encode(gz, expfmt.FmtText, nil); err != nil {
				b.Fatal(err)
			}
			if err := gz.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// expfmtFloat is how expfmt writes a sample value: a gauge's line, after
// the name and the space.
func expfmtFloat(t testing.TB, v float64) string {
	t.Helper()
	var buf bytes.Buffer
	name := "x"
	mf := &dto.MetricFamily{Name: &name, Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &v}}}}
	if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(buf.String()[strings.LastIndex(strings.TrimSuffix(buf.String(), "\n"), "\n")+1:], "\n")
	return strings.TrimPrefix(line, "x ")
}

// floatCases are values around every boundary of appendFloat's fast paths
// and of the 'g' format's switch to exponent form, and random ones of every
// magnitude.
func floatCases() []float64 {
	vs := []float64{
		0, math.Copysign(0, -1), 1, -1, math.NaN(), math.Inf(1), math.Inf(-1), 2, -2, 0.5, -0.5,
		999999, 1e6, 1e6 + 1, 1234567, 123456.5, 999999.999, 1e21, 1e20, 1e22, 1 << 53, 1<<53 + 2, 1<<53 - 1, -(1 << 53), -(1<<53 - 1),
		1 << 39, 1<<39 - 0.001, 1<<39 + 0.5, -(1<<39 - 0.001), 1<<39 - 0.5, 5.5e11, 1e-4, 1e-5, 0.001, 0.0001, 0.00012, 0.01, 0.1, 0.3,
		1.0666666666666667, 1.795255724261e+09, 1.795269635567e+09, 1795269635.5, 1795269635.56, 5e-324, math.MaxFloat64,
		math.SmallestNonzeroFloat64, 123456789012, 1e15, 1e16, 9.999e15, 0.1 + 0.2, 1e300, -1e-300,
	}
	r := rand.New(rand.NewPCG(5, 6))
	for e := -30; e <= 60; e++ {
		scale := math.Pow(2, float64(e))
		for range 300 {
			vs = append(vs, (r.Float64()+1)*scale, -(r.Float64()+1)*scale)
		}
	}
	for range 30000 {
		// Integers and milliseconds of every size, their neighbours.
		n := r.Int64N(1 << uint(r.IntN(62)+1))
		vs = append(vs, float64(n), -float64(n), float64(n)/1000, float64(n)/100, float64(n)/10, float64(n)/10000,
			math.Nextafter(float64(n)/1000, math.Inf(1)), math.Nextafter(float64(n), 0))
		vs = append(vs, math.Float64frombits(r.Uint64()))
	}
	for _, p := range []float64{1, 10, 100, 1000, 1e5, 1e6, 1e7, 1e11, 1e12} {
		for d := -3; d <= 3; d++ {
			vs = append(vs, p+float64(d), p+float64(d)/1000, p-float64(d)/7)
		}
	}
	return vs
}

// appendFloat writes every value exactly as expfmt does, its fast paths
// included.
func TestAppendFloatMatchesExpfmt(t *testing.T) {
	vs := floatCases()
	for i, v := range vs {
		got := string(appendFloat(nil, v))
		// strconv is what expfmt calls (apart from the constants it
		// writes itself); expfmt itself for a sample of values.
		want := strconv.FormatFloat(v, 'g', -1, 64)
		switch {
		case v == 0:
			want = "0"
		case math.IsInf(v, 1):
			want = "+Inf"
		}
		if i%10 == 0 || i < 100 {
			want = expfmtFloat(t, v)
		}
		if got != want {
			t.Fatalf("appendFloat(%v) (bits %#x) = %q, want %q", v, math.Float64bits(v), got, want)
		}
	}
}
