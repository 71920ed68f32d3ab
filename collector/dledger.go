package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// The DLedger collector reads each DLedger node's own view of its Raft group
// from the node's DLedger port (METADATA, 50000) and derives a group view by
// asking every configured peer once per scrape. The port and the peers come
// from the broker's own config (dLegerPeers, dLegerSelfId, dLegerGroup), so a
// sidecar needs no extra flag. See docs/ha.md for what the metrics mean.

var (
	dledgerNodeLabels  = []string{"cluster", "broker", "address", "dledger_group", "self_id"}
	dledgerGroupLabels = []string{"cluster", "broker", "dledger_group"}

	dledgerRoles = []string{"leader", "follower", "candidate"}

	dledgerRoleDesc = prometheus.NewDesc(Namespace+"_dledger_role",
		"DLedger role of this node in its own METADATA (50000) answer: leader if leaderId is its dLegerSelfId, follower if it names another leader, candidate if it names none (election in progress). Absent when its DLedger port does not answer, and when it answers DLedger code 400/401 (it does not know the dLegerGroup or dLegerSelfId of the broker's config).",
		append(slices.Clone(dledgerNodeLabels), "role"), nil)
	dledgerLeaderDesc = prometheus.NewDesc(Namespace+"_dledger_leader",
		"Always 1: the leader (leaderId) this node names in its METADATA (50000) answer. Absent while it names none, and, like rocketmq_dledger_role, when the METADATA read fails or answers DLedger code 400/401.",
		[]string{"cluster", "broker", "address", "dledger_group", "leader_id"}, nil)
	dledgerTermDesc = prometheus.NewDesc(Namespace+"_dledger_term",
		"Current Raft term of this node, read with the stale-term HEART_BEAT (51002) probe (only with --collector.dledger.term-probe).",
		dledgerNodeLabels, nil)
	dledgerHasLeaderDesc = prometheus.NewDesc(Namespace+"_dledger_group_has_leader",
		"1 if a peer answering METADATA (50000) names itself leader and a majority of the configured peers (itself included) name it, 0 otherwise. In cluster mode a group none of whose brokers answers or is listed any more is still reported for 15 minutes, from its last known peers (0 when none answers).",
		dledgerGroupLabels, nil)
	dledgerGroupLeaderDesc = prometheus.NewDesc(Namespace+"_dledger_group_leader",
		"Always 1: the leader the group agrees on, by the rule of rocketmq_dledger_group_has_leader (a peer answering METADATA (50000) that names itself leader and is named by a majority of the configured peers). Absent while there is none.",
		append(slices.Clone(dledgerGroupLabels), "leader_id"), nil)
	dledgerGroupLeaderIndexDesc = prometheus.NewDesc(Namespace+"_dledger_group_leader_index",
		"Position (0-based) of the agreed leader's id (see rocketmq_dledger_group_leader) in the sorted list of configured peer ids; changes() over it counts leader changes from stored history, across exporter restarts. Absent while there is no agreed leader.",
		dledgerGroupLabels, nil)
	dledgerPeersDesc = prometheus.NewDesc(Namespace+"_dledger_group_peers",
		"Peers configured in dLegerPeers (GET_BROKER_CONFIG); for a group reported from its last known peers (cluster mode, see rocketmq_dledger_group_has_leader), the last list read.",
		dledgerGroupLabels, nil)
	dledgerPeersUpDesc = prometheus.NewDesc(Namespace+"_dledger_group_peers_up",
		"Peers that answered METADATA (50000) in this scrape (0 for a group whose peers are all gone, reported for 15 minutes in cluster mode).",
		dledgerGroupLabels, nil)
	dledgerQuorumDesc = prometheus.NewDesc(Namespace+"_dledger_group_quorum",
		"1 if a majority of the configured peers answered METADATA (50000) in this scrape.",
		dledgerGroupLabels, nil)
	dledgerLeaderChangesDesc = prometheus.NewDesc(Namespace+"_dledger_leader_changes_total",
		"Leader changes this exporter observed since it started: the agreed leader (see rocketmq_dledger_group_has_leader) became another peer, or, with the term probe, the same peer in a higher term. The first leader seen is not a change.",
		dledgerGroupLabels, nil)
)

type dledgerCollector struct {
	logger    *slog.Logger
	termProbe bool
	tracker   *leaderTracker
	// recent are the groups a cluster-mode scrape saw lately, with their
	// peers, so a group whose members all left the scrape is still asked
	// about (see withVanished).
	recent *recentGroups[dledgerGroupKey, map[string]string]
}

func newDLedgerCollector(opts Options, logger *slog.Logger) (Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &dledgerCollector{
		logger:    logger,
		termProbe: opts.DLedgerTermProbe,
		tracker:   newLeaderTracker(leaderTrackerTTL, leaderTrackerMax),
		recent:    newRecentGroups[dledgerGroupKey, map[string]string](recentGroupsTTL, recentGroupsMax),
	}, nil
}

// withVanished remembers the groups of a cluster-mode scrape and adds the
// ones seen in the last recentGroupsTTL that no answering broker of this
// scrape belongs to any more (all members dead, or no longer listed by the
// NameServer). Their peers, as last read, are asked like any others, so a
// group that is really gone reports peers_up 0, quorum 0 and has_leader 0
// instead of vanishing from the output, while one the NameServer merely
// forgot for a moment still reports what its peers say. Their nodes have no
// per-node series: no broker of this scrape stands for them.
func (c *dledgerCollector) withVanished(groups []*dledgerGroup, now time.Time) []*dledgerGroup {
	present := make(map[dledgerGroupKey]bool, len(groups))
	for _, g := range groups {
		present[g.key] = true
		c.recent.remember(g.key, g.peers, now)
	}
	for key, peers := range c.recent.missing(now, present) {
		g := &dledgerGroup{key: key, peers: peers}
		for id := range peers {
			g.ids = append(g.ids, id)
		}
		slices.Sort(g.ids)
		groups = append(groups, g)
	}
	return groups
}

// dledgerGroupKey identifies one Raft group. The broker name is part of it
// because dLegerGroup names are only unique within a deployment by
// convention, and the series carry both.
type dledgerGroupKey struct {
	cluster, broker, group string
}

// dledgerNode is one broker of the scrape that runs DLedger.
type dledgerNode struct {
	b      *Broker
	selfID string
}

// dledgerGroup is what one scrape knows about a Raft group: its peers (from
// the configs of its up members in the scrape) and those members.
type dledgerGroup struct {
	key   dledgerGroupKey
	peers map[string]string // selfId → DLedger address
	ids   []string          // sorted peer ids
	nodes []dledgerNode
}

// dledgerPeerView is one peer's METADATA answer (and term) in this scrape.
type dledgerPeerView struct {
	md      *rocketmq.DLedgerMetadata
	err     error
	term    int64
	termErr error
}

// answered reports whether the peer gave a usable METADATA answer.
func (v *dledgerPeerView) answered() bool { return v != nil && v.err == nil }

// dledgerConfig extracts the DLedger settings of a broker; ok is false for
// brokers not running DLedger.
func dledgerConfig(cfg rocketmq.BrokerConfig) (group, selfID string, peers map[string]string, ok bool, err error) {
	if !dledgerEnabled(cfg) {
		return "", "", nil, false, nil
	}
	group = strings.TrimSpace(cfg["dLegerGroup"])
	selfID = strings.TrimSpace(cfg["dLegerSelfId"])
	if group == "" || selfID == "" {
		return "", "", nil, true, fmt.Errorf("enableDLegerCommitLog=true but dLegerGroup=%q dLegerSelfId=%q", group, selfID)
	}
	peers, err = parseDLedgerPeers(cfg["dLegerPeers"])
	if err != nil {
		return "", "", nil, true, err
	}
	if _, found := peers[selfID]; !found {
		return "", "", nil, true, fmt.Errorf("dLegerSelfId %q is not in dLegerPeers %q", selfID, cfg["dLegerPeers"])
	}
	return group, selfID, peers, true, nil
}

// dledgerEnabled reports whether the broker runs a DLedger commitlog
// (Java's Boolean.parseBoolean: case-insensitive "true").
func dledgerEnabled(cfg rocketmq.BrokerConfig) bool {
	return strings.EqualFold(strings.TrimSpace(cfg["enableDLegerCommitLog"]), "true")
}

// parseDLedgerPeers parses "n0-host:port;n1-host:port;…". DLedger itself
// splits each entry at the first '-' (the id may not contain one, the host
// may), so we do the same. Addresses are used as given: when the peers list
// names hosts the exporter reaches differently from the broker (a sidecar
// dialing 127.0.0.1 while the peers use pod DNS names), the peers entry is
// still what the other members use, so it is what we dial.
func parseDLedgerPeers(s string) (map[string]string, error) {
	peers := map[string]string{}
	for entry := range strings.SplitSeq(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, addr, found := strings.Cut(entry, "-")
		id, addr = strings.TrimSpace(id), strings.TrimSpace(addr)
		if !found || id == "" || addr == "" {
			return nil, fmt.Errorf("dLegerPeers entry %q is not <id>-<host:port>", entry)
		}
		if prev, dup := peers[id]; dup && prev != addr {
			return nil, fmt.Errorf("dLegerPeers lists %q twice (%s, %s)", id, prev, addr)
		}
		peers[id] = addr
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("dLegerPeers %q lists no peer", s)
	}
	return peers, nil
}

// dledgerGroups collects the DLedger groups of the scrape's up brokers.
// Members of one group normally share dLegerPeers; should they disagree, the
// first member (scrape order) wins for an id and the others only add ids,
// so one misconfigured node cannot hide the rest of the group.
func dledgerGroups(s *Scrape) ([]*dledgerGroup, []error) {
	var errs []error
	byKey := map[dledgerGroupKey]*dledgerGroup{}
	var out []*dledgerGroup
	for _, b := range s.UpBrokers() {
		group, selfID, peers, ok, err := dledgerConfig(b.Config)
		if !ok {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("dledger: %s/%s at %s: %w", b.Cluster, b.Name, b.Address, err))
			continue
		}
		key := dledgerGroupKey{cluster: b.Cluster, broker: b.Name, group: group}
		g := byKey[key]
		if g == nil {
			g = &dledgerGroup{key: key, peers: map[string]string{}}
			byKey[key] = g
			out = append(out, g)
		}
		for id, addr := range peers {
			if _, known := g.peers[id]; !known {
				g.peers[id] = addr
			}
		}
		g.nodes = append(g.nodes, dledgerNode{b: b, selfID: selfID})
	}
	for _, g := range out {
		for id := range g.peers {
			g.ids = append(g.ids, id)
		}
		slices.Sort(g.ids)
	}
	return out, errs
}

// probePeer is the peer named as leaderId in the term probe: the first peer
// in id order other than the target. Any known peer other than the target
// makes the target take the request as a stale heartbeat (code 403) without
// logging it as a bug; a fixed choice keeps the request the same every scrape.
func probePeer(ids []string, target string) string {
	for _, id := range ids {
		if id != target {
			return id
		}
	}
	return ""
}

// ask reads METADATA (and the term, when enabled) from every peer of every
// group, one request per peer, bounded by the scrape's concurrency.
func (c *dledgerCollector) ask(ctx context.Context, s *Scrape, groups []*dledgerGroup) ([]map[string]*dledgerPeerView, error) {
	views := make([]map[string]*dledgerPeerView, len(groups))
	var eg safeGroup
	eg.SetLimit(haConcurrency(s))
	for gi, g := range groups {
		views[gi] = make(map[string]*dledgerPeerView, len(g.ids))
		for _, id := range g.ids {
			v := &dledgerPeerView{term: -1}
			views[gi][id] = v
			addr := g.peers[id]
			eg.Go(func() error {
				md, err := s.Client.DLedgerMetadata(ctx, addr, g.key.group, id)
				if err == nil && md == nil {
					err = errEmptyAnswer
				}
				if err == nil && md.Code != 0 && md.Code != rocketmq.DLedgerSuccess {
					// 400/401: the peer does not know the group or the id
					// we took from the config, so that config is not what
					// the peer runs; its leaderId may be right, but nothing
					// else about the answer can be trusted.
					err = fmt.Errorf("METADATA answered DLedger code %d (group %q, remoteId %q unknown to the peer)", md.Code, g.key.group, id)
				}
				if err != nil {
					v.err = err
					return nil
				}
				v.md = md
				if c.termProbe {
					other := probePeer(g.ids, id)
					if other == "" {
						v.termErr = errors.New("term probe needs a second peer")
						return nil
					}
					term, err := s.Client.DLedgerTerm(ctx, addr, g.key.group, id, other)
					if err == nil && term < 0 {
						err = fmt.Errorf("term probe answered term %d", term)
					}
					if err != nil {
						v.termErr = err
						return nil
					}
					v.term = term
				}
				return nil
			})
		}
	}
	// A panicked read leaves a half-filled view, which would give wrong
	// leader series: the caller exports nothing from it.
	return views, eg.Wait()
}

// agreedLeader returns the peer that answers, names itself leader and is
// named by a majority of the configured peers (itself included), or "".
// The survivors of a dead leader keep naming it for a few seconds
// (dledger-failover t01–t03); requiring the named leader to answer and claim
// the role itself keeps has_leader honest in that window.
func agreedLeader(ids []string, views map[string]*dledgerPeerView) string {
	votes := map[string]int{}
	for _, id := range ids {
		if v := views[id]; v.answered() && v.md.LeaderID != "" {
			votes[v.md.LeaderID]++
		}
	}
	for _, id := range ids {
		v := views[id]
		if v.answered() && v.md.LeaderID == id && raftMajority(votes[id], len(ids)) {
			return id
		}
	}
	return ""
}

func raftMajority(n, of int) bool { return of > 0 && n > of/2 }

func (c *dledgerCollector) Update(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
	groups, errs := dledgerGroups(s)
	now := haNow(s)
	// Only a cluster-mode exporter sees whole groups come and go. A sidecar
	// whose own broker is down knows nothing of its group's other members
	// and must not claim the group has no leader.
	if s.Mode == ModeCluster {
		groups = c.withVanished(groups, now)
	}
	if len(groups) == 0 {
		return errors.Join(errs...)
	}
	views, err := c.ask(ctx, s, groups)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for gi, g := range groups {
		gv := views[gi]
		labels := []string{g.key.cluster, g.key.broker, g.key.group}
		up := 0
		for _, id := range g.ids {
			if gv[id].answered() {
				up++
			} else {
				c.logger.Debug("DLedger peer did not answer METADATA", "cluster", g.key.cluster, "broker", g.key.broker,
					"dledger_group", g.key.group, "peer", id, "dledger_address", g.peers[id], "err", gv[id].err)
			}
		}
		leader := agreedLeader(g.ids, gv)
		term := int64(-1)
		if leader != "" {
			term = gv[leader].term
		}
		changes := c.tracker.observe(g.key, now, leader, term)

		ch <- prometheus.MustNewConstMetric(dledgerPeersDesc, prometheus.GaugeValue, float64(len(g.ids)), labels...)
		ch <- prometheus.MustNewConstMetric(dledgerPeersUpDesc, prometheus.GaugeValue, float64(up), labels...)
		ch <- prometheus.MustNewConstMetric(dledgerQuorumDesc, prometheus.GaugeValue, boolValue(raftMajority(up, len(g.ids))), labels...)
		ch <- prometheus.MustNewConstMetric(dledgerHasLeaderDesc, prometheus.GaugeValue, boolValue(leader != ""), labels...)
		ch <- prometheus.MustNewConstMetric(dledgerLeaderChangesDesc, prometheus.CounterValue, changes, labels...)
		if leader != "" {
			// A gauge of the leader's identity whose history lives in
			// Prometheus: unlike the counter it needs no exporter state, and
			// unlike per-node role series every change moves it exactly once.
			ch <- prometheus.MustNewConstMetric(dledgerGroupLeaderDesc, prometheus.GaugeValue, 1, append(slices.Clone(labels), leader)...)
			ch <- prometheus.MustNewConstMetric(dledgerGroupLeaderIndexDesc, prometheus.GaugeValue, float64(slices.Index(g.ids, leader)), labels...)
		}

		for _, n := range g.nodes {
			v := gv[n.selfID]
			dlAddr := g.peers[n.selfID]
			if !v.answered() {
				// No role series rather than "candidate": a closed port
				// says nothing about the election, and a made-up role
				// would page someone for the wrong reason.
				errs = append(errs, fmt.Errorf("dledger: %s/%s %s (%s): METADATA to %s failed, role not reported: %w",
					n.b.Cluster, n.b.Name, n.selfID, n.b.Address, dlAddr, v.err))
				continue
			}
			nodeLabels := []string{n.b.Cluster, n.b.Name, n.b.Address, g.key.group, n.selfID}
			role := "candidate"
			switch v.md.LeaderID {
			case "":
			case n.selfID:
				role = "leader"
			default:
				role = "follower"
			}
			for _, r := range dledgerRoles {
				ch <- prometheus.MustNewConstMetric(dledgerRoleDesc, prometheus.GaugeValue, boolValue(r == role), append(nodeLabels, r)...)
			}
			if v.md.LeaderID != "" {
				ch <- prometheus.MustNewConstMetric(dledgerLeaderDesc, prometheus.GaugeValue, 1,
					n.b.Cluster, n.b.Name, n.b.Address, g.key.group, v.md.LeaderID)
			}
			if c.termProbe {
				if v.termErr != nil {
					errs = append(errs, fmt.Errorf("dledger: %s/%s %s (%s): term probe to %s failed: %w",
						n.b.Cluster, n.b.Name, n.selfID, n.b.Address, dlAddr, v.termErr))
					continue
				}
				ch <- prometheus.MustNewConstMetric(dledgerTermDesc, prometheus.GaugeValue, float64(v.term), nodeLabels...)
			}
		}
	}
	c.tracker.expire(now)
	return errors.Join(errs...)
}

// haConcurrency is the scrape's fan-out bound.
func haConcurrency(s *Scrape) int {
	if s.Concurrency > 0 {
		return s.Concurrency
	}
	return DefaultConcurrency
}

// haNow is the scrape's reference time, or the wall clock when the
// Scrape was built without one.
func haNow(s *Scrape) time.Time {
	if s.Now.IsZero() {
		return time.Now()
	}
	return s.Now
}

const (
	// leaderTrackerTTL is how long a group's last leader is remembered
	// without being seen: long enough to span a broker restart or a long
	// NameServer outage, so the change is still counted once it is visible
	// again.
	leaderTrackerTTL = 24 * time.Hour
	// leaderTrackerMax bounds the state of an exporter pointed at a huge or
	// churning deployment; the least recently seen groups go first.
	leaderTrackerMax = 4096
)

// leaderTracker remembers, per Raft group, the last agreed leader this
// exporter saw and how often it changed. Scrapes may run concurrently and
// finish out of order; an observation older than the last one recorded is
// not applied, nor is one with the same time, so a slow scrape cannot flip
// the leader back and count a change twice.
type leaderTracker struct {
	ttl time.Duration
	max int

	mu     sync.Mutex
	groups map[dledgerGroupKey]*leaderState
}

type leaderState struct {
	leader  string
	term    int64 // -1 when unknown
	changes float64
	at      time.Time // time of the last applied observation
	seen    time.Time // last scrape that saw the group at all
}

func newLeaderTracker(ttl time.Duration, max int) *leaderTracker {
	return &leaderTracker{ttl: ttl, max: max, groups: map[dledgerGroupKey]*leaderState{}}
}

// observe records the agreed leader ("" = none) and its term (-1 = unknown)
// seen at time at, and returns the number of changes so far.
func (t *leaderTracker) observe(key dledgerGroupKey, at time.Time, leader string, term int64) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.groups[key]
	if st == nil {
		st = &leaderState{term: -1}
		t.groups[key] = st
	}
	if at.After(st.seen) {
		st.seen = at
	}
	if leader == "" {
		// Without an agreed leader there is nothing to compare; keeping the
		// previous leader means n1 → (no leader) → n1 is no change, while
		// n1 → (no leader) → n2 is exactly one.
		return st.changes
	}
	if st.leader != "" && !at.After(st.at) {
		// Not newer than what was applied: a slow scrape finishing late, or
		// one with the same reference time (coarse clocks) that may have
		// seen the other side of a failover. Either way it cannot be
		// ordered, so it must not flip the leader back and count twice.
		return st.changes
	}
	switch {
	case st.leader == "":
	case leader != st.leader:
		st.changes++
	case term >= 0 && st.term >= 0 && term > st.term:
		// Same node, newer term: it lost the leadership and won it back.
		st.changes++
	}
	if leader != st.leader || term >= 0 {
		st.term = term
	}
	st.leader = leader
	st.at = at
	return st.changes
}

// expire forgets groups unseen for longer than the TTL and, above the size
// bound, the least recently seen ones.
func (t *leaderTracker) expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	forget(t.groups, now, t.ttl, t.max, func(st *leaderState) time.Time { return st.seen })
}
