package rocketmq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Invoker sends one request to addr and returns the peer's response,
// whatever its code. Only transport failures (dial, TLS, broken or garbled
// connection, deadline) are errors; mapping response codes to errors is the
// caller's business. A oneway request (FlagOneway) returns (nil, nil) once
// written. Invoke must not use req, or the map and body it refers to, after
// it returns, and the response must not share them: callers (Admin) reuse
// them for their next request.
type Invoker interface {
	Invoke(ctx context.Context, addr string, req *Command) (*Command, error)
}

// Defaults of ClientOptions.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	// DefaultIdleTimeout is below the servers' 120 s idle limit
	// (serverChannelMaxIdleTimeSeconds), so we drop a quiet connection before
	// the server does, instead of racing its close with a write.
	DefaultIdleTimeout = 100 * time.Second
	// DefaultMaxInFlightPerAddr is the broker's admin thread pool
	// (adminBrokerThreadPoolNums = 16), which runs every admin request: more
	// in flight would only queue there, behind the broker's own tools, and
	// count against the scrape's deadline all the same.
	DefaultMaxInFlightPerAddr = 16
)

// ErrClientClosed is returned by Invoke after Close.
var ErrClientClosed = errors.New("rocketmq: client closed")

var errIdle = errors.New("rocketmq: connection idle")

// ClientOptions configures a Client. The zero value is usable.
type ClientOptions struct {
	// MaxFrameSize bounds the frames accepted (default DefaultMaxFrameSize).
	MaxFrameSize int
	// DialTimeout bounds each dial, TLS handshake included (default
	// DefaultDialTimeout); an earlier context deadline wins.
	DialTimeout time.Duration
	// RequestTimeout bounds a whole Invoke whose context has no deadline
	// (default DefaultRequestTimeout). A context deadline replaces it.
	RequestTimeout time.Duration
	// IdleTimeout is how long an unused connection is kept (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxInFlightPerAddr bounds the requests to one address that are sent
	// and not yet answered, whoever sends them (default
	// DefaultMaxInFlightPerAddr; negative means no bound). A request beyond
	// it waits, before it is sent, until a slot frees or its context ends.
	// A request given up on frees its slot although the peer may still be
	// working on it: there is no way to know when it stops.
	MaxInFlightPerAddr int
	// TLS, when set, wraps every connection in TLS (see TLSOptions.Config).
	TLS *tls.Config
	// Credentials, when set, ACL-sign every request.
	Credentials *Credentials
	// Logger receives debug messages about connections (default: discard).
	// Extension fields and bodies are never logged: they hold signatures.
	Logger *slog.Logger
}

// ClientStats are cumulative counters of a Client.
type ClientStats struct {
	Requests uint64 // requests written to a connection
	Errors   uint64 // Invoke calls that returned an error
	Timeouts uint64 // of which because the context ended
	Dials    uint64 // connection attempts
	// SlotWaits counts requests that found MaxInFlightPerAddr requests to
	// their address in flight and had to wait before being sent.
	SlotWaits uint64
	OpenConns int // connections currently pooled
}

// Client is an Invoker keeping one multiplexed connection per address,
// dialled on first use and shared by concurrent callers. It is safe for
// concurrent use.
type Client struct {
	opts ClientOptions
	log  *slog.Logger
	// dialer is replaced by tests to inject faults.
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)

	opaque atomic.Int32
	// calls holds request calls and their frame buffers that are free again
	// (conn.exchange): most requests then allocate neither.
	calls sync.Pool
	// frames holds the buffers answers are read into; Admin gives each
	// back once it has decoded the answer.
	frames framePool

	mu      sync.Mutex
	conns   map[string]*conn
	dialing map[string]*dialCall
	// slots holds the in-flight bound of each address that has requests in
	// flight or waiting; an address leaves it with its last request, so it
	// does not grow with every address ever dialled (/probe targets).
	slots   map[string]*addrSlots
	closed  bool
	readers sync.WaitGroup

	requests, errs, timeouts, dials, slotWaits atomic.Uint64
}

// addrSlots is the in-flight bound of one address: a slot is a value in sem.
type addrSlots struct {
	sem chan struct{}
	// users are the requests holding or waiting for a slot (guarded by
	// Client.mu).
	users int
}

// dialCall lets concurrent first callers of an address share one dial.
type dialCall struct {
	done chan struct{}
	err  error
	// ownerGaveUp is set when the dial failed because the context of the
	// caller who ran it ended; other waiters may then dial themselves.
	ownerGaveUp bool
}

var _ Invoker = (*Client)(nil)

// NewClient returns a Client; it dials nothing until the first Invoke.
func NewClient(opts ClientOptions) *Client {
	if opts.MaxFrameSize <= 0 {
		opts.MaxFrameSize = DefaultMaxFrameSize
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxInFlightPerAddr == 0 {
		opts.MaxInFlightPerAddr = DefaultMaxInFlightPerAddr
	}
	if cr := opts.Credentials; cr != nil {
		if cr.AccessKey == "" {
			opts.Credentials = nil
		} else {
			own := *cr // the caller may reuse or clear theirs
			opts.Credentials = &own
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &net.Dialer{} // keep-alive on by default: finds dead idle peers
	return &Client{
		opts: opts, log: log, dialer: d.DialContext,
		conns:   make(map[string]*conn),
		dialing: make(map[string]*dialCall),
		slots:   make(map[string]*addrSlots),
	}
}

// Stats returns the counters so far.
func (c *Client) Stats() ClientStats {
	c.mu.Lock()
	open := len(c.conns)
	c.mu.Unlock()
	return ClientStats{
		Requests: c.requests.Load(), Errors: c.errs.Load(), Timeouts: c.timeouts.Load(),
		Dials: c.dials.Load(), SlotWaits: c.slotWaits.Load(), OpenConns: open,
	}
}

// Close closes every connection, failing requests in flight, and makes later
// calls to Invoke fail with ErrClientClosed. It waits for the connection
// readers to exit.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conns := make([]*conn, 0, len(c.conns))
	for _, cn := range c.conns {
		conns = append(conns, cn)
	}
	c.mu.Unlock()
	for _, cn := range conns {
		cn.close(ErrClientClosed)
	}
	c.readers.Wait()
	return nil
}

// Invoke implements Invoker. It does not modify req: it sends a copy with its
// own opaque, the response flag cleared, language and version defaulted,
// and the ACL signature when the client has Credentials.
func (c *Client) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	resp, err := c.invoke(ctx, addr, req)
	if err != nil {
		c.errs.Add(1)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			c.timeouts.Add(1)
		}
	}
	return resp, err
}

func (c *Client) invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	if req == nil {
		return nil, errors.New("rocketmq: nil request")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rocketmq: %s: request %d not sent: %w", addr, req.Code, err)
	}
	cmd := c.prepare(req)
	cl, _ := c.calls.Get().(*call)
	if cl == nil {
		cl = newCall(nil, false)
	}
	frame, err := appendFrame(cl.frame, &cmd)
	if err != nil {
		return nil, fmt.Errorf("rocketmq: encode request %d: %w", cmd.Code, err)
	}
	cl.frame, cl.oneway = frame, cmd.IsOneway()
	slots, err := c.acquire(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("rocketmq: %s: request %d not sent: %d requests already in flight: %w", addr, cmd.Code, c.opts.MaxInFlightPerAddr, err)
	}
	defer c.release(addr, slots)
	for attempt := 1; ; attempt++ {
		cn, err := c.getConn(ctx, addr)
		if err != nil {
			return nil, err
		}
		resp, written, free, err := cn.exchange(ctx, cmd.Code, cmd.Opaque, cl)
		if written {
			c.requests.Add(1)
		}
		if free {
			c.recycle(cl)
		}
		if err == nil || written || attempt > 1 || ctx.Err() != nil || errors.Is(err, ErrClientClosed) {
			return resp, err
		}
		// The pooled connection died (typically closed by the server) before
		// a byte of this request left: resending cannot duplicate it. The
		// dead connection may still list cl but will never write its frame,
		// so a fresh call carries the same frame.
		c.log.Debug("retrying request on a new connection", "addr", addr, "code", cmd.Code, "reason", err)
		cl = newCall(cl.frame, cl.oneway)
	}
}

// acquire takes one of addr's in-flight slots, waiting for one as long as
// ctx allows. release gives it back; a nil *addrSlots (no bound) is no slot.
func (c *Client) acquire(ctx context.Context, addr string) (*addrSlots, error) {
	if c.opts.MaxInFlightPerAddr < 0 {
		return nil, nil
	}
	c.mu.Lock()
	s := c.slots[addr]
	if s == nil {
		s = &addrSlots{sem: make(chan struct{}, c.opts.MaxInFlightPerAddr)}
		c.slots[addr] = s
	}
	s.users++
	c.mu.Unlock()
	select {
	case s.sem <- struct{}{}:
	default:
		c.slotWaits.Add(1)
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			c.leave(addr, s)
			return nil, ctx.Err()
		}
	}
	return s, nil
}

func (c *Client) release(addr string, s *addrSlots) {
	if s != nil {
		<-s.sem
		c.leave(addr, s)
	}
}

// leave drops a user of s, and s itself with its last user.
func (c *Client) leave(addr string, s *addrSlots) {
	c.mu.Lock()
	if s.users--; s.users == 0 {
		delete(c.slots, addr)
	}
	c.mu.Unlock()
}

// prepare returns the command to send for req. It is returned by value:
// only its frame outlives invoke, so the copy stays on the stack.
func (c *Client) prepare(req *Command) Command {
	cmd := *req
	cmd.Opaque = c.opaque.Add(1)
	cmd.Flag &^= FlagResponse
	if cmd.Language == "" {
		cmd.Language = LanguageGo
	}
	if cmd.Version == 0 {
		cmd.Version = DefaultVersion
	}
	if c.opts.Credentials != nil {
		cmd.ExtFields = c.opts.Credentials.signedExt(req.ExtFields, req.Body)
	}
	return cmd
}

// recycle keeps a call that exchange reported free for another request.
// Frames grown by a large body are left to the collector.
func (c *Client) recycle(cl *call) {
	if cap(cl.frame) > maxPooledRequest {
		return
	}
	*cl = call{frame: cl.frame[:0], ready: cl.ready}
	c.calls.Put(cl)
}

// maxPooledRequest bounds the request frames kept for reuse: admin requests
// are a header of a few hundred bytes.
const maxPooledRequest = 4 << 10

// getConn returns the pooled connection to addr, dialling it if needed. Only
// one dial per address runs at a time; concurrent callers wait for it.
func (c *Client) getConn(ctx context.Context, addr string) (*conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClientClosed
		}
		if cn := c.conns[addr]; cn != nil {
			closed, idle := cn.state(time.Now().Add(-c.opts.IdleTimeout))
			if !closed && !idle {
				c.mu.Unlock()
				return cn, nil
			}
			// A closed conn may linger here until its reader has run forget.
			delete(c.conns, addr)
			c.mu.Unlock()
			if idle {
				cn.close(errIdle)
			}
			continue
		}
		if d := c.dialing[addr]; d != nil {
			c.mu.Unlock()
			select {
			case <-d.done:
			case <-ctx.Done():
				return nil, fmt.Errorf("rocketmq: dial %s: %w", addr, ctx.Err())
			}
			if d.err != nil && !d.ownerGaveUp {
				return nil, d.err
			}
			continue
		}
		d := &dialCall{done: make(chan struct{})}
		c.dialing[addr] = d
		c.mu.Unlock()

		cn, err := c.dial(ctx, addr)

		c.mu.Lock()
		delete(c.dialing, addr)
		if err == nil && c.closed {
			cn.nc.Close()
			cn, err = nil, ErrClientClosed
		}
		if err == nil {
			c.conns[addr] = cn
			c.readers.Add(2)
			go func() {
				defer c.readers.Done()
				cn.readLoop()
			}()
			go func() {
				defer c.readers.Done()
				cn.writeLoop()
			}()
		}
		d.err, d.ownerGaveUp = err, err != nil && ctx.Err() != nil
		close(d.done)
		c.mu.Unlock()
		return cn, err
	}
}

func (c *Client) dial(ctx context.Context, addr string) (*conn, error) {
	c.dials.Add(1)
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	nc, err := c.dialer(dctx, "tcp", addr)
	if err == nil && c.opts.TLS != nil {
		nc, err = tlsClient(dctx, nc, c.opts.TLS, addr)
	}
	if err != nil {
		if ctxErr := dctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			// Make the deadline testable with errors.Is whatever the net
			// package wrapped.
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		}
		c.log.Debug("dial failed", "addr", addr, "err", err)
		return nil, fmt.Errorf("rocketmq: dial %s: %w", addr, err)
	}
	c.log.Debug("connected", "addr", addr, "tls", c.opts.TLS != nil)
	return newConn(addr, nc, c.opts.MaxFrameSize, &c.frames, c.log, c.forget), nil
}

// forget removes a closed connection from the pool so the next Invoke
// redials.
func (c *Client) forget(cn *conn) {
	c.mu.Lock()
	if c.conns[cn.addr] == cn {
		delete(c.conns, cn.addr)
	}
	c.mu.Unlock()
}
