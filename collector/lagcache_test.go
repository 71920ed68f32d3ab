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
// answers delays computed from store times at the moment it is called, on
// the broker's clock now.
type spanQuery struct {
	calls atomic.Int32
	now   func() time.Time
	// store is the store time of the message at each queue's consumer offset;
	// a zero time makes the broker's "no message there" answer.
	store map[int]time.Time
	// oldest is the store time of each queue's first stored message
	// (minTimeStamp); absent or zero: the queue stores nothing (-1).
	oldest map[int]time.Time
	// delay overrides the answer for a queue (ms).
	delay map[int]int64
	// onCall runs before the answer is computed (a test advances clocks).
	onCall func()
	err    error
}

func (q *spanQuery) query(context.Context) ([]rocketmq.QueueTimeSpan, error) {
	q.calls.Add(1)
	if q.onCall != nil {
		q.onCall()
	}
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
		minTS := int64(-1)
		if o := q.oldest[id]; !o.IsZero() {
			minTS = o.UnixMilli()
		}
		out = append(out, rocketmq.QueueTimeSpan{MessageQueue: rocketmq.MessageQueue{Topic: "T", QueueID: id}, DelayTime: d, MinTimeStamp: minTS})
	}
	return out, nil
}

// fixedClock is a lag cache clock that the test moves.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// scrapeTimeClock dates every answer before the scrape, i.e. at its start
// (resolve never dates an answer earlier): for tests where only the scrape
// times matter.
func scrapeTimeClock() time.Time { return time.Time{} }

func lagReq(queues ...queueOffsets) lagRequest {
	return lagRequest{addr: "10.0.0.1:10911", group: "G", topic: "T", queues: queues}
}

func TestLagCacheNoRequestWhileOffsetsStand(t *testing.T) {
	lc := newLagCache(scrapeTimeClock)
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
	lc := newLagCache(scrapeTimeClock)
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
// 55 years. The oldest unconsumed message still stored is then the queue's
// first one: its age is the broker's now (delay - 1) - minTimeStamp.
func TestLagCacheDeletedMessageUsesOldestStored(t *testing.T) {
	lc := newLagCache(scrapeTimeClock)
	now := time.UnixMilli(1795255725000)
	q := &spanQuery{now: func() time.Time { return now },
		store:  map[int]time.Time{0: {}, 1: now.Add(-5 * time.Second)},
		oldest: map[int]time.Time{0: now.Add(-200 * time.Second), 1: now.Add(-300 * time.Second)}}

	// Queue 0 is the one furthest behind: its unconsumed messages up to
	// 200s old were partly deleted, the rest are still there.
	res, err := lc.resolve(t.Context(), lagReq(queueOffsets{0, 100, 0}, queueOffsets{1, 100, 90}), now, q.query)
	if err != nil || !res.Known || res.Seconds != 200 {
		t.Errorf("mixed: %+v %v, want 200s from queue 0's oldest stored message", res, err)
	}
	// Just below the threshold is a real (very old) message.
	q.delay = map[int]int64{0: (maxPlausibleDelay - time.Hour).Milliseconds()}
	res, _ = lc.resolve(t.Context(), lagReq(queueOffsets{0, 100, 1}), now, q.query)
	if !res.Known || res.Seconds < 9*365*24*3600 {
		t.Errorf("9-year-old message: %+v", res)
	}
}

// A lagging queue whose age nobody can tell (nothing stored at all, or
// missing from the answer) makes the whole result unknown: a maximum over
// the other queues would hide the one furthest behind.
func TestLagCacheUnknownQueueHidesMax(t *testing.T) {
	now := time.UnixMilli(1795255725000)
	t.Run("nothing stored", func(t *testing.T) {
		lc := newLagCache(scrapeTimeClock)
		q := &spanQuery{now: func() time.Time { return now }, store: map[int]time.Time{0: {}, 1: now.Add(-5 * time.Second)}}
		res, err := lc.resolve(t.Context(), lagReq(queueOffsets{0, 100, 0}, queueOffsets{1, 100, 90}), now, q.query)
		if err != nil || res.Known {
			t.Errorf("%+v %v, want unknown, not queue 1's 5s", res, err)
		}
		// From the cache too, without asking again.
		res, _ = lc.resolve(t.Context(), lagReq(queueOffsets{0, 100, 0}, queueOffsets{1, 100, 90}), now.Add(time.Second), q.query)
		if res.Known || q.calls.Load() != 1 {
			t.Errorf("cached: %+v after %d calls, want unknown after 1", res, q.calls.Load())
		}
		// A caught-up queue is no unknown.
		res, _ = lc.resolve(t.Context(), lagReq(queueOffsets{0, 0, 0}, queueOffsets{1, 100, 90}), now.Add(time.Second), q.query)
		if !res.Known || res.Seconds != 6 {
			t.Errorf("queue 0 caught up: %+v, want 6s", res)
		}
	})
	t.Run("missing from the answer", func(t *testing.T) {
		lc := newLagCache(scrapeTimeClock)
		q := &spanQuery{now: func() time.Time { return now }, store: map[int]time.Time{0: now.Add(-time.Minute)}}
		req := lagReq(queueOffsets{0, 10, 5}, queueOffsets{7, 10, 5})
		res, err := lc.resolve(t.Context(), req, now, q.query)
		if err != nil || res.Known {
			t.Errorf("%+v %v, want unknown (queue 7 not answered)", res, err)
		}
		// Queue 7 is asked again next time; once it is answered the max
		// covers every queue.
		q.store[7] = now.Add(-2 * time.Minute)
		res, err = lc.resolve(t.Context(), req, now, q.query)
		if err != nil || !res.Known || res.Seconds != 120 || q.calls.Load() != 2 {
			t.Errorf("%+v %v after %d calls, want 120s after 2", res, err, q.calls.Load())
		}
	})
}

// Ages taken from the oldest stored message, and unknown ones, go stale while
// the consumer offset stands (retention deletes the head, messages arrive in
// an empty queue): they are asked again after lagFallbackRefresh, exact
// ones never.
func TestLagCacheFallbackRefresh(t *testing.T) {
	lc := newLagCache(scrapeTimeClock)
	now := time.UnixMilli(1795255725000)
	brokerNow := now
	q := &spanQuery{now: func() time.Time { return brokerNow },
		store:  map[int]time.Time{0: {}, 1: now.Add(-10 * time.Second)},
		oldest: map[int]time.Time{0: now.Add(-time.Hour)}}
	exact := lagReq(queueOffsets{1, 100, 90})
	fallback := lagRequest{addr: "10.0.0.1:10911", group: "G", topic: "U", queues: []queueOffsets{{0, 100, 0}}}
	for _, r := range []lagRequest{exact, fallback} {
		if _, err := lc.resolve(t.Context(), r, now, q.query); err != nil {
			t.Fatal(err)
		}
	}
	if q.calls.Load() != 2 {
		t.Fatalf("%d calls, want 2", q.calls.Load())
	}
	later := now.Add(lagFallbackRefresh - time.Second)
	res, _ := lc.resolve(t.Context(), fallback, later, q.query)
	if q.calls.Load() != 2 || res.Seconds != later.Sub(now.Add(-time.Hour)).Seconds() {
		t.Errorf("within the refresh: %+v after %d calls, want the cached age and 2 calls", res, q.calls.Load())
	}
	// Retention deleted the oldest half hour meanwhile.
	later = now.Add(lagFallbackRefresh)
	brokerNow = later
	q.oldest[0] = now.Add(-30 * time.Minute)
	res, _ = lc.resolve(t.Context(), fallback, later, q.query)
	if q.calls.Load() != 3 || res.Seconds != later.Sub(now.Add(-30*time.Minute)).Seconds() {
		t.Errorf("after the refresh: %+v after %d calls, want the new oldest message and 3 calls", res, q.calls.Load())
	}
	if _, err := lc.resolve(t.Context(), exact, later.Add(time.Hour), q.query); err != nil || q.calls.Load() != 3 {
		t.Errorf("an exact age was asked again (%d calls, %v)", q.calls.Load(), err)
	}
}

// The broker measures delayTime when the request runs, which can be seconds
// after the scrape began. The store time is anchored on the answer's arrival,
// and every age is the age at the scrape's reference time, so neither this
// scrape nor later ones from the cache are off by the gap.
func TestLagCacheAnchorsOnArrival(t *testing.T) {
	t0 := time.UnixMilli(1795255725000)
	stored := t0.Add(-60 * time.Second)
	clk := &fixedClock{t: t0}
	lc := newLagCache(clk.Now)
	// Broker and exporter clocks agree; the request runs 5s into the scrape.
	q := &spanQuery{now: clk.Now, store: map[int]time.Time{0: stored}, onCall: func() { clk.Set(t0.Add(5 * time.Second)) }}
	req := lagReq(queueOffsets{0, 100, 10})
	res, err := lc.resolve(t.Context(), req, t0, q.query)
	if err != nil || res.Seconds != 60 {
		t.Errorf("scrape at t0: %+v %v, want 60s (the age at t0, not the 65s measured 5s later)", res, err)
	}
	res, err = lc.resolve(t.Context(), req, t0.Add(30*time.Second), q.query)
	if err != nil || res.Seconds != 90 || q.calls.Load() != 1 {
		t.Errorf("cached at t0+30s: %+v %v after %d calls, want 90s from the cache", res, err, q.calls.Load())
	}
}

// The consumer caught up between the offsets read and the time span read: 0,
// and nothing cached for an offset we cannot attribute.
func TestLagCacheZeroDelayNotCached(t *testing.T) {
	lc := newLagCache(scrapeTimeClock)
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
	lc := newLagCache(scrapeTimeClock)
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

// The broker's clock does not matter: the age grows with ours from the
// delay it measured.
func TestLagCacheClockSkew(t *testing.T) {
	lc := newLagCache(scrapeTimeClock)
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
	lc := newLagCache(scrapeTimeClock)
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
	lc := newLagCache(scrapeTimeClock)
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
