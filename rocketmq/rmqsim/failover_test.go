package rmqsim

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// dledgerView is what an exporter can see of a DLedger group at one instant.
type dledgerView struct {
	addrs   map[int64]string  // NameServer brokerAddrs of the group
	leaders map[string]string // selfId → leaderId named by its METADATA ("" none, "down" unreachable)
	ids     map[string]string // selfId → brokerId/brokerRole from its config
}

func observeDLedger(t *testing.T, c *Cluster, adm *rocketmq.Admin, group string) dledgerView {
	t.Helper()
	v := dledgerView{leaders: map[string]string{}, ids: map[string]string{}}
	ci, err := adm.BrokerClusterInfo(ctx(t), c.NameServerAddrs()[0])
	must(t, err)
	v.addrs = ci.BrokerAddrTable[group].BrokerAddrs
	for _, n := range c.Group(group) {
		md, err := adm.DLedgerMetadata(ctx(t), n.DLedgerAddr(), group, n.SelfID())
		if err != nil && !isRefused(err) {
			// A pooled connection to a node killed meanwhile fails once
			// with EOF; the next attempt dials and is refused.
			md, err = adm.DLedgerMetadata(ctx(t), n.DLedgerAddr(), group, n.SelfID())
		}
		switch {
		case err != nil && isRefused(err):
			v.leaders[n.SelfID()] = "down"
		case err != nil:
			t.Fatalf("%s METADATA: %v", n.SelfID(), err)
		default:
			v.leaders[n.SelfID()] = md.LeaderID
			if md.Term != -1 || len(md.Peers) != 3 {
				t.Errorf("%s METADATA: term %d peers %v", n.SelfID(), md.Term, md.Peers)
			}
		}
		cfg, err := adm.BrokerConfig(ctx(t), n.Addr())
		if err != nil && !isRefused(err) {
			cfg, err = adm.BrokerConfig(ctx(t), n.Addr())
		}
		if err != nil {
			if !isRefused(err) {
				t.Fatalf("%s config: %v", n.SelfID(), err)
			}
			v.ids[n.SelfID()] = "down"
			continue
		}
		v.ids[n.SelfID()] = cfg["brokerId"] + "/" + cfg["brokerRole"]
	}
	return v
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func expectView(t *testing.T, step string, got dledgerView, addrs map[int64]string, leaders, ids map[string]string) {
	t.Helper()
	if !maps.Equal(got.addrs, addrs) {
		t.Errorf("%s: NameServer brokerAddrs %v, want %v", step, got.addrs, addrs)
	}
	if !maps.Equal(got.leaders, leaders) {
		t.Errorf("%s: METADATA leaders %v, want %v", step, got.leaders, leaders)
	}
	if !maps.Equal(got.ids, ids) {
		t.Errorf("%s: configs %v, want %v", step, got.ids, ids)
	}
}

// TestDLedgerFailoverStepByStep replays the recorded timeline
// (fixtures dledger-failover t00 → t01 → t04 → t05 → t15) in manual mode.
func TestDLedgerFailoverStepByStep(t *testing.T) {
	c := start(t, Spec{
		Groups: []GroupSpec{{Cluster: "RaftCluster", Name: "RaftNode00", Mode: DLedger, Leader: 1}},
		Timing: Timing{Manual: true},
	})
	must(t, c.CreateTopic("RaftNode00", "TopicRaft", 4))
	adm := newAdmin(t, nil)
	g := c.Group("RaftNode00")
	n0, n1, n2 := g[0].Addr(), g[1].Addr(), g[2].Addr()
	term := func(node *Node, other string) int64 {
		v, err := adm.DLedgerTerm(ctx(t), node.DLedgerAddr(), "RaftNode00", node.SelfID(), other)
		must(t, err)
		return v
	}

	expectView(t, "t00-before", observeDLedger(t, c, adm, "RaftNode00"),
		map[int64]string{0: n1, 1: n0, 3: n2},
		map[string]string{"n0": "n1", "n1": "n1", "n2": "n1"},
		map[string]string{"n0": "1/SLAVE", "n1": "0/SYNC_MASTER", "n2": "3/SLAVE"})
	if got := term(g[0], "n1"); got != 1 {
		t.Errorf("initial term %d", got)
	}

	killed, err := c.KillLeader("RaftNode00")
	must(t, err)
	if killed != g[1] {
		t.Fatalf("killed %s, want n1", killed.SelfID())
	}
	expectView(t, "t01 (dead leader, stale views)", observeDLedger(t, c, adm, "RaftNode00"),
		map[int64]string{1: n0, 3: n2},
		map[string]string{"n0": "n1", "n1": "down", "n2": "n1"},
		map[string]string{"n0": "1/SLAVE", "n1": "down", "n2": "3/SLAVE"})
	if _, err := c.Produce("TopicRaft", 1); err == nil {
		t.Error("produce without a leader must fail")
	}

	must(t, c.Elect("RaftNode00", "n2"))
	expectView(t, "t04 (elected, roles not applied)", observeDLedger(t, c, adm, "RaftNode00"),
		map[int64]string{1: n0, 3: n2},
		map[string]string{"n0": "n2", "n1": "down", "n2": "n2"},
		map[string]string{"n0": "1/SLAVE", "n1": "down", "n2": "3/SLAVE"})
	if got := term(g[0], "n2"); got != 2 {
		t.Errorf("term after one election %d, want 2", got)
	}

	must(t, c.Promote("RaftNode00"))
	expectView(t, "t05 (new leader registered)", observeDLedger(t, c, adm, "RaftNode00"),
		map[int64]string{0: n2, 1: n0},
		map[string]string{"n0": "n2", "n1": "down", "n2": "n2"},
		map[string]string{"n0": "1/SLAVE", "n1": "down", "n2": "0/SYNC_MASTER"})
	mustN(t)(c.Produce("TopicRaft", 8))

	must(t, g[1].Restart())
	expectView(t, "restarted, leader not known yet", observeDLedger(t, c, adm, "RaftNode00"),
		map[int64]string{0: n2, 1: n0},
		map[string]string{"n0": "n2", "n1": "", "n2": "n2"},
		map[string]string{"n0": "1/SLAVE", "n1": "-1/ASYNC_MASTER", "n2": "0/SYNC_MASTER"})

	c.RegisterNow(g[1])
	expectView(t, "t15-rejoin", observeDLedger(t, c, adm, "RaftNode00"),
		map[int64]string{0: n2, 1: n0, 2: n1},
		map[string]string{"n0": "n2", "n1": "n2", "n2": "n2"},
		map[string]string{"n0": "1/SLAVE", "n1": "2/SLAVE", "n2": "0/SYNC_MASTER"})
	for _, n := range g {
		if got := term(n, map[string]string{"n0": "n1", "n1": "n2", "n2": "n0"}[n.SelfID()]); got != 2 {
			t.Errorf("%s term %d, want 2", n.SelfID(), got)
		}
	}
}

// A DLedger node that restarts while no leader is known registers with its
// transient brokerId -1 until an election gives it a role.
func TestDLedgerRegistersMinusOneWithoutLeader(t *testing.T) {
	c := start(t, Spec{Groups: []GroupSpec{{Cluster: "R", Name: "raft", Mode: DLedger}}, Timing: Timing{Manual: true}})
	g := c.Group("raft")
	g[0].Kill() // the leader
	g[1].Kill()
	must(t, g[0].Restart())
	c.RegisterNow(g[0])
	if id, ok := g[0].RegisteredID(); !ok || id != -1 || g[0].ID() != -1 {
		t.Fatalf("restarted without a leader: registered %d %v, config id %d", id, ok, g[0].ID())
	}
	resp := mustCall(t, c.NameServerAddrs()[0], rocketmq.NewRequest(rocketmq.CodeGetBrokerClusterInfo, nil, nil))
	if want := `{-1:"` + g[0].Addr() + `",3:"` + g[2].Addr() + `"}`; !strings.Contains(string(resp.Body), want) {
		t.Errorf("want %s in %s", want, resp.Body)
	}
	must(t, c.ForceLeader("raft", "n2"))
	if id, _ := g[0].RegisteredID(); id != 1 || g[0].Role() != "SLAVE" {
		t.Errorf("after the election: id %d role %s", id, g[0].Role())
	}
}

// TestDLedgerFailoverTimeline lets the automatic timeline run with short
// durations and checks each phase in order.
func TestDLedgerFailoverTimeline(t *testing.T) {
	c := start(t, Spec{
		Groups: []GroupSpec{{Cluster: "R", Name: "raft", Mode: DLedger}},
		Timing: Timing{StaleLeaderWindow: 400 * time.Millisecond, RoleChangeDelay: 200 * time.Millisecond, RegisterDelay: 200 * time.Millisecond},
	})
	adm := newAdmin(t, nil)
	g := c.Group("raft")
	killedAt := time.Now()
	if _, err := c.KillLeader("raft"); err != nil {
		t.Fatal(err)
	}
	v := observeDLedger(t, c, adm, "raft")
	if time.Since(killedAt) < 350*time.Millisecond {
		if _, ok := v.addrs[0]; ok || v.leaders["n1"] != "n0" || v.leaders["n2"] != "n0" {
			t.Errorf("inside the stale window: %+v", v)
		}
	}
	eventually(t, "election", 3*time.Second, func() bool { return g[1].LeaderView() == "n1" })
	eventually(t, "promotion", 3*time.Second, func() bool {
		id, ok := g[1].RegisteredID()
		return ok && id == 0 && g[1].Role() == "SYNC_MASTER"
	})
	if c.Term("raft") != 2 || c.Leader("raft") != g[1] {
		t.Errorf("term %d leader %v", c.Term("raft"), c.Leader("raft"))
	}
	must(t, g[0].Restart())
	eventually(t, "rejoin", 3*time.Second, func() bool {
		id, ok := g[0].RegisteredID()
		return ok && id == 1 && g[0].LeaderView() == "n1"
	})

	// Losing the quorum: the leader steps down and the group has no master.
	g[2].Kill()
	g[0].Kill()
	eventually(t, "step down", 3*time.Second, func() bool { return g[1].LeaderView() == "" })
	if id, ok := g[1].RegisteredID(); !ok || id != 2 || g[1].Role() != "SLAVE" {
		t.Errorf("former leader after losing the quorum: id %d ok %v role %s", id, ok, g[1].Role())
	}
	must(t, g[2].Restart())
	eventually(t, "new election with a quorum again", 3*time.Second, func() bool { return c.Leader("raft") != nil })
	if c.Term("raft") != 3 {
		t.Errorf("term %d, want 3", c.Term("raft"))
	}
}

type ctrlView struct {
	addrs       map[int64]string
	master      string
	epoch       int64
	syncEpoch   int64
	inSync      string
	replicaEpoc int64
}

func observeController(t *testing.T, c *Cluster, adm *rocketmq.Admin) ctrlView {
	t.Helper()
	ci, err := adm.BrokerClusterInfo(ctx(t), c.NameServerAddrs()[0])
	must(t, err)
	sd, err := adm.ControllerSyncStateData(ctx(t), c.ControllerAddr(), []string{"broker-c"})
	must(t, err)
	st := sd["broker-c"]
	v := ctrlView{addrs: ci.BrokerAddrTable["broker-c"].BrokerAddrs, master: st.MasterAddress, epoch: st.MasterEpoch, syncEpoch: st.SyncStateSetEpoch}
	for _, m := range st.InSyncMembers {
		v.inSync += fmt.Sprintf("%s=%d ", m.Address, m.BrokerID)
	}
	ri, err := adm.ControllerReplicaInfo(ctx(t), c.ControllerAddr(), "broker-c")
	must(t, err)
	if ri.MasterEpoch != st.MasterEpoch || ri.MasterAddress != st.MasterAddress || len(ri.SyncStateSet) != len(st.InSyncMembers) {
		t.Errorf("1004 %+v disagrees with 1006 %+v", ri, st)
	}
	return v
}

// TestControllerFailover follows the recorded 5.0 controller-mode timeline
// (controller-failover t00 → t01 → t30) in manual mode.
func TestControllerFailover(t *testing.T) {
	c := fixture500(t, Timing{Manual: true})
	adm := newAdmin(t, nil)
	g := c.Group("broker-c")
	a0, a1, a2 := g[0].Addr(), g[1].Addr(), g[2].Addr()

	v := observeController(t, c, adm)
	if !maps.Equal(v.addrs, map[int64]string{0: a2, 2: a0, 3: a1}) || v.master != a2 || v.epoch != 1 || v.syncEpoch != 1 ||
		v.inSync != a2+"=0 "+a0+"=2 "+a1+"=3 " {
		t.Errorf("t00: %+v", v)
	}
	ha, err := adm.BrokerHAStatus(ctx(t), a2)
	must(t, err)
	if !ha.Master || ha.InSyncSlaveNums != 2 || len(ha.HAConnectionInfo) != 2 {
		t.Errorf("t00 master HA: %+v", ha)
	}
	ha, err = adm.BrokerHAStatus(ctx(t), a0)
	must(t, err)
	if ha.Master || ha.HAClientRuntimeInfo == nil || ha.HAClientRuntimeInfo.MasterAddr != g[2].HAAddr() {
		t.Errorf("t00 slave HA: %+v %+v", ha, ha.HAClientRuntimeInfo)
	}

	g[2].Kill()
	v = observeController(t, c, adm)
	if !maps.Equal(v.addrs, map[int64]string{2: a0, 3: a1}) || v.master != a2 || v.epoch != 1 {
		t.Errorf("killed, before the election: %+v", v)
	}
	must(t, c.Elect("broker-c", "n0"))
	v = observeController(t, c, adm)
	if !maps.Equal(v.addrs, map[int64]string{0: a0, 3: a1}) || v.master != a0 || v.epoch != 2 || v.syncEpoch != 2 || v.inSync != a0+"=0 " {
		t.Errorf("t01: %+v", v)
	}
	ha, err = adm.BrokerHAStatus(ctx(t), a1)
	must(t, err)
	if ha.HAClientRuntimeInfo == nil || ha.HAClientRuntimeInfo.MasterAddr != "" {
		t.Errorf("t01 slave not yet reconnected: %+v", ha.HAClientRuntimeInfo)
	}
	cfg, err := adm.BrokerConfig(ctx(t), a0)
	must(t, err)
	if cfg["brokerId"] != "-1" || cfg["brokerRole"] != "SYNC_MASTER" || cfg["enableControllerMode"] != "true" || cfg["controllerAddr"] != c.ControllerAddr() {
		t.Errorf("new master config: id %s role %s", cfg["brokerId"], cfg["brokerRole"])
	}

	must(t, g[2].Restart())
	c.RegisterNow(g[2])
	must(t, c.SyncNow("broker-c"))
	v = observeController(t, c, adm)
	if !maps.Equal(v.addrs, map[int64]string{0: a0, 1: a2, 3: a1}) || v.epoch != 2 || v.syncEpoch != 4 || v.inSync != a0+"=0 "+a1+"=3 "+a2+"=1 " {
		t.Errorf("t30-rejoin: %+v", v)
	}
	ha, err = adm.BrokerHAStatus(ctx(t), a0)
	must(t, err)
	if !ha.Master || ha.InSyncSlaveNums != 2 || ha.MasterCommitLogMaxOffset == 0 {
		t.Errorf("t30 master HA: %+v", ha)
	}
	if c.MasterEpoch("broker-c") != 2 || c.SyncStateSetEpoch("broker-c") != 4 {
		t.Errorf("epochs %d %d", c.MasterEpoch("broker-c"), c.SyncStateSetEpoch("broker-c"))
	}
}

func TestControllerFailoverAutomatic(t *testing.T) {
	c := fixture500(t, Timing{ControllerElection: 50 * time.Millisecond, HAReconnectDelay: 100 * time.Millisecond, RegisterDelay: 100 * time.Millisecond})
	old, err := c.KillLeader("broker-c")
	must(t, err)
	eventually(t, "new master", 3*time.Second, func() bool { return c.Leader("broker-c") != nil })
	if c.MasterEpoch("broker-c") != 2 {
		t.Errorf("masterEpoch %d", c.MasterEpoch("broker-c"))
	}
	must(t, old.Restart())
	eventually(t, "in-sync set back to 3", 3*time.Second, func() bool { return c.SyncStateSetEpoch("broker-c") == 4 })
	if id, ok := old.RegisteredID(); !ok || id != 1 {
		t.Errorf("rejoined id %d %v", id, ok)
	}
}

func TestHAReplicationLag50(t *testing.T) {
	c := fixture500(t, Timing{})
	adm := newAdmin(t, nil)
	d := c.Group("broker-d")
	mustN(t)(c.Produce("TopicMS", 2_000_000)) // 429 MiB of commitlog
	d[1].SetReplicationLag(300 << 20)
	ha, err := adm.BrokerHAStatus(ctx(t), d[0].Addr())
	must(t, err)
	if len(ha.HAConnectionInfo) != 1 || ha.HAConnectionInfo[0].Diff != 300<<20 || ha.HAConnectionInfo[0].InSync || ha.InSyncSlaveNums != 0 {
		t.Errorf("lagging slave: %+v", ha)
	}
	rt, err := adm.BrokerRuntimeInfo(ctx(t), d[1].Addr())
	must(t, err)
	mrt, err := adm.BrokerRuntimeInfo(ctx(t), d[0].Addr())
	must(t, err)
	if atoi(t, mrt["commitLogMaxOffset"])-atoi(t, rt["commitLogMaxOffset"]) != 300<<20 {
		t.Errorf("slave offset %s master %s", rt["commitLogMaxOffset"], mrt["commitLogMaxOffset"])
	}
	if rt["brokerActive"] != "false" || mrt["brokerActive"] != "true" || rt["getTransferredTps"] == "" {
		t.Errorf("5.0 runtime keys: %q %q", rt["brokerActive"], mrt["brokerActive"])
	}
	d[1].SetReplicationLag(4096)
	ha, err = adm.BrokerHAStatus(ctx(t), d[0].Addr())
	must(t, err)
	if ha.HAConnectionInfo[0].Diff != 4096 || !ha.HAConnectionInfo[0].InSync || ha.InSyncSlaveNums != 1 {
		t.Errorf("slave within the gap: %+v", ha)
	}
}
