package collector

import (
	"context"
	"sync"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

const (
	// lagCacheTTL drops entries of queues no scrape has asked about for this
	// long: deleted topics and groups, caught-up queues, former masters.
	lagCacheTTL = 15 * time.Minute
	// lagCacheMaxEntries bounds memory whatever the topology; beyond it new
	// queues are simply queried on every scrape.
	lagCacheMaxEntries = 500_000
	// maxPlausibleDelay: QUERY_CONSUME_TIME_SPAN answers delayTime = now - (-1)
	// when the broker has no stored message at the consumer offset (no offset
	// yet, or the message was deleted). Any delay this long is that quirk, not
	// a consumer that is ten years behind.
	maxPlausibleDelay = 10 * 365 * 24 * time.Hour
	// lagFallbackRefresh: an age taken from the queue's oldest stored message
	// (or found unknown) is asked again after this long even if the consumer
	// offset stands still. Retention deletes from the head of the queue and
	// messages may arrive in an empty one, so unlike the store time of the
	// message at a fixed offset, these answers go stale.
	lagFallbackRefresh = 5 * time.Minute
)

// lagKey identifies one queue of one group on one broker node. addr is the
// dialed address (Broker.Addr): two clusters probed through one exporter
// may share every name, never the address the exporter dials.
type lagKey struct {
	addr  string
	group string
	topic string
	queue int
}

// lagEntry is what the broker told us about the oldest unconsumed message of
// one queue while its consumer offset was offset.
type lagEntry struct {
	offset int64
	// storeTime is that message's store time on our clock.
	storeTime time.Time
	known     bool // false: the broker could not tell
	// exact: storeTime is the message at the consumer offset, which cannot
	// change while the offset stands. Otherwise (oldest stored message, or
	// unknown) the entry is refreshed after lagFallbackRefresh.
	exact   bool
	fetched time.Time
	seen    time.Time
}

// lagCache computes the age of the oldest unconsumed message per (broker,
// group, topic) with as few QUERY_CONSUME_TIME_SPAN requests as possible. It
// is shared by all scrapes of one collector, so it locks.
type lagCache struct {
	mu      sync.Mutex
	entries map[lagKey]lagEntry
	ttl     time.Duration
	max     int
	// clock tells when an answer arrived. The broker measures delayTime when
	// it runs the request, which can be well after the scrape began (other
	// stages come first, requests queue behind the concurrency bound), so
	// store times are anchored on the arrival, not on the scrape's start.
	clock func() time.Time
}

func newLagCache(clock func() time.Time) *lagCache {
	if clock == nil {
		clock = time.Now
	}
	return &lagCache{entries: make(map[lagKey]lagEntry), ttl: lagCacheTTL, max: lagCacheMaxEntries, clock: clock}
}

// queueOffsets is one queue's offsets from GET_BROKER_CONSUME_STATS.
type queueOffsets struct {
	queue    int
	broker   int64
	consumer int64
}

// lagRequest is one (broker, group, topic) whose age is wanted.
type lagRequest struct {
	addr, group, topic string
	queues             []queueOffsets
}

// lagResult is the age of the oldest unconsumed message of a lagRequest.
type lagResult struct {
	// Seconds is the maximum age over the queues.
	Seconds float64
	// Known is false when some lagging queue's age is unknown: a maximum
	// that silently skipped it could hide the queue furthest behind, so the
	// series is left out instead.
	Known bool
}

// lagAccum gathers the ages of one request's queues.
type lagAccum struct {
	seconds float64
	unknown bool
}

func (a *lagAccum) observe(age time.Duration) {
	a.seconds = max(a.seconds, max(age, 0).Seconds())
}

func (a *lagAccum) result() lagResult {
	if a.unknown {
		return lagResult{}
	}
	return lagResult{Seconds: a.seconds, Known: true}
}

// fromCacheLocked adds the ages it can answer for the scrape at now and
// returns the lagging queues it cannot.
func (lc *lagCache) fromCacheLocked(r lagRequest, now time.Time, acc *lagAccum) []queueOffsets {
	var missing []queueOffsets
	for _, q := range r.queues {
		if q.broker <= q.consumer {
			acc.observe(0) // caught up
			continue
		}
		k := lagKey{r.addr, r.group, r.topic, q.queue}
		e, hit := lc.entries[k]
		if !hit || e.offset != q.consumer || !e.exact && now.Sub(e.fetched) >= lagFallbackRefresh {
			missing = append(missing, q)
			continue
		}
		e.seen = now
		lc.entries[k] = e
		if e.known {
			acc.observe(now.Sub(e.storeTime))
		} else {
			acc.unknown = true
		}
	}
	return missing
}

// resolve answers a request for the scrape whose reference time is now,
// calling query (one QUERY_CONSUME_TIME_SPAN for the topic and group) only if
// some lagging queue's consumer offset moved, was never seen, or has a
// fallback answer due for refresh. Every age is the age at now, the time the
// sample stands for. A failed query makes the whole result unknown: a
// maximum over the queues that happened to be cached could understate it.
func (lc *lagCache) resolve(ctx context.Context, r lagRequest, now time.Time,
	query func(context.Context) ([]rocketmq.QueueTimeSpan, error)) (lagResult, error) {
	var acc lagAccum
	lc.mu.Lock()
	missing := lc.fromCacheLocked(r, now, &acc)
	lc.mu.Unlock()
	if len(missing) == 0 {
		return acc.result(), nil
	}

	spans, err := query(ctx)
	if err != nil {
		return lagResult{}, err
	}
	// The answer cannot predate the scrape; a clock that says so (tests,
	// a step of the wall clock) is read as "at the scrape's start".
	arrived := lc.clock()
	if arrived.Before(now) {
		arrived = now
	}
	byQueue := make(map[int]rocketmq.QueueTimeSpan, len(spans))
	for _, sp := range spans {
		byQueue[sp.MessageQueue.QueueID] = sp
	}

	lc.mu.Lock()
	defer lc.mu.Unlock()
	for _, q := range missing {
		sp, ok := byQueue[q.queue]
		if !ok {
			// The queue count changed between the two requests. Unknown
			// for now, asked again next time.
			acc.unknown = true
			continue
		}
		k := lagKey{r.addr, r.group, r.topic, q.queue}
		age, exact, known := queueAge(sp)
		switch {
		case known && exact && age <= 0:
			// The consumer caught up between GET_BROKER_CONSUME_STATS and
			// this request. Not cached: the offset it belongs to is unknown.
			acc.observe(0)
			continue
		case !known:
			acc.unknown = true
			lc.storeLocked(k, lagEntry{offset: q.consumer, fetched: now, seen: now})
			continue
		}
		// The broker measured the age with its own clock at about the time
		// the answer arrived; anchoring the store time on ours keeps later
		// ages free of clock skew.
		e := lagEntry{offset: q.consumer, storeTime: arrived.Add(-age), known: true, exact: exact, fetched: now, seen: now}
		lc.storeLocked(k, e)
		acc.observe(now.Sub(e.storeTime))
	}
	return acc.result(), nil
}

// queueAge reads one queue of a QUERY_CONSUME_TIME_SPAN answer: the age of
// its oldest unconsumed message when the broker answered, whether that is
// the message at the consumer offset (exact) and whether it is known at all.
//
// When the broker has no message at the consumer offset (no offset
// committed, or retention deleted it), it reports delayTime = now - (-1)
// (PROTOCOL.md §2.4). The oldest unconsumed message still stored is then the
// queue's first one, whose store time is minTimeStamp, and the broker's own
// now is delayTime - 1: both on the broker's clock, so the age is free of
// skew. minTimeStamp <= 0 means the queue stores nothing at all: unknown.
func queueAge(sp rocketmq.QueueTimeSpan) (age time.Duration, exact, known bool) {
	delay := time.Duration(sp.DelayTime) * time.Millisecond
	if delay < maxPlausibleDelay {
		return delay, true, true
	}
	if sp.MinTimeStamp <= 0 {
		return 0, false, false
	}
	brokerNow := sp.DelayTime - 1
	return time.Duration(max(0, brokerNow-sp.MinTimeStamp)) * time.Millisecond, false, true
}

func (lc *lagCache) storeLocked(k lagKey, e lagEntry) {
	if _, exists := lc.entries[k]; !exists && len(lc.entries) >= lc.max {
		return
	}
	lc.entries[k] = e
}

// sweep forgets queues no scrape has looked at within the TTL.
func (lc *lagCache) sweep(now time.Time) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for k, e := range lc.entries {
		if now.Sub(e.seen) > lc.ttl {
			delete(lc.entries, k)
		}
	}
}

// size is the number of cached queues.
func (lc *lagCache) size() int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return len(lc.entries)
}
