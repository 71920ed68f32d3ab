package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// spanQuery is a QUERY_CONSUME_TIME_SPAN stand-in that counts its calls and
// answers delays computed from store times at the moment it is called.
type spanQuery struct {
	calls atomic.Int32
	now   func() time.Time
	// store is the store time of the message at each queue's consumer offset;
	// a zero time makes the broker's "no message there" answer.
	store map[int]time.Time
	// delay overrides the answer for a queue (ms).
	delay map[int]int64
	err   error
}

func (q *spanQuery) query(context.Context) ([]rocketmq.QueueTimeSpan, error) {
	q.calls.Add(1)
	if q.err != nil {
		return nil, q.err
	}
	var out []rocketmq.QueueTimeSpan
	now := q.now()
	for id, st := range q.store {
		d := now.UnixMilli() - st.UnixMilli()
		if st.IsZero() {
			d = now.UnixMilli() + 1 // the broker's now - (-1)
		}
		if v, ok := q.delay[id]; ok {
			d = v
		}
		out = append(out, rocketmq.QueueTimeSpan{MessageQueue: rocketmq.MessageQueue{Topic: "T", QueueID: id}, DelayTime: d})
	}
	return out, nil
}

func lagReq(queues ...queueOffsets) lagRequest {
	return lagRequest{addr: "10.0.0.1:10911", group: "G", topic: "T", queues: queues}
}

func TestLagCacheNoRequestWhileOffsetsStand(t *testing.T) {
	lc := newLagCache()
	t0 := time.Unix(1_800_000_000, 0)
	now := t0
	q := &spanQuery{now: func() time.Time { return now }, store: map[int]time.Time{
		0: t0.Add(-90 * time.Second),
		1: t0.Add(-30 * time.Second),
	}}
	req := lagReq(queueOffsets{0, 100, 10}, queueOffsets{1, 50, 40})

	res, err := lc.resolve(t.Context(), req, now, q.query)
	if err != nil || !res.Known || res.Seconds != 90 {
		t.Fatalf("first: %+v %v, want 90s", res, err)
	}
	if q.calls.Load() != 1 {
		t.Fatalf("%d queries, want 1", q.calls.Load())
	}

	now = t0.Add(15 * time.Second)
	res, err = lc.resolve(t.Context(), req, now, q.query)
	if err != nil || res.Seconds != 105 {
		t.Errorf("second: %+v %v, want 105s", res, err)
	}
	if q.calls.Load() != 1 {
		t.Errorf("offsets unchanged but queried again (%d calls)", q.calls.Load())
	}

	// Queue 0 moves on: one new request; the age follows its new message.
	now = t0.Add(30 * time.Second)
	q.store[0] = t0.Add(-20 * time.Second)
	req = lagReq(queueOffsets{0, 100, 60}, queueOffsets{1, 50, 40})
	res, err = lc.resolve(t.Context(), req, now, q.query)
	if err != nil || res.Seconds != 60 { // queue 1: 30s before t0, now t0+30s
		t.Errorf("after move: %+v %v, want 60s", res, err)
	}
	if q.calls.Load() != 2 {
		t.Errorf("%d queries after a move, want 2", q.calls.Load())
	}
}

func TestLagCacheCaughtUpNeedsNoRequest(t *testing.T) {
	lc := newLagCache()
	q := &spanQuery{now: time.Now, store: map[int]time.Time{}}
	res, err := lc.resolve(t.Context(), lagReq(queueOffsets{0, 10, 10}, queueOffsets{1, 0, 0}), time.Now(), q.query)
	if err != nil || !res.Known || res.Seconds != 0 {
		t.Errorf("caught up: %+v %v, want known 0", res, err)
	}
	if q.calls.Load() != 0 {
		t.Error("queried a caught-up group")
	}
	// A queue with no offsets at all is caught up too.
	res, _ = lc.resolve(t.Context(), lagReq(), time.Now(), q.query)
	if !res.Known || res.Seconds != 0 {
		t.Errorf("no queues: %+v", res)
	}
}

// The broker's answer for a missing or deleted message is now - (-1), about
// 55 years: unknown, cached as unknown until the offset moves.
func TestLagCacheEpochQuirk(t *testing.T) {
	lc := newLagCache()
	now := time.UnixMilli(1795255725000)
	q := &spanQuery{now: func() time.Time { return now }, store: map[int]time.Time{0: {}, 1: now.Add(-5 * time.Second)}}

	res, err := lc.resolve(t.Context(), lagReq(queueOffsets{0, 100, 0}, queueOffsets{1, 100, 90}), now, q.query)
	if err != nil || !res.Known || res.Seconds != 5 {
		t.Errorf("mixed: %+v %v, want the known queue's 5s", res, err)
	}
	res, err = lc.resolve(t.Context(), lagReq(queueOffsets{0, 100, 0}), now, q.query)
	if err != nil || res.Known {
		t.Errorf("only the quirky queue: %+v %v, want unknown", res, err)
	}
	if q.calls.Load() != 1 {
		t.Errorf("unknown queue re-queried with the same offset (%d calls)", q.calls.Load())
	}
	// Just below the threshold is a real (very old) message.
	q.delay = map[int]int64{0: (maxPlausibleDelay - time.Hour).Milliseconds()}
	res, _ = lc.resolve(t.Context(), lagReq(queueOffsets{0, 100, 1}), now, q.query)
	if !res.Known || res.Seconds < 9*365*24*3600 {
		t.Errorf("9-year-old message: %+v", res)
	}
}

// The consumer caught up between the offsets read and the time span read: 0,
// and nothing cached for an offset we cannot attribute.
func TestLagCacheZeroDelayNotCached(t *testing.T) {
	lc := newLagCache()
	q := &spanQuery{now: time.Now, store: map[int]time.Time{0: time.Now()}, delay: map[int]int64{0: 0}}
	req := lagReq(queueOffsets{0, 100, 99})
	for range 2 {
		res, err := lc.resolve(t.Context(), req, time.Now(), q.query)
		if err != nil || !res.Known || res.Seconds != 0 {
			t.Errorf("%+v %v, want known 0", res, err)
		}
	}
	if q.calls.Load() != 2 || lc.size() != 0 {
		t.Errorf("calls %d, cached %d: want 2 and 0", q.calls.Load(), lc.size())
	}
}

func TestLagCacheQueryFailure(t *testing.T) {
	lc := newLagCache()
	now := time.Unix(1_800_000_000, 0)
	q := &spanQuery{now: func() time.Time { return now }, store: map[int]time.Time{0: now.Add(-time.Minute), 1: now.Add(-time.Second)}}
	// Queue 1 is cached, queue 0 is not.
	if _, err := lc.resolve(t.Context(), lagReq(queueOffsets{1, 10, 5}), now, q.query); err != nil {
		t.Fatal(err)
	}
	q.err = errors.New("boom")
	res, err := lc.resolve(t.Context(), lagReq(queueOffsets{0, 10, 5}, queueOffsets{1, 10, 5}), now, q.query)
	if err == nil || res.Known {
		t.Errorf("%+v %v: a failed query must leave the age unknown, not the cached queue's 1s", res, err)
	}
}

// A queue missing from the answer (queue count changed) is unknown and asked
// again next time.
func TestLagCacheQueueMissingFromAnswer(t *testing.T) {
	lc := newLagCache()
	now := time.Unix(1_800_000_000, 0)
	q := &spanQuery{now: func() time.Time { return now }, store: map[int]time.Time{0: now.Add(-time.Minute)}}
	req := lagReq(queueOffsets{0, 10, 5}, queueOffsets{7, 10, 5})
	res, err := lc.resolve(t.Context(), req, now, q.query)
	if err != nil || res.Seconds != 60 {
		t.Errorf("%+v %v", res, err)
	}
	if _, err := lc.resolve(t.Context(), req, now, q.query); err != nil {
		t.Fatal(err)
	}
	if q.calls.Load() != 2 {
		t.Errorf("%d calls, want 2 (queue 7 still unknown)", q.calls.Load())
	}
}

// The broker's clock does not matter: the age grows with ours from the
// delay it measured.
func TestLagCacheClockSkew(t *testing.T) {
	lc := newLagCache()
	ours := time.Unix(1_800_000_000, 0)
	brokerNow := ours.Add(-time.Hour) // broker an hour behind
	q := &spanQuery{now: func() time.Time { return brokerNow }, store: map[int]time.Time{0: brokerNow.Add(-10 * time.Second)}}
	req := lagReq(queueOffsets{0, 10, 5})
	if res, _ := lc.resolve(t.Context(), req, ours, q.query); res.Seconds != 10 {
		t.Errorf("first: %v, want 10", res.Seconds)
	}
	if res, _ := lc.resolve(t.Context(), req, ours.Add(20*time.Second), q.query); res.Seconds != 30 {
		t.Errorf("later: %v, want 30", res.Seconds)
	}
}

func TestLagCacheSweepAndBound(t *testing.T) {
	lc := newLagCache()
	lc.max = 3
	now := time.Unix(1_800_000_000, 0)
	q := &spanQuery{now: func() time.Time { return now }, store: map[int]time.Time{}}
	for i := range 5 {
		q.store[i] = now.Add(-time.Minute)
	}
	var queues []queueOffsets
	for i := range 5 {
		queues = append(queues, queueOffsets{i, 10, 5})
	}
	if _, err := lc.resolve(t.Context(), lagReq(queues...), now, q.query); err != nil {
		t.Fatal(err)
	}
	if n := lc.size(); n != 3 {
		t.Errorf("cache holds %d entries, bound is 3", n)
	}

	// Entries looked at recently survive the sweep; the others go.
	lc.max = 100
	req := lagReq(queueOffsets{0, 10, 5})
	later := now.Add(lagCacheTTL)
	if _, err := lc.resolve(t.Context(), req, later, q.query); err != nil {
		t.Fatal(err)
	}
	lc.sweep(later.Add(time.Second))
	if n := lc.size(); n != 1 {
		t.Errorf("after sweep %d entries, want 1", n)
	}
}

// Concurrent scrapes share the cache (run with -race).
func TestLagCacheConcurrent(t *testing.T) {
	lc := newLagCache()
	now := time.Unix(1_800_000_000, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			q := &spanQuery{now: func() time.Time { return now }, store: map[int]time.Time{0: now.Add(-time.Second), 1: now.Add(-2 * time.Second)}}
			for i := range 50 {
				req := lagRequest{addr: "a", group: fmt.Sprint("G", g%3), topic: "T", queues: []queueOffsets{{0, 100, int64(i % 4)}, {1, 100, 1}}}
				if _, err := lc.resolve(context.Background(), req, now, q.query); err != nil {
					t.Error(err)
				}
				lc.sweep(now)
			}
		})
	}
	wg.Wait()
}
