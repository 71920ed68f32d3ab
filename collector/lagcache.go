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
)

// lagKey identifies one queue of one group on one broker node.
type lagKey struct {
	addr  string
	group string
	topic string
	queue int
}

// lagEntry is what the broker told us about the message at one consumer
// offset. Its store time does not change while the offset stays put, which
// is what makes the cache exact rather than approximate.
type lagEntry struct {
	offset    int64
	storeTime time.Time
	known     bool // false: the broker could not tell (see maxPlausibleDelay)
	seen      time.Time
}

// lagCache computes the age of the oldest unconsumed message per (broker,
// group, topic) with as few QUERY_CONSUME_TIME_SPAN requests as possible. It
// is shared by all scrapes of one collector, so it locks.
type lagCache struct {
	mu      sync.Mutex
	entries map[lagKey]lagEntry
	ttl     time.Duration
	max     int
}

func newLagCache() *lagCache {
	return &lagCache{entries: make(map[lagKey]lagEntry), ttl: lagCacheTTL, max: lagCacheMaxEntries}
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
	// Seconds is the maximum age over the queues whose age is known.
	Seconds float64
	// Known is false when no queue's age is known; the series is then left
	// out rather than reported as 0.
	Known bool
}

// fromCacheLocked returns the result over the queues it can answer and the
// lagging queues it cannot.
func (lc *lagCache) fromCacheLocked(r lagRequest, now time.Time) (lagResult, []queueOffsets) {
	var res lagResult
	var missing []queueOffsets
	if len(r.queues) == 0 {
		res.observe(0) // nothing to consume: caught up
	}
	for _, q := range r.queues {
		if q.broker <= q.consumer {
			res.observe(0)
			continue
		}
		k := lagKey{r.addr, r.group, r.topic, q.queue}
		e, hit := lc.entries[k]
		if !hit || e.offset != q.consumer {
			missing = append(missing, q)
			continue
		}
		e.seen = now
		lc.entries[k] = e
		if e.known {
			res.observe(now.Sub(e.storeTime))
		}
	}
	return res, missing
}

func (r *lagResult) observe(age time.Duration) {
	s := max(age, 0).Seconds()
	if !r.Known || s > r.Seconds {
		r.Seconds = s
	}
	r.Known = true
}

// resolve answers a request, calling query (one QUERY_CONSUME_TIME_SPAN for
// the topic and group) only if some lagging queue's consumer offset moved or
// was never seen. A failed query makes the whole result unknown: a maximum
// over the queues that happened to be cached could understate the age.
func (lc *lagCache) resolve(ctx context.Context, r lagRequest, now time.Time,
	query func(context.Context) ([]rocketmq.QueueTimeSpan, error)) (lagResult, error) {
	lc.mu.Lock()
	res, missing := lc.fromCacheLocked(r, now)
	lc.mu.Unlock()
	if len(missing) == 0 {
		return res, nil
	}

	spans, err := query(ctx)
	if err != nil {
		return lagResult{}, err
	}
	delays := make(map[int]int64, len(spans))
	for _, sp := range spans {
		delays[sp.MessageQueue.QueueID] = sp.DelayTime
	}

	lc.mu.Lock()
	defer lc.mu.Unlock()
	for _, q := range missing {
		d, ok := delays[q.queue]
		if !ok {
			// The queue count changed between the two requests; ask again
			// next time.
			continue
		}
		delay := time.Duration(d) * time.Millisecond
		switch {
		case d <= 0:
			// The consumer caught up between GET_BROKER_CONSUME_STATS and
			// this request. Not cached: the offset it belongs to is unknown.
			res.observe(0)
		case delay >= maxPlausibleDelay:
			lc.storeLocked(lagKey{r.addr, r.group, r.topic, q.queue}, lagEntry{offset: q.consumer, seen: now})
		default:
			// The broker measured the delay with its own clock; anchoring the
			// store time on ours keeps later ages free of clock skew.
			e := lagEntry{offset: q.consumer, storeTime: now.Add(-delay), known: true, seen: now}
			lc.storeLocked(lagKey{r.addr, r.group, r.topic, q.queue}, e)
			res.observe(delay)
		}
	}
	return res, nil
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
