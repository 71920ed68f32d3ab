package rocketmq

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeServer is a minimal remoting peer on 127.0.0.1:0. Each accepted
// connection is handed to handle with its 1-based index; everything is closed
// and waited for at the end of the test.
type fakeServer struct {
	ln       net.Listener
	handle   func(nc net.Conn, n int)
	accepted atomic.Int32
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
	closed   bool
}

func startFake(t *testing.T, handle func(nc net.Conn, n int)) *fakeServer {
	return startFakeTLS(t, nil, handle)
}

func startFakeTLS(t *testing.T, cfg *tls.Config, handle func(nc net.Conn, n int)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	s := &fakeServer{ln: ln, handle: handle}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns = append(s.conns, nc)
		s.wg.Add(1)
		s.mu.Unlock()
		n := int(s.accepted.Add(1))
		go func() {
			defer s.wg.Done()
			defer nc.Close()
			s.handle(nc, n)
		}()
	}
}

func (s *fakeServer) close() {
	s.mu.Lock()
	s.closed = true
	for _, nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// serve answers every request with whatever respond returns, in order.
func serve(respond func(req *Command) []*Command) func(net.Conn, int) {
	return func(nc net.Conn, _ int) {
		for {
			req, err := ReadFrame(nc, 0)
			if err != nil {
				return
			}
			for _, out := range respond(req) {
				if writeCmd(nc, out) != nil {
					return
				}
			}
		}
	}
}

func writeCmd(w io.Writer, c *Command) error {
	b, err := EncodeFrame(c)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// echo answers code 0 with the request's extFields and body.
func echo(req *Command) []*Command {
	resp := NewResponse(req, ResponseSuccess, "")
	resp.ExtFields = maps.Clone(req.ExtFields)
	resp.Body = req.Body
	return []*Command{resp}
}

func newTestClient(t *testing.T, opts ClientOptions) *Client {
	t.Helper()
	c := NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond; transport events (a reader seeing EOF) are asynchronous.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInvokeRoundTrip(t *testing.T) {
	var got []*Command
	var mu sync.Mutex
	srv := startFake(t, serve(func(req *Command) []*Command {
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		return echo(req)
	}))
	c := newTestClient(t, ClientOptions{})

	req := NewRequest(CodeGetMaxOffset, map[string]string{"topic": "TopicTest", "queueId": "0"}, []byte("body"))
	reqCopy := *req
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != ResponseSuccess || !resp.IsResponse() || string(resp.Body) != "body" || resp.ExtFields["topic"] != "TopicTest" {
		t.Errorf("response = %+v", resp)
	}
	if req.Opaque != 0 || !maps.Equal(req.ExtFields, reqCopy.ExtFields) {
		t.Errorf("caller's request modified: %+v", req)
	}

	// A header-less request in the binary form, with no language/version.
	bin := &Command{Code: CodeGetBrokerRuntimeInfo, SerializeType: SerializeRocketMQ, Flag: FlagResponse}
	if _, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), bin); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("server saw %d requests", len(got))
	}
	first, second := got[0], got[1]
	if first.Language != LanguageGo || first.Version != DefaultVersion || first.Flag != 0 ||
		first.SerializeType != SerializeJSON || first.Opaque == 0 {
		t.Errorf("first request on the wire = %+v", first)
	}
	if second.SerializeType != SerializeRocketMQ || second.ExtFields != nil || second.Flag != 0 ||
		second.Language != LanguageGo || second.Opaque == first.Opaque {
		t.Errorf("second request on the wire = %+v", second)
	}
	if resp.Opaque != first.Opaque {
		t.Errorf("response opaque %d, request %d", resp.Opaque, first.Opaque)
	}
	if st := c.Stats(); st.Requests != 2 || st.Dials != 1 || st.Errors != 0 || st.OpenConns != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestConcurrentRequestsAnsweredOutOfOrder(t *testing.T) {
	const n = 16
	srv := startFake(t, func(nc net.Conn, _ int) {
		var reqs []*Command
		for len(reqs) < n {
			req, err := ReadFrame(nc, 0)
			if err != nil {
				return
			}
			reqs = append(reqs, req)
		}
		for i := len(reqs) - 1; i >= 0; i-- { // last asked, first answered
			if writeCmd(nc, echo(reqs[i])[0]) != nil {
				return
			}
		}
	})
	c := newTestClient(t, ClientOptions{})
	ctx := ctxTimeout(t, 5*time.Second)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			want := strconv.Itoa(i)
			resp, err := c.Invoke(ctx, srv.addr(), NewRequest(CodeGetMaxOffset, map[string]string{"i": want}, nil))
			if err != nil {
				t.Error(err)
				return
			}
			if resp.ExtFields["i"] != want {
				t.Errorf("request %s got the answer to %s", want, resp.ExtFields["i"])
			}
		})
	}
	wg.Wait()
	if st := c.Stats(); st.Dials != 1 || st.Requests != n || srv.accepted.Load() != 1 {
		t.Errorf("stats = %+v, server connections = %d", st, srv.accepted.Load())
	}
}

func TestOnewayDoesNotWait(t *testing.T) {
	flags := make(chan int, 2)
	srv := startFake(t, serve(func(req *Command) []*Command {
		flags <- req.Flag
		if req.IsOneway() {
			// Some Java error paths answer oneway requests anyway; that
			// answer must be dropped, not given to the next caller.
			return []*Command{NewResponse(req, ResponseSystemBusy, "[REJECTREQUEST]")}
		}
		return echo(req)
	}))
	c := newTestClient(t, ClientOptions{})
	ow := NewRequest(CodeHeartBeat, nil, nil)
	ow.Flag = FlagOneway
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), ow)
	if err != nil || resp != nil {
		t.Fatalf("oneway = %v, %v", resp, err)
	}
	if f := <-flags; f != FlagOneway {
		t.Errorf("flag on the wire = %d", f)
	}
	resp, err = c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
	if err != nil || resp.Code != ResponseSuccess {
		t.Fatalf("after oneway: %+v, %v", resp, err)
	}
}

func TestServerInitiatedFrameIgnored(t *testing.T) {
	srv := startFake(t, serve(func(req *Command) []*Command {
		// A server->client request reusing the caller's opaque, then the
		// real answer.
		push := &Command{Code: CodeGetConsumerRunningInfo, Language: "JAVA", Opaque: req.Opaque, Flag: 0}
		return []*Command{push, NewResponse(req, ResponseSuccess, "answer")}
	}))
	c := newTestClient(t, ClientOptions{})
	for range 3 {
		resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Remark != "answer" || !resp.IsResponse() {
			t.Fatalf("got %+v", resp)
		}
	}
}

func TestBinaryAnswerToJSONRequest(t *testing.T) {
	srv := startFake(t, serve(func(req *Command) []*Command {
		resp := NewResponse(req, ResponseRequestCodeNotSupported, " request type 907 not supported")
		resp.SerializeType = SerializeRocketMQ
		return []*Command{resp}
	}))
	c := newTestClient(t, ClientOptions{})
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerHAStatus, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != ResponseRequestCodeNotSupported || resp.SerializeType != SerializeRocketMQ {
		t.Errorf("got %+v", resp)
	}
}

// silent reads requests and never answers, like a 4.9 NameServer asked an
// unknown code.
func silent(nc net.Conn, _ int) {
	for {
		if _, err := ReadFrame(nc, 0); err != nil {
			return
		}
	}
}

func TestUnansweredRequestHonoursDeadline(t *testing.T) {
	srv := startFake(t, silent)
	c := NewClient(ClientOptions{})
	start := time.Now()
	_, err := c.Invoke(ctxTimeout(t, 150*time.Millisecond), srv.addr(), NewRequest(999, nil, nil))
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), srv.addr()) {
		t.Errorf("error does not name the address: %v", err)
	}
	if elapsed < 150*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("returned after %v", elapsed)
	}
	if st := c.Stats(); st.Errors != 1 || st.Timeouts != 1 || st.Requests != 1 {
		t.Errorf("stats = %+v", st)
	}
	// Nothing at all came back, so the connection is presumed dead and
	// replaced on the next call.
	waitFor(t, "silent connection dropped", func() bool { return c.Stats().OpenConns == 0 })
	c.Invoke(ctxTimeout(t, 50*time.Millisecond), srv.addr(), NewRequest(999, nil, nil))
	if d := c.Stats().Dials; d != 2 {
		t.Errorf("dials = %d, want 2", d)
	}
	c.Close()
	srv.close()
	goleak.VerifyNone(t)
}

func TestRequestTimeoutWithoutContextDeadline(t *testing.T) {
	srv := startFake(t, silent)
	c := NewClient(ClientOptions{RequestTimeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.Invoke(context.Background(), srv.addr(), NewRequest(999, nil, nil))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > 2*time.Second {
		t.Errorf("returned after %v", el)
	}
	c.Close()
	srv.close()
	goleak.VerifyNone(t)
}

// pendingOn returns the opaques waiting on the pooled connection to addr.
func pendingOn(c *Client, addr string) (n int, pooled bool) {
	c.mu.Lock()
	cn := c.conns[addr]
	c.mu.Unlock()
	if cn == nil {
		return 0, false
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return len(cn.pending), true
}

func TestCancelledWaiterRemoved(t *testing.T) {
	srv := startFake(t, func(nc net.Conn, _ int) {
		for {
			req, err := ReadFrame(nc, 0)
			if err != nil {
				return
			}
			if req.Code == CodeGetBrokerRuntimeInfo {
				go func() {
					time.Sleep(300 * time.Millisecond)
					writeCmd(nc, NewResponse(req, ResponseSuccess, "slow"))
				}()
			}
		}
	})
	c := newTestClient(t, ClientOptions{})
	slow := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
		slow <- err
	}()
	waitFor(t, "slow request in flight", func() bool { n, _ := pendingOn(c, srv.addr()); return n == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Invoke(ctx, srv.addr(), NewRequest(999, nil, nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	if n, pooled := pendingOn(c, srv.addr()); n != 1 || !pooled {
		t.Errorf("after cancel: %d waiters, pooled %v; want the slow one only", n, pooled)
	}
	if err := <-slow; err != nil {
		t.Errorf("slow request: %v", err)
	}
	if st := c.Stats(); st.Dials != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestBrokenConnectionFailsWaiters(t *testing.T) {
	valid, _ := EncodeFrame(&Command{Code: 0, Language: "JAVA", Opaque: 1, Flag: FlagResponse, Remark: "some remark"})
	cases := []struct {
		name    string
		maxSize int
		send    []byte
		reset   bool
		isFrame bool
		want    string
	}{
		{name: "reset mid-frame", send: valid[:len(valid)/2], reset: true},
		{name: "closed mid-frame", send: valid[:len(valid)/2], want: "unexpected EOF"},
		{name: "oversized length", maxSize: 4096, send: []byte{0x40, 0, 0, 0, 0, 0, 0}, isFrame: true,
			want: "length 1073741824 exceeds the maximum frame size 4096"},
		{name: "garbage bytes", send: []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), isFrame: true,
			want: "length 1213486160 exceeds"},
		{name: "garbage header", send: []byte("\x00\x00\x00\x0c\x00\x00\x00\x08garbage!"), isFrame: true,
			want: "JSON header"},
		{name: "header longer than frame", send: []byte("\x00\x00\x00\x08\x00\x00\x00\x64{}{}"), isFrame: true,
			want: "header length 100 exceeds frame of 8 bytes"},
		{name: "unknown serialize type", send: []byte("\x00\x00\x00\x06\x05\x00\x00\x02{}"), isFrame: true,
			want: "unknown serialize type 5"},
		{name: "length shorter than a header", send: []byte("\x00\x00\x00\x02\x00\x00"), isFrame: true,
			want: "shorter than the header-length word"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, func(nc net.Conn, n int) {
				if n > 1 { // the redialled connection behaves
					serve(echo)(nc, n)
					return
				}
				if _, err := ReadFrame(nc, 0); err != nil {
					return
				}
				nc.Write(tc.send)
				if tc.reset {
					nc.(*net.TCPConn).SetLinger(0)
					nc.Close()
					return
				}
				if !tc.isFrame {
					nc.Close()
					return
				}
				io.Copy(io.Discard, nc) // the client must be the one to hang up
			})
			c := newTestClient(t, ClientOptions{MaxFrameSize: tc.maxSize})
			start := time.Now()
			_, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
			if err == nil {
				t.Fatal("no error")
			}
			if time.Since(start) > 2*time.Second || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("failure only noticed at the deadline: %v", err)
			}
			if !strings.Contains(err.Error(), srv.addr()) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should name %s and contain %q", err, srv.addr(), tc.want)
			}
			if IsFrameError(err) != tc.isFrame {
				t.Errorf("IsFrameError = %v for %v", !tc.isFrame, err)
			}
			waitFor(t, "broken connection dropped", func() bool { return c.Stats().OpenConns == 0 })
			resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
			if err != nil || resp.Code != ResponseSuccess {
				t.Fatalf("after reconnect: %v, %v", resp, err)
			}
			if st := c.Stats(); st.Dials != 2 || st.Errors != 1 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestMaxFrameSizeBoundary(t *testing.T) {
	const limit = 1024
	srv := startFake(t, serve(func(req *Command) []*Command {
		size, _ := strconv.Atoi(req.ExtFields["size"])
		resp := NewResponse(req, ResponseSuccess, "")
		resp.Language = "GO" // keeps serializeTypeCurrentRPC out of the header
		hdr, _ := EncodeFrame(resp)
		resp.Body = bytes.Repeat([]byte{'x'}, size-(len(hdr)-4))
		return []*Command{resp}
	}))
	c := newTestClient(t, ClientOptions{MaxFrameSize: limit})
	ask := func(size int) error {
		_, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(),
			NewRequest(CodeGetBrokerRuntimeInfo, map[string]string{"size": strconv.Itoa(size)}, nil))
		return err
	}
	if err := ask(limit); err != nil {
		t.Errorf("frame of exactly the limit refused: %v", err)
	}
	if err := ask(limit + 1); !IsFrameError(err) || !strings.Contains(err.Error(), "length 1025 exceeds") {
		t.Errorf("frame over the limit: %v", err)
	}
}

func TestReconnectAfterServerClose(t *testing.T) {
	srv := startFake(t, func(nc net.Conn, _ int) {
		req, err := ReadFrame(nc, 0)
		if err != nil {
			return
		}
		writeCmd(nc, echo(req)[0]) // then hang up, as after 120 s idle
	})
	c := newTestClient(t, ClientOptions{})
	for i := range 3 {
		if _, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		waitFor(t, "closed connection dropped", func() bool { return c.Stats().OpenConns == 0 })
	}
	if st := c.Stats(); st.Dials != 3 || st.Errors != 0 || srv.accepted.Load() != 3 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNoRetryOnceWritten(t *testing.T) {
	var requests atomic.Int32
	srv := startFake(t, func(nc net.Conn, _ int) {
		if _, err := ReadFrame(nc, 0); err == nil {
			requests.Add(1) // read, then hang up without answering
		}
	})
	c := newTestClient(t, ClientOptions{})
	_, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
	if !errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "closed by peer") {
		t.Fatalf("err = %v", err)
	}
	if requests.Load() != 1 || c.Stats().Dials != 1 {
		t.Errorf("request sent %d times over %d dials; a written request must not be resent", requests.Load(), c.Stats().Dials)
	}
}

// faultyConn fails every write: without writing anything, or after a few
// bytes when partial is set.
type faultyConn struct {
	net.Conn
	partial bool
}

func (f *faultyConn) Write(b []byte) (int, error) {
	if f.partial {
		n, _ := f.Conn.Write(b[:3])
		return n, syscall.ECONNRESET
	}
	return 0, syscall.EPIPE
}

func TestRetryWhenRequestNeverWritten(t *testing.T) {
	srv := startFake(t, serve(echo))
	c := newTestClient(t, ClientOptions{})
	var d net.Dialer
	var dials atomic.Int32
	c.dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err == nil && dials.Add(1) == 1 {
			nc = &faultyConn{Conn: nc}
		}
		return nc, err
	}
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
	if err != nil || resp.Code != ResponseSuccess {
		t.Fatalf("%v, %v", resp, err)
	}
	if st := c.Stats(); st.Dials != 2 || st.Requests != 1 || st.Errors != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPartialWriteClosesWithoutRetry(t *testing.T) {
	srv := startFake(t, serve(echo))
	c := newTestClient(t, ClientOptions{})
	var d net.Dialer
	var dials atomic.Int32
	c.dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err == nil && dials.Add(1) == 1 {
			nc = &faultyConn{Conn: nc, partial: true}
		}
		return nc, err
	}
	_, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
	if !errors.Is(err, syscall.ECONNRESET) || !strings.Contains(err.Error(), srv.addr()) {
		t.Fatalf("err = %v", err)
	}
	if st := c.Stats(); st.Dials != 1 || st.OpenConns != 0 {
		t.Errorf("stats = %+v", st)
	}
	if _, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil)); err != nil {
		t.Errorf("after reconnect: %v", err)
	}
}

func TestConcurrentFirstCallsShareOneDial(t *testing.T) {
	srv := startFake(t, serve(echo))
	c := newTestClient(t, ClientOptions{})
	var d net.Dialer
	c.dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		time.Sleep(50 * time.Millisecond) // let every caller pile up
		return d.DialContext(ctx, network, addr)
	}
	ctx := ctxTimeout(t, 5*time.Second)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := c.Invoke(ctx, srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if st := c.Stats(); st.Dials != 1 || srv.accepted.Load() != 1 {
		t.Errorf("stats = %+v, accepted %d", st, srv.accepted.Load())
	}
}

func TestDialBounded(t *testing.T) {
	c := NewClient(ClientOptions{DialTimeout: 100 * time.Millisecond})
	c.dialer = func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done() // a black-holed SYN
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("i/o timeout")}
	}
	var wg sync.WaitGroup
	for range 3 { // waiters on the shared dial fail too, without hanging
		wg.Go(func() {
			start := time.Now()
			_, err := c.Invoke(ctxTimeout(t, 5*time.Second), "192.0.2.1:10911", NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "dial 192.0.2.1:10911") {
				t.Errorf("err = %v", err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("dial took %v", el)
			}
		})
	}
	wg.Wait()
	if d := c.Stats().Dials; d != 1 {
		t.Errorf("dials = %d", d)
	}

	// A real refused dial.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c2 := NewClient(ClientOptions{})
	if _, err := c2.Invoke(ctxTimeout(t, 5*time.Second), addr, NewRequest(CodeGetBrokerRuntimeInfo, nil, nil)); !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), addr) {
		t.Errorf("refused dial: %v", err)
	}
	c.Close()
	c2.Close()
	goleak.VerifyNone(t)
}

func TestIdleConnectionReplaced(t *testing.T) {
	closedByClient := make(chan int, 4)
	srv := startFake(t, func(nc net.Conn, n int) {
		serve(echo)(nc, n)
		closedByClient <- n
	})
	c := newTestClient(t, ClientOptions{IdleTimeout: 50 * time.Millisecond})
	for range 2 {
		if _, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(80 * time.Millisecond)
	}
	if d := c.Stats().Dials; d != 2 {
		t.Errorf("dials = %d, want 2", d)
	}
	select {
	case n := <-closedByClient:
		if n != 1 {
			t.Errorf("connection %d closed", n)
		}
	case <-time.After(5 * time.Second):
		t.Error("idle connection not closed")
	}
}

func TestClose(t *testing.T) {
	srv := startFake(t, silent)
	c := NewClient(ClientOptions{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctxTimeout(t, 10*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
		done <- err
	}()
	waitFor(t, "request in flight", func() bool { n, _ := pendingOn(c, srv.addr()); return n == 1 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClientClosed) {
			t.Errorf("in-flight request: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("in-flight request not failed by Close")
	}
	if _, err := c.Invoke(context.Background(), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil)); !errors.Is(err, ErrClientClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	srv.close()
	goleak.VerifyNone(t)
}

func TestSignedRequestsOnTheWire(t *testing.T) {
	seen := make(chan map[string]string, 2)
	srv := startFake(t, serve(func(req *Command) []*Command {
		seen <- req.ExtFields
		if !VerifySignature("12345678", req.ExtFields, req.Body) {
			return []*Command{NewResponse(req, ResponseSystemError, "Check signature failed")}
		}
		return echo(req)
	}))
	c := newTestClient(t, ClientOptions{Credentials: &Credentials{AccessKey: "rocketmq2", SecretKey: "12345678"}})
	ext := map[string]string{"topic": "TopicTest"}
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetTopicStatsInfo, ext, nil))
	if err != nil || resp.Code != ResponseSuccess {
		t.Fatalf("%+v, %v", resp, err)
	}
	// Same account and content as the recorded get_topic_stats_info fixture.
	if got := <-seen; got["Signature"] != "GeeGoP9mRvDhoVp4PD5omX0prgE=" || got["AccessKey"] != "rocketmq2" || got["topic"] != "TopicTest" {
		t.Errorf("wire ext = %v", got)
	}
	if len(ext) != 1 {
		t.Errorf("caller's ext modified: %v", ext)
	}
	resp, err = c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
	if err != nil || resp.Code != ResponseSuccess {
		t.Fatalf("%+v, %v", resp, err)
	}
	if got := <-seen; len(got) != 2 || got["Signature"] != "Ou1T58RIcyZWaTIwzkhJZWn/Zvs=" {
		t.Errorf("header-less signed request: %v", got)
	}
}

func TestDebugLogNeverLeaksCredentials(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := startFake(t, func(nc net.Conn, n int) {
		serve(func(req *Command) []*Command {
			push := &Command{Code: CodeGetConsumerRunningInfo, Opaque: req.Opaque, ExtFields: req.ExtFields}
			stray := NewResponse(req, 0, "")
			stray.Opaque = -5
			stray.ExtFields = req.ExtFields
			return []*Command{push, stray, echo(req)[0]}
		})(nc, n)
	})
	creds := &Credentials{AccessKey: "rocketmq2", SecretKey: "s3cr3t", SecurityToken: "t0ken"}
	c := NewClient(ClientOptions{Credentials: creds, Logger: logger})
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	out := buf.String()
	if !strings.Contains(out, "ignoring server-initiated request") || !strings.Contains(out, "connected") {
		t.Errorf("expected debug messages missing:\n%s", out)
	}
	for _, secret := range []string{"s3cr3t", "t0ken", resp.ExtFields["Signature"]} {
		if strings.Contains(out, secret) {
			t.Errorf("log reveals %q:\n%s", secret, out)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestInvokeRejectsBadRequests(t *testing.T) {
	c := newTestClient(t, ClientOptions{})
	if _, err := c.Invoke(context.Background(), "127.0.0.1:1", nil); err == nil {
		t.Error("nil request accepted")
	}
	bad := &Command{Code: 1, SerializeType: 7}
	if _, err := c.Invoke(context.Background(), "127.0.0.1:1", bad); err == nil || !strings.Contains(err.Error(), "serialize type 7") {
		t.Errorf("unknown serialize type: %v", err)
	}
	if st := c.Stats(); st.Dials != 0 || st.Errors != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func ExampleClient() {
	c := NewClient(ClientOptions{RequestTimeout: 3 * time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, "127.0.0.1:9876", NewRequest(CodeGetBrokerClusterInfo, nil, nil))
	if err != nil {
		return // transport failure: the peer is down or unreachable
	}
	fmt.Println(resp.Code == ResponseSuccess)
}

func TestCancelledBeforeSending(t *testing.T) {
	srv := startFake(t, serve(echo))
	c := newTestClient(t, ClientOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Invoke(ctx, srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "not sent") {
		t.Errorf("err = %v", err)
	}
	if st := c.Stats(); st.Dials != 0 || st.Requests != 0 || st.Timeouts != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestCancelInterruptsBlockedWrite(t *testing.T) {
	stalled := make(chan struct{})
	srv := startFake(t, func(nc net.Conn, _ int) {
		<-stalled // never reads: the client's socket buffers fill up
	})
	defer close(stalled)
	c := newTestClient(t, ClientOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	// Bigger than the loopback socket buffers of both ends. Built before
	// the clock starts: under -race on a loaded CI machine, allocating and
	// framing 32 MiB alone once took seconds.
	req := NewRequest(CodeGetBrokerRuntimeInfo, nil, make([]byte, 32<<20))
	done := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctx, srv.addr(), req)
		done <- err
	}()
	waitFor(t, "the write to start", func() bool {
		c.mu.Lock()
		cn := c.conns[srv.addr()]
		c.mu.Unlock()
		if cn == nil {
			return false
		}
		cn.mu.Lock()
		defer cn.mu.Unlock()
		return cn.writing && len(cn.pending) == 1
	})
	time.Sleep(50 * time.Millisecond) // now surely blocked on the full buffers
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("blocked write not interrupted 10 s after the cancel")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), srv.addr()) {
		t.Errorf("err = %v", err)
	}
	// The cut comes writeGrace after the cancel; the bound leaves room for
	// a loaded machine but not for a write left to its own (endless) time.
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("blocked write interrupted %v after the cancel", el)
	}
	// Part of the frame left: the stream is unusable and must be dropped.
	if st := c.Stats(); st.OpenConns != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func BenchmarkInvoke(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fakeServer{ln: ln, handle: serve(echo)}
	srv.wg.Add(1)
	go srv.acceptLoop()
	defer srv.close()
	c := NewClient(ClientOptions{})
	defer c.Close()
	req := NewRequest(CodeGetMaxOffset, map[string]string{"topic": "TopicTest", "queueId": "0"}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Invoke(ctx, ln.Addr().String(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if st := c.Stats(); st.Dials != 1 || st.Errors != 0 {
		b.Errorf("stats = %+v", st)
	}
}

func TestWaiterDialsWhenSharedDialOwnerGivesUp(t *testing.T) {
	srv := startFake(t, serve(echo))
	c := newTestClient(t, ClientOptions{})
	var d net.Dialer
	var calls atomic.Int32
	c.dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if calls.Add(1) == 1 {
			<-ctx.Done() // the first dial hangs until its owner gives up
			return nil, ctx.Err()
		}
		return d.DialContext(ctx, network, addr)
	}
	owner := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctxTimeout(t, 100*time.Millisecond), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
		owner <- err
	}()
	waitFor(t, "first dial started", func() bool { return calls.Load() == 1 })
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
	if err != nil || resp.Code != ResponseSuccess {
		t.Errorf("waiter: %v, %v", resp, err)
	}
	if err := <-owner; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("owner: %v", err)
	}
	if st := c.Stats(); st.Dials != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// heldServer is a peer that reads every request at once but answers none
// until open is called, counting the requests it holds unanswered.
type heldServer struct {
	*fakeServer
	gate     chan struct{}
	openOnce sync.Once
	mu       sync.Mutex
	held     int // received, not yet answered
	peak     int
	received int
}

func startHeld(t *testing.T) *heldServer {
	h := &heldServer{gate: make(chan struct{})}
	h.fakeServer = startFake(t, func(nc net.Conn, _ int) {
		var wmu sync.Mutex
		var answers sync.WaitGroup
		defer answers.Wait()
		for {
			req, err := ReadFrame(nc, 0)
			if err != nil {
				return
			}
			h.mu.Lock()
			h.held++
			h.received++
			h.peak = max(h.peak, h.held)
			h.mu.Unlock()
			answers.Go(func() {
				<-h.gate
				h.mu.Lock()
				h.held-- // before the answer leaves, so the next request finds it gone
				h.mu.Unlock()
				wmu.Lock()
				defer wmu.Unlock()
				writeCmd(nc, echo(req)[0])
			})
		}
	})
	// Registered after the server's own cleanup, so it runs first and
	// lets the answering goroutines end.
	t.Cleanup(h.open)
	return h
}

func (h *heldServer) open() { h.openOnce.Do(func() { close(h.gate) }) }

func (h *heldServer) counts() (received, peak int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.received, h.peak
}

func slotCount(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.slots)
}

// One broker runs admin requests on a 16-thread pool: the client never has
// more than MaxInFlightPerAddr requests unanswered on one address, however
// many callers ask, and other addresses are not held up by it.
func TestMaxInFlightPerAddr(t *testing.T) {
	srv := startHeld(t)
	other := startFake(t, serve(echo))
	c := newTestClient(t, ClientOptions{MaxInFlightPerAddr: 3})
	ctx := ctxTimeout(t, 10*time.Second)

	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Invoke(ctx, srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
			errs <- err
		}()
	}
	waitFor(t, "3 requests at the server", func() bool { r, _ := srv.counts(); return r == 3 })
	waitFor(t, "the other 5 waiting for a slot", func() bool { return c.Stats().SlotWaits == n-3 })
	time.Sleep(50 * time.Millisecond)
	if r, _ := srv.counts(); r != 3 {
		t.Fatalf("server received %d requests with 3 unanswered, want 3", r)
	}
	if _, err := c.Invoke(ctxTimeout(t, 2*time.Second), other.addr(), NewRequest(CodeGetBrokerConfig, nil, nil)); err != nil {
		t.Errorf("another address waited behind a busy one: %v", err)
	}

	srv.open()
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if r, peak := srv.counts(); r != n || peak != 3 {
		t.Errorf("server received %d requests, at most %d unanswered; want %d and 3", r, peak, n)
	}
	if st := c.Stats(); st.Requests != n+1 || st.Errors != 0 {
		t.Errorf("stats = %+v", st)
	}
	if k := slotCount(c); k != 0 {
		t.Errorf("%d addresses keep slot state with nothing in flight", k)
	}
}

func TestMaxInFlightDefaultAndUnbounded(t *testing.T) {
	for _, tc := range []struct {
		limit, callers, wantPeak int
	}{
		{0, DefaultMaxInFlightPerAddr + 4, DefaultMaxInFlightPerAddr},
		{-1, DefaultMaxInFlightPerAddr + 4, DefaultMaxInFlightPerAddr + 4},
	} {
		srv := startHeld(t)
		c := newTestClient(t, ClientOptions{MaxInFlightPerAddr: tc.limit})
		ctx := ctxTimeout(t, 10*time.Second)
		var wg sync.WaitGroup
		for range tc.callers {
			wg.Go(func() {
				if _, err := c.Invoke(ctx, srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil)); err != nil {
					t.Error(err)
				}
			})
		}
		waitFor(t, "requests at the server", func() bool { r, _ := srv.counts(); return r == tc.wantPeak })
		time.Sleep(50 * time.Millisecond)
		srv.open()
		wg.Wait()
		if r, peak := srv.counts(); r != tc.callers || peak != tc.wantPeak {
			t.Errorf("MaxInFlightPerAddr %d: %d requests, at most %d unanswered; want %d and %d", tc.limit, r, peak, tc.callers, tc.wantPeak)
		}
	}
}

// Waiting for a slot is part of the request: it ends with the caller's
// context, and the request is then never sent.
func TestMaxInFlightWaitHonoursContext(t *testing.T) {
	srv := startHeld(t)
	c := newTestClient(t, ClientOptions{MaxInFlightPerAddr: 1})
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	firstDone := make(chan error, 1)
	go func() {
		_, err := c.Invoke(first, srv.addr(), NewRequest(CodeGetBrokerRuntimeInfo, nil, nil))
		firstDone <- err
	}()
	waitFor(t, "first request at the server", func() bool { r, _ := srv.counts(); return r == 1 })

	start := time.Now()
	_, err := c.Invoke(ctxTimeout(t, 100*time.Millisecond), srv.addr(), NewRequest(CodeGetBrokerConfig, nil, nil))
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("waiting for a slot returned after %v, want at the 100ms deadline", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not sent") || !strings.Contains(err.Error(), srv.addr()) {
		t.Errorf("err = %v, want a deadline naming the address and saying the request was not sent", err)
	}
	if r, _ := srv.counts(); r != 1 {
		t.Errorf("server received %d requests, want only the first", r)
	}

	cancelFirst()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Errorf("first request: %v, want Canceled", err)
	}
	if st := c.Stats(); st.Timeouts != 2 || st.Requests != 1 || st.SlotWaits != 1 {
		t.Errorf("stats = %+v, want 1 request written, 1 slot wait, 2 timeouts", st)
	}
	if k := slotCount(c); k != 0 {
		t.Errorf("%d addresses keep slot state after every request ended", k)
	}
}
