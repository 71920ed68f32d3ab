package canary

import (
	"testing"
	"time"
)

func TestBodyRoundTrip(t *testing.T) {
	sent := time.Unix(1700000000, 123456789)
	run, seq, at, ok := parseBody(encodeBody("abc123", 42, sent))
	if !ok || run != "abc123" || seq != 42 || !at.Equal(sent) {
		t.Fatalf("parsed %q %d %v %v", run, seq, at, ok)
	}
	for _, bad := range []string{
		"", "hello", bodyPrefix, bodyPrefix + " creating the probe topic",
		bodyPrefix + " run= seq=1 sent_ns=1", bodyPrefix + " run=a seq=x sent_ns=1", bodyPrefix + " run=a seq=1 sent_ns=y",
		bodyPrefix + " run=a seq=1 sent_ns=1 extra", bodyPrefix + " seq=1 run=a sent_ns=1",
	} {
		if _, _, _, ok := parseBody([]byte(bad)); ok {
			t.Errorf("parseBody(%q) accepted", bad)
		}
	}
}

func TestLedgerRoundTripLossLateAndDuplicates(t *testing.T) {
	l := newLedger("r", time.Second, 100)
	t0 := time.Now()
	l.inRoute([]string{"a", "b"}, t0)
	s1, s2, s3 := l.nextSeq(), l.nextSeq(), l.nextSeq()
	l.sent(s1, "a", t0)
	l.sent(s2, "b", t0)
	l.sent(s3, "a", t0)

	r := l.received(s1, "a", t0, t0.Add(30*time.Millisecond))
	if !r.observe || r.duplicate || r.latency != 30*time.Millisecond || r.broker != "a" {
		t.Errorf("first receipt: %+v", r)
	}
	if r := l.received(s1, "a", t0, t0.Add(40*time.Millisecond)); !r.duplicate || r.observe {
		t.Errorf("second receipt: %+v", r)
	}

	lost, _ := l.expire(t0.Add(500*time.Millisecond), time.Hour)
	if len(lost) != 0 {
		t.Errorf("lost before the timeout: %v", lost)
	}
	view := map[string]brokerView{}
	for _, v := range l.view() {
		view[v.name] = v
	}
	if view["a"].pending != 1 || view["b"].pending != 1 || view["a"].lastRoundTrip.IsZero() || !view["b"].lastRoundTrip.IsZero() {
		t.Errorf("view: %+v", view)
	}
	lost, _ = l.expire(t0.Add(2*time.Second), time.Hour)
	if lost["a"] != 1 || lost["b"] != 1 {
		t.Errorf("lost after the timeout: %v", lost)
	}
	// A lost probe arriving later: latency from its body, not a duplicate.
	r = l.received(s2, "b", t0, t0.Add(3*time.Second))
	if !r.late || !r.observe || r.duplicate || r.latency != 3*time.Second {
		t.Errorf("late receipt: %+v", r)
	}
	if r := l.received(s2, "b", t0, t0.Add(4*time.Second)); !r.duplicate {
		t.Errorf("late probe seen again: %+v", r)
	}
}

func TestLedgerReceiptBeforeTheSendReturns(t *testing.T) {
	l := newLedger("r", time.Second, 100)
	t0 := time.Now()
	seq := l.nextSeq()
	r := l.received(seq, "a", t0, t0.Add(5*time.Millisecond))
	if !r.observe || r.duplicate {
		t.Fatalf("early receipt: %+v", r)
	}
	l.sent(seq, "a", t0)
	if lost, _ := l.expire(t0.Add(time.Minute), time.Hour); len(lost) != 0 {
		t.Errorf("a probe seen before its send returned expired as lost: %v", lost)
	}
	// Sequence numbers this run never handed out are ignored.
	if r := l.received(seq+10, "a", t0, t0); r.observe || r.duplicate {
		t.Errorf("unknown sequence: %+v", r)
	}
}

func TestLedgerForgetsOldOutcomesAndVanishedBrokers(t *testing.T) {
	l := newLedger("r", time.Second, 10)
	t0 := time.Now()
	l.inRoute([]string{"a", "gone"}, t0)
	var first uint64
	for i := 0; i < 30; i++ {
		s := l.nextSeq()
		if i == 0 {
			first = s
		}
		l.sent(s, "a", t0)
		l.received(s, "a", t0, t0)
	}
	l.inRoute([]string{"a"}, t0.Add(time.Hour))
	_, forgotten := l.expire(t0.Add(time.Hour), time.Minute)
	if len(forgotten) != 1 || forgotten[0] != "gone" {
		t.Errorf("forgotten: %v", forgotten)
	}
	if len(l.done) > 10 {
		t.Errorf("%d outcomes remembered with a window of 10", len(l.done))
	}
	if r := l.received(first, "a", t0, t0); r.duplicate || r.observe {
		t.Errorf("a sequence number beyond the window: %+v", r)
	}
}
