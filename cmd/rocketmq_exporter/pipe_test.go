package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

// chunkRecorder keeps what reaches it and the size of each write.
type chunkRecorder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes []int
	fail   int   // fail the write that would pass this many bytes (0: never)
	err    error // what it fails with
}

func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail > 0 && c.buf.Len()+len(p) > c.fail {
		c.writes = append(c.writes, -len(p))
		return 0, c.err
	}
	c.writes = append(c.writes, len(p))
	return c.buf.Write(p)
}

// Whatever mix of writes goes in comes out in order, in whole chunks but the
// last, through the pipe's goroutine, which Close ends.
func TestChunkPipeOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := rand.New(rand.NewPCG(7, 8))
	for _, total := range []int{0, 1, pipeChunk - 1, pipeChunk, pipeChunk + 1, 5*pipeChunk + 12345, 3 << 20} {
		var rec chunkRecorder
		p := newChunkPipe(&rec)
		var want bytes.Buffer
		for want.Len() < total {
			b := make([]byte, min(total-want.Len(), r.IntN(3)*r.IntN(pipeChunk/2)+r.IntN(40)))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			want.Write(b)
			var n int
			var err error
			switch r.IntN(4) {
			case 0:
				n, err = p.WriteString(string(b))
			case 1:
				for _, c := range b {
					if err = p.WriteByte(c); err != nil {
						break
					}
				}
				n = len(b)
			default:
				n, err = p.Write(b)
			}
			if err != nil || n != len(b) {
				t.Fatalf("write of %d: %d, %v", len(b), n, err)
			}
		}
		if _, err := p.WriteRune('ü'); err != nil {
			t.Fatal(err)
		}
		want.WriteRune('ü')
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if !bytes.Equal(rec.buf.Bytes(), want.Bytes()) {
			t.Fatalf("%d bytes: got %d different bytes", want.Len(), rec.buf.Len())
		}
		for i, n := range rec.writes {
			if n != pipeChunk && i != len(rec.writes)-1 {
				t.Fatalf("%d bytes: write %d of %d bytes, want whole chunks: %v", want.Len(), i, n, rec.writes)
			}
		}
		if p.made > pipeChunks-1 {
			t.Errorf("%d chunks allocated, bound %d", p.made+1, pipeChunks)
		}
		if _, err := p.Write([]byte("late")); !errors.Is(err, errPipeClosed) {
			t.Errorf("write after Close: %v", err)
		}
	}
}

// After the writer's first error nothing more reaches it, the producer
// gets that very error from its next writes and from Close, never blocks,
// and no goroutine is left.
func TestChunkPipeWriteError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	gone := errors.New("connection reset by peer")
	for _, fail := range []int{1, pipeChunk, 3*pipeChunk + 7} {
		rec := &chunkRecorder{fail: fail, err: gone}
		p := newChunkPipe(rec)
		chunk := bytes.Repeat([]byte("x"), 1000)
		var werr error
		for range 50 * pipeChunk / len(chunk) {
			if _, werr = p.Write(chunk); werr != nil {
				break
			}
		}
		if werr != gone {
			t.Errorf("fail at %d: the producer's writes returned %v, want the writer's error", fail, werr)
		}
		if err := p.Close(); err != gone {
			t.Errorf("fail at %d: Close returned %v", fail, err)
		}
		if _, err := p.Write(nil); err != gone {
			t.Errorf("fail at %d: Write after Close returned %v", fail, err)
		}
		failed := 0
		for _, n := range rec.writes {
			if n < 0 {
				failed++
			}
		}
		if failed != 1 || rec.writes[len(rec.writes)-1] >= 0 {
			t.Errorf("fail at %d: writes %v: nothing may follow the failed one", fail, rec.writes)
		}
	}
}

// A writer that blocks holds the producer after pipeChunks chunks (memory
// stays bounded); once it resumes, everything arrives.
func TestChunkPipeSlowWriter(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	release := make(chan struct{})
	var rec chunkRecorder
	blocked := writerFunc(func(b []byte) (int, error) {
		<-release
		return rec.Write(b)
	})
	p := newChunkPipe(blocked)
	var accepted atomic.Int64 // whole writes returned
	written := make(chan int)
	go func() {
		n := 0
		for range 20 {
			k, _ := p.Write(make([]byte, pipeChunk))
			n += k
			accepted.Add(1)
		}
		written <- n
	}()
	time.Sleep(200 * time.Millisecond)
	// The writer holds one chunk, the channel the others; the producer
	// waits for a free one in its next write.
	if n := accepted.Load(); n > pipeChunks {
		t.Fatalf("%d chunks went into a pipe whose writer never returned, bound %d", n, pipeChunks)
	}
	close(release)
	if n := <-written; n != 20*pipeChunk {
		t.Fatalf("wrote %d", n)
	}
	if err := p.Close(); err != nil || rec.buf.Len() != 20*pipeChunk {
		t.Fatalf("Close: %v, %d bytes arrived", err, rec.buf.Len())
	}
	if p.made > pipeChunks-1 {
		t.Errorf("%d chunks allocated, bound %d", p.made+1, pipeChunks)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// A gzip answer whose client hangs up (at once, midway) or whose encoding
// panics leaves no goroutine behind, and the hang-up is one logged error.
func TestExposerGzipNoLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	self := staticSelf(t)
	s, logs := testServer(t, self)
	scrape := recorded{}
	d := prometheus.NewDesc("rocketmq_many", "h", []string{"i"}, nil)
	for i := range 50000 {
		scrape = append(scrape, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(i), strings.Repeat("x", i%50)+string(rune(i))))
	}
	for _, limit := range []int{0, 10, 100_000} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		w := &brokenWriter{header: http.Header{}, limit: limit}
		s.expose.serve(w, req, scrape, self)
		got := logs.take()
		if len(got) != 1 || !strings.Contains(got[0], "error encoding and sending metric family") || !strings.Contains(got[0], "connection reset") {
			t.Errorf("gone after %d bytes: logs %q, want one encoding error", limit, got)
		}
		if w.header.Get("Content-Encoding") != "gzip" {
			t.Errorf("gone after %d bytes: not a gzip answer", limit)
		}
	}
	// A panic on the handler's goroutine while the pipe is open (expfmt
	// on a malformed self-metric) still ends the pipe's goroutine.
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Error("no panic")
			}
		}()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		s.expose.serve(httptest.NewRecorder(), req, scrape, malformedSelf{})
	}()
}

// malformedSelf gathers a family with a nil metric, which expfmt cannot
// write.
type malformedSelf struct{}

func (malformedSelf) Gather() ([]*dto.MetricFamily, error) {
	name := "go_malformed"
	return []*dto.MetricFamily{{Name: &name, Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{nil}}}, nil
}
