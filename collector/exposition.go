package collector

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Streaming text exposition. A full scrape of a large cluster is well over
// 100,000 series. Gathered through a prometheus.Registry, each of them
// becomes a dto.Metric that is checked (label names, UTF-8, a hash for
// duplicates), sorted and kept until expfmt has written the whole answer:
// about a quarter of the exporter's CPU and a large part of its memory.
//
// TextWriter produces the same bytes for the series of the topic and
// consumer collectors (sharedSeries) without any of that: it keeps a pointer
// to each series, grouped by family in the order they arrive, and writes
// them straight to the response. What it needs to know about a family (name,
// help, label names) it learns once per Desc by gathering that Desc's first
// series through a throw-away registry, which also validates it; each later
// series is checked against what was learned (same label names, UTF-8
// values) and sorted like the registry only if it did not arrive in order
// (the collectors emit in order, so this is one comparison per series).
// The series of one topic or group share one slice of label pairs across
// their families; the text of such labels is made once per answer.
//
// Everything else (const metrics of the other collectors, rocketmq_up, a
// sharedSeries that does not match what its Desc's first series taught) is
// gathered through one real registry at the end and written by expfmt, so
// every metric type, every validation and every error message is the
// registry's.
//
// Two checks of the registry are left out for sharedSeries, because they
// depend on the code, not on the cluster's data, and the collectors' tests
// gather through real (pedantic) registries, which would fail on them:
// duplicate series (the same name and label values twice) and a metric name
// that collides with the _count/_sum/_bucket series of a summary or
// histogram. A family whose sharedSeries disagree on type or help with each
// other or with the family's other metrics is resolved like the registry
// does (the first metric of the family decides; the others are reported
// and dropped), except that among metrics that are not sharedSeries only the
// first variant is considered.

// TextWriter writes what a prometheus.Collector sends in the Prometheus text
// format. It is safe for concurrent use; one per process, so that what it
// learns about long-lived Descs is learned once.
type TextWriter struct {
	mu    sync.Mutex
	descs map[*prometheus.Desc]*descMeta
	// labels interns descMeta.labels: Descs with the same label names
	// share one slice, which matches compares by identity.
	labels map[string][]string
	// sizes are the families' numbers of series in the last Collect, so
	// that their slices are made large enough at once.
	sizes map[string]int
}

// maxCachedDescs bounds what a TextWriter remembers: a collector that made
// a fresh Desc per scrape would otherwise grow the cache forever. When full,
// it starts over; long-lived Descs are then learned again, once.
const maxCachedDescs = 4096

// NewTextWriter returns a TextWriter with nothing learned yet.
func NewTextWriter() *TextWriter {
	return &TextWriter{descs: map[*prometheus.Desc]*descMeta{}, labels: map[string][]string{}, sizes: map[string]int{}}
}

// descMeta is what the registry made of a Desc's first series.
type descMeta struct {
	name, help string
	// labels are the label names in the order the registry keeps them
	// (sorted); a series takes the fast path only with exactly these.
	labels []string
	// fast: the metric and label names are valid legacy names, so every
	// text format (whatever its name escaping) writes them as they are.
	fast bool
}

// meta returns what is known of s's Desc, probing it with s if nothing is;
// nil if the registry rejects s.
func (tw *TextWriter) meta(s *sharedSeries) *descMeta {
	tw.mu.Lock()
	m, ok := tw.descs[s.desc]
	tw.mu.Unlock()
	if ok {
		return m
	}
	m = probeDesc(s)
	if m == nil {
		// Not remembered: the next scrape's first series may be fine.
		return nil
	}
	key := fmt.Sprintf("%q", m.labels)
	tw.mu.Lock()
	if len(tw.descs) >= maxCachedDescs {
		clear(tw.descs)
		clear(tw.labels)
	}
	if l, ok := tw.labels[key]; ok {
		m.labels = l
	} else {
		tw.labels[key] = m.labels
	}
	tw.descs[s.desc] = m
	tw.mu.Unlock()
	return m
}

// sizeHint is how many series the family had last time.
func (tw *TextWriter) sizeHint(name string) int {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return tw.sizes[name]
}

func (tw *TextWriter) noteSizes(fams map[string]*textFamily) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if len(tw.sizes)+len(fams) > maxCachedDescs {
		clear(tw.sizes)
	}
	for name, f := range fams {
		tw.sizes[name] = len(f.series)
	}
}

// probeDesc gathers one series through a registry of its own.
func probeDesc(s *sharedSeries) *descMeta {
	reg := prometheus.NewRegistry()
	if err := reg.Register(&replay{metrics: []prometheus.Metric{s}}); err != nil {
		return nil
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		return nil
	}
	mf := mfs[0]
	m := &descMeta{name: mf.GetName(), help: mf.GetHelp(), fast: model.LegacyValidation.IsValidMetricName(mf.GetName())}
	for _, lp := range mf.GetMetric()[0].GetLabel() {
		m.labels = append(m.labels, lp.GetName())
		m.fast = m.fast && model.LegacyValidation.IsValidLabelName(lp.GetName())
	}
	return m
}

// replay is an unchecked collector sending given metrics.
type replay struct{ metrics []prometheus.Metric }

func (r *replay) Describe(chan<- *prometheus.Desc) {}

func (r *replay) Collect(ch chan<- prometheus.Metric) {
	for _, m := range r.metrics {
		ch <- m
	}
}

// Exposition is what one Collect sent, ready to be written.
type Exposition struct {
	fams     []*textFamily // by name
	runs     uint32        // label runs numbered
	runBytes int           // their label texts' length, unescaped
}

// Families is the number of metric families to write.
func (e *Exposition) Families() int { return len(e.fams) }

// textFamily is one metric name's series: sharedSeries kept as they are
// (written by TextWriter) or, when the family has other metrics too, all of
// them as dto (written by expfmt).
type textFamily struct {
	name string

	// The sharedSeries, in arrival order, and what their first one said.
	// Along each series, its label run (0: none).
	series    []*sharedSeries
	runs      []uint32
	first     *descMeta
	firstDesc *prometheus.Desc
	firstTyp  prometheus.ValueType
	firstFast int // arrival index, -1: none
	// Noted as the series arrive, while they are in the CPU's cache, so
	// that resolve need not visit them again: some series has another
	// Desc or type than the first; some series sorts before the one that
	// arrived before it.
	mixed, unsorted bool

	// The family of the other metrics, from the registry.
	slow      *dto.MetricFamily
	firstSlow int // arrival index, -1: none

	// Resolved: the family's help and type; mf is set when expfmt writes it.
	help string
	typ  dto.MetricType
	mf   *dto.MetricFamily
}

// builder is the state of one Collect.
type builder struct {
	tw *TextWriter
	// A label run is the series that arrive one after the other over the
	// same label pairs (the families of one topic or group). Each run of
	// two or more series has a number, under which Encode keeps the text
	// of its labels, written once for all of them. run is the current
	// run's label pairs, runID its number (0 while it has one series),
	// runFam and runAt where its first series is.
	run    []*dto.LabelPair
	runID  uint32
	runFam *textFamily
	runAt  int
	runs   uint32 // numbers given
	// runBytes is the length of the runs' label texts, if none needs
	// escaping.
	runBytes int
	local    map[*prometheus.Desc]*localDesc
	// recent caches local for the few Descs a collector cycles through
	// (the families of one topic or group): a map lookup per series shows.
	recent     [8]recentDesc
	nextRecent int
	byName     map[string]*textFamily
	slow       []prometheus.Metric
	slowSeq    []int
	errs       prometheus.MultiError
	// lastValid are the label pairs last found to match lastNames.
	lastValid []*dto.LabelPair
	lastNames []string
	// validAt are, by position, the label pairs last found valid: the
	// broker's and cluster's pairs are shared by all its series.
	validAt [8]*dto.LabelPair
}

type recentDesc struct {
	desc *prometheus.Desc
	ld   *localDesc
}

// localDesc caches a Desc's meta and family for one Collect, without the
// TextWriter's lock; meta nil sends its series down the registry path.
type localDesc struct {
	meta *descMeta
	fam  *textFamily
}

// Collect runs c.Collect and keeps what it sends. The error (a
// prometheus.MultiError) lists the metrics that were left out, as a
// registry's Gather would; everything else is in the Exposition.
func (tw *TextWriter) Collect(c prometheus.Collector) (*Exposition, error) {
	b := &builder{tw: tw, local: map[*prometheus.Desc]*localDesc{}, byName: map[string]*textFamily{}}
	ch := make(chan prometheus.Metric, 1024)
	var panicked error
	go func() {
		defer close(ch)
		defer func() {
			if r := recover(); r != nil {
				// Like the registry: one collector's panic costs its own
				// series, not the process.
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				panicked = fmt.Errorf("prometheus collector panic recovered: type=%T: error=%v\nstack trace=%s", c, r, buf)
			}
		}()
		c.Collect(ch)
	}()
	seq := 0
	for m := range ch {
		b.add(m, seq)
		seq++
	}
	if panicked != nil {
		b.errs = append(b.errs, panicked)
	}
	e := b.finish()
	return e, b.errs.MaybeUnwrap()
}

func (b *builder) add(m prometheus.Metric, seq int) {
	if s, ok := m.(*sharedSeries); ok && s.desc != nil {
		ld := b.localDesc(s)
		if ld.fam != nil && b.matches(ld.meta.labels, s.labels) {
			f := ld.fam
			if f.firstFast < 0 {
				f.firstFast, f.first, f.firstDesc, f.firstTyp = seq, ld.meta, s.desc, s.typ
			} else {
				f.mixed = f.mixed || s.desc != f.firstDesc || s.typ != f.firstTyp
				f.unsorted = f.unsorted || seriesLess(s.labels, f.series[len(f.series)-1].labels)
			}
			b.addRun(f, s.labels)
			f.series = append(f.series, s)
			return
		}
	}
	b.slow = append(b.slow, m)
	b.slowSeq = append(b.slowSeq, seq)
}

// addRun notes the label run of a series about to be appended to f.
func (b *builder) addRun(f *textFamily, labels []*dto.LabelPair) {
	if len(labels) > 0 && len(labels) == len(b.run) && &labels[0] == &b.run[0] {
		if b.runID == 0 {
			b.runs++
			b.runID = b.runs
			b.runFam.runs[b.runAt] = b.runID
			b.runBytes += 1 // }
			for _, lp := range labels {
				b.runBytes += len(*lp.Name) + len(*lp.Value) + 4 // {="" or ,=""
			}
		}
		f.runs = append(f.runs, b.runID)
		return
	}
	b.run, b.runID, b.runFam, b.runAt = labels, 0, f, len(f.runs)
	f.runs = append(f.runs, 0)
}

// localDesc is what this Collect knows of s's Desc.
func (b *builder) localDesc(s *sharedSeries) *localDesc {
	for _, r := range b.recent {
		if r.desc == s.desc {
			return r.ld
		}
	}
	ld := b.local[s.desc]
	if ld == nil {
		ld = &localDesc{meta: b.tw.meta(s)}
		if ld.meta != nil && ld.meta.fast {
			ld.fam = b.family(ld.meta.name)
		}
		b.local[s.desc] = ld
	}
	b.recent[b.nextRecent] = recentDesc{s.desc, ld}
	b.nextRecent = (b.nextRecent + 1) % len(b.recent)
	return ld
}

// matches reports whether a series' label pairs have exactly the names the
// registry accepted for its Desc and values it would accept.
func (b *builder) matches(names []string, labels []*dto.LabelPair) bool {
	if len(names) != len(labels) {
		return false
	}
	if len(labels) == 0 {
		return true
	}
	// The families of one topic or group arrive one after the other over
	// the same label pairs, which are immutable, and Descs with the same
	// label names: those are checked once.
	if len(b.lastValid) == len(labels) && &b.lastValid[0] == &labels[0] && &b.lastNames[0] == &names[0] {
		return true
	}
	for i, lp := range labels {
		// The names are usually the very strings the probe saw, so this
		// compares pointers.
		if lp == nil || lp.Name == nil || lp.Value == nil || *lp.Name != names[i] {
			return false
		}
		if i < len(b.validAt) {
			if b.validAt[i] == lp {
				continue
			}
			b.validAt[i] = nil
		}
		if !utf8.ValidString(*lp.Value) {
			return false
		}
		if i < len(b.validAt) {
			b.validAt[i] = lp
		}
	}
	b.lastValid, b.lastNames = labels, names
	return true
}

func (b *builder) family(name string) *textFamily {
	f := b.byName[name]
	if f == nil {
		f = &textFamily{name: name, firstFast: -1, firstSlow: -1}
		if n := b.tw.sizeHint(name); n > 0 {
			f.series = make([]*sharedSeries, 0, n)
			f.runs = make([]uint32, 0, n)
		}
		b.byName[name] = f
	}
	return f
}

// seqMetric notes, for the registry path, when each written dto.Metric
// arrived, so a family with series on both paths knows which came first.
type seqMetric struct {
	prometheus.Metric
	seq   int
	seqOf map[*dto.Metric]int
}

func (m *seqMetric) Write(out *dto.Metric) error {
	if err := m.Metric.Write(out); err != nil {
		return err
	}
	// The registry calls Write from Gather's own goroutine, one metric at a
	// time.
	m.seqOf[out] = m.seq
	return nil
}

// gatherSlow puts the metrics that are not on the fast path through one
// registry, in arrival order.
func (b *builder) gatherSlow() {
	seqOf := make(map[*dto.Metric]int, len(b.slow))
	ms := make([]prometheus.Metric, len(b.slow))
	for i, m := range b.slow {
		ms[i] = &seqMetric{Metric: m, seq: b.slowSeq[i], seqOf: seqOf}
	}
	b.slow, b.slowSeq = nil, nil
	reg := prometheus.NewRegistry()
	if err := reg.Register(&replay{metrics: ms}); err != nil {
		b.errs = append(b.errs, err)
		return
	}
	mfs, err := reg.Gather()
	var me prometheus.MultiError
	switch {
	case err == nil:
	case asMultiError(err, &me):
		b.errs = append(b.errs, me...)
	default:
		b.errs = append(b.errs, err)
	}
	for _, mf := range mfs {
		f := b.family(mf.GetName())
		f.slow = mf
		for _, m := range mf.GetMetric() {
			if s, ok := seqOf[m]; ok && (f.firstSlow < 0 || s < f.firstSlow) {
				f.firstSlow = s
			}
		}
		if f.firstSlow < 0 {
			f.firstSlow = math.MaxInt // unknown: after the fast series
		}
	}
}

func asMultiError(err error, me *prometheus.MultiError) bool {
	m, ok := err.(prometheus.MultiError)
	if ok {
		*me = m
	}
	return ok
}

func (b *builder) finish() *Exposition {
	if len(b.slow) > 0 {
		b.gatherSlow()
	}
	b.tw.noteSizes(b.byName)
	names := make([]string, 0, len(b.byName))
	for name := range b.byName {
		names = append(names, name)
	}
	sort.Strings(names)
	e := &Exposition{fams: make([]*textFamily, 0, len(names)), runs: b.runs, runBytes: b.runBytes}
	for _, name := range names {
		f := b.byName[name]
		if b.resolve(f) {
			e.fams = append(e.fams, f)
		}
	}
	return e
}

// dtoType is what sharedSeries.Write makes of each value type.
func dtoType(t prometheus.ValueType) dto.MetricType {
	switch t {
	case prometheus.CounterValue:
		return dto.MetricType_COUNTER
	case prometheus.GaugeValue:
		return dto.MetricType_GAUGE
	}
	return dto.MetricType_UNTYPED
}

// resolve settles the family's help and type (its first metric's, as the
// registry does), drops what disagrees, merges the two paths if both have
// series and sorts; false if nothing is left.
func (b *builder) resolve(f *textFamily) bool {
	fastFirst := f.firstFast >= 0 && (f.slow == nil || f.firstFast < f.firstSlow)
	if fastFirst {
		f.help, f.typ = f.first.help, dtoType(f.firstTyp)
	} else {
		f.help, f.typ = f.slow.GetHelp(), f.slow.GetType()
	}

	// Each series agrees with the first one unless add noted otherwise,
	// and so with the family unless that is decided by a const metric
	// that disagrees.
	if f.mixed || len(f.series) > 0 && (f.first.help != f.help || dtoType(f.firstTyp) != f.typ) {
		n := 0
		for i, s := range f.series {
			help := f.first.help
			if s.desc != f.firstDesc {
				help = b.local[s.desc].meta.help
			}
			if err := b.consistent(f, help, dtoType(s.typ), s); err != nil {
				b.errs = append(b.errs, err)
				continue
			}
			f.series[n], f.runs[n] = s, f.runs[i]
			n++
		}
		clear(f.series[n:])
		f.series, f.runs = f.series[:n], f.runs[:n]
	}

	if f.slow != nil && (f.slow.GetHelp() != f.help || f.slow.GetType() != f.typ) {
		for _, m := range f.slow.GetMetric() {
			b.errs = append(b.errs, inconsistent(f, f.slow.GetHelp(), f.slow.GetType(), m))
		}
		f.slow = nil
	}

	if f.slow == nil {
		if len(f.series) == 0 {
			return false
		}
		// What is left of series in order is in order.
		if f.unsorted {
			sort.Stable(familySorter{f})
		}
		return true
	}
	// Both paths: rare enough (a collector mixing sharedSeries and const
	// metrics under one name) to go all through dto and expfmt.
	f.mf = &dto.MetricFamily{Name: &f.name, Help: &f.help, Type: f.typ.Enum(), Metric: f.slow.GetMetric()}
	for _, s := range f.series {
		m := &dto.Metric{}
		_ = s.Write(m) // cannot fail
		f.mf.Metric = append(f.mf.Metric, m)
	}
	f.series, f.runs, f.slow = nil, nil, nil
	sort.Sort(dtoSorter(f.mf.Metric))
	return true
}

// consistent is the registry's check of a metric against its family.
func (b *builder) consistent(f *textFamily, help string, typ dto.MetricType, s *sharedSeries) error {
	if help == f.help && typ == f.typ {
		return nil
	}
	m := &dto.Metric{}
	_ = s.Write(m)
	return inconsistent(f, help, typ, m)
}

func inconsistent(f *textFamily, help string, typ dto.MetricType, m *dto.Metric) error {
	if help != f.help {
		return fmt.Errorf("collected metric %s %s has help %q but should have %q", f.name, m, help, f.help)
	}
	return fmt.Errorf("collected metric %s %s should be a %s", f.name, m, typeName(f.typ))
}

func typeName(t dto.MetricType) string {
	switch t {
	case dto.MetricType_COUNTER:
		return "Counter"
	case dto.MetricType_GAUGE:
		return "Gauge"
	case dto.MetricType_SUMMARY:
		return "Summary"
	case dto.MetricType_HISTOGRAM:
		return "Histogram"
	}
	return "Untyped"
}

// lessLabels is the registry's order of series within a family: fewer
// labels first, then label values in label order.
func lessLabels(a, b []*dto.LabelPair) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	for i, lp := range a {
		va, vb := lp.GetValue(), b[i].GetValue()
		if va != vb {
			return va < vb
		}
	}
	return false
}

// seriesLess is lessLabels for label pairs that matches accepted (no nil
// pointers); pairs shared by both sides are not compared.
func seriesLess(a, b []*dto.LabelPair) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	for i, lp := range a {
		if lp == b[i] {
			continue
		}
		// One pass over the bytes, where != and < would make two.
		if c := strings.Compare(*lp.Value, *b[i].Value); c != 0 {
			return c < 0
		}
	}
	return false
}

// familySorter sorts a family's series with their runs.
type familySorter struct{ f *textFamily }

func (s familySorter) Len() int { return len(s.f.series) }
func (s familySorter) Less(i, j int) bool {
	return seriesLess(s.f.series[i].labels, s.f.series[j].labels)
}
func (s familySorter) Swap(i, j int) {
	f := s.f
	f.series[i], f.series[j] = f.series[j], f.series[i]
	f.runs[i], f.runs[j] = f.runs[j], f.runs[i]
}

// dtoSorter is the registry's order of dto metrics (equal label values:
// by timestamp, none last).
type dtoSorter []*dto.Metric

func (s dtoSorter) Len() int      { return len(s) }
func (s dtoSorter) Swap(i, j int) { s[i], s[j] = s[j], s[i] }
func (s dtoSorter) Less(i, j int) bool {
	a, b := s[i], s[j]
	if lessLabels(a.Label, b.Label) {
		return true
	}
	if lessLabels(b.Label, a.Label) {
		return false
	}
	switch {
	case a.TimestampMs == nil:
		return false
	case b.TimestampMs == nil:
		return true
	}
	return a.GetTimestampMs() < b.GetTimestampMs()
}

// Encode writes the families in a text format (one expfmt.NegotiateAccept
// returns with FormatType TypeTextPlain; its name escaping applies to the
// families written by expfmt, the others have legacy names only) to w,
// skipping the families keep rejects (nil: none). It stops at the first
// write error; a family expfmt rejects is skipped and its error returned
// once the rest is written. The text goes to w in writes of about encodeChunk bytes; if w
// has a Flush method (a bufio.Writer), it is flushed at the end.
func (e *Exposition) Encode(w io.Writer, format expfmt.Format, keep func(name string) bool) error {
	if format.FormatType() != expfmt.TypeTextPlain {
		return fmt.Errorf("not a text format: %q", format)
	}
	t := &textEncoder{w: w, buf: make([]byte, 0, encodeChunk+encodeChunk/4), runs: make([]runText, e.runs+1), labels: make([]byte, 0, e.runBytes)}
	var enc expfmt.Encoder
	var encErr error
	for _, f := range e.fams {
		if keep != nil && !keep(f.name) {
			continue
		}
		if f.mf != nil {
			if enc == nil {
				enc = expfmt.NewEncoder(t, format)
			}
			// Only an invalid family fails here (t's writes cannot), and
			// the others still go out, as promhttp's ContinueOnError does;
			// the first such error is returned at the end.
			if err := enc.Encode(f.mf); err != nil && encErr == nil {
				encErr = err
			}
		} else {
			t.writeFamily(f)
		}
		if len(t.buf) >= encodeChunk && !t.flush() {
			return t.err
		}
	}
	if !t.flush() {
		return t.err
	}
	if fl, ok := w.(interface{ Flush() error }); ok {
		if err := fl.Flush(); err != nil {
			return err
		}
	}
	return encErr
}

// encodeChunk is how much text Encode gathers before it writes: enough to
// make a write cheap per byte, little enough to stay in the CPU's cache.
const encodeChunk = 32 << 10

// textEncoder gathers text in buf and writes it to w in chunks. It is the
// enhanced writer expfmt looks for, so the families expfmt writes land in
// buf too, without a bufio.Writer of their own.
type textEncoder struct {
	w   io.Writer
	buf []byte
	err error // w's first error; nothing is written after it
	// The label text of each label run, {name="value",...} in labels,
	// written on its first use.
	labels []byte
	runs   []runText
}

// runText is where a run's label text is in textEncoder.labels.
type runText struct{ start, end uint32 }

func (t *textEncoder) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	return len(p), nil
}

func (t *textEncoder) WriteString(s string) (int, error) {
	t.buf = append(t.buf, s...)
	return len(s), nil
}

func (t *textEncoder) WriteByte(c byte) error {
	t.buf = append(t.buf, c)
	return nil
}

func (t *textEncoder) WriteRune(r rune) (int, error) {
	n := len(t.buf)
	t.buf = utf8.AppendRune(t.buf, r)
	return len(t.buf) - n, nil
}

// flush writes what is gathered; false after a write error.
func (t *textEncoder) flush() bool {
	if t.err == nil && len(t.buf) > 0 {
		_, t.err = t.w.Write(t.buf)
	}
	t.buf = t.buf[:0]
	return t.err == nil
}

// writeFamily writes a family of sharedSeries as expfmt.MetricFamilyToText
// would, flushing whenever a chunk is full (and stopping if that fails).
func (t *textEncoder) writeFamily(f *textFamily) {
	b := append(t.buf, "# HELP "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = appendEscaped(b, f.help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, f.name...)
	switch f.typ {
	case dto.MetricType_COUNTER:
		b = append(b, " counter\n"...)
	case dto.MetricType_GAUGE:
		b = append(b, " gauge\n"...)
	default:
		b = append(b, " untyped\n"...)
	}
	for i, s := range f.series {
		if len(b) >= encodeChunk {
			t.buf = b
			if !t.flush() {
				return
			}
			b = t.buf
		}
		b = append(b, f.name...)
		if run := f.runs[i]; run != 0 {
			r := &t.runs[run]
			if r.end == 0 {
				r.start = uint32(len(t.labels))
				t.labels = appendLabels(t.labels, s.labels)
				r.end = uint32(len(t.labels))
			}
			b = append(b, t.labels[r.start:r.end]...)
		} else if len(s.labels) > 0 {
			b = appendLabels(b, s.labels)
		}
		b = append(b, ' ')
		b = appendFloat(b, s.val)
		b = append(b, '\n')
	}
	t.buf = b
}

// appendLabels writes {name="value",...}.
func appendLabels(b []byte, labels []*dto.LabelPair) []byte {
	sep := byte('{')
	for _, lp := range labels {
		b = append(b, sep)
		b = append(b, *lp.Name...)
		b = append(b, '=', '"')
		b = appendEscaped(b, *lp.Value, true)
		b = append(b, '"')
		sep = ','
	}
	return append(b, '}')
}

// appendFloat formats like expfmt: the shortest representation that reads
// back as f ('g' with the shortest precision), with 0 for -0. Integers and
// numbers of at most three decimals (counts, timestamps in seconds with
// milliseconds: nearly every value of a scrape) are formatted from their
// decimal digits, which is the same text at a fraction of the cost
// (TestAppendFloatMatchesStrconv).
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 0:
		return append(b, '0')
	case f == 1:
		return append(b, '1')
	case f == -1:
		return append(b, "-1"...)
	}
	// Not true for NaN and ±Inf, which go to strconv.
	if f > -maxExactInt && f < maxExactInt {
		if i := int64(f); float64(i) == f {
			return appendDecimal(b, i, 0)
		}
		if f > -maxMillis && f < maxMillis {
			m := int64(math.Round(f * 1000))
			// m/1000 reads back as f: it is a decimal of f's rounding
			// interval, and the only one with as few digits (see
			// maxMillis), so the shortest.
			if float64(m)/1000 == f {
				return appendDecimal(b, m, 3)
			}
		}
	}
	// strconv writes NaN, +Inf and -Inf as the text format wants them.
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

const (
	// maxExactInt: below it, an integral float's shortest representation
	// is its integer's digits (floats are at most 1 apart there, so no
	// other decimal of as few digits reads back as it).
	maxExactInt = 1 << 53
	// maxMillis: below it, floats are less than 10^-4 apart, so two
	// decimals that read back as the same float differ by less than 10^-4,
	// and a decimal of three decimals (m/1000) has no other decimal with at
	// most as many significant digits within that distance: any other
	// such decimal is at least 10^-4 away from it.
	maxMillis = 1 << 39
)

// appendDecimal writes the number i/10^scale (i != 0) as strconv's 'g'
// format with the shortest precision writes the digits of a float: the
// significant digits without trailing zeros, in exponent form when the
// exponent is below -4 or at least 6.
func appendDecimal(b []byte, i int64, scale int) []byte {
	if i < 0 {
		b = append(b, '-')
	}
	var buf [24]byte
	d := strconv.AppendUint(buf[:0], absInt(i), 10)
	dp := len(d) - scale // digits before the decimal point
	for len(d) > 1 && d[len(d)-1] == '0' {
		d = d[:len(d)-1]
	}
	if exp := dp - 1; exp < -4 || exp >= 6 {
		b = append(b, d[0])
		if len(d) > 1 {
			b = append(b, '.')
			b = append(b, d[1:]...)
		}
		b = append(b, 'e')
		if exp < 0 {
			b = append(b, '-')
			exp = -exp
		} else {
			b = append(b, '+')
		}
		if exp < 10 {
			b = append(b, '0')
		}
		return strconv.AppendInt(b, int64(exp), 10)
	}
	switch {
	case dp <= 0:
		b = append(b, '0', '.')
		for range -dp {
			b = append(b, '0')
		}
		return append(b, d...)
	case dp >= len(d):
		b = append(b, d...)
		for range dp - len(d) {
			b = append(b, '0')
		}
		return b
	}
	b = append(b, d[:dp]...)
	b = append(b, '.')
	return append(b, d[dp:]...)
}

func absInt(i int64) uint64 {
	if i < 0 {
		return uint64(-i)
	}
	return uint64(i)
}

// escapes marks the bytes the text format escapes: backslash and newline
// (1) everywhere, the double quote (2) in label values.
var escapes = [256]uint8{'\\': 1, '\n': 1, '"': 2}

// appendEscaped escapes backslash and newline, and with quote also the
// double quote, as the text format wants HELP text and label values.
func appendEscaped(b []byte, s string, quote bool) []byte {
	mask := uint8(1)
	if quote {
		mask = 3
	}
	start := 0
	for i := 0; i < len(s); i++ {
		if escapes[s[i]]&mask == 0 {
			continue
		}
		b = append(b, s[start:i]...)
		switch s[i] {
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, '\\', '"')
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}
