package collector

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

// The failover walked through over the real protocol: rocketmq.Admin against
// the simulated cluster (rmqsim), which reproduces the recorded DLedger
// failover. Manual timing makes each step explicit: the leader is killed
// (the NameServer drops it at once, the survivors keep naming it), the
// election names n2, n2's broker becomes brokerId 0, n1 restarts and rejoins
// as a follower. A cluster-mode exporter and three sidecars, each with its
// own collectors, scrape after every step.

// simExporter is one exporter: its targets and its own collector state.
type simExporter struct {
	name    string
	targets Targets
	dl, ha  Collector
}

func newSimExporter(t *testing.T, name string, targets Targets, termProbe bool) *simExporter {
	t.Helper()
	dl, err := newDLedgerCollector(Options{DLedgerTermProbe: termProbe}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ha, err := newHACollector(Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &simExporter{name: name, targets: targets, dl: dl, ha: ha}
}

// scrape runs Resolve and both collectors once, as the exporter does, with a
// scrape deadline.
func (e *simExporter) scrape(t *testing.T, client Client) (dl, ha map[string]float64, dlErr, haErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := Resolve(ctx, client, e.targets, nil)
	dl, dlErr = seriesCtx(t, ctx, e.dl, s)
	ha, haErr = seriesCtx(t, ctx, e.ha, s)
	return dl, ha, dlErr, haErr
}

// verifyNoLeaks checks, after every cleanup of the test (the simulated
// cluster and the client are closed in cleanups registered later, which run
// first), that no goroutine outlives the test.
func verifyNoLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func startSim(t *testing.T, spec rmqsim.Spec) (*rmqsim.Cluster, *rocketmq.Admin) {
	t.Helper()
	sim, err := rmqsim.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	client := rocketmq.NewClient(rocketmq.ClientOptions{DialTimeout: time.Second})
	t.Cleanup(func() {
		_ = client.Close()
		sim.Close()
	})
	return sim, rocketmq.NewAdmin(client)
}

func TestFailoverSimulatedDLedger(t *testing.T) {
	verifyNoLeaks(t)
	sim, admin := startSim(t, rmqsim.Spec{
		Version: rmqsim.V4_9_7,
		Groups: []rmqsim.GroupSpec{
			{Cluster: raftCluster, Name: raftGroup, Mode: rmqsim.DLedger, Replicas: 3, Leader: 1},
			{Cluster: "MSCluster", Name: "broker-b", Mode: rmqsim.MasterSlave, Replicas: 2},
		},
		Timing: rmqsim.Timing{Manual: true},
	})
	nodes := map[string]*rmqsim.Node{}
	addrs := map[string]string{}
	for _, n := range sim.Group(raftGroup) {
		nodes[n.SelfID()] = n
		addrs[n.SelfID()] = n.Addr()
	}
	ms := sim.Group("broker-b")
	// The commitlog must be longer than the lag for the slave to trail it.
	if err := sim.CreateTopic("broker-b", "TopicMS", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Produce("TopicMS", 200); err != nil {
		t.Fatal(err)
	}
	ms[1].SetReplicationLag(4096)

	cluster := newSimExporter(t, "cluster", Targets{Mode: ModeCluster, NameServers: sim.NameServerAddrs()}, true)
	sidecars := map[string]*simExporter{}
	for id, n := range nodes {
		sidecars[id] = newSimExporter(t, "sidecar "+id, Targets{Mode: ModeSidecar, Brokers: []string{n.Addr()}}, false)
	}

	all := []string{"n0", "n1", "n2"}
	survivors := []string{"n0", "n2"}
	roles := func(leader string, ids ...string) map[string]string {
		m := map[string]string{}
		for _, id := range ids {
			m[id] = "follower"
			if id == leader {
				m[id] = "leader"
			}
		}
		return m
	}
	naming := func(leader string, ids ...string) map[string]string {
		m := map[string]string{}
		for _, id := range ids {
			m[id] = leader
		}
		return m
	}
	msSeries := map[string]float64{
		sk("rocketmq_ha_group_master_present", "cluster", "MSCluster", "broker", "broker-b"):                           1,
		sk("rocketmq_ha_group_masters", "cluster", "MSCluster", "broker", "broker-b"):                                  1,
		sk("rocketmq_ha_group_slaves", "cluster", "MSCluster", "broker", "broker-b"):                                   1,
		sk("rocketmq_ha_replication_lag_bytes", "cluster", "MSCluster", "broker", "broker-b", "address", ms[1].Addr()): 4096,
	}

	startTerm := sim.Term(raftGroup)
	steps := []struct {
		name   string
		action func(t *testing.T)
		st     failoverStep
		term   int64 // expected term on every answering node, relative to the start
	}{
		{"before", func(*testing.T) {}, failoverStep{roles: roles("n1", all...), names: naming("n1", all...), inNS: all,
			peersUp: 3, leader: true, changes: 0, master: 1, slaves: 2, lag: map[string]float64{"n0": 0, "n2": 0}}, 0},
		{"leader killed", func(t *testing.T) {
			if n, err := sim.KillLeader(raftGroup); err != nil || n.SelfID() != "n1" {
				t.Fatalf("KillLeader: %v, %v", n, err)
			}
		}, failoverStep{roles: roles("", survivors...), names: naming("n1", survivors...), inNS: survivors,
			peersUp: 2, leader: false, changes: 0, master: 0, slaves: 2}, 0},
		{"elected", func(t *testing.T) {
			if err := sim.Elect(raftGroup, "n2"); err != nil {
				t.Fatal(err)
			}
		}, failoverStep{roles: roles("n2", survivors...), names: naming("n2", survivors...), inNS: survivors,
			peersUp: 2, leader: true, changes: 1, master: 0, slaves: 2}, 1},
		{"promoted", func(t *testing.T) {
			if err := sim.Promote(raftGroup); err != nil {
				t.Fatal(err)
			}
		}, failoverStep{roles: roles("n2", survivors...), names: naming("n2", survivors...), inNS: survivors,
			peersUp: 2, leader: true, changes: 1, master: 1, slaves: 1, lag: map[string]float64{"n0": 0}}, 1},
		{"rejoined", func(t *testing.T) {
			if err := nodes["n1"].Restart(); err != nil {
				t.Fatal(err)
			}
			sim.RegisterNow(nodes["n1"])
		}, failoverStep{roles: roles("n2", all...), names: naming("n2", all...), inNS: all,
			peersUp: 3, leader: true, changes: 1, master: 1, slaves: 2, lag: map[string]float64{"n0": 0, "n1": 0}}, 1},
	}

	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.action(t)
			st := step.st

			dl, ha, dlErr, haErr := cluster.scrape(t, admin)
			if dlErr != nil || haErr != nil {
				t.Errorf("cluster: errors %v / %v", dlErr, haErr)
			}
			want := st.wantDLedger(st.inNS, addrs)
			for _, id := range st.inNS {
				want[sk("rocketmq_dledger_term", "cluster", raftCluster, "broker", raftGroup, "address", addrs[id],
					"dledger_group", raftGroup, "self_id", id)] = float64(startTerm + step.term)
			}
			if d := diffSeries(dl, want); d != "" {
				t.Errorf("cluster dledger:\n%s", d)
			}
			wantHA := st.wantHACluster(addrs)
			for k, v := range msSeries {
				wantHA[k] = v
			}
			if d := diffSeries(ha, wantHA); d != "" {
				t.Errorf("cluster ha:\n%s", d)
			}

			for id, sc := range sidecars {
				var view []string
				if _, up := st.roles[id]; up {
					view = []string{id}
				}
				dl, ha, dlErr, haErr := sc.scrape(t, admin)
				if dlErr != nil || haErr != nil {
					t.Errorf("%s: errors %v / %v", sc.name, dlErr, haErr)
				}
				if d := diffSeries(dl, st.wantDLedger(view, addrs)); d != "" {
					t.Errorf("%s dledger:\n%s", sc.name, d)
				}
				if len(ha) != 0 {
					t.Errorf("%s ha: a 4.9 sidecar has no HA series of its own, got %v", sc.name, ha)
				}
			}
		})
	}
}

// A 5.0 controller-mode group over the real protocol: master killed, the
// controller elects another (masterEpoch + 1), the in-sync set shrinks, the
// old master rejoins as a slave and the set grows back.
func TestFailoverSimulatedController(t *testing.T) {
	verifyNoLeaks(t)
	const group = "broker-c"
	sim, admin := startSim(t, rmqsim.Spec{
		Version: rmqsim.V5_0_0,
		Groups:  []rmqsim.GroupSpec{{Cluster: "CtrlCluster", Name: group, Mode: rmqsim.Controller, Replicas: 3, Leader: 2}},
		Timing:  rmqsim.Timing{Manual: true},
	})
	nodes := sim.Group(group)
	cluster := newSimExporter(t, "cluster", Targets{Mode: ModeCluster, NameServers: sim.NameServerAddrs()}, false)
	g := []string{"cluster", "CtrlCluster", "broker", group}
	epoch0 := sim.MasterEpoch(group)

	check := func(t *testing.T, epoch int64, isr, slaves float64, master *rmqsim.Node) {
		t.Helper()
		_, ha, _, err := cluster.scrape(t, admin)
		if err != nil {
			t.Errorf("ha: %v", err)
		}
		for k, v := range map[string]float64{
			sk("rocketmq_controller_master_epoch", g...):                                           float64(epoch),
			sk("rocketmq_controller_in_sync_replicas", g...):                                       isr,
			sk("rocketmq_ha_group_master_present", g...):                                           1,
			sk("rocketmq_ha_group_slaves", g...):                                                   slaves,
			sk("rocketmq_ha_in_sync_slaves", append(slices.Clone(g), "address", master.Addr())...): isr - 1,
		} {
			if got, ok := ha[k]; !ok || got != v {
				t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
			}
		}
		for k := range ha {
			if strings.HasPrefix(k, "rocketmq_ha_in_sync_slaves{") && !strings.Contains(k, master.Addr()) {
				t.Errorf("in-sync slaves reported by a non-master: %s", k)
			}
		}
	}

	t.Run("before", func(t *testing.T) { check(t, epoch0, 3, 2, nodes[2]) })
	t.Run("master killed, new master elected", func(t *testing.T) {
		old, err := sim.KillLeader(group)
		if err != nil || old != nodes[2] {
			t.Fatalf("KillLeader: %v, %v", old, err)
		}
		if err := sim.Elect(group, nodes[0].SelfID()); err != nil {
			t.Fatal(err)
		}
		check(t, epoch0+1, 1, 1, nodes[0])
	})
	t.Run("old master rejoined", func(t *testing.T) {
		if err := nodes[2].Restart(); err != nil {
			t.Fatal(err)
		}
		sim.RegisterNow(nodes[2])
		if err := sim.SyncNow(group); err != nil {
			t.Fatal(err)
		}
		check(t, epoch0+1, 3, 2, nodes[0])
	})
}

// The same failover with the simulator's own (shortened) timing: exporters
// scrape in a loop while it unfolds. Each must see the window without an
// agreed leader, then the new leader, and count exactly one change.
func TestFailoverSimulatedDLedgerAutomatic(t *testing.T) {
	verifyNoLeaks(t)
	sim, admin := startSim(t, rmqsim.Spec{
		Version: rmqsim.V4_9_7,
		Groups:  []rmqsim.GroupSpec{{Cluster: raftCluster, Name: raftGroup, Mode: rmqsim.DLedger, Replicas: 3, Leader: 1}},
	})
	exporters := []*simExporter{newSimExporter(t, "cluster", Targets{Mode: ModeCluster, NameServers: sim.NameServerAddrs()}, false)}
	for _, n := range sim.Group(raftGroup) {
		if n.SelfID() != "n1" { // the leader's sidecar goes down with it
			exporters = append(exporters, newSimExporter(t, "sidecar "+n.SelfID(), Targets{Mode: ModeSidecar, Brokers: []string{n.Addr()}}, false))
		}
	}
	g := []string{"cluster", raftCluster, "broker", raftGroup, "dledger_group", raftGroup}
	hasLeader, changes := sk("rocketmq_dledger_group_has_leader", g...), sk("rocketmq_dledger_leader_changes_total", g...)
	for _, e := range exporters {
		if dl, _, err, _ := e.scrape(t, admin); err != nil || dl[hasLeader] != 1 {
			t.Fatalf("%s before the kill: has_leader %v, %v", e.name, dl[hasLeader], err)
		}
	}
	if _, err := sim.KillLeader(raftGroup); err != nil {
		t.Fatal(err)
	}
	sawNoLeader := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		leader := sim.Leader(raftGroup)
		done := leader != nil && leader.SelfID() != "n1"
		for _, e := range exporters {
			dl, _, _, _ := e.scrape(t, admin)
			if dl[hasLeader] == 0 {
				sawNoLeader[e.name] = true
			}
			if dl[hasLeader] != 1 || dl[changes] != 1 {
				done = false
			}
			// Every node the exporter sees names the simulator's leader.
			for k := range dl {
				if strings.HasPrefix(k, "rocketmq_dledger_leader{") && (leader == nil || !strings.Contains(k, `leader_id="`+leader.SelfID()+`"`)) {
					done = false
				}
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no converged view of the new leader within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, e := range exporters {
		if !sawNoLeader[e.name] {
			t.Errorf("%s never saw the window without an agreed leader", e.name)
		}
	}
}

// A total outage over the real protocol, cluster mode: the only master of a
// single-node group and every node of a DLedger group die, so the NameServer
// lists neither group any more. Both keep reporting "no master / no leader"
// instead of vanishing, and the restarted DLedger nodes, which come back
// with brokerId -1 and the config file's ASYNC_MASTER before they learn a
// leader, count as no master at all.
func TestFailoverSimulatedTotalOutage(t *testing.T) {
	verifyNoLeaks(t)
	sim, admin := startSim(t, rmqsim.Spec{
		Version: rmqsim.V4_9_7,
		Groups: []rmqsim.GroupSpec{
			{Cluster: raftCluster, Name: raftGroup, Mode: rmqsim.DLedger, Replicas: 3, Leader: 1},
			{Cluster: "MSCluster", Name: "broker-b", Mode: rmqsim.MasterSlave, Replicas: 1},
		},
		Timing: rmqsim.Timing{Manual: true},
	})
	raft := sim.Group(raftGroup)
	cluster := newSimExporter(t, "cluster", Targets{Mode: ModeCluster, NameServers: sim.NameServerAddrs()}, false)
	sidecar := newSimExporter(t, "sidecar n0", Targets{Mode: ModeSidecar, Brokers: []string{raft[0].Addr()}}, false)
	dg := []string{"cluster", raftCluster, "broker", raftGroup, "dledger_group", raftGroup}
	hg := []string{"cluster", raftCluster, "broker", raftGroup}
	bg := []string{"cluster", "MSCluster", "broker", "broker-b"}
	groupSeries := func(dl, ha map[string]float64) map[string]float64 {
		out := map[string]float64{}
		for k, v := range dl {
			if strings.HasPrefix(k, "rocketmq_dledger_group_") {
				out[k] = v
			}
		}
		for k, v := range ha {
			if strings.HasPrefix(k, "rocketmq_ha_group_") {
				out[k] = v
			}
		}
		return out
	}
	group := func(peersUp, quorum, hasLeader, raftMaster, raftSlaves, bMaster float64) map[string]float64 {
		return map[string]float64{
			sk("rocketmq_dledger_group_peers", dg...):      3,
			sk("rocketmq_dledger_group_peers_up", dg...):   peersUp,
			sk("rocketmq_dledger_group_quorum", dg...):     quorum,
			sk("rocketmq_dledger_group_has_leader", dg...): hasLeader,
			sk("rocketmq_ha_group_master_present", hg...):  raftMaster,
			sk("rocketmq_ha_group_masters", hg...):         raftMaster,
			sk("rocketmq_ha_group_slaves", hg...):          raftSlaves,
			sk("rocketmq_ha_group_master_present", bg...):  bMaster,
			sk("rocketmq_ha_group_masters", bg...):         bMaster,
			sk("rocketmq_ha_group_slaves", bg...):          0,
		}
	}
	check := func(t *testing.T, want map[string]float64) {
		t.Helper()
		dl, ha, _, _ := cluster.scrape(t, admin)
		got := groupSeries(dl, ha)
		if want[sk("rocketmq_dledger_group_has_leader", dg...)] == 1 {
			want = maps.Clone(want)
			want[sk("rocketmq_dledger_group_leader", append(slices.Clone(dg), "leader_id", "n1")...)] = 1
			want[sk("rocketmq_dledger_group_leader_index", dg...)] = 1
		}
		if d := diffSeries(got, want); d != "" {
			t.Errorf("cluster:\n%s", d)
		}
	}

	t.Run("before", func(t *testing.T) {
		check(t, group(3, 1, 1, 1, 2, 1))
		if dl, _, _, _ := sidecar.scrape(t, admin); len(groupSeries(dl, nil)) == 0 {
			t.Error("sidecar n0: no DLedger group series while up")
		}
	})
	t.Run("everything dead", func(t *testing.T) {
		sim.Group("broker-b")[0].Kill()
		for _, n := range raft {
			n.Kill()
		}
		check(t, group(0, 0, 0, 0, 0, 0))
		// The sidecar of a dead broker knows nothing of its group.
		if dl, ha, _, _ := sidecar.scrape(t, admin); len(dl) != 0 || len(ha) != 0 {
			t.Errorf("sidecar n0 of a dead broker: %v %v", dl, ha)
		}
	})
	t.Run("restarted, no leader learnt, not registered", func(t *testing.T) {
		for _, n := range raft {
			if err := n.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		// The DLedger ports answer (every node a candidate); the NameServer
		// still lists nobody.
		check(t, group(3, 1, 0, 0, 0, 0))
	})
	t.Run("registered with brokerId -1", func(t *testing.T) {
		for _, n := range raft {
			sim.RegisterNow(n)
		}
		// Listed again, but a -1 node with ASYNC_MASTER in its config is
		// neither master nor slave.
		check(t, group(3, 1, 0, 0, 0, 0))
		_, ha, _, _ := cluster.scrape(t, admin)
		if _, ok := ha[sk("rocketmq_ha_replication_lag_bytes", append(slices.Clone(hg), "address", raft[0].Addr())...)]; ok {
			t.Error("replication lag without a master")
		}
	})
	t.Run("leader elected", func(t *testing.T) {
		if err := sim.ForceLeader(raftGroup, "n1"); err != nil {
			t.Fatal(err)
		}
		check(t, group(3, 1, 1, 1, 2, 0))
	})
}
