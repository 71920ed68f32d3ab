package rocketmq

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one connection to a peer, shared by all concurrent callers.
// Requests are matched to responses by opaque, never by order: brokers answer
// from per-code thread pools (PROTOCOL.md §1.4).
type conn struct {
	addr     string
	nc       net.Conn
	maxFrame int
	log      *slog.Logger
	onClose  func(*conn) // removes the conn from its pool

	// wsem admits one writer at a time. It is a channel rather than a mutex
	// so that a caller waiting for its turn still honours its context.
	wsem chan struct{}

	mu      sync.Mutex
	pending map[int32]chan *Command
	err     error // why the conn closed; set once, before done is closed

	done chan struct{}

	lastRead atomic.Int64 // UnixNano of the last frame read
	lastUsed atomic.Int64 // UnixNano of the last frame read or written
}

func newConn(addr string, nc net.Conn, maxFrame int, log *slog.Logger, onClose func(*conn)) *conn {
	c := &conn{
		addr: addr, nc: nc, maxFrame: maxFrame, log: log, onClose: onClose,
		wsem:    make(chan struct{}, 1),
		pending: make(map[int32]chan *Command),
		done:    make(chan struct{}),
	}
	c.lastUsed.Store(time.Now().UnixNano())
	return c
}

// readLoop delivers responses to their waiters until the connection fails or
// is closed; closing the net.Conn is what ends it.
func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 32<<10)
	for {
		cmd, err := ReadFrame(br, c.maxFrame)
		if err != nil {
			c.close(err)
			return
		}
		now := time.Now().UnixNano()
		c.lastRead.Store(now)
		c.lastUsed.Store(now)
		if !cmd.IsResponse() {
			// A server->client request (consumer running info, notify ids
			// changed…). We registered as nothing, so there is nothing to say.
			c.log.Debug("ignoring server-initiated request", "addr", c.addr, "code", cmd.Code, "opaque", cmd.Opaque)
			continue
		}
		c.mu.Lock()
		ch := c.pending[cmd.Opaque]
		delete(c.pending, cmd.Opaque)
		c.mu.Unlock()
		if ch == nil {
			// The waiter gave up, or the answer is to a oneway request.
			c.log.Debug("dropping response nobody waits for", "addr", c.addr, "code", cmd.Code, "opaque", cmd.Opaque)
			continue
		}
		ch <- cmd // buffered, and each opaque is delivered at most once
	}
}

// close shuts the connection down for good and fails every waiter with cause.
// Only the first call has an effect.
func (c *conn) close(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = connError(c.addr, cause)
	c.pending = nil
	close(c.done)
	c.mu.Unlock()
	c.nc.Close()
	c.log.Debug("connection closed", "addr", c.addr, "reason", c.err)
	c.onClose(c)
}

// connError explains why a connection ended. The cause stays wrapped so
// callers can still test for io.EOF, *FrameError or ErrClientClosed.
func connError(addr string, cause error) error {
	switch {
	case errors.Is(cause, ErrClientClosed), errors.Is(cause, errIdle):
		return cause
	case errors.Is(cause, io.EOF):
		return fmt.Errorf("rocketmq: connection to %s closed by peer: %w", addr, cause)
	default:
		return fmt.Errorf("rocketmq: connection to %s broken: %w", addr, cause)
	}
}

func (c *conn) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// state reports whether the connection is closed, or idle: nothing sent or
// received since cutoff and no request in flight.
func (c *conn) state(cutoff time.Time) (closed, idle bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return true, false
	}
	return false, len(c.pending) == 0 && c.lastUsed.Load() < cutoff.UnixNano()
}

func (c *conn) register(opaque int32) (chan *Command, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	if _, dup := c.pending[opaque]; dup {
		// Only possible after 2^32 requests with one of them still waiting.
		return nil, fmt.Errorf("rocketmq: opaque %d already in flight on %s", opaque, c.addr)
	}
	ch := make(chan *Command, 1)
	c.pending[opaque] = ch
	return ch, nil
}

// unregister forgets a waiter and returns how many are left.
func (c *conn) unregister(opaque int32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, opaque)
	return len(c.pending)
}

// write sends one whole frame. Any failure closes the connection, since a
// partly written frame desynchronises the stream. written reports whether any
// byte may have reached the peer, i.e. whether resending could duplicate the
// request.
func (c *conn) write(ctx context.Context, frame []byte) (written bool, err error) {
	select {
	case c.wsem <- struct{}{}:
	case <-c.done:
		return false, c.closedErr()
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-c.wsem }()
	if err := c.closedErr(); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil { // select picks at random among ready cases
		return false, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetWriteDeadline(dl)
	} else {
		c.nc.SetWriteDeadline(time.Time{})
	}
	// A cancelled (rather than expired) context must interrupt a write
	// blocked on a full socket buffer too.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.nc.SetWriteDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	n, err := c.nc.Write(frame)
	if !stop() {
		// Let the interruption finish before the next writer sets its own
		// deadline.
		<-interrupted
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			// Our only write deadline is the context's, whose own timer
			// may not have fired yet.
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
		c.close(fmt.Errorf("write: %w", err))
		if n > 0 {
			return true, c.closedErr()
		}
		return false, c.closedErr()
	}
	c.lastUsed.Store(time.Now().UnixNano())
	return true, nil
}

// roundTrip writes frame and, unless oneway, waits for the response with the
// given opaque.
func (c *conn) roundTrip(ctx context.Context, code int, opaque int32, frame []byte, oneway bool) (resp *Command, written bool, err error) {
	var ch chan *Command
	if !oneway {
		if ch, err = c.register(opaque); err != nil {
			return nil, false, err
		}
	}
	written, err = c.write(ctx, frame)
	if err != nil {
		if ch != nil {
			c.unregister(opaque)
		}
		if !written && err == ctx.Err() {
			err = fmt.Errorf("rocketmq: %s: request %d not sent: %w", c.addr, code, err)
		}
		return nil, written, err
	}
	if oneway {
		return nil, true, nil
	}
	sent := time.Now().UnixNano()
	select {
	case resp = <-ch:
		return resp, true, nil
	case <-c.done:
		select {
		case resp = <-ch:
			return resp, true, nil
		default:
		}
		return nil, true, c.closedErr()
	case <-ctx.Done():
		left := c.unregister(opaque)
		select {
		case resp = <-ch: // answered while we were giving up
			return resp, true, nil
		default:
		}
		if left == 0 && c.lastRead.Load() < sent {
			// Not a single frame since our request and nobody else waiting:
			// the peer may be gone without a FIN/RST (dead host, dropped
			// route). Redialling costs little; keeping a black hole in the
			// pool would fail every later request the same way. The 4.9
			// NameServer, which ignores unknown codes, only costs a redial.
			c.close(fmt.Errorf("no frame received since request %d (opaque %d) was sent", code, opaque))
		}
		return nil, true, fmt.Errorf("rocketmq: %s: no answer to request %d (opaque %d): %w", c.addr, code, opaque, ctx.Err())
	}
}
