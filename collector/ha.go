package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// The HA collector reports master/slave replication: per group (cluster mode)
// whether a master answers and how many slaves, each slave's lag in bytes
// from GET_BROKER_RUNTIME_INFO, the 5.x broker HA status (907) and the 5.x
// controller's sync-state data. See docs/ha.md for what a sidecar can see.

var (
	haGroupLabels = []string{"cluster", "broker"}

	haMasterPresentDesc = prometheus.NewDesc(Namespace+"_ha_group_master_present",
		"1 if a member of the group answering GET_BROKER_CONFIG is its master (brokerId 0, or brokerRole ASYNC_MASTER/SYNC_MASTER where the id is not live), 0 otherwise, also for 15 minutes after the NameServer stopped listing the group. Absent (unknown) while no member answers as master and a member the NameServer lists as brokerId 0 did not answer. Cluster mode only.",
		haGroupLabels, nil)
	haMastersDesc = prometheus.NewDesc(Namespace+"_ha_group_masters",
		"Members of the group answering GET_BROKER_CONFIG as its master, by the rule of rocketmq_ha_group_master_present and present exactly when it is; more than 1 is a split brain. Cluster mode only.",
		haGroupLabels, nil)
	haSlavesDesc = prometheus.NewDesc(Namespace+"_ha_group_slaves",
		"Members of the group answering GET_BROKER_CONFIG as slaves (DLedger followers included); 0 for 15 minutes after the NameServer stopped listing the group. Cluster mode only.",
		haGroupLabels, nil)
	haReplicationLagDesc = prometheus.NewDesc(Namespace+"_ha_replication_lag_bytes",
		"Master commitLogMaxOffset minus this slave's (GET_BROKER_RUNTIME_INFO, both read in this scrape; negative differences from read timing are 0). Only while the scrape has exactly one member answering as master of the group and this slave answers too (cluster mode, or a sidecar given every node of the group).",
		brokerLabelNames(), nil)
	haInSyncSlavesDesc = prometheus.NewDesc(Namespace+"_ha_in_sync_slaves",
		"Slaves the master counts as in sync (5.x GET_BROKER_HA_STATUS 907 inSyncSlaveNums).",
		brokerLabelNames(), nil)
	haSlaveConnectionsDesc = prometheus.NewDesc(Namespace+"_ha_slave_connections",
		"HA connections from slaves on this master (5.x GET_BROKER_HA_STATUS 907 haConnectionInfo).",
		brokerLabelNames(), nil)
	haSlaveAckLagMaxDesc = prometheus.NewDesc(Namespace+"_ha_slave_ack_lag_max_bytes",
		"Largest diff (bytes not yet acknowledged) among the slave HA connections of this master (5.x GET_BROKER_HA_STATUS 907); absent without connections.",
		brokerLabelNames(), nil)
	haSlaveHasMasterDesc = prometheus.NewDesc(Namespace+"_ha_slave_has_master",
		"1 if this 5.x slave's HA client has a master to replicate from (GET_BROKER_HA_STATUS 907 haClientRuntimeInfo.masterAddr set), 0 if not.",
		brokerLabelNames(), nil)
	controllerMasterEpochDesc = prometheus.NewDesc(Namespace+"_controller_master_epoch",
		"masterEpoch of the group in the 5.x controller's sync-state data (CONTROLLER_GET_SYNC_STATE_DATA 1006); it increases by one at every master change.",
		haGroupLabels, nil)
	controllerInSyncReplicasDesc = prometheus.NewDesc(Namespace+"_controller_in_sync_replicas",
		"Replicas in the group's sync-state set according to the 5.x controller (CONTROLLER_GET_SYNC_STATE_DATA 1006).",
		haGroupLabels, nil)
)

// haUnsupportedTTL is how long a broker that answered 907 with "not
// supported" is left alone. Long enough that a 4.9 fleet costs one request
// per broker per TTL, short enough that an upgraded broker is picked up.
const haUnsupportedTTL = 10 * time.Minute

type haCollector struct {
	logger *slog.Logger
	// recent are the groups this cluster-mode exporter saw lately, so a
	// group that vanishes from the NameServer reports "no master" rather
	// than nothing.
	recent *recentGroups[haGroupKey, struct{}]

	mu          sync.Mutex
	unsupported map[string]time.Time // dialed address → ask again after
}

func newHACollector(_ Options, logger *slog.Logger) (Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &haCollector{
		logger:      logger,
		recent:      newRecentGroups[haGroupKey, struct{}](recentGroupsTTL, recentGroupsMax),
		unsupported: map[string]time.Time{},
	}, nil
}

const (
	// recentGroupsTTL is how long a cluster-mode exporter keeps reporting a
	// group that left the scrape: long enough for "== 0" alerts with a
	// generous for: to fire on a total outage, short enough that a
	// decommissioned group stops alerting on its own.
	recentGroupsTTL = 15 * time.Minute
	// recentGroupsMax bounds that memory; the least recently seen go first.
	recentGroupsMax = 4096
)

// recentGroups remembers, per group, when a scrape last saw it and what it
// knew of it then. Without it a group disappears from the output exactly when
// it dies completely — every member gone from the NameServer — and alerts on
// "== 0" never fire. Safe for concurrent scrapes.
type recentGroups[K comparable, V any] struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[K]*recentGroup[V]
}

type recentGroup[V any] struct {
	v    V
	seen time.Time
}

func newRecentGroups[K comparable, V any](ttl time.Duration, max int) *recentGroups[K, V] {
	return &recentGroups[K, V]{ttl: ttl, max: max, m: map[K]*recentGroup[V]{}}
}

// remember records that a scrape at time at saw group k, with v. A scrape
// older than the last one recorded does not overwrite it.
func (r *recentGroups[K, V]) remember(k K, v V, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[k]
	if e == nil {
		e = &recentGroup[V]{}
		r.m[k] = e
	} else if at.Before(e.seen) {
		return
	}
	e.v, e.seen = v, at
}

// missing forgets the groups unseen for longer than the TTL (and, above the
// size bound, the least recently seen) and returns the remaining ones that
// present does not contain.
func (r *recentGroups[K, V]) missing(now time.Time, present map[K]bool) map[K]V {
	r.mu.Lock()
	defer r.mu.Unlock()
	forget(r.m, now, r.ttl, r.max, func(e *recentGroup[V]) time.Time { return e.seen })
	out := map[K]V{}
	for k, e := range r.m {
		if !present[k] {
			out[k] = e.v
		}
	}
	return out
}

// haRole classifies a node that answered: "master", "slave" or "" (no role
// yet). A non-negative brokerId is live (DLedger and plain master/slave
// rewrite or fix it), so it decides. A negative id means the id is not live:
// a 4.9 DLedger node before its first election has no role at all, while a
// 5.x controller-mode broker always shows -1 in its config and its live
// brokerRole is what the controller made it.
func haRole(b *Broker) string {
	switch {
	case b.ID == 0:
		return "master"
	case b.ID > 0:
		return "slave"
	}
	if dledgerEnabled(b.Config) {
		return ""
	}
	switch b.Role {
	case "ASYNC_MASTER", "SYNC_MASTER":
		return "master"
	case "SLAVE":
		return "slave"
	}
	return ""
}

type haGroupKey struct{ cluster, broker string }

type haGroup struct {
	key     haGroupKey
	masters []*Broker
	slaves  []*Broker
	// listedMasterDown: the NameServer lists a member as brokerId 0 that
	// did not answer, so "no master" cannot be told from "unknown".
	listedMasterDown bool
}

// haGroups groups every broker of the scrape, answering or not, so a group
// whose members are all down still reports master_present 0.
func haGroups(s *Scrape) []*haGroup {
	byKey := map[haGroupKey]*haGroup{}
	var out []*haGroup
	for _, b := range s.Brokers {
		if b.Name == "" {
			continue // a sidecar target that never answered: no group known
		}
		k := haGroupKey{b.Cluster, b.Name}
		g := byKey[k]
		if g == nil {
			g = &haGroup{key: k}
			byKey[k] = g
			out = append(out, g)
		}
		if !b.Up() {
			// Only Resolve's NameServer entry is known of a node that did
			// not answer; in sidecar mode its id stays -1.
			g.listedMasterDown = g.listedMasterDown || b.ID == 0
			continue
		}
		switch haRole(b) {
		case "master":
			g.masters = append(g.masters, b)
		case "slave":
			g.slaves = append(g.slaves, b)
		}
	}
	return out
}

// majorVersion reads the major release from text such as "V4_9_7"; 0 when
// unknown.
func majorVersion(v string) int {
	v = strings.TrimPrefix(strings.ToUpper(v), "V")
	head, _, _ := strings.Cut(v, "_")
	n, err := strconv.Atoi(head)
	if err != nil {
		return 0
	}
	return n
}

// askHA reports whether to send 907 to b this scrape. A broker that
// recently answered "not supported" is left alone; one whose runtime info
// (read once per scrape and shared with the broker collector) names a 4.x
// version is never asked, since 907 only exists from 5.0 on. When the
// version is unknown (the runtime read failed) the broker is asked, and the
// not-supported cache keeps that to one request per TTL.
func (c *haCollector) askHA(ctx context.Context, s *Scrape, b *Broker, now time.Time) bool {
	c.mu.Lock()
	until, known := c.unsupported[b.Addr]
	c.mu.Unlock()
	if known && now.Before(until) {
		return false
	}
	ri, err := s.RuntimeInfo(ctx, b)
	if err != nil {
		// A runtime read that outlived the scrape leaves no time for 907
		// either; that read's failure is the broker collector's to report.
		return ctx.Err() == nil
	}
	if m := majorVersion(ri[keyVersionDesc]); m > 0 && m < 5 {
		return false
	}
	return true
}

// markUnsupported remembers that b does not serve 907, logging once per TTL.
func (c *haCollector) markUnsupported(b *Broker, now time.Time, err error) {
	c.mu.Lock()
	c.unsupported[b.Addr] = now.Add(haUnsupportedTTL)
	c.mu.Unlock()
	c.logger.Debug("broker does not serve GET_BROKER_HA_STATUS (907); not asking again for a while",
		"address", b.Addr, "cluster", b.Cluster, "broker", b.Name, "retry_after", haUnsupportedTTL, "err", err)
}

func (c *haCollector) expireUnsupported(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, until := range c.unsupported {
		if !now.Before(until) {
			delete(c.unsupported, addr)
		}
	}
}

// haNotServed reports whether a 907 failure means "this broker has no HA
// status to give" rather than a failed read: code 3 (4.9, unknown request)
// or the 5.x SYSTEM_ERROR for brokers running with duplicationEnable.
func haNotServed(err error) bool {
	if rocketmq.IsNotSupported(err) {
		return true
	}
	var re *rocketmq.ResponseError
	return errors.As(err, &re) && re.Code == rocketmq.ResponseSystemError && strings.Contains(re.Remark, "HARuntimeInfo")
}

// controllerSet is the brokers that name the same controllers.
type controllerSet struct {
	addrs   []string
	names   []string          // broker names, sorted
	cluster map[string]string // broker name → cluster label
}

func controllerSets(s *Scrape) []*controllerSet {
	byAddr := map[string]*controllerSet{}
	var out []*controllerSet
	for _, b := range s.UpBrokers() {
		if !strings.EqualFold(strings.TrimSpace(b.Config["enableControllerMode"]), "true") {
			continue
		}
		var addrs []string
		for a := range strings.SplitSeq(b.Config["controllerAddr"], ";") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		key := strings.Join(addrs, ";")
		cs := byAddr[key]
		if cs == nil {
			cs = &controllerSet{addrs: addrs, cluster: map[string]string{}}
			byAddr[key] = cs
			out = append(out, cs)
		}
		if _, seen := cs.cluster[b.Name]; !seen {
			cs.cluster[b.Name] = b.Cluster
			cs.names = append(cs.names, b.Name)
		}
	}
	for _, cs := range out {
		slices.Sort(cs.names)
	}
	return out
}

// controllerLeader finds the controller leader's address by asking the
// configured controllers in order (1005 works on any of them).
func controllerLeader(ctx context.Context, client Client, addrs []string) (string, error) {
	var errs []error
	for _, a := range addrs {
		md, err := client.ControllerMetadata(ctx, a)
		if err == nil && md == nil {
			err = errEmptyAnswer
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a, err))
			continue
		}
		if md.IsLeader {
			return a, nil
		}
		if md.ControllerLeaderAddress != "" {
			return md.ControllerLeaderAddress, nil
		}
		errs = append(errs, fmt.Errorf("%s: knows no controller leader", a))
	}
	return "", errors.Join(errs...)
}

// haResults is everything one scrape read, filled concurrently, each slot
// written by one goroutine only.
type haResults struct {
	maxOffset map[*Broker]*offsetRead
	status    map[*Broker]*haStatusRead
	sync      []rocketmq.SyncStateData
	syncErr   []error
}

type offsetRead struct {
	offset int64
	err    error
}

type haStatusRead struct {
	skipped bool // not asked this scrape (see askHA)
	info    *rocketmq.HARuntimeInfo
	err     error
}

func commitLogMaxOffset(ri rocketmq.RuntimeInfo) (int64, error) {
	v, ok := ri["commitLogMaxOffset"]
	if !ok {
		return 0, errors.New("no commitLogMaxOffset in runtime info")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("commitLogMaxOffset %q: %w", v, err)
	}
	return n, nil
}

// sendVanished remembers the groups of this cluster-mode scrape and reports
// the ones seen in the last recentGroupsTTL that the NameServer no longer
// lists at all: no master, no slaves. Without a NameServer answer nothing is
// known about any group, so nothing is claimed.
func (c *haCollector) sendVanished(s *Scrape, groups []*haGroup, now time.Time, ch chan<- prometheus.Metric) {
	if s.ClusterInfo == nil {
		return
	}
	present := make(map[haGroupKey]bool, len(groups))
	for _, g := range groups {
		present[g.key] = true
		c.recent.remember(g.key, struct{}{}, now)
	}
	for k := range c.recent.missing(now, present) {
		labels := []string{k.cluster, k.broker}
		ch <- prometheus.MustNewConstMetric(haMasterPresentDesc, prometheus.GaugeValue, 0, labels...)
		ch <- prometheus.MustNewConstMetric(haMastersDesc, prometheus.GaugeValue, 0, labels...)
		ch <- prometheus.MustNewConstMetric(haSlavesDesc, prometheus.GaugeValue, 0, labels...)
	}
}

func (c *haCollector) Update(ctx context.Context, s *Scrape, ch chan<- prometheus.Metric) error {
	now := haNow(s)
	groups := haGroups(s)
	csets := controllerSets(s)
	res := haResults{
		maxOffset: map[*Broker]*offsetRead{},
		status:    map[*Broker]*haStatusRead{},
		sync:      make([]rocketmq.SyncStateData, len(csets)),
		syncErr:   make([]error, len(csets)),
	}

	var eg safeGroup
	eg.SetLimit(haConcurrency(s))
	// Replication lag needs the master's and the slaves' offsets from the
	// same scrape; the runtime info is shared with the broker collector
	// through the scrape's memo, so no node is asked twice.
	for _, g := range groups {
		if len(g.masters) != 1 || len(g.slaves) == 0 {
			continue
		}
		for _, b := range append([]*Broker{g.masters[0]}, g.slaves...) {
			r := &offsetRead{}
			res.maxOffset[b] = r
			eg.Go(func() error {
				ri, err := s.RuntimeInfo(ctx, b)
				if err == nil {
					r.offset, err = commitLogMaxOffset(ri)
				}
				r.err = err
				return nil
			})
		}
	}
	for _, b := range s.UpBrokers() {
		r := &haStatusRead{}
		res.status[b] = r
		eg.Go(func() error {
			if !c.askHA(ctx, s, b, now) {
				r.skipped = true
				return nil
			}
			info, err := s.Client.BrokerHAStatus(ctx, b.Addr)
			if err == nil && info == nil {
				err = errEmptyAnswer
			}
			r.info, r.err = info, err
			return nil
		})
	}
	for i, cs := range csets {
		eg.Go(func() error {
			leader, err := controllerLeader(ctx, s.Client, cs.addrs)
			if err != nil {
				res.syncErr[i] = fmt.Errorf("no controller leader: %w", err)
				return nil
			}
			data, err := s.Client.ControllerSyncStateData(ctx, leader, cs.names)
			if err != nil {
				res.syncErr[i] = fmt.Errorf("CONTROLLER_GET_SYNC_STATE_DATA to %s: %w", leader, err)
				return nil
			}
			res.sync[i] = data
			return nil
		})
	}
	// A read that panicked left its result empty without an error: using
	// it would report a master's whole offset as replication lag.
	if err := eg.Wait(); err != nil {
		return err
	}

	var errs []error
	// A sidecar sees only its own node, so it cannot tell whether its group
	// has a master or how many slaves: those are cluster mode's. It must not
	// remember groups either: its broker being down says nothing about the
	// rest of the group.
	if s.Mode == ModeCluster {
		c.sendVanished(s, groups, now, ch)
	}
	for _, g := range groups {
		labels := []string{g.key.cluster, g.key.broker}
		if s.Mode == ModeCluster {
			if len(g.masters) > 0 || !g.listedMasterDown {
				ch <- prometheus.MustNewConstMetric(haMasterPresentDesc, prometheus.GaugeValue, boolValue(len(g.masters) > 0), labels...)
				ch <- prometheus.MustNewConstMetric(haMastersDesc, prometheus.GaugeValue, float64(len(g.masters)), labels...)
			} else {
				c.logger.Debug("master presence unknown: the member listed as master did not answer GET_BROKER_CONFIG",
					"cluster", g.key.cluster, "broker", g.key.broker)
			}
			ch <- prometheus.MustNewConstMetric(haSlavesDesc, prometheus.GaugeValue, float64(len(g.slaves)), labels...)
		}
		if len(g.masters) != 1 || len(g.slaves) == 0 {
			continue
		}
		m := g.masters[0]
		mr := res.maxOffset[m]
		if mr.err != nil {
			errs = append(errs, fmt.Errorf("ha: master %s/%s at %s: GET_BROKER_RUNTIME_INFO: %w", m.Cluster, m.Name, m.Address, mr.err))
			continue
		}
		for _, sl := range g.slaves {
			sr := res.maxOffset[sl]
			if sr.err != nil {
				errs = append(errs, fmt.Errorf("ha: slave %s/%s at %s: GET_BROKER_RUNTIME_INFO: %w", sl.Cluster, sl.Name, sl.Address, sr.err))
				continue
			}
			lag := max(mr.offset-sr.offset, 0)
			ch <- prometheus.MustNewConstMetric(haReplicationLagDesc, prometheus.GaugeValue, float64(lag), sl.LabelValues()...)
		}
	}

	for _, b := range s.UpBrokers() {
		r := res.status[b]
		if r == nil || r.skipped {
			continue
		}
		if r.err != nil {
			if haNotServed(r.err) {
				c.markUnsupported(b, now, r.err)
				continue
			}
			errs = append(errs, fmt.Errorf("ha: %s/%s at %s: GET_BROKER_HA_STATUS: %w", b.Cluster, b.Name, b.Address, r.err))
			continue
		}
		lv := b.LabelValues()
		info := r.info
		if info.Master {
			ch <- prometheus.MustNewConstMetric(haInSyncSlavesDesc, prometheus.GaugeValue, float64(info.InSyncSlaveNums), lv...)
			ch <- prometheus.MustNewConstMetric(haSlaveConnectionsDesc, prometheus.GaugeValue, float64(len(info.HAConnectionInfo)), lv...)
			if len(info.HAConnectionInfo) > 0 {
				worst := info.HAConnectionInfo[0].Diff
				for _, hc := range info.HAConnectionInfo[1:] {
					worst = max(worst, hc.Diff)
				}
				ch <- prometheus.MustNewConstMetric(haSlaveAckLagMaxDesc, prometheus.GaugeValue, float64(max(worst, 0)), lv...)
			}
		} else if info.HAClientRuntimeInfo != nil {
			ch <- prometheus.MustNewConstMetric(haSlaveHasMasterDesc, prometheus.GaugeValue, boolValue(info.HAClientRuntimeInfo.MasterAddr != ""), lv...)
		}
	}

	for i, cs := range csets {
		if err := res.syncErr[i]; err != nil {
			errs = append(errs, fmt.Errorf("ha: controller %s for %s: %w", strings.Join(cs.addrs, ";"), strings.Join(cs.names, ","), err))
			continue
		}
		for _, name := range cs.names {
			st, ok := res.sync[i][name]
			if !ok {
				// Not registered with the controller (yet): nothing to say,
				// and not this scrape's failure.
				c.logger.Debug("controller has no sync-state data for the group", "broker", name, "controller", strings.Join(cs.addrs, ";"))
				continue
			}
			labels := []string{cs.cluster[name], name}
			ch <- prometheus.MustNewConstMetric(controllerMasterEpochDesc, prometheus.GaugeValue, float64(st.MasterEpoch), labels...)
			ch <- prometheus.MustNewConstMetric(controllerInSyncReplicasDesc, prometheus.GaugeValue, float64(len(st.InSyncMembers)), labels...)
		}
	}

	c.expireUnsupported(now)
	return errors.Join(errs...)
}
