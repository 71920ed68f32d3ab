package canary

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// bodyPrefix starts every probe body; other messages on the topic (other
// exporters' probes, anything a user sent) are recognised and ignored.
const bodyPrefix = "rocketmq_exporter canary v1"

// encodeBody is the probe's payload: who sent it (run), its sequence number
// and the send time, so a consumer needs nothing else to judge it.
func encodeBody(run string, seq uint64, sent time.Time) []byte {
	return fmt.Appendf(nil, "%s run=%s seq=%d sent_ns=%d", bodyPrefix, run, seq, sent.UnixNano())
}

// parseBody reads a probe body; ok is false for anything else.
func parseBody(b []byte) (run string, seq uint64, sent time.Time, ok bool) {
	rest, found := strings.CutPrefix(string(b), bodyPrefix+" ")
	if !found {
		return "", 0, time.Time{}, false
	}
	f := strings.Fields(rest)
	if len(f) != 3 {
		return "", 0, time.Time{}, false
	}
	run, ok1 := strings.CutPrefix(f[0], "run=")
	s, ok2 := strings.CutPrefix(f[1], "seq=")
	ns, ok3 := strings.CutPrefix(f[2], "sent_ns=")
	if !ok1 || !ok2 || !ok3 || run == "" {
		return "", 0, time.Time{}, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return "", 0, time.Time{}, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return "", 0, time.Time{}, false
	}
	return run, seq, time.Unix(0, n), true
}

// pendingProbe is a probe the broker acknowledged and the consumer has not
// seen yet.
type pendingProbe struct {
	broker string
	sent   time.Time // with its monotonic reading: latency survives clock steps
}

// outcome is what became of a probe once it left the pending set.
type outcome uint8

const (
	outcomeSeen outcome = iota + 1
	outcomeLost
)

// brokerState is one broker group's round-trip record.
type brokerState struct {
	lastRoundTrip time.Time // zero: none yet
	lastInRoute   time.Time
}

// ledger is the probe accounting, shared by the prober (sends, expiry) and
// the consumer's callback goroutines. Its lock is never held across a call
// into the client library, so a scrape reading it cannot be blocked by a
// hung client.
type ledger struct {
	run       string
	lostAfter time.Duration
	window    uint64 // how many sequence numbers behind the newest are remembered

	mu      sync.Mutex
	next    uint64
	pending map[uint64]pendingProbe
	done    map[uint64]outcome
	brokers map[string]*brokerState
}

func newLedger(run string, lostAfter time.Duration, window uint64) *ledger {
	return &ledger{
		run: run, lostAfter: lostAfter, window: window,
		pending: make(map[uint64]pendingProbe),
		done:    make(map[uint64]outcome),
		brokers: make(map[string]*brokerState),
	}
}

// nextSeq hands out the sequence number of the next probe.
func (l *ledger) nextSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	return l.next
}

// inRoute records the broker groups the producer could send to now.
func (l *ledger) inRoute(brokers []string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range brokers {
		st := l.brokers[b]
		if st == nil {
			st = &brokerState{}
			l.brokers[b] = st
		}
		st.lastInRoute = now
	}
}

// sent records an acknowledged probe.
func (l *ledger) sent(seq uint64, broker string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.brokers[broker] == nil {
		l.brokers[broker] = &brokerState{lastInRoute: at}
	}
	if _, ok := l.done[seq]; ok {
		// The consumer was faster than the producer's return.
		return
	}
	l.pending[seq] = pendingProbe{broker: broker, sent: at}
}

// receipt is the verdict on one consumed probe of this run.
type receipt struct {
	broker    string
	latency   time.Duration
	duplicate bool
	late      bool // counted lost before it arrived
	observe   bool // latency is meaningful
}

// received judges a consumed probe of this run. The latency comes from the
// monotonic send time when the probe is still pending, else from the wall
// clock time in its body.
func (l *ledger) received(seq uint64, broker string, bodySent, now time.Time) receipt {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.pending[seq]; ok {
		delete(l.pending, seq)
		l.done[seq] = outcomeSeen
		l.roundTrip(p.broker, now)
		return receipt{broker: p.broker, latency: now.Sub(p.sent), observe: true}
	}
	switch l.done[seq] {
	case outcomeSeen:
		return receipt{broker: broker, duplicate: true}
	case outcomeLost:
		l.done[seq] = outcomeSeen
		return receipt{broker: broker, latency: now.Sub(bodySent), late: true, observe: true}
	}
	if seq > l.next || (l.next > l.window && seq <= l.next-l.window) {
		// Beyond what this run sent, or too old to judge.
		return receipt{broker: broker}
	}
	// Consumed before SendSync returned: the send is still being recorded.
	l.done[seq] = outcomeSeen
	l.roundTrip(broker, now)
	return receipt{broker: broker, latency: now.Sub(bodySent), observe: true}
}

func (l *ledger) roundTrip(broker string, now time.Time) {
	st := l.brokers[broker]
	if st == nil {
		st = &brokerState{}
		l.brokers[broker] = st
	}
	st.lastRoundTrip = now
}

// expire moves probes pending for longer than lostAfter to lost and returns
// how many per broker; it also forgets outcomes older than the window and
// broker groups out of the route for longer than forgetAfter (returned, so
// their series go too).
func (l *ledger) expire(now time.Time, forgetAfter time.Duration) (lost map[string]int, forgotten []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lost = map[string]int{}
	for seq, p := range l.pending {
		if now.Sub(p.sent) > l.lostAfter {
			delete(l.pending, seq)
			l.done[seq] = outcomeLost
			lost[p.broker]++
		}
	}
	if l.next > l.window {
		floor := l.next - l.window
		for seq := range l.done {
			if seq <= floor {
				delete(l.done, seq)
			}
		}
	}
	for name, st := range l.brokers {
		if now.Sub(st.lastInRoute) > forgetAfter && !l.hasPending(name) {
			delete(l.brokers, name)
			forgotten = append(forgotten, name)
		}
	}
	return lost, forgotten
}

func (l *ledger) hasPending(broker string) bool {
	for _, p := range l.pending {
		if p.broker == broker {
			return true
		}
	}
	return false
}

// brokerView is what a scrape reads per broker group.
type brokerView struct {
	name          string
	lastRoundTrip time.Time
	pending       int
}

func (l *ledger) view() []brokerView {
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[string]int{}
	for _, p := range l.pending {
		counts[p.broker]++
	}
	out := make([]brokerView, 0, len(l.brokers))
	for name, st := range l.brokers {
		out = append(out, brokerView{name: name, lastRoundTrip: st.lastRoundTrip, pending: counts[name]})
	}
	return out
}
