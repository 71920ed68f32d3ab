// Package proxy is a remoting-protocol proxy for benchmarks. It stands in
// front of every port of a cluster (NameServers, brokers, DLedger ports),
// counts the requests it passes on by code, and rewrites the upstream
// addresses in every answer to its own, so a client that discovers brokers
// through the NameServer (ours or a peer exporter) keeps talking through it.
//
// With Freeze it also remembers each answer and replays it for the same
// request: the cluster then costs nothing but a map lookup, and a benchmark
// measures the exporter rather than the simulation behind it.
package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// Options configures a Proxy.
type Options struct {
	// Freeze replays the first answer to each distinct request.
	Freeze bool
	// Timeout bounds each upstream request (default 30s). A request the
	// upstream does not answer is not answered either.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Proxy is one listener per upstream address.
type Proxy struct {
	opts     Options
	log      *slog.Logger
	upstream *rocketmq.Client
	toProxy  map[string]string
	toUp     map[string]string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	lns    []net.Listener

	connMu sync.Mutex
	conns  map[net.Conn]struct{}

	countMu sync.Mutex
	counts  map[int]int

	cacheMu sync.RWMutex
	cache   map[string]*answer
}

// Start listens on 127.0.0.1 for each upstream address.
func Start(upstreams []string, opts Options) (*Proxy, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		opts: opts, log: log,
		// It forwards the exporter's traffic: the exporter limits itself.
		upstream: rocketmq.NewClient(rocketmq.ClientOptions{MaxInFlightPerAddr: -1}),
		toProxy:  map[string]string{}, toUp: map[string]string{},
		ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, counts: map[int]int{}, cache: map[string]*answer{},
	}
	for _, up := range upstreams {
		if up == "" || p.toProxy[up] != "" {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.Close()
			return nil, err
		}
		p.lns = append(p.lns, ln)
		p.toProxy[up] = ln.Addr().String()
		p.toUp[ln.Addr().String()] = up
	}
	for _, ln := range p.lns {
		up := p.toUp[ln.Addr().String()]
		p.wg.Add(1)
		go p.accept(ln, up)
	}
	return p, nil
}

// Addr is the proxy address standing for upstream ("" if none).
func (p *Proxy) Addr(upstream string) string { return p.toProxy[upstream] }

// Take returns the requests counted by code since the previous Take.
func (p *Proxy) Take() map[int]int {
	p.countMu.Lock()
	defer p.countMu.Unlock()
	out := p.counts
	p.counts = map[int]int{}
	return out
}

// Close stops every listener and connection and waits for them.
func (p *Proxy) Close() {
	p.cancel()
	for _, ln := range p.lns {
		_ = ln.Close()
	}
	p.connMu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.connMu.Unlock()
	p.wg.Wait()
	_ = p.upstream.Close()
}

func (p *Proxy) accept(ln net.Listener, up string) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.connMu.Lock()
		if p.ctx.Err() != nil {
			p.connMu.Unlock()
			_ = c.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.connMu.Unlock()
		go p.serve(c, up)
	}
}

// connOut serialises the answers written to one client connection and
// batches those the reader answers itself. The proxy shares the benchmark
// machine's cores with the exporter it measures, so a replayed answer is
// written piece by piece into the buffer (no frame assembled per answer)
// and the write deadline is set per flush, not per answer.
type connOut struct {
	mu    sync.Mutex
	c     net.Conn
	bw    *bufio.Writer
	armed time.Time // when the write deadline was last set
}

func (o *connOut) write(frame []byte, flush bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.armLocked()
	if _, err := o.bw.Write(frame); err != nil {
		_ = o.c.Close()
		return
	}
	o.flushLocked(flush)
}

func (o *connOut) replay(a *answer, opaque int32, flush bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.armLocked()
	if err := a.writeTo(o.bw, opaque); err != nil {
		_ = o.c.Close()
		return
	}
	o.flushLocked(flush)
}

// armLocked keeps a write deadline 29–30 s ahead of every write, buffered
// ones included (bufio writes through when its buffer fills).
func (o *connOut) armLocked() {
	if now := time.Now(); now.Sub(o.armed) > time.Second {
		_ = o.c.SetWriteDeadline(now.Add(30 * time.Second))
		o.armed = now
	}
}

func (o *connOut) flushLocked(flush bool) {
	if flush {
		if err := o.bw.Flush(); err != nil {
			_ = o.c.Close()
		}
	}
}

func (p *Proxy) serve(c net.Conn, up string) {
	defer p.wg.Done()
	var inflight sync.WaitGroup
	defer func() {
		inflight.Wait()
		p.connMu.Lock()
		delete(p.conns, c)
		p.connMu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReaderSize(c, 64<<10)
	out := &connOut{c: c, bw: bufio.NewWriterSize(c, 64<<10)}
	sem := make(chan struct{}, 64)
	var buf []byte
	for {
		frame, err := readRaw(br, &buf)
		if err != nil {
			return
		}
		// A frozen answer is found from the request's bytes, without
		// decoding it: the proxy shares the machine's cores with the
		// exporter it measures, so its cost per request should be as
		// small as a lookup can make it.
		var key string
		if p.opts.Freeze {
			var opaque int32
			var ok bool
			if key, opaque, ok = rawKey(up, frame); ok {
				if a := p.lookupKey(key); a != nil {
					p.count(a.code)
					out.replay(a, opaque, br.Buffered() == 0)
					continue
				}
			} else {
				key = ""
			}
		}
		// The command may point into frame, whose buffer the next read
		// reuses while the request is still being forwarded.
		req, err := rocketmq.DecodeFrame(bytes.Clone(frame))
		if err != nil {
			return
		}
		if req.IsResponse() {
			continue
		}
		p.count(req.Code)
		p.rewriteRequest(req)
		select {
		case sem <- struct{}{}:
		case <-p.ctx.Done():
			return
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-sem }()
			p.forward(out, up, req, key)
		}()
	}
}

// readRaw reads one frame without its length prefix into *buf, which it
// reuses; the frame is valid until the next call.
func readRaw(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(lenBuf[:]))
	if n < 4 || n > rocketmq.DefaultMaxFrameSize {
		return nil, fmt.Errorf("bad frame length %d", n)
	}
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	frame := (*buf)[:n]
	_, err := io.ReadFull(br, frame)
	return frame, err
}

// rawKey is the cache key of a JSON-header request frame: the upstream, the
// header without the value of its top-level "opaque", and the body; and
// that opaque. ok is false for anything else (binary headers, no opaque
// found), which then goes the decoding way and is not replayed.
func rawKey(up string, frame []byte) (key string, opaque int32, ok bool) {
	word := binary.BigEndian.Uint32(frame[:4])
	hlen := int(word & 0xFFFFFF)
	if byte(word>>24) != rocketmq.SerializeJSON || 4+hlen > len(frame) {
		return "", 0, false
	}
	header, body := frame[4:4+hlen], frame[4+hlen:]
	// A string value cannot hold an unescaped quote, so this finds a key
	// named opaque; extFields values are strings (`"opaque":"`), the
	// top-level one a number.
	const marker = `"opaque":`
	from := 0
	for {
		i := bytes.Index(header[from:], []byte(marker))
		if i < 0 {
			return "", 0, false
		}
		i += from + len(marker)
		j := i
		if j < len(header) && header[j] == '-' {
			j++
		}
		for j < len(header) && header[j] >= '0' && header[j] <= '9' {
			j++
		}
		if j == i || (j == i+1 && header[i] == '-') {
			from = i
			continue
		}
		v, err := strconv.ParseInt(string(header[i:j]), 10, 32)
		if err != nil {
			return "", 0, false
		}
		var b strings.Builder
		b.Grow(len(up) + len(header) + len(body) + 2)
		b.WriteString(up)
		b.WriteByte(0)
		b.Write(header[:i])
		b.Write(header[j:])
		b.WriteByte(0)
		b.Write(body)
		return b.String(), int32(v), true
	}
}

func (p *Proxy) count(code int) {
	p.countMu.Lock()
	p.counts[code]++
	p.countMu.Unlock()
}

func (p *Proxy) forward(out *connOut, up string, req *rocketmq.Command, key string) {
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.Timeout)
	defer cancel()
	fwd := *req
	resp, err := p.upstream.Invoke(ctx, up, &fwd)
	if err != nil || resp == nil || req.IsOneway() {
		if err != nil {
			p.log.Debug("upstream did not answer", "upstream", up, "code", req.Code, "err", err)
		}
		return
	}
	resp.Opaque = req.Opaque
	resp.Flag |= rocketmq.FlagResponse
	resp.Remark = p.rewrite(resp.Remark, p.toProxy)
	for k, v := range resp.ExtFields {
		resp.ExtFields[k] = p.rewrite(v, p.toProxy)
	}
	resp.Body = p.rewriteBytes(resp.Body, p.toProxy)
	a, err := newAnswer(resp)
	if err != nil {
		p.log.Debug("cannot re-encode answer", "code", req.Code, "err", err)
		return
	}
	if p.opts.Freeze && key != "" {
		a.code = req.Code
		p.store(key, a)
	}
	out.write(a.frame(req.Opaque), true)
}

// rewriteRequest maps proxy addresses in a request back to the upstream's,
// should a client quote one.
func (p *Proxy) rewriteRequest(req *rocketmq.Command) {
	for k, v := range req.ExtFields {
		req.ExtFields[k] = p.rewrite(v, p.toUp)
	}
	req.Body = p.rewriteBytes(req.Body, p.toUp)
}

var addrRE = regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d{1,5}`)

func (p *Proxy) rewrite(s string, m map[string]string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return addrRE.ReplaceAllStringFunc(s, func(a string) string {
		if r, ok := m[a]; ok {
			return r
		}
		return a
	})
}

func (p *Proxy) rewriteBytes(b []byte, m map[string]string) []byte {
	if !bytes.Contains(b, []byte(".")) {
		return b
	}
	return addrRE.ReplaceAllFunc(b, func(a []byte) []byte {
		if r, ok := m[string(a)]; ok {
			return []byte(r)
		}
		return a
	})
}

func (p *Proxy) lookupKey(k string) *answer {
	p.cacheMu.RLock()
	defer p.cacheMu.RUnlock()
	return p.cache[k]
}

func (p *Proxy) store(k string, a *answer) {
	if !a.replayable() {
		return
	}
	p.cacheMu.Lock()
	p.cache[k] = a
	p.cacheMu.Unlock()
}

// answer is an encoded response whose opaque is filled in per request: the
// JSON header is kept as the text before and after the opaque's digits.
type answer struct {
	code      int // of the request it answers, counted on replay (oneway requests are never stored)
	serType   byte
	pre, post []byte // JSON header around the opaque value
	header    []byte // binary header (opaque at bytes 5..8)
	body      []byte
}

func newAnswer(resp *rocketmq.Command) (*answer, error) {
	resp.Opaque = 0
	frame, err := rocketmq.EncodeFrame(resp)
	if err != nil {
		return nil, err
	}
	word := binary.BigEndian.Uint32(frame[4:8])
	hlen := int(word & 0xFFFFFF)
	header := frame[8 : 8+hlen]
	a := &answer{serType: byte(word >> 24), body: frame[8+hlen:]}
	if a.serType != rocketmq.SerializeJSON {
		a.header = header
		return a, nil
	}
	const marker = `"opaque":0`
	i := bytes.Index(header, []byte(marker))
	if i < 0 {
		return nil, fmt.Errorf("no opaque in header %q", header)
	}
	a.pre = header[:i+len(marker)-1]
	a.post = header[i+len(marker):]
	return a, nil
}

func (a *answer) replayable() bool { return a.serType == rocketmq.SerializeJSON || len(a.header) >= 9 }

// writeTo writes the frame answering opaque, as frame(opaque) would build it.
func (a *answer) writeTo(w *bufio.Writer, opaque int32) error {
	if a.serType != rocketmq.SerializeJSON {
		_, err := w.Write(a.frame(opaque))
		return err
	}
	var num [12]byte
	digits := strconv.AppendInt(num[:0], int64(opaque), 10)
	hlen := len(a.pre) + len(digits) + len(a.post)
	var pre [8]byte
	binary.BigEndian.PutUint32(pre[0:4], uint32(4+hlen+len(a.body)))
	binary.BigEndian.PutUint32(pre[4:8], uint32(a.serType)<<24|uint32(hlen))
	for _, b := range [][]byte{pre[:], a.pre, digits, a.post, a.body} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (a *answer) frame(opaque int32) []byte {
	var num [12]byte
	header := a.header
	if a.serType == rocketmq.SerializeJSON {
		digits := strconv.AppendInt(num[:0], int64(opaque), 10)
		header = make([]byte, 0, len(a.pre)+len(digits)+len(a.post))
		header = append(append(append(header, a.pre...), digits...), a.post...)
	} else if len(header) >= 9 {
		header = slices.Clone(header)
		binary.BigEndian.PutUint32(header[5:9], uint32(opaque))
	}
	total := 4 + len(header) + len(a.body)
	f := make([]byte, 8, 4+total)
	binary.BigEndian.PutUint32(f[0:4], uint32(total))
	binary.BigEndian.PutUint32(f[4:8], uint32(a.serType)<<24|uint32(len(header)))
	f = append(f, header...)
	return append(f, a.body...)
}
