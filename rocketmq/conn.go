package rocketmq

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one connection to a peer, shared by all concurrent callers.
// Requests are matched to responses by opaque, never by order: brokers answer
// from per-code thread pools (PROTOCOL.md §1.4).
//
// Frames are written by one goroutine per connection (writeLoop) in group
// commit: callers queue their frames and wait for their answer, and the
// writer sends everything queued since its last write in one Write. Under
// load this turns tens of write syscalls, each running the kernel's TCP path,
// into one; alone, a request costs the writer's wake-up.
type conn struct {
	addr     string
	nc       net.Conn
	maxFrame int
	frames   *framePool // response buffers; nil: none pooled
	log      *slog.Logger
	onClose  func(*conn) // removes the conn from its pool

	mu      sync.Mutex
	pending map[int32]*call // by opaque: the calls waiting for an answer
	err     error           // why the conn closed; set once, before done is closed
	queue   []*call         // frames waiting for the writer, in order
	// writerBusy is set from the moment a frame is queued for an idle
	// writer until the writer finds the queue empty again: only the caller
	// that sets it wakes the writer.
	writerBusy bool
	// writing is set while a write is in progress; writeSeq numbers the
	// writes.
	writing  bool
	writeSeq uint64
	// cutTimer, when set, will cut the write in progress short (see
	// giveUp); interruptErr is the context error of the caller that did.
	cutTimer     *time.Timer
	interruptErr error
	writeGrace   time.Duration
	// written is broadcast (with mu) when a write ends and its calls have
	// their outcome.
	written sync.Cond

	wake chan struct{} // one token: the writer has frames to write
	done chan struct{}

	lastRead atomic.Int64 // UnixNano of the last frame read
	lastUsed atomic.Int64 // UnixNano of the last frame read or written
}

// call is one request from the moment it is queued until it is answered or
// given up on.
type call struct {
	frame  []byte
	oneway bool
	// ready gets a token when answer is set, or once a oneway frame is
	// written. (A channel of struct{} is one allocation; one of pointers
	// is two.)
	ready  chan struct{}
	answer *Command

	// Guarded by conn.mu.
	state   callState
	partial bool  // a failed write took some bytes of this frame
	sentAt  int64 // UnixNano when the write carrying the frame ended
}

type callState uint8

const (
	callQueued callState = iota
	callWriting
	callWritten
	callFailed
)

// mayHaveReached reports whether any byte of the frame may have reached the
// peer, i.e. whether resending it could duplicate the request. It must be
// called with mu held and the call not in callWriting.
func (cl *call) mayHaveReached() bool {
	return cl.state == callWritten || cl.state == callFailed && cl.partial
}

func newConn(addr string, nc net.Conn, maxFrame int, frames *framePool, log *slog.Logger, onClose func(*conn)) *conn {
	c := &conn{
		addr: addr, nc: nc, maxFrame: maxFrame, frames: frames, log: log, onClose: onClose,
		pending:    make(map[int32]*call),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		writeGrace: writeGrace,
	}
	c.written.L = &c.mu
	c.lastUsed.Store(time.Now().UnixNano())
	return c
}

// readLoop delivers responses to their waiters until the connection fails or
// is closed; closing the net.Conn is what ends it.
func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 32<<10)
	for {
		cmd, err := readFrame(br, c.maxFrame, c.frames)
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
			cmd.release()
			continue
		}
		c.mu.Lock()
		cl := c.pending[cmd.Opaque]
		delete(c.pending, cmd.Opaque)
		c.mu.Unlock()
		if cl == nil {
			// The waiter gave up, or the answer is to a oneway request.
			c.log.Debug("dropping response nobody waits for", "addr", c.addr, "code", cmd.Code, "opaque", cmd.Opaque)
			cmd.release()
			continue
		}
		cl.answer = cmd
		cl.ready <- struct{}{} // buffered, and each opaque is delivered at most once
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
	return false, len(c.pending) == 0 && !c.writerBusy && c.lastUsed.Load() < cutoff.UnixNano()
}

// unregister forgets a waiter and returns how many are left.
func (c *conn) unregister(opaque int32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, opaque)
	return len(c.pending)
}

// enqueue registers cl (unless oneway) and queues its frame for the writer.
func (c *conn) enqueue(opaque int32, cl *call) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	if !cl.oneway {
		if _, dup := c.pending[opaque]; dup {
			c.mu.Unlock()
			// Only possible after 2^32 requests with one of them still waiting.
			return fmt.Errorf("rocketmq: opaque %d already in flight on %s", opaque, c.addr)
		}
		c.pending[opaque] = cl
	}
	c.queue = append(c.queue, cl)
	wake := !c.writerBusy
	c.writerBusy = true
	c.mu.Unlock()
	if wake {
		select {
		case c.wake <- struct{}{}:
		default: // cannot happen: only the caller that set writerBusy sends
		}
	}
	return nil
}

// writeLoop writes the queued frames until the connection closes. Any write
// failure closes the connection, since a partly written frame desynchronises
// the stream.
func (c *conn) writeLoop() {
	var (
		batch []*call
		buf   []byte
	)
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		for {
			// Let the goroutines that are runnable (typically callers just
			// handed their answers by readLoop) queue their next frames
			// before this write: it then carries them all.
			runtime.Gosched()
			c.mu.Lock()
			if c.err != nil || len(c.queue) == 0 {
				c.writerBusy = false
				c.mu.Unlock()
				break
			}
			batch = append(batch[:0], c.queue...)
			clear(c.queue)
			c.queue = c.queue[:0]
			for _, cl := range batch {
				cl.state = callWriting
			}
			c.writing = true
			c.writeSeq++
			c.mu.Unlock()

			data := batch[0].frame
			if len(batch) > 1 {
				buf = buf[:0]
				for _, cl := range batch {
					buf = append(buf, cl.frame...)
				}
				data = buf
			}
			n, err := c.nc.Write(data)
			if err != nil {
				c.mu.Lock()
				if c.interruptErr != nil {
					err = fmt.Errorf("%w (%w)", c.interruptErr, err)
				}
				c.mu.Unlock()
				// Closed before the calls learn their outcome, so that a
				// caller who sees the failure finds the conn out of its pool.
				c.close(fmt.Errorf("write: %w", err))
			}
			now := time.Now().UnixNano()
			c.mu.Lock()
			c.writing = false
			if c.cutTimer != nil {
				c.cutTimer.Stop() // if it is already running, it sees writing unset
				c.cutTimer = nil
			}
			if c.interruptErr != nil {
				if err == nil {
					// The write ended before the interruption could
					// take effect: undo it for the next write.
					c.nc.SetWriteDeadline(time.Time{})
				}
				c.interruptErr = nil
			}
			off := 0
			for _, cl := range batch {
				if err == nil {
					cl.state, cl.sentAt = callWritten, now
					if cl.oneway {
						cl.ready <- struct{}{}
					}
				} else {
					cl.state, cl.partial = callFailed, n > off
				}
				off += len(cl.frame)
			}
			c.written.Broadcast()
			c.mu.Unlock()
			clear(batch)
			if cap(buf) > maxKeptWriteBuffer {
				buf = nil
			}
			if err != nil {
				return
			}
			c.lastUsed.Store(now)
		}
	}
}

// maxKeptWriteBuffer bounds the buffer the writer keeps between writes: a
// batch holding a large frame should not pin its size for the life of the
// connection.
const maxKeptWriteBuffer = 256 << 10

// writeGrace is how long a write carrying the frame of a caller who gave up
// may go on before it is cut short. A write that is only under way ends within
// microseconds; one blocked on a full socket buffer does not end at all.
const writeGrace = 20 * time.Millisecond

// settle waits until the write carrying cl, if any, has ended. It must be
// called with mu held. The write ends soon: the connection is closed or the
// write interrupted.
func (c *conn) settle(cl *call) {
	for cl.state == callWriting {
		c.written.Wait()
	}
}

// roundTrip sends frame and, unless oneway, waits for the response with the
// given opaque. written reports whether any byte of the frame may have
// reached the peer, i.e. whether resending could duplicate the request.
func (c *conn) roundTrip(ctx context.Context, code int, opaque int32, frame []byte, oneway bool) (resp *Command, written bool, err error) {
	resp, written, _, err = c.exchange(ctx, code, opaque, newCall(frame, oneway))
	return resp, written, err
}

func newCall(frame []byte, oneway bool) *call {
	return &call{frame: frame, oneway: oneway, ready: make(chan struct{}, 1)}
}

// exchange is roundTrip for a call the caller made (newCall) or reuses. It
// reports with free whether nothing refers to cl or its frame any more, so
// that both may serve another request: only once cl is answered (or, when
// oneway, written) and the writer is through with it. A call answered before
// its frame left (a peer guessing opaques) is not free: the frame is still
// queued.
func (c *conn) exchange(ctx context.Context, code int, opaque int32, cl *call) (resp *Command, written, free bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, false, fmt.Errorf("rocketmq: %s: request %d not sent: %w", c.addr, code, err)
	}
	if err := c.enqueue(opaque, cl); err != nil {
		return nil, false, false, err
	}
	select {
	case <-cl.ready:
		// The reader (or, for a oneway call, the writer) sent the one token
		// as its last use of cl. The writer may still be writing the frame
		// when a peer answers early, or be blocked writing the frames
		// batched after it: the answer is the caller's now, without waiting
		// (that wait would ignore the caller's deadline), and a call still
		// in the writer's hands is simply not reused.
		c.mu.Lock()
		free = cl.state == callWritten || cl.state == callFailed
		c.mu.Unlock()
		return cl.answer, true, free, nil
	case <-c.done:
		select {
		case <-cl.ready:
			return cl.answer, true, false, nil
		default:
		}
		c.mu.Lock()
		c.settle(cl)
		written = cl.mayHaveReached()
		c.mu.Unlock()
		return nil, written, false, c.closedErr()
	case <-ctx.Done():
		resp, written, err = c.giveUp(ctx, code, opaque, cl)
		return resp, written, false, err
	}
}

// giveUp ends a call whose context ended: a queued frame is withdrawn, a
// write carrying it is interrupted (it may be blocked on a full socket
// buffer), and an answer that arrived meanwhile is still taken.
func (c *conn) giveUp(ctx context.Context, code int, opaque int32, cl *call) (*Command, bool, error) {
	c.mu.Lock()
	if cl.state == callQueued {
		if i := slices.Index(c.queue, cl); i >= 0 {
			c.queue = slices.Delete(c.queue, i, i+1)
		}
		delete(c.pending, opaque)
		c.mu.Unlock()
		return nil, false, fmt.Errorf("rocketmq: %s: request %d not sent: %w", c.addr, code, ctx.Err())
	}
	if cl.state == callWriting && c.cutTimer == nil {
		// The write may be blocked on a full socket buffer and must not
		// hold us. But cutting it closes the connection under every other
		// caller, so a write that is merely under way gets the time to end.
		seq, cause := c.writeSeq, ctx.Err()
		c.cutTimer = time.AfterFunc(c.writeGrace, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.writing && c.writeSeq == seq {
				c.interruptErr = cause
				c.nc.SetWriteDeadline(time.Unix(1, 0))
			}
		})
	}
	c.settle(cl)
	if cl.state == callFailed {
		written := cl.partial
		c.mu.Unlock()
		return nil, written, fmt.Errorf("rocketmq: %s: request %d: %w (%w)", c.addr, code, ctx.Err(), c.closedErr())
	}
	sent := cl.sentAt
	c.mu.Unlock()
	if cl.oneway {
		return nil, true, nil // written, which is all a oneway request waits for
	}
	left := c.unregister(opaque)
	select {
	case <-cl.ready: // answered while we were giving up
		return cl.answer, true, nil
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
