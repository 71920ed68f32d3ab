// Package collector turns RocketMQ admin reads into Prometheus metrics. Each
// collector (one file each) reads what it needs at scrape time through the
// Client interface and sends const metrics; nothing is kept in metric vectors
// between scrapes, so a vanished topic, group or broker vanishes from the
// output too.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// Namespace prefixes every metric name.
const Namespace = "rocketmq"

// Client is everything the collectors need from RocketMQ. *rocketmq.Admin
// implements it over the remoting protocol; tests may use a fake.
type Client interface {
	// NameServer.
	BrokerClusterInfo(ctx context.Context, namesrv string) (*rocketmq.ClusterInfo, error)
	TopicList(ctx context.Context, namesrv string) (*rocketmq.TopicList, error)

	// Broker.
	BrokerRuntimeInfo(ctx context.Context, addr string) (rocketmq.RuntimeInfo, error)
	BrokerConfig(ctx context.Context, addr string) (rocketmq.BrokerConfig, error)
	// TopicNames lists the broker's topics (GET_ALL_TOPIC_CONFIG), sorted
	// and without duplicates; nil when there are none.
	TopicNames(ctx context.Context, addr string) ([]string, error)
	AllSubscriptionGroupConfig(ctx context.Context, addr string) (*rocketmq.SubscriptionGroupWrapper, error)
	TopicStats(ctx context.Context, addr, topic string) (*rocketmq.TopicStatsTable, error)
	TopicStatsSummary(ctx context.Context, addr, topic string) (rocketmq.TopicStatsSummary, error)
	ConsumeStats(ctx context.Context, addr, group, topic string) (*rocketmq.ConsumeStats, error)
	BrokerConsumeStats(ctx context.Context, addr string) (*rocketmq.ConsumeStatsList, error)
	TopicConsumeByWho(ctx context.Context, addr, topic string) (*rocketmq.GroupList, error)
	ConsumeTimeSpan(ctx context.Context, addr, topic, group string) ([]rocketmq.QueueTimeSpan, error)
	ConsumerConnectionSummary(ctx context.Context, addr, group string) (rocketmq.ConsumerConnectionSummary, error)
	BrokerHAStatus(ctx context.Context, addr string) (*rocketmq.HARuntimeInfo, error)

	// DLedger port.
	DLedgerMetadata(ctx context.Context, addr, group, selfID string) (*rocketmq.DLedgerMetadata, error)
	DLedgerTerm(ctx context.Context, addr, group, selfID, otherPeerID string) (int64, error)

	// 5.x controller.
	ControllerMetadata(ctx context.Context, addr string) (*rocketmq.ControllerMetadata, error)
	ControllerSyncStateData(ctx context.Context, addr string, brokerNames []string) (rocketmq.SyncStateData, error)
}

// Collector is one named group of metrics, switched with --collector.<name>.
// A Collector is built once and used by every scrape, concurrently; state it
// keeps between scrapes (caches, observed-change counters) must be safe for
// that.
type Collector interface {
	Update(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error
}

// Registration describes one collector for the flag table and the docs.
type Registration struct {
	Name    string
	Default bool
	Help    string
	New     func(Options, *slog.Logger) (Collector, error)
}

// Registrations lists every collector in the order of the docs.
func Registrations() []Registration {
	return []Registration{
		{"broker", true, "Broker runtime statistics and identity (GET_BROKER_RUNTIME_INFO, GET_BROKER_CONFIG).", newBrokerCollector},
		{"cluster", true, "Topology from the NameServer: clusters, broker groups and members (GET_BROKER_CLUSTER_INFO).", newClusterCollector},
		{"topic", true, "Topic offsets per broker (GET_ALL_TOPIC_CONFIG, GET_TOPIC_STATS_INFO).", newTopicCollector},
		{"consumer", true, "Consumer group lag in messages and seconds, retry/DLQ, online consumers (GET_BROKER_CONSUME_STATS, QUERY_CONSUME_TIME_SPAN).", newConsumerCollector},
		{"dledger", true, "DLedger role, leader and group health from the DLedger port (METADATA).", newDLedgerCollector},
		{"ha", true, "Master/slave roles, replication lag and 5.x HA/controller state.", newHACollector},
	}
}

// Options carries the collector settings that come from flags.
type Options struct {
	Topics Filter
	Groups Filter
	// SystemTopics exports system topics (TBW102, RMQ_SYS_*, …) too.
	SystemTopics bool
	// RetryTopics gives %RETRY% topics topic series too. Off by default:
	// there is one per consumer group on every broker group (7,200 besides
	// 10,000 normal topics in the scale scenario), each costing a
	// GET_TOPIC_STATS_INFO per scrape, and the consumer collector already
	// reports their backlog and total per group from the one
	// GET_BROKER_CONSUME_STATS per master.
	RetryTopics bool
	// PerQueue adds per-queue series (topic offsets, consumer lag).
	PerQueue bool
	// LagSeconds enables lag in seconds (QUERY_CONSUME_TIME_SPAN, cached).
	LagSeconds bool
	// DLedgerTermProbe enables the stale-term HEART_BEAT probe (opt-in).
	DLedgerTermProbe bool
	// Concurrency bounds the requests one collector has in flight per scrape.
	Concurrency int
}

// Filter selects names by an optional include and exclude regexp, both
// anchored. A nil Include matches everything.
type Filter struct {
	Include *regexp.Regexp
	Exclude *regexp.Regexp
}

// NewFilter compiles anchored include/exclude expressions ("" = none).
func NewFilter(include, exclude string) (Filter, error) {
	var f Filter
	var err error
	if include != "" {
		if f.Include, err = regexp.Compile("^(?:" + include + ")$"); err != nil {
			return f, fmt.Errorf("include regexp: %w", err)
		}
	}
	if exclude != "" {
		if f.Exclude, err = regexp.Compile("^(?:" + exclude + ")$"); err != nil {
			return f, fmt.Errorf("exclude regexp: %w", err)
		}
	}
	return f, nil
}

// Match reports whether name passes the filter.
func (f Filter) Match(name string) bool {
	if f.Include != nil && !f.Include.MatchString(name) {
		return false
	}
	return f.Exclude == nil || !f.Exclude.MatchString(name)
}

// Mode says how the exporter finds its brokers.
type Mode int

const (
	// ModeSidecar scrapes the configured broker addresses only (usually the
	// broker in the same pod) and reports topic/group data only while that
	// broker is the master of its group, so sums across sidecars are exact.
	ModeSidecar Mode = iota
	// ModeCluster discovers every broker from the NameServers and reports each
	// master's topic/group data once.
	ModeCluster
)

func (m Mode) String() string {
	if m == ModeCluster {
		return "cluster"
	}
	return "sidecar"
}

// brokerLabelNames returns the identity labels of every per-broker series,
// in the order of Broker.LabelValues. It is a fresh slice each time, so a
// caller appending to or changing it cannot corrupt another collector's
// descriptors.
func brokerLabelNames() []string { return []string{"cluster", "broker", "address"} }

// Broker is one broker node taking part in a scrape.
type Broker struct {
	// Addr is the address we dial.
	Addr string
	// Address is the node's address as the cluster knows it (brokerIP1 and
	// listenPort from its config, or the NameServer's entry); it is the
	// "address" label. Equal to Addr when nothing better is known.
	Address string
	Cluster string
	// Name is the broker name, i.e. the broker group.
	Name string
	// ID is the live brokerId: 0 for the master or DLedger leader, > 0 for
	// slaves and followers, -1 while unknown (4.9 DLedger nodes before the
	// first election).
	ID int64
	// Role is brokerRole from the live config: ASYNC_MASTER, SYNC_MASTER or
	// SLAVE ("" when unknown).
	Role string
	// Version is brokerVersionDesc-style text when known (e.g. V4_9_7).
	Version string
	// Config is the node's GET_BROKER_CONFIG answer, nil when it failed.
	Config rocketmq.BrokerConfig
	// Err says why the node could not be read; nil when it answered.
	Err error
}

// Up reports whether the node answered its identity read in this scrape.
func (b *Broker) Up() bool { return b.Err == nil }

// IsMaster reports whether the node is up and currently the master (or
// DLedger leader) of its group.
func (b *Broker) IsMaster() bool { return b.Err == nil && b.ID == 0 }

// LabelValues returns the values for brokerLabelNames.
func (b *Broker) LabelValues() []string { return []string{b.Cluster, b.Name, b.Address} }

// NameServer is one NameServer address and the result of asking it for the
// cluster info in this scrape.
type NameServer struct {
	Addr string
	Err  error
}

// Scrape is the state one scrape shares between collectors: the resolved
// brokers and the client. It is built by Resolve for every scrape.
type Scrape struct {
	Client Client
	Logger *slog.Logger
	Mode   Mode
	// Now is the scrape's reference time (tests set it).
	Now time.Time
	// Brokers are all nodes of this scrape, answering or not, sorted by
	// cluster, name, ID, address.
	Brokers []*Broker
	// NameServers are the NameServers asked (cluster mode).
	NameServers []NameServer
	// ClusterInfo is the answer of the first NameServer that answered (nil in
	// sidecar mode or when none did).
	ClusterInfo *rocketmq.ClusterInfo
	// Concurrency bounds per-collector fan-out.
	Concurrency int

	// memo holds the answers several collectors need from the same broker in
	// one scrape (runtime info, topic config), so each is asked once.
	memo sync.Map
}

type memoEntry struct {
	once sync.Once
	v    any
	err  error
}

// memoize runs fn once per key and scrape; concurrent callers wait for the
// first one and share its answer (or error).
func memoize[T any](s *Scrape, key string, fn func() (T, error)) (T, error) {
	e, _ := s.memo.LoadOrStore(key, &memoEntry{})
	m := e.(*memoEntry)
	m.once.Do(func() { m.v, m.err = fn() })
	v, _ := m.v.(T)
	return v, m.err
}

// RuntimeInfo returns b's GET_BROKER_RUNTIME_INFO answer, read once per scrape
// however many collectors ask (broker statistics and replication lag).
func (s *Scrape) RuntimeInfo(ctx context.Context, b *Broker) (rocketmq.RuntimeInfo, error) {
	return memoize(s, "runtime\x00"+b.Addr, func() (rocketmq.RuntimeInfo, error) {
		return s.Client.BrokerRuntimeInfo(ctx, b.Addr)
	})
}

// TopicNames returns the sorted topic names of b's GET_ALL_TOPIC_CONFIG
// answer, read once per scrape (topic and consumer collectors both need
// the topic list).
func (s *Scrape) TopicNames(ctx context.Context, b *Broker) ([]string, error) {
	return memoize(s, "topicconfig\x00"+b.Addr, func() ([]string, error) {
		return s.Client.TopicNames(ctx, b.Addr)
	})
}

// Owners returns the brokers whose topic and consumer data this scrape
// reports: the masters that answered. In sidecar mode that is the local
// broker while it is master, and nothing otherwise.
func (s *Scrape) Owners() []*Broker {
	var out []*Broker
	for _, b := range s.Brokers {
		if b.IsMaster() {
			out = append(out, b)
		}
	}
	return out
}

// UpBrokers returns the brokers that answered.
func (s *Scrape) UpBrokers() []*Broker {
	var out []*Broker
	for _, b := range s.Brokers {
		if b.Up() {
			out = append(out, b)
		}
	}
	return out
}

func sortBrokers(bs []*Broker) {
	sort.Slice(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Address < b.Address
	})
}

// PanicError is a panic caught in a collector or in one of its fan-out
// goroutines, with the stack of the goroutine that panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v\n%s", e.Value, e.Stack) }

// recoverPanic, deferred, turns a panic of the calling goroutine into *err.
// It must be called directly by the deferred function's frame: recover
// only works there.
func recoverPanic(err *error) {
	if r := recover(); r != nil {
		*err = &PanicError{Value: r, Stack: debug.Stack()}
	}
}

// catchPanic runs fn and returns its panic, if any, as a *PanicError: for
// fan-outs that run many calls on one goroutine, where one call's panic must
// not end the others.
func catchPanic(fn func()) (p error) {
	defer recoverPanic(&p)
	fn()
	return nil
}

// safeGroup is an errgroup.Group whose goroutines cannot crash the process.
// A panic in a collector's own goroutine is caught by the Exporter, but one in
// a goroutine the collector starts is not (recover only sees its own
// goroutine), and an unrecovered panic ends the whole program: one odd broker
// answer would take down every scrape. A zero safeGroup is ready to use, like
// errgroup.Group.
type safeGroup struct {
	g errgroup.Group

	mu     sync.Mutex
	panics []error
}

// SetLimit is errgroup.Group.SetLimit.
func (g *safeGroup) SetLimit(n int) { g.g.SetLimit(n) }

// Go is errgroup.Group.Go; a panic in f becomes a *PanicError for Wait.
func (g *safeGroup) Go(f func() error) {
	g.g.Go(func() (err error) {
		if p := catchPanic(func() { err = f() }); p != nil {
			g.mu.Lock()
			g.panics = append(g.panics, p)
			g.mu.Unlock()
			return nil
		}
		return err
	})
}

// Wait is errgroup.Group.Wait, except that every panic is returned too
// (joined after the first error): a panic must never hide behind an ordinary
// error, nor one panic behind another.
func (g *safeGroup) Wait() error {
	err := g.g.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.panics) == 0 {
		return err
	}
	return errors.Join(append([]error{err}, g.panics...)...)
}

// forget bounds the long-lived per-target state some collectors keep between
// scrapes: it deletes the entries of m last seen more than ttl before now
// (ttl <= 0: none by age) and then, while m holds more than max entries, the
// least recently seen ones. The caller holds m's lock.
func forget[K comparable, V any](m map[K]V, now time.Time, ttl time.Duration, max int, seen func(V) time.Time) {
	if ttl > 0 {
		for k, v := range m {
			if now.Sub(seen(v)) > ttl {
				delete(m, k)
			}
		}
	}
	for len(m) > max {
		var oldest K
		var oldestSeen time.Time
		first := true
		for k, v := range m {
			if s := seen(v); first || s.Before(oldestSeen) {
				oldest, oldestSeen, first = k, s, false
			}
		}
		delete(m, oldest)
	}
}
