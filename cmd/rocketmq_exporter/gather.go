package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/rocketmq-exporter/rocketmq_exporter/collector"
)

// gatherAll concatenates what its gatherers return. Each registry already
// checks and sorts its own families; prometheus.Gatherers would merge and
// re-check all of them again, which costs measurable CPU at 100k+ series
// (docs/benchmarks.md). That is only correct while the gatherers never
// share a metric name: the exporter's own registry (process, Go, build and
// remoting self-metrics) and a scrape's registry (rocketmq_* of the cluster)
// do not, which TestGatherAllNamesDisjoint checks against a real scrape.
type gatherAll []prometheus.Gatherer

func (g gatherAll) Gather() ([]*dto.MetricFamily, error) {
	var out []*dto.MetricFamily
	var errs prometheus.MultiError
	for _, x := range g {
		mfs, err := x.Gather()
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, mfs...)
	}
	return out, errs.MaybeUnwrap()
}

// exposer serves a scrape's metrics. The text formats (what Prometheus asks
// for unless told otherwise) are written by collector.TextWriter, which
// streams the scrape's series without a registry; anything else (protobuf)
// goes through a registry and promhttp as before. Either way the answer is
// the same: the self-metrics' families first (from selfReg, gathered before
// the scrape, as gatherAll did), then the scrape's, each set sorted by name.
type exposer struct {
	texts *collector.TextWriter
	// errors is promhttp's promhttp_metric_handler_errors_total, registered
	// once so that both paths count into it.
	errors *prometheus.CounterVec
	gzips  sync.Pool
	// fallback serves the formats the TextWriter does not write.
	fallback func(prometheus.Gatherer) http.Handler
	// logError logs what promhttp's ErrorLog would have.
	logError func(msg string)
}

// newExposer registers the error counter promhttp would register (same name,
// help and labels, so promhttp's own handler finds it already there).
func newExposer(reg prometheus.Registerer, fallback func(prometheus.Gatherer) http.Handler, logError func(string)) (*exposer, error) {
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promhttp_metric_handler_errors_total",
		Help: "Total number of internal errors encountered by the promhttp metric handler.",
	}, []string{"cause"})
	errs.WithLabelValues("gathering")
	errs.WithLabelValues("encoding")
	if err := reg.Register(errs); err != nil {
		return nil, err
	}
	return &exposer{texts: collector.NewTextWriter(), errors: errs, fallback: fallback, logError: logError}, nil
}

// serve answers r with what c collects, after self's families (self may be
// nil).
func (x *exposer) serve(w http.ResponseWriter, r *http.Request, c prometheus.Collector, self prometheus.Gatherer) {
	// The formats promhttp offers without OpenMetrics (which the exporter
	// does not enable).
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
	if format.FormatType() != expfmt.TypeTextPlain {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		var g prometheus.Gatherer = reg
		if self != nil {
			g = gatherAll{self, reg}
		}
		x.fallback(g).ServeHTTP(w, r)
		return
	}

	var (
		selfFams []*dto.MetricFamily
		errs     prometheus.MultiError
	)
	if self != nil {
		var err error
		if selfFams, err = self.Gather(); err != nil {
			errs = append(errs, err)
		}
	}
	exp, err := x.texts.Collect(c)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errs.MaybeUnwrap(); err != nil {
		// As promhttp with ContinueOnError: log, count, serve the rest,
		// and answer 500 only if there is nothing at all.
		x.logError("error gathering metrics: " + err.Error())
		x.errors.WithLabelValues("gathering").Inc()
		if len(selfFams) == 0 && exp.Families() == 0 {
			http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return
		}
	}

	h := w.Header()
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	h.Set("Content-Type", string(format))
	// Written as it is produced, never held whole: the text of a large
	// cluster is 16 MB.
	var out textWriter
	var pipe *chunkPipe
	if acceptsGzip(r.Header) {
		h.Set("Content-Encoding", "gzip")
		gz := x.gzipWriter(w)
		defer x.putGzip(gz)
		// Compressing costs about as much CPU as producing the text:
		// a goroutine of its own compresses each chunk while the next is
		// produced. Closed (deferred after putGzip, so run before it) on
		// every way out, also a panic: its goroutine writes to w until
		// then.
		pipe = newChunkPipe(gz)
		defer pipe.Close()
		out = pipe
	} else {
		out = bufio.NewWriterSize(w, 64<<10)
	}
	keep := nameFilter(r)
	enc := expfmt.NewEncoder(out, format)
	for _, mf := range selfFams {
		if keep != nil && !keep(mf.GetName()) {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			x.encodingError(err)
			// A family expfmt refuses costs that family; a failed write
			// (both writers keep it) ends the answer.
			if _, werr := out.Write(nil); werr != nil {
				return
			}
		}
	}
	// The exposition flushes a bufio.Writer; the pipe's Close waits for
	// the last chunk to be compressed. A client gone away ends the answer
	// at the first failed write, reported once.
	err = exp.Encode(out, format, keep)
	if pipe != nil && err == nil {
		err = pipe.Close()
	}
	if err != nil {
		x.encodingError(err)
	}
}

// textWriter is what expfmt writes into without a buffer of its own.
type textWriter interface {
	io.Writer
	io.StringWriter
	io.ByteWriter
	WriteRune(r rune) (int, error)
}

// Chunks of the pipe: large enough that handing one over costs little per
// byte, few enough that a slow client holds little memory.
const (
	pipeChunk  = 64 << 10
	pipeChunks = 4
)

// chunkPipe buffers what is written in chunks that a goroutine of its own
// writes to w, in order, while the next chunk fills. After w's first
// error nothing more reaches w; the error is returned by the next write
// and by Close. Close must be called: it ends the goroutine.
type chunkPipe struct {
	w    io.Writer
	cur  []byte
	full chan []byte // chunks to write, in order
	free chan []byte // written chunks, for reuse
	done chan struct{}

	made   int // chunks allocated besides the first
	closed bool

	err atomic.Pointer[error] // w's first error
}

func newChunkPipe(w io.Writer) *chunkPipe {
	p := &chunkPipe{
		w:    w,
		cur:  make([]byte, 0, pipeChunk),
		full: make(chan []byte, pipeChunks),
		free: make(chan []byte, pipeChunks),
		done: make(chan struct{}),
	}
	go p.run()
	return p
}

// run writes the chunks until the pipe is closed; it hands every chunk
// back, written or not, so the producer never waits on a failed writer.
func (p *chunkPipe) run() {
	defer close(p.done)
	for b := range p.full {
		if p.err.Load() == nil {
			if _, err := p.w.Write(b); err != nil {
				p.err.Store(&err)
			}
		}
		p.free <- b[:0]
	}
}

// error is w's first error, or errPipeClosed after Close.
func (p *chunkPipe) error() error {
	if e := p.err.Load(); e != nil {
		return *e
	}
	if p.closed {
		return errPipeClosed
	}
	return nil
}

var errPipeClosed = errors.New("write to a closed pipe")

// send hands the current chunk over and takes an empty one: a written
// one, or a new one while fewer than pipeChunks exist.
func (p *chunkPipe) send() {
	p.full <- p.cur
	select {
	case p.cur = <-p.free:
	default:
		if p.made < pipeChunks-1 {
			p.made++
			p.cur = make([]byte, 0, pipeChunk)
		} else {
			p.cur = <-p.free
		}
	}
}

func (p *chunkPipe) Write(b []byte) (int, error) { return pipeWrite(p, b) }

// WriteString spares expfmt a conversion of every string it writes.
func (p *chunkPipe) WriteString(s string) (int, error) { return pipeWrite(p, s) }

func pipeWrite[T string | []byte](p *chunkPipe, b T) (int, error) {
	if err := p.error(); err != nil {
		return 0, err
	}
	n := len(b)
	for len(b) > 0 {
		k := copy(p.cur[len(p.cur):cap(p.cur)], b)
		p.cur, b = p.cur[:len(p.cur)+k], b[k:]
		if len(p.cur) == cap(p.cur) {
			p.send()
		}
	}
	return n, nil
}

func (p *chunkPipe) WriteByte(c byte) error {
	if err := p.error(); err != nil {
		return err
	}
	p.cur = append(p.cur, c)
	if len(p.cur) == cap(p.cur) {
		p.send()
	}
	return nil
}

func (p *chunkPipe) WriteRune(r rune) (int, error) {
	var buf [utf8.UTFMax]byte
	return p.Write(utf8.AppendRune(buf[:0], r))
}

// Close writes what is buffered, waits until w has it all and returns w's
// first error (nil if none), as do later calls.
func (p *chunkPipe) Close() error {
	if !p.closed {
		if len(p.cur) > 0 && p.error() == nil {
			p.full <- p.cur
		}
		p.cur = nil
		p.closed = true
		close(p.full)
		<-p.done
	}
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (x *exposer) encodingError(err error) {
	x.logError("error encoding and sending metric family: " + err.Error())
	x.errors.WithLabelValues("encoding").Inc()
}

// gzipWriter compresses at BestSpeed: the exposition of a large cluster is
// 16 MB of very repetitive text, which even the fastest level shrinks about
// twentyfold. On 16 MB of topic series BestSpeed took a third to a half of
// the default level's CPU time for 6 % more bytes (0.76 MB against 0.71 MB);
// the exporter is short of CPU, not of bandwidth.
func (x *exposer) gzipWriter(w io.Writer) *gzip.Writer {
	if gz, ok := x.gzips.Get().(*gzip.Writer); ok {
		gz.Reset(w)
		return gz
	}
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // a valid level cannot fail
	return gz
}

func (x *exposer) putGzip(gz *gzip.Writer) {
	_ = gz.Close() // a write error was reported by the encoding already
	gz.Reset(io.Discard)
	x.gzips.Put(gz)
}

// nameFilter is promhttp's name[] query parameter: only the families named
// (nil: all).
func nameFilter(r *http.Request) func(string) bool {
	if r.URL == nil {
		return nil
	}
	names := r.URL.Query()["name[]"]
	if len(names) == 0 {
		return nil
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return func(name string) bool { return set[name] }
}

// acceptsGzip decides between gzip and no compression as promhttp does for
// the encodings it offers (identity, then gzip): the one with the higher
// quality wins, identity on a tie, and nothing is compressed when gzip's
// quality is 0 or no entry names it (directly or by "*"). On malformed or
// unusual headers it can choose otherwise than promhttp's own parser (it
// matches names case-insensitively, reads q among other parameters and
// skips entries it cannot parse); either answer is valid HTTP, and
// Prometheus sends a plain "gzip".
func acceptsGzip(h http.Header) bool {
	identity, gz := -1.0, -1.0
	for _, line := range h.Values("Accept-Encoding") {
		for entry := range strings.SplitSeq(line, ",") {
			coding, params, _ := strings.Cut(entry, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			q := 1.0
			if params = strings.TrimSpace(params); params != "" {
				v, ok := strings.CutPrefix(params, "q=")
				if !ok {
					continue
				}
				var err error
				if q, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || q < 0 || q > 1 {
					continue
				}
			}
			if coding == "identity" || coding == "*" {
				identity = max(identity, q)
			}
			if coding == "gzip" || coding == "*" {
				gz = max(gz, q)
			}
		}
	}
	return gz > 0 && gz > identity
}
