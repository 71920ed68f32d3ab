package rmqsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// serverMaxFrame mirrors Netty's LengthFieldBasedFrameDecoder(16777216, 0, 4,
// 0, 4): the length prefix plus 4 must not exceed 16 MiB.
const serverMaxFrame = 16777216 - 4

// maxInflightPerConn bounds concurrent requests per connection, like the
// broker's admin thread pool bounds concurrent admin requests.
const maxInflightPerConn = 16

// maxParkedPerConn bounds the long-polling PULL_MESSAGE requests a
// connection may have parked. A real broker parks them outside its thread
// pools (PullRequestHoldService), so they must not use up the slots other
// requests on the same connection need: a consumer holds one pull per queue.
const maxParkedPerConn = 1024

// writeTimeout bounds every answer write, so a client that stops reading
// cannot pin a goroutine.
const writeTimeout = 10 * time.Second

// idleTimeout closes a connection that sends nothing for this long, like the
// servers' serverChannelMaxIdleTimeSeconds (120 s); it also bounds the read
// of a frame that never completes.
const idleTimeout = 120 * time.Second

// handlerFunc answers one request; nil means "no answer at all".
type handlerFunc func(req *rocketmq.Command) *rocketmq.Command

// server is one listening port speaking the remoting protocol. It can be
// stopped and started again on the same address (a node kill and restart).
type server struct {
	name   string
	log    *slog.Logger
	handle handlerFunc
	fault  *faultBox
	// version is stamped on every answer: the server's MQVersion ordinal
	// (0 for a standalone controller).
	version int
	// handleConn, when set, replaces handle and also learns which
	// connection a request came on; connClosed is told when a connection
	// ends. Brokers use them to register clients per connection, as a real
	// broker drops a client's registrations when its channel closes.
	handleConn func(conn uint64, req *rocketmq.Command) *rocketmq.Command
	connClosed func(conn uint64)
	connSeq    atomic.Uint64

	mu   sync.Mutex
	addr string
	cur  *incarnation
}

// incarnation is one start..stop lifetime of a server.
type incarnation struct {
	ln    net.Listener
	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// faultBox holds the fault of a node or NameServer; it is read on every
// request and replaced at any time by tests.
type faultBox struct {
	mu sync.Mutex
	f  Fault
}

func (b *faultBox) get() Fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.f
}

func (b *faultBox) set(f Fault) {
	b.mu.Lock()
	b.f = f
	b.mu.Unlock()
}

func newServer(name, addr string, log *slog.Logger, fault *faultBox, h handlerFunc) *server {
	return &server{name: name, addr: addr, log: log, fault: fault, handle: h}
}

// Addr is the bound address (fixed after the first start).
func (s *server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil
}

// stopping is closed when the current incarnation stops, and already closed
// when the server is not running. A handler that waits (a parked pull) must
// return when it closes: stop waits for every handler of its incarnation.
func (s *server) stopping() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return closedChan
	}
	return s.cur.done
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		return nil
	}
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	// A restart rebinds the same port; the old listener is closed but the
	// kernel may need a moment on busy machines.
	for attempt := 0; attempt < 50; attempt++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("rmqsim: %s: listen %s: %w", s.name, addr, err)
	}
	s.addr = ln.Addr().String()
	inc := &incarnation{ln: ln, done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	s.cur = inc
	inc.wg.Add(1)
	go s.acceptLoop(inc)
	return nil
}

// stop closes the listener and every connection and waits for all the
// goroutines of this incarnation. Callers must not hold the cluster lock:
// request goroutines may be waiting for it.
func (s *server) stop() {
	s.mu.Lock()
	inc := s.cur
	s.cur = nil
	s.mu.Unlock()
	if inc == nil {
		return
	}
	close(inc.done)
	_ = inc.ln.Close()
	inc.mu.Lock()
	for c := range inc.conns {
		_ = c.Close()
	}
	inc.mu.Unlock()
	inc.wg.Wait()
}

func (s *server) acceptLoop(inc *incarnation) {
	defer inc.wg.Done()
	for {
		conn, err := inc.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Debug("accept failed", "server", s.name, "err", err)
			}
			return
		}
		inc.mu.Lock()
		select {
		case <-inc.done:
			inc.mu.Unlock()
			_ = conn.Close()
			return
		default:
		}
		inc.conns[conn] = struct{}{}
		inc.wg.Add(1)
		inc.mu.Unlock()
		go s.serveConn(inc, conn)
	}
}

type connWriter struct {
	mu   sync.Mutex
	conn net.Conn
}

func (w *connWriter) write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := w.conn.Write(b)
	return err
}

func (s *server) serveConn(inc *incarnation, conn net.Conn) {
	defer inc.wg.Done()
	id := s.connSeq.Add(1)
	if s.connClosed != nil {
		defer s.connClosed(id)
	}
	defer func() {
		inc.mu.Lock()
		delete(inc.conns, conn)
		inc.mu.Unlock()
		_ = conn.Close()
	}()
	w := &connWriter{conn: conn}
	sem := make(chan struct{}, maxInflightPerConn)
	parked := make(chan struct{}, maxParkedPerConn)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(idleTimeout))
		req, err := rocketmq.ReadFrame(conn, serverMaxFrame)
		if err != nil {
			// A bad frame makes Netty close the channel without an answer.
			return
		}
		if req.IsResponse() {
			// Nothing is ever requested from clients; stray answers are dropped.
			continue
		}
		f := s.fault.get()
		if f.applies(req.Code) && f.Kind == FaultClose {
			return
		}
		slots := sem
		if req.Code == rocketmq.CodePullMessage {
			slots = parked
		}
		select {
		case slots <- struct{}{}:
		case <-inc.done:
			return
		}
		inc.wg.Add(1)
		go func() {
			defer inc.wg.Done()
			defer func() { <-slots }()
			s.process(inc, w, req, f, id)
		}()
	}
}

func (s *server) process(inc *incarnation, w *connWriter, req *rocketmq.Command, f Fault, conn uint64) {
	if f.applies(req.Code) {
		switch f.Kind {
		case FaultSlow:
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-inc.done:
				t.Stop()
				return
			}
		case FaultNoAnswer:
			return
		case FaultGarbage:
			// A well-formed length prefix around a header word whose
			// serialize type (7) does not exist, then random-looking bytes.
			g := []byte{0, 0, 0, 12, 7, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef, '{', '{', '{', '{'}
			_ = w.write(g)
			return
		case FaultOversizedLength:
			b := binary.BigEndian.AppendUint32(nil, 0x7FFFFFF0)
			b = append(b, 0, 0, 0, 40)
			_ = w.write(b)
			return
		case FaultErrorCode:
			resp := rocketmq.NewResponse(req, f.Code, f.Remark)
			s.send(w, req, resp)
			return
		}
	}
	var resp *rocketmq.Command
	if s.handleConn != nil {
		resp = s.handleConn(conn, req)
	} else {
		resp = s.handle(req)
	}
	if resp == nil || req.IsOneway() {
		return
	}
	if f.applies(req.Code) && f.Kind == FaultResetMidFrame {
		resp.Version = s.version
		frame, err := rocketmq.EncodeFrame(resp)
		if err != nil {
			return
		}
		w.mu.Lock()
		_ = w.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, _ = w.conn.Write(frame[:len(frame)/2])
		if tc, ok := w.conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = w.conn.Close()
		w.mu.Unlock()
		return
	}
	s.send(w, req, resp)
}

func (s *server) send(w *connWriter, req, resp *rocketmq.Command) {
	if req.IsOneway() {
		return
	}
	resp.Version = s.version
	frame, err := rocketmq.EncodeFrame(resp)
	if err != nil {
		s.log.Error("encode answer", "server", s.name, "code", req.Code, "err", err)
		return
	}
	_ = w.write(frame)
}
