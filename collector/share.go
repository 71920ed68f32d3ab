package collector

import (
	"context"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Shared lets scrapes of the same targets share one collection: a scrape
// that starts while another one is collecting the same targets (and
// Targets.States), through the same client and with the same collectors, waits for that collection and
// sends its metrics instead of asking the cluster again. Two Prometheus
// servers of an HA pair scrape each target at nearly the same moment; on a
// large cluster each collection is tens of thousands of requests.
//
// Sharing is safe because nothing is cached: a scrape only joins a
// collection that is still running, so what it gets was read after it was
// requested or at most one collection earlier, exactly as if the scrapes had
// been queued. It joins only a collection whose deadline is not later than
// its own, so it never waits longer than it would have for its own. The
// collection runs under the first scrape's deadline but not its
// cancellation: a Prometheus that hangs up does not cut the answer short
// for the others. Stateful collectors (the consumer status and lag caches)
// see one evaluation instead of two, which is what they want.
//
// The metrics of a shared collection are kept until every scrape has sent
// them; they are immutable (const metrics over shared label pairs), so
// several registries can read them at once.
type Shared struct {
	mu       sync.Mutex
	inflight map[string][]*collection
}

// NewShared returns an empty Shared; one per exporter process.
func NewShared() *Shared {
	return &Shared{inflight: make(map[string][]*collection)}
}

// collection is one running or finished shared collection.
type collection struct {
	client     Client
	collectors map[string]Collector
	states     *TargetStates
	deadline   time.Time // zero: none
	done       chan struct{}
	metrics    []prometheus.Metric // set before done is closed
	joined     int                 // scrapes that joined, for tests and logs
}

// New is like the package-level New, but shares the collection with
// concurrent scrapes of the same targets.
func (sh *Shared) New(ctx context.Context, t Targets, client Client, collectors map[string]Collector, logger *slog.Logger) prometheus.Collector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &sharedScrape{sh: sh, ctx: ctx, targets: t, client: client, collectors: collectors, logger: logger}
}

type sharedScrape struct {
	sh         *Shared
	ctx        context.Context
	targets    Targets
	client     Client
	collectors map[string]Collector
	logger     *slog.Logger
}

// Describe sends nothing: like Exporter, an unchecked collector.
func (s *sharedScrape) Describe(chan<- *prometheus.Desc) {}

func (s *sharedScrape) Collect(ch chan<- prometheus.Metric) {
	key, ok := shareKey(s.targets, s.client, s.collectors)
	if !ok {
		New(s.ctx, s.targets, s.client, s.collectors, s.logger).Collect(ch)
		return
	}
	deadline, _ := s.ctx.Deadline()
	c, leader := s.sh.join(key, s.client, s.collectors, s.targets.States, deadline)
	if leader {
		s.lead(c, key, ch)
		return
	}
	s.logger.Debug("joining the collection of a concurrent scrape")
	select {
	case <-c.done:
		for _, m := range c.metrics {
			ch <- m
		}
	case <-s.ctx.Done():
		// Our own deadline came first: like a collection of our own that
		// could not finish, minus the partial series.
		s.logger.Warn("scrape ended before the shared collection finished", "err", s.ctx.Err())
	}
}

// lead runs the collection, passing its metrics on as they come and keeping
// them for the scrapes that join meanwhile.
func (s *sharedScrape) lead(c *collection, key string, ch chan<- prometheus.Metric) {
	ctx := context.WithoutCancel(s.ctx)
	var cancel context.CancelFunc = func() {}
	if !c.deadline.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, c.deadline)
	}
	defer cancel()

	tee := make(chan prometheus.Metric, 1024)
	go func() {
		New(ctx, s.targets, s.client, s.collectors, s.logger).Collect(tee)
		close(tee)
	}()
	var out []prometheus.Metric
	for m := range tee {
		out = append(out, m)
		ch <- m
	}
	s.sh.finish(key, c, out)
}

// join returns the running collection to wait for, or a new one that the
// caller must run (leader).
func (sh *Shared) join(key string, client Client, collectors map[string]Collector, states *TargetStates, deadline time.Time) (c *collection, leader bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, c := range sh.inflight[key] {
		if equal(c.client, client) && sameCollectors(c.collectors, collectors) && c.states == states && !later(c.deadline, deadline) {
			c.joined++
			return c, false
		}
	}
	c = &collection{client: client, collectors: collectors, states: states, deadline: deadline, done: make(chan struct{})}
	sh.inflight[key] = append(sh.inflight[key], c)
	return c, true
}

// sameCollectors reports whether two sets hold the same collector values
// (the key already says they have the same names).
func sameCollectors(a, b map[string]Collector) bool {
	for name, c := range a {
		if !equal(c, b[name]) {
			return false
		}
	}
	return true
}

// equal is == for values whose type may not be comparable (false then).
func equal(x, y any) bool {
	tx, ty := reflect.TypeOf(x), reflect.TypeOf(y)
	if tx == nil || ty == nil {
		return tx == ty
	}
	return tx == ty && tx.Comparable() && x == y
}

// later reports whether deadline a ends after b (zero = never).
func later(a, b time.Time) bool {
	switch {
	case b.IsZero():
		return false
	case a.IsZero():
		return true
	}
	return a.After(b)
}

func (sh *Shared) finish(key string, c *collection, metrics []prometheus.Metric) {
	sh.mu.Lock()
	list := slices.DeleteFunc(sh.inflight[key], func(x *collection) bool { return x == c })
	if len(list) == 0 {
		delete(sh.inflight, key)
	} else {
		sh.inflight[key] = list
	}
	c.metrics = metrics
	sh.mu.Unlock()
	close(c.done)
}

// running is the number of collections in flight (tests).
func (sh *Shared) running() int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := 0
	for _, l := range sh.inflight {
		n += len(l)
	}
	return n
}

// shareKey identifies what a scrape reads. Clients are compared with ==,
// so sharing is off for a client type that cannot be (ok false).
func shareKey(t Targets, client Client, collectors map[string]Collector) (string, bool) {
	if client == nil || !reflect.TypeOf(client).Comparable() {
		return "", false
	}
	conc := t.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	var b strings.Builder
	b.WriteString(t.Mode.String())
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(conc))
	for _, list := range [][]string{uniq(t.Brokers), uniq(t.NameServers), slices.Sorted(maps.Keys(collectors))} {
		b.WriteByte(0)
		b.WriteString(strings.Join(list, "\x01"))
	}
	return b.String(), true
}
