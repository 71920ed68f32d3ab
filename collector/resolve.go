package collector

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// DefaultConcurrency bounds fan-out when Targets.Concurrency is not set: the
// requests one collector has in flight, shared among the brokers it reads.
// What a single broker sees is bounded by the client instead, at its admin
// thread pool (rocketmq.DefaultMaxInFlightPerAddr, adminBrokerThreadPoolNums
// = 16), more would only queue there. 32 lets the topic and the consumer
// collector together keep that pool busy on each of four masters: on the
// 10,000-topic scale scenario it took 12 % off a cluster-mode scrape
// against 16, which left each master half of it (docs/benchmarks.md).
const DefaultConcurrency = 32

// Targets says what one scrape reads.
type Targets struct {
	Mode Mode
	// Brokers are the broker addresses dialed in sidecar mode. Cluster mode
	// ignores them: the NameServers are the only source of brokers there, so
	// the same node can never be counted twice under two spellings.
	Brokers []string
	// NameServers are asked, in this order of preference, for the cluster
	// layout in cluster mode.
	NameServers []string
	// Concurrency bounds the requests in flight per fan-out; <= 0 means
	// DefaultConcurrency.
	Concurrency int
	// States, when set, remembers across scrapes which targets were down, so
	// a target that stays down is logged at WARN when it goes down and at
	// DEBUG afterwards, and its recovery once at INFO. Nil logs every failed
	// read at WARN. Share one between all scrapes of the same targets.
	States *TargetStates
}

// Resolve finds the brokers of one scrape and reads each one's identity
// (GET_BROKER_CONFIG). It never fails as a whole: every node that could not be
// read is kept with its Err set, so its rocketmq_up is 0 and the rest of the
// scrape goes on. The returned Scrape is what all collectors share.
func Resolve(ctx context.Context, client Client, t Targets, logger *slog.Logger) *Scrape {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	conc := t.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	s := &Scrape{
		Client:      client,
		Logger:      logger,
		Mode:        t.Mode,
		Now:         time.Now(),
		Concurrency: conc,
	}
	start := time.Now()
	switch t.Mode {
	case ModeCluster:
		nsCtx, cancel := phaseContext(ctx, start, nameServerShare)
		var newlyDown bool
		s.NameServers, s.ClusterInfo, newlyDown = askNameServers(nsCtx, client, uniq(t.NameServers), t.States, s.Now, logger)
		cancel()
		if s.ClusterInfo == nil {
			if len(s.NameServers) > 0 {
				// Said once when the last NameServer goes, like the
				// NameServers' own lines.
				level := slog.LevelDebug
				if newlyDown {
					level = slog.LevelError
				}
				logger.Log(ctx, level, "no NameServer answered GET_BROKER_CLUSTER_INFO; no broker can be scraped", "namesrv_count", len(s.NameServers))
			}
			break
		}
		s.Brokers = brokersFromClusterInfo(s.ClusterInfo)
		idCtx, cancel := phaseContext(ctx, start, identityShare)
		readIdentities(idCtx, client, s.Brokers, conc, false, t.States, s.Now, logger)
		cancel()
	default:
		for _, addr := range uniq(t.Brokers) {
			s.Brokers = append(s.Brokers, &Broker{Addr: addr, Address: addr, ID: -1})
		}
		idCtx, cancel := phaseContext(ctx, start, identityShare)
		readIdentities(idCtx, client, s.Brokers, conc, true, t.States, s.Now, logger)
		cancel()
	}
	sortBrokers(s.Brokers)
	return s
}

// Shares of the scrape's time (from the start of Resolve to the deadline)
// that finding the brokers may use: the NameServers a quarter, the NameServers
// and identity reads together a half. A target that accepts and never answers
// is cut off there, and the collectors keep at least half of the deadline for
// the targets that did answer instead of none.
const (
	nameServerShare = 0.25
	identityShare   = 0.5
)

// phaseContext bounds one step of Resolve to share of the time ctx had left
// at start; without a deadline there is nothing to share.
func phaseContext(ctx context.Context, start time.Time, share float64) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, start.Add(time.Duration(float64(dl.Sub(start))*share)))
}

// askNameServers asks every NameServer at once, so one dead NameServer costs
// no extra time, and uses the answer of the first one in flag order: with a
// fixed preference the layout does not flip between NameServers that briefly
// disagree (each broker registers with each of them on its own schedule).
// newlyDown reports whether one of them went down in this scrape (see
// TargetStates).
func askNameServers(ctx context.Context, client Client, addrs []string, states *TargetStates, now time.Time, logger *slog.Logger) (_ []NameServer, _ *rocketmq.ClusterInfo, newlyDown bool) {
	out := make([]NameServer, len(addrs))
	infos := make([]*rocketmq.ClusterInfo, len(addrs))
	var g safeGroup
	var went atomic.Bool
	for i, addr := range addrs {
		// Cleared once the read completes, so a panic leaves it down.
		out[i] = NameServer{Addr: addr, Err: errIdentityAborted}
		g.Go(func() error {
			info, err := client.BrokerClusterInfo(ctx, addr)
			if err == nil && info == nil {
				err = errEmptyAnswer
			}
			if err != nil {
				out[i].Err = err
				if states.logDown(logger, KindNameServer, addr, now, "NameServer did not answer GET_BROKER_CLUSTER_INFO", "address", addr, "err", err) {
					went.Store(true)
				}
				return nil
			}
			infos[i], out[i].Err = info, nil
			states.logUp(logger, KindNameServer, addr, now, "NameServer answers GET_BROKER_CLUSTER_INFO again", "address", addr)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		logger.Error("asking the NameServers failed", "err", err)
	}
	for _, info := range infos {
		if info != nil {
			return out, info, went.Load()
		}
	}
	return out, nil, went.Load()
}

var errEmptyAnswer = errors.New("empty answer")

// brokersFromClusterInfo makes one Broker per listed member. The cluster of a
// group is that group's own "cluster" field; clusterAddrTable is only a
// fallback for answers without it, and then the group is looked up by name
// rather than assumed to be in whichever cluster came first.
func brokersFromClusterInfo(info *rocketmq.ClusterInfo) []*Broker {
	clusterOf := map[string]string{}
	for cluster, names := range info.ClusterAddrTable {
		for _, n := range names {
			clusterOf[n] = cluster
		}
	}
	byAddr := map[string]*Broker{}
	var out []*Broker
	for key, group := range info.BrokerAddrTable {
		name := group.BrokerName
		if name == "" {
			name = key
		}
		cluster := group.Cluster
		if cluster == "" {
			cluster = clusterOf[name]
		}
		for id, addr := range group.BrokerAddrs {
			if addr == "" {
				continue
			}
			id = normalizeID(id)
			if prev, ok := byAddr[addr]; ok {
				// A node re-registering under a new id can be listed twice
				// for a moment; the non-negative, lower id is the newer
				// claim to mastership and GET_BROKER_CONFIG settles it.
				if betterID(id, prev.ID) {
					prev.ID = id
				}
				continue
			}
			b := &Broker{Addr: addr, Address: addr, Cluster: cluster, Name: name, ID: id}
			byAddr[addr] = b
			out = append(out, b)
		}
	}
	return out
}

func betterID(id, than int64) bool {
	if than < 0 {
		return id >= 0
	}
	return id >= 0 && id < than
}

// readIdentities reads GET_BROKER_CONFIG from every broker, bounded by conc.
// In sidecar mode (fromConfig) the config is the only source of the node's
// identity; in cluster mode the NameServer's cluster and group names stay and
// only the live id and role come from the node.
func readIdentities(ctx context.Context, client Client, brokers []*Broker, conc int, fromConfig bool, states *TargetStates, now time.Time, logger *slog.Logger) {
	var g safeGroup
	g.SetLimit(conc)
	for _, b := range brokers {
		g.Go(func() error {
			// Cleared once the read completes: a panic below must leave the
			// node down, not up with half an identity.
			b.Err = errIdentityAborted
			cfg, err := client.BrokerConfig(ctx, b.Addr)
			if err == nil && len(cfg) == 0 {
				err = errEmptyAnswer
			}
			attrs := []any{"address", b.Addr}
			if b.Name != "" {
				attrs = append(attrs, "cluster", b.Cluster, "broker", b.Name)
			}
			if err != nil {
				b.Err = err
				states.logDown(logger, KindBroker, b.Addr, now, "broker did not answer GET_BROKER_CONFIG", append(attrs, "err", err)...)
				return nil
			}
			states.logUp(logger, KindBroker, b.Addr, now, "broker answers GET_BROKER_CONFIG again", attrs...)
			b.Config = cfg
			b.Role = cfg["brokerRole"]
			if id, ok := parseID(cfg["brokerId"]); ok {
				b.ID = liveID(id, b.ID, cfg)
			}
			if fromConfig {
				b.Cluster = cfg["brokerClusterName"]
				b.Name = cfg["brokerName"]
				b.Address = advertisedAddress(cfg, b.Addr)
			}
			b.Err = nil
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		logger.Error("reading broker identities failed", "err", err)
	}
}

var errIdentityAborted = errors.New("identity read aborted")

// DefaultTargetStatesSize bounds a TargetStates made with size <= 0.
const DefaultTargetStatesSize = 4096

// targetStateTTL is how long a down target is remembered without being read
// again: a target gone from the configuration or the cluster layout is
// forgotten, and if it comes back down, that is news again.
const targetStateTTL = 15 * time.Minute

// TargetStates remembers, across scrapes, which targets (by kind and dialed
// address) were down when last read, so that a target that stays down is not
// logged at WARN at every scrape. Only down targets are kept, at most size
// of them (the one read longest ago makes room), so it stays small whatever
// /probe is asked. It is safe for concurrent scrapes: of two scrapes finding
// the same target down, one logs the change. A nil *TargetStates remembers
// nothing.
type TargetStates struct {
	mu   sync.Mutex
	size int
	down map[targetKey]*downSince
}

type targetKey struct{ kind, addr string }

type downSince struct{ since, last time.Time }

// NewTargetStates returns an empty TargetStates keeping at most size down
// targets (DefaultTargetStatesSize if size <= 0).
func NewTargetStates(size int) *TargetStates {
	if size <= 0 {
		size = DefaultTargetStatesSize
	}
	return &TargetStates{size: size, down: map[targetKey]*downSince{}}
}

// markDown records that the target was found down at now. It returns when
// the target went down, and whether that is now (it was up or unknown).
func (ts *TargetStates) markDown(kind, addr string, now time.Time) (since time.Time, changed bool) {
	if ts == nil {
		return now, true
	}
	k := targetKey{kind, addr}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	d := ts.down[k]
	if d != nil && now.Sub(d.last) <= targetStateTTL {
		if now.After(d.last) {
			d.last = now
		}
		return d.since, false
	}
	if d == nil {
		// Room for the new entry: entries past the TTL are stale anyway.
		forget(ts.down, now, targetStateTTL, ts.size-1, func(d *downSince) time.Time { return d.last })
	}
	ts.down[k] = &downSince{since: now, last: now}
	return now, true
}

// markUp records that the target answered. It returns since when it had been
// down, and whether it had been (as far as remembered).
func (ts *TargetStates) markUp(kind, addr string, now time.Time) (since time.Time, changed bool) {
	if ts == nil {
		return time.Time{}, false
	}
	k := targetKey{kind, addr}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	d := ts.down[k]
	if d == nil {
		return time.Time{}, false
	}
	delete(ts.down, k)
	return d.since, now.Sub(d.last) <= targetStateTTL
}

// logDown logs a failed read at WARN when the target has just gone down and
// at DEBUG while it stays down, and reports whether it just went down.
func (ts *TargetStates) logDown(logger *slog.Logger, kind, addr string, now time.Time, msg string, attrs ...any) bool {
	since, changed := ts.markDown(kind, addr, now)
	if changed {
		logger.Warn(msg, attrs...)
		return true
	}
	logger.Debug(msg, append(attrs, "down_for", now.Sub(since).Round(time.Second).String())...)
	return false
}

// logUp logs at INFO that a target known to be down answers again.
func (ts *TargetStates) logUp(logger *slog.Logger, kind, addr string, now time.Time, msg string, attrs ...any) {
	if since, changed := ts.markUp(kind, addr, now); changed {
		logger.Info(msg, append(attrs, "down_for", now.Sub(since).Round(time.Second).String())...)
	}
}

// advertisedAddress is brokerIP1:listenPort, the address the broker registers
// with the NameServer, so a sidecar's "address" label equals the one a
// cluster-mode exporter gives the same node even when the sidecar dials it
// as localhost.
func advertisedAddress(cfg rocketmq.BrokerConfig, dialed string) string {
	ip, port := cfg["brokerIP1"], cfg["listenPort"]
	if ip == "" || port == "" {
		return dialed
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return dialed
	}
	return net.JoinHostPort(ip, port)
}

// liveID decides a node's id from the brokerId of its live config. 5.x
// controller-mode brokers keep brokerId=-1 in their config on every node (the
// controller assigns ids at run time), so there the role tells the master and
// a slave keeps the id the NameServer lists (or stays unknown in sidecar mode).
func liveID(configID, listed int64, cfg rocketmq.BrokerConfig) int64 {
	if configID >= 0 || !configTrue(cfg, "enableControllerMode") {
		return configID
	}
	switch cfg["brokerRole"] {
	case "ASYNC_MASTER", "SYNC_MASTER":
		return 0
	}
	if listed > 0 {
		return listed
	}
	return -1
}

// configTrue reads a boolean broker setting the way the broker does
// (Boolean.parseBoolean: "true" in any case is true, anything else false).
// Blanks around it are ignored as in the ha and dledger collectors, so every
// collector judges a node by the same rule.
func configTrue(cfg rocketmq.BrokerConfig, key string) bool {
	return strings.EqualFold(strings.TrimSpace(cfg[key]), "true")
}

func parseID(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return normalizeID(id), true
}

// normalizeID maps every negative id to -1: 4.9 DLedger nodes report -1
// before their first election, and no negative id may ever read as a role.
func normalizeID(id int64) int64 {
	if id < 0 {
		return -1
	}
	return id
}

// uniq drops empty and repeated addresses, keeping the first occurrence so the
// flag order (NameServer preference) survives.
func uniq(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
