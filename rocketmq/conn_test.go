package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// gatedConn holds its first Write until gate is closed, and can fail one
// later Write after writing part of it.
type gatedConn struct {
	net.Conn
	gate   chan struct{}
	writes atomic.Int32
	// failWrite, when > 0, is the Write (1-based) that writes failAfter
	// bytes and then fails with ECONNRESET.
	failWrite int32
	failAfter int
}

func (g *gatedConn) Write(b []byte) (int, error) {
	n := g.writes.Add(1)
	if n == 1 {
		<-g.gate
	}
	if n == g.failWrite {
		m, _ := g.Conn.Write(b[:g.failAfter])
		return m, syscall.ECONNRESET
	}
	return g.Conn.Write(b)
}

// pipePeer answers, over one end of a net.Pipe, every request it reads with
// the echo response, and records the opaques in the order they arrived. A
// frame it cannot read ends it, which the test sees as missing answers.
type pipePeer struct {
	mu      sync.Mutex
	opaques []int32
	bad     error
	done    chan struct{}
}

func startPipePeer(nc net.Conn) *pipePeer {
	p := &pipePeer{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			req, err := ReadFrame(nc, 0)
			if err != nil {
				if IsFrameError(err) {
					p.mu.Lock()
					p.bad = err
					p.mu.Unlock()
				}
				return
			}
			p.mu.Lock()
			p.opaques = append(p.opaques, req.Opaque)
			p.mu.Unlock()
			if req.IsOneway() {
				continue
			}
			if writeCmd(nc, echo(req)[0]) != nil {
				return
			}
		}
	}()
	return p
}

func (p *pipePeer) received() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int32(nil), p.opaques...)
}

// pipeConn is a conn over a net.Pipe to a pipePeer, with its reader and
// writer running; the test's end closes both and waits for every goroutine.
func pipeConn(t *testing.T, wrap func(net.Conn) net.Conn) (*conn, *pipePeer) {
	t.Helper()
	client, server := net.Pipe()
	return peerConn(t, wrap(client), server)
}

// tcpConn is pipeConn over loopback TCP, whose writes do not wait for the
// peer to read.
func tcpConn(t *testing.T) (*conn, *pipePeer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	return peerConn(t, client, server)
}

func peerConn(t *testing.T, client, server net.Conn) (*conn, *pipePeer) {
	t.Helper()
	peer := startPipePeer(server)
	closed := make(chan struct{})
	cn := newConn("peer", client, 0, nil, slog.New(slog.DiscardHandler), func(*conn) { close(closed) })
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); cn.readLoop() }()
	go func() { defer wg.Done(); cn.writeLoop() }()
	t.Cleanup(func() {
		cn.close(ErrClientClosed)
		<-closed
		server.Close()
		wg.Wait()
		<-peer.done
	})
	return cn, peer
}

func requestFrame(t testing.TB, opaque int32, body string) []byte {
	t.Helper()
	req := NewRequest(CodeGetMaxOffset, map[string]string{"topic": "T"}, []byte(body))
	req.Opaque = opaque
	b, err := EncodeFrame(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unanswered is a call the peer never answers. Registered, it keeps a conn
// from taking a caller that gives up right after sending for a sign that the
// peer went silent (see giveUp).
func unanswered() *call { return &call{ready: make(chan struct{}, 1), state: callWritten} }

type tripResult struct {
	resp    *Command
	written bool
	err     error
}

func (r tripResult) String() string {
	return fmt.Sprintf("{resp %+v, written %v, err %v}", r.resp, r.written, r.err)
}

func startTrip(ctx context.Context, t testing.TB, cn *conn, opaque int32, body string) chan tripResult {
	frame := requestFrame(t, opaque, body)
	ch := make(chan tripResult, 1)
	go func() {
		resp, written, err := cn.roundTrip(ctx, CodeGetMaxOffset, opaque, frame, false)
		ch <- tripResult{resp, written, err}
	}()
	return ch
}

func queued(cn *conn) int {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return len(cn.queue)
}

// Frames queued while a write is in progress leave together in the next
// Write, whole and each answered to its own caller.
func TestWritesCoalesce(t *testing.T) {
	g := &gatedConn{gate: make(chan struct{})}
	cn, peer := pipeConn(t, func(nc net.Conn) net.Conn { g.Conn = nc; return g })
	ctx := ctxTimeout(t, 10*time.Second)
	const n = 40
	results := make([]chan tripResult, n)
	results[0] = startTrip(ctx, t, cn, 0, "body-0")
	waitFor(t, "the first write to start", func() bool { return g.writes.Load() == 1 })
	for i := 1; i < n; i++ {
		results[i] = startTrip(ctx, t, cn, int32(i), fmt.Sprintf("body-%d", i))
		waitFor(t, "the frame to queue", func() bool { return queued(cn) == i })
	}
	close(g.gate)
	for i, ch := range results {
		r := <-ch
		if r.err != nil || !r.written || r.resp.Opaque != int32(i) || string(r.resp.Body) != fmt.Sprintf("body-%d", i) {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	if w := g.writes.Load(); w != 2 {
		t.Errorf("%d frames took %d writes, want 2", n, w)
	}
	got := peer.received()
	for i, op := range got {
		if op != int32(i) {
			t.Fatalf("peer received opaques %v, want 0..%d in order", got, n-1)
		}
	}
}

// A caller whose frame waits behind a write in progress withdraws it when
// its context ends: not written, never sent, and the connection stays up.
func TestQueuedFrameWithdrawnOnCancel(t *testing.T) {
	g := &gatedConn{gate: make(chan struct{})}
	cn, peer := pipeConn(t, func(nc net.Conn) net.Conn { g.Conn = nc; return g })
	ctx := ctxTimeout(t, 10*time.Second)
	first := startTrip(ctx, t, cn, 1, "first")
	waitFor(t, "the first write to start", func() bool { return g.writes.Load() == 1 })
	cctx, cancel := context.WithCancel(ctx)
	withdrawn := startTrip(cctx, t, cn, 2, "withdrawn")
	waitFor(t, "the second frame to queue", func() bool { return queued(cn) == 1 })
	cancel()
	r := <-withdrawn
	if r.written || !errors.Is(r.err, context.Canceled) || !strings.Contains(r.err.Error(), "not sent") {
		t.Fatalf("withdrawn request: %+v", r)
	}
	if queued(cn) != 0 {
		t.Fatal("the withdrawn frame is still queued")
	}
	close(g.gate)
	if r := <-first; r.err != nil || r.resp.Opaque != 1 {
		t.Fatalf("first request: %+v", r)
	}
	if r := <-startTrip(ctx, t, cn, 3, "third"); r.err != nil || r.resp.Opaque != 3 {
		t.Fatalf("third request: %+v", r)
	}
	if got := peer.received(); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Errorf("peer received opaques %v, want [1 3]", got)
	}
	if n, _ := cn.state(time.Now()); n || cn.unregister(2) != 0 {
		t.Error("connection closed, or the withdrawn call still registered")
	}
}

// A caller giving up while the write carrying its frame is under way (not
// blocked) lets it end: the connection stays up for the other callers.
func TestGiveUpDuringWriteKeepsConnection(t *testing.T) {
	g := &gatedConn{gate: make(chan struct{})}
	cn, _ := pipeConn(t, func(nc net.Conn) net.Conn { g.Conn = nc; return g })
	cn.mu.Lock()
	cn.writeGrace = time.Hour // the gate, not the clock, ends the write
	cn.pending[-1] = unanswered()
	cn.mu.Unlock()
	ctx := ctxTimeout(t, 10*time.Second)
	cctx, cancel := context.WithCancel(ctx)
	first := startTrip(cctx, t, cn, 1, "first")
	waitFor(t, "the first write to start", func() bool { return g.writes.Load() == 1 })
	cancel()
	waitFor(t, "the caller to give up", func() bool {
		cn.mu.Lock()
		defer cn.mu.Unlock()
		return cn.cutTimer != nil
	})
	close(g.gate)
	if r := <-first; !r.written || r.err != nil && !errors.Is(r.err, context.Canceled) {
		t.Fatalf("first request: %+v", r)
	}
	if r := <-startTrip(ctx, t, cn, 2, "second"); r.err != nil || r.resp.Opaque != 2 {
		t.Fatalf("second request: %+v", r)
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err != nil || cn.cutTimer != nil || cn.interruptErr != nil {
		t.Errorf("after the write: err %v, timer %v, interruption %v", cn.err, cn.cutTimer, cn.interruptErr)
	}
}

// A failed write closes the connection and fails every frame it carried;
// each learns truthfully whether some of its bytes may have left.
func TestFailedBatchFailsEveryFrame(t *testing.T) {
	f1, f2 := requestFrame(t, 1, "one"), requestFrame(t, 2, "two")
	g := &gatedConn{gate: make(chan struct{}), failWrite: 2, failAfter: len(f1) + 1}
	cn, _ := pipeConn(t, func(nc net.Conn) net.Conn { g.Conn = nc; return g })
	ctx := ctxTimeout(t, 10*time.Second)
	first := startTrip(ctx, t, cn, 0, "zero")
	waitFor(t, "the first write to start", func() bool { return g.writes.Load() == 1 })
	// Queued one after the other, so the batch is frames 1, 2, 3 in order.
	var batch []chan tripResult
	for i, body := range []string{"one", "two", "three"} {
		batch = append(batch, startTrip(ctx, t, cn, int32(i+1), body))
		waitFor(t, "the frame to queue", func() bool { return queued(cn) == i+1 })
	}
	if len(f2) <= 1 {
		t.Fatal("frame 2 too short")
	}
	close(g.gate)
	// Frame 1 left whole: the peer may even have answered it.
	if r := <-batch[0]; !r.written || r.err != nil && !errors.Is(r.err, syscall.ECONNRESET) || r.err == nil && r.resp.Opaque != 1 {
		t.Errorf("frame 1: %+v, want written and answered or ECONNRESET", r)
	}
	for i, wantWritten := range []bool{true, false} { // one byte, nothing
		r := <-batch[i+1]
		if r.resp != nil || r.written != wantWritten || !errors.Is(r.err, syscall.ECONNRESET) {
			t.Errorf("frame %d: %+v, want written=%v and ECONNRESET", i+2, r, wantWritten)
		}
	}
	if r := <-first; !r.written {
		t.Errorf("frame 0, written before the failure: %+v", r)
	}
	if closed, _ := cn.state(time.Now()); !closed {
		t.Error("connection still open after a failed write")
	}
	if _, _, err := cn.roundTrip(ctx, CodeGetMaxOffset, 9, f1, false); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("request on the failed connection: %v", err)
	}
}

// Cancelling the caller whose frame is stuck in a blocked write cuts the
// write and drops the connection; a frame queued behind it never left, so
// the client resends it on a new connection.
func TestCancelBlockedWriteRetriesQueuedFrame(t *testing.T) {
	stalled := make(chan struct{})
	srv := startFake(t, func(nc net.Conn, n int) {
		if n == 1 {
			<-stalled // never reads: the client's socket buffers fill up
			return
		}
		serve(echo)(nc, n)
	})
	defer close(stalled)
	c := newTestClient(t, ClientOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	big := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctx, srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, make([]byte, 32<<20)))
		big <- err
	}()
	var cn *conn
	waitFor(t, "the big frame's write to start", func() bool {
		c.mu.Lock()
		cn = c.conns[srv.addr()]
		c.mu.Unlock()
		if cn == nil {
			return false
		}
		cn.mu.Lock()
		defer cn.mu.Unlock()
		return cn.writerBusy && len(cn.queue) == 0 && len(cn.pending) == 1
	})
	small := make(chan error, 1)
	go func() {
		resp, err := c.Invoke(ctxTimeout(t, 10*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, []byte("small")))
		if err == nil && string(resp.Body) != "small" {
			err = fmt.Errorf("answer %q", resp.Body)
		}
		small <- err
	}()
	waitFor(t, "the small frame to queue", func() bool { return queued(cn) == 1 })
	cancel()
	if err := <-big; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), srv.addr()) {
		t.Errorf("big request: %v", err)
	}
	if err := <-small; err != nil {
		t.Errorf("small request: %v", err)
	}
	if st := c.Stats(); st.Dials != 2 || st.Requests != 2 || st.OpenConns != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// Many callers with contexts ending at random through one connection: every
// answer goes to its own caller, the peer never sees a torn frame, a request
// reported as not written never reached it, and the connection survives: no
// write is blocked, so none is cut short.
func TestCoalescedWritesUnderChurn(t *testing.T) {
	cn, peer := tcpConn(t)
	cn.mu.Lock()
	cn.pending[-1] = unanswered()
	cn.mu.Unlock()
	const callers, each = 16, 100
	var (
		mu                  sync.Mutex
		unsent              = map[int32]bool{}
		answered, cancelled int
		wg                  sync.WaitGroup
	)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range each {
				opaque := int32(g*each + i + 1)
				body := strings.Repeat("x", rng.IntN(3000))
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(4) == 0 {
					time.AfterFunc(time.Duration(rng.IntN(100))*time.Microsecond, cancel)
				}
				resp, written, err := cn.roundTrip(ctx, CodeGetMaxOffset, opaque, requestFrame(t, opaque, body), false)
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					answered++
					if resp.Opaque != opaque || string(resp.Body) != body {
						t.Errorf("request %d got the answer to %d", opaque, resp.Opaque)
					}
				case !errors.Is(err, context.Canceled):
					t.Errorf("request %d: %v", opaque, err)
				default:
					cancelled++
					if !written {
						unsent[opaque] = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d answered, %d cancelled (%d before being written); connection error: %v", answered, cancelled, len(unsent), cn.closedErr())
	if err := cn.closedErr(); err != nil || answered < callers*each/2 {
		t.Errorf("%d requests answered; connection: %v", answered, err)
	}
	cn.close(ErrClientClosed)
	<-peer.done
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if peer.bad != nil {
		t.Fatalf("peer read a torn frame: %v", peer.bad)
	}
	for _, op := range peer.opaques {
		if unsent[op] {
			t.Errorf("request %d reported as not written reached the peer", op)
		}
	}
}

// A oneway request returns once written, and nothing waits for an answer.
func TestOnewayWrittenThroughQueue(t *testing.T) {
	cn, peer := pipeConn(t, func(nc net.Conn) net.Conn { return nc })
	ctx := ctxTimeout(t, 10*time.Second)
	req := NewRequest(CodeGetMaxOffset, nil, nil)
	req.Opaque, req.Flag = 5, FlagOneway
	frame, err := EncodeFrame(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, written, err := cn.roundTrip(ctx, req.Code, req.Opaque, frame, true)
	if resp != nil || !written || err != nil {
		t.Fatalf("oneway: %v, %v, %v", resp, written, err)
	}
	waitFor(t, "the peer to read it", func() bool { return len(peer.received()) == 1 })
	if n := cn.unregister(0); n != 0 {
		t.Errorf("%d calls waiting after a oneway request", n)
	}
}

func BenchmarkConnRoundTrip(b *testing.B) {
	client, server := net.Pipe()
	peer := startPipePeer(server)
	cn := newConn("pipe", client, 0, nil, slog.New(slog.DiscardHandler), func(*conn) {})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); cn.readLoop() }()
	go func() { defer wg.Done(); cn.writeLoop() }()
	defer func() {
		cn.close(ErrClientClosed)
		server.Close()
		wg.Wait()
		<-peer.done
	}()
	var opaque atomic.Int32
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op := opaque.Add(1)
			if _, _, err := cn.roundTrip(ctx, CodeGetMaxOffset, op, requestFrame(b, op, ""), false); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// blockAfterConn lets its first Write through only when gate1 opens, and
// blocks its second Write after `split` bytes until gate2 opens: a batch
// whose first frame reached the peer while the rest is stuck.
type blockAfterConn struct {
	net.Conn
	n            atomic.Int32
	gate1, gate2 chan struct{}
	split        int
}

func (s *blockAfterConn) Write(b []byte) (int, error) {
	switch s.n.Add(1) {
	case 1:
		<-s.gate1
	case 2:
		m, err := s.Conn.Write(b[:s.split])
		if err != nil {
			return m, err
		}
		<-s.gate2
		m2, err := s.Conn.Write(b[s.split:])
		return m + m2, err
	}
	return s.Conn.Write(b)
}

// A caller whose frame went out and was answered returns its answer even
// though the write that carried it is still blocked on frames batched after
// it: waiting for that write would ignore the caller's deadline.
func TestAnsweredCallerNotHeldByBlockedBatch(t *testing.T) {
	fa := requestFrame(t, 2, "")
	s := &blockAfterConn{gate1: make(chan struct{}), gate2: make(chan struct{}), split: len(fa)}
	cn, _ := pipeConn(t, func(nc net.Conn) net.Conn { s.Conn = nc; return s })
	defer close(s.gate2)
	w := startTrip(context.Background(), t, cn, 1, "")
	for queued(cn) != 0 || s.n.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	ctxA, cancelA := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelA()
	a := startTrip(ctxA, t, cn, 2, "")
	for queued(cn) != 1 {
		time.Sleep(time.Millisecond)
	}
	startTrip(context.Background(), t, cn, 3, "")
	for queued(cn) != 2 {
		time.Sleep(time.Millisecond)
	}
	close(s.gate1)
	<-w
	select {
	case <-a:
	case <-time.After(2 * time.Second):
		t.Error("an answered caller (deadline 200 ms) is still held after 2 s by the write carrying the next frame")
	}
}
