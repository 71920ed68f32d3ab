package collector

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

func haFixture(dir string) string {
	return filepath.Join("testdata", "ha", "fixtures", filepath.FromSlash(dir))
}

// keepGroups drops every other broker group from the NameServer answers in
// fc: a capture that recorded only some nodes would otherwise show the rest
// as down.
func keepGroups(fc *fakeClient, groups ...string) {
	for _, ci := range fc.clusterInfo {
		for name := range ci.BrokerAddrTable {
			if !slices.Contains(groups, name) {
				delete(ci.BrokerAddrTable, name)
			}
		}
		for cluster, names := range ci.ClusterAddrTable {
			names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !slices.Contains(groups, n) })
			if len(names) == 0 {
				delete(ci.ClusterAddrTable, cluster)
			} else {
				ci.ClusterAddrTable[cluster] = names
			}
		}
	}
}

func newTestHA(t testing.TB) (Collector, *logBuffer) {
	t.Helper()
	logger, logs := newTestLogger()
	c, err := newHACollector(Options{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

const (
	ns49 = "127.0.0.1:9876"
	ns50 = "127.0.0.1:19876"
)

// 4.9 master/slave and a single master, in cluster mode: group series and a
// lag of 0 (both recorded at 293353), 907 answered with code 3 quietly.
func TestHA49ClusterGolden(t *testing.T) {
	fc := newFakeClient()
	loadFixtures(t, fc, haFixture("4.9.7-steady"), nil)
	keepGroups(fc, "broker-a", "broker-b")
	c, logs := newTestHA(t)
	s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{ns49}}, raftBase)
	checkGolden(t, c, s, "ha/steady_4.9.7_cluster.prom")
	for _, lvl := range []string{"level=WARN", "level=ERROR"} {
		if lines := logs.lines(lvl); len(lines) > 0 {
			t.Errorf("907 code 3 logged at %s:\n%s", lvl, strings.Join(lines, "\n"))
		}
	}
}

// A lagging slave: the recorded 4.9 master/slave pair with the slave's
// commitLogMaxOffset moved back by 1 MiB (the capture itself had no lag).
func TestHALaggingSlave(t *testing.T) {
	const master, slave = "127.0.0.1:11911", "127.0.0.1:12911"
	fc := newFakeClient()
	loadFixtures(t, fc, haFixture("4.9.7-steady"), nil)
	keepGroups(fc, "broker-b")
	mo, err := strconv.ParseInt(fc.runtime[master]["commitLogMaxOffset"], 10, 64)
	if err != nil || mo != 293353 {
		t.Fatalf("fixture: master offset %d %v", mo, err)
	}
	c, _ := newTestHA(t)
	key := sk("rocketmq_ha_replication_lag_bytes", "cluster", "MSCluster", "broker", "broker-b", "address", slave)
	for _, tc := range []struct {
		slaveOffset int64
		want        float64
	}{
		{mo - 1<<20, 1 << 20},
		{mo, 0},
		// The slave read after a write the master read missed: not negative.
		{mo + 4096, 0},
	} {
		fc.runtime[slave] = rocketmq.RuntimeInfo{"commitLogMaxOffset": strconv.FormatInt(tc.slaveOffset, 10)}
		s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{ns49}}, raftBase)
		got, err := series(t, c, s)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := got[key]; !ok || v != tc.want {
			t.Errorf("slave at %d: lag %v (present %v), want %v", tc.slaveOffset, v, ok, tc.want)
		}
	}

	// The slave's runtime info fails: its lag is absent and the collector
	// says why; the group series stay.
	fc.errs[fakeKey("BrokerRuntimeInfo", slave)] = &rocketmq.ResponseError{RequestCode: rocketmq.CodeGetBrokerRuntimeInfo, Code: rocketmq.ResponseSystemError, Remark: "java.util.NoSuchElementException"}
	s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{ns49}}, raftBase)
	got, err := series(t, c, s)
	if err == nil || !strings.Contains(err.Error(), slave) {
		t.Errorf("error = %v, want one naming the slave", err)
	}
	if _, ok := got[key]; ok {
		t.Errorf("lag reported without the slave's offset")
	}
	if got[sk("rocketmq_ha_group_master_present", "cluster", "MSCluster", "broker", "broker-b")] != 1 {
		t.Errorf("group series lost with the slave's runtime info")
	}

	// The master is down. While the NameServer still lists it as brokerId
	// 0 (a partition, before the NameServer expires it), nobody can say
	// whether the group has a master: no master_present, no lag, and the
	// slave's runtime info is not read for a lag.
	delete(fc.errs, fakeKey("BrokerRuntimeInfo", slave))
	fc.down[master] = fakeDown(master)
	before := fc.callCount("BrokerRuntimeInfo", slave)
	s = resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{ns49}}, raftBase)
	got, err = series(t, c, s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		sk("rocketmq_ha_group_slaves", "cluster", "MSCluster", "broker", "broker-b"): 1,
	}
	if d := diffSeries(got, want); d != "" {
		t.Errorf("listed master down:\n%s", d)
	}
	// At most the one read of the scrape that the 907 version check shares
	// with the broker collector.
	if n := fc.callCount("BrokerRuntimeInfo", slave) - before; n > 1 {
		t.Errorf("%d runtime reads of the slave in one scrape", n)
	}

	// Once the NameServer no longer lists it, the group has no master.
	ci := fc.clusterInfo[ns49].BrokerAddrTable["broker-b"]
	delete(ci.BrokerAddrs, 0)
	s = resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{ns49}}, raftBase)
	got, err = series(t, c, s)
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]float64{
		sk("rocketmq_ha_group_master_present", "cluster", "MSCluster", "broker", "broker-b"): 0,
		sk("rocketmq_ha_group_masters", "cluster", "MSCluster", "broker", "broker-b"):        0,
		sk("rocketmq_ha_group_slaves", "cluster", "MSCluster", "broker", "broker-b"):         1,
	}
	if d := diffSeries(got, want); d != "" {
		t.Errorf("master no longer listed:\n%s", d)
	}
}

// Master presence is unknown, not 0, while a member the NameServer lists as
// brokerId 0 does not answer and no other member answers as master; another
// member answering as master settles it.
func TestHAMasterPresenceUnknown(t *testing.T) {
	const ns, master, slave = "127.0.0.1:9876", "10.0.0.1:10911", "10.0.0.2:10911"
	g := []string{"cluster", "C", "broker", "b"}
	for _, tc := range []struct {
		name   string
		setup  func(fc *fakeClient)
		want   map[string]float64
		logged bool
	}{
		{"listed master answers", func(*fakeClient) {}, map[string]float64{
			sk("rocketmq_ha_group_master_present", g...): 1,
			sk("rocketmq_ha_group_masters", g...):        1,
			sk("rocketmq_ha_group_slaves", g...):         1,
		}, false},
		{"listed master does not answer", func(fc *fakeClient) {
			fc.errs[fakeKey("BrokerConfig", master)] = errors.New("read tcp: i/o timeout")
		}, map[string]float64{
			sk("rocketmq_ha_group_slaves", g...): 1,
		}, true},
		{"listed master does not answer, another member says it is master", func(fc *fakeClient) {
			fc.errs[fakeKey("BrokerConfig", master)] = errors.New("read tcp: i/o timeout")
			fc.config[slave]["brokerId"] = "0"
			fc.config[slave]["brokerRole"] = "SYNC_MASTER"
		}, map[string]float64{
			sk("rocketmq_ha_group_master_present", g...): 1,
			sk("rocketmq_ha_group_masters", g...):        1,
			sk("rocketmq_ha_group_slaves", g...):         0,
		}, false},
		{"two members answer as master", func(fc *fakeClient) {
			fc.config[slave]["brokerId"] = "0"
			fc.config[slave]["brokerRole"] = "SYNC_MASTER"
		}, map[string]float64{
			sk("rocketmq_ha_group_master_present", g...): 1,
			sk("rocketmq_ha_group_masters", g...):        2,
			sk("rocketmq_ha_group_slaves", g...):         0,
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeClient()
			fc.addBroker(master, "C", "b", 0, "ASYNC_MASTER")
			fc.addBroker(slave, "C", "b", 1, "SLAVE")
			fc.clusterInfo[ns] = fc.deriveClusterInfo()
			for _, addr := range []string{master, slave} {
				fc.runtime[addr] = rocketmq.RuntimeInfo{"brokerVersionDesc": "V4_9_7", "commitLogMaxOffset": "1000"}
			}
			tc.setup(fc)
			c, logs := newTestHA(t)
			got, err := series(t, c, resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{ns}}, raftBase))
			if err != nil {
				t.Errorf("Update: %v", err)
			}
			// Replication lag needs exactly one master: only the first case.
			delete(got, sk("rocketmq_ha_replication_lag_bytes", append(slices.Clone(g), "address", slave)...))
			if d := diffSeries(got, tc.want); d != "" {
				t.Errorf("\n%s", d)
			}
			if n := len(logs.lines("master presence unknown")); (n == 1) != tc.logged {
				t.Errorf("%d debug lines about the unknown master", n)
			}
		})
	}
}

// In cluster mode a group that vanishes from the NameServer altogether (its
// only master died) reports no master for 15 minutes instead of vanishing
// from the output, so "== 0" alerts fire. Not without a NameServer answer,
// and never in sidecar mode.
func TestHAVanishedGroup(t *testing.T) {
	fc := newFakeClient()
	loadFixtures(t, fc, haFixture("4.9.7-steady"), nil)
	keepGroups(fc, "broker-a", "broker-b")
	ci := fc.clusterInfo[ns49]
	listing := ci.BrokerAddrTable["broker-a"]
	a := []string{"cluster", "DefaultCluster", "broker", "broker-a"}
	c, _ := newTestHA(t)
	scrape := func(t *testing.T, at time.Duration) map[string]float64 {
		t.Helper()
		got, err := series(t, c, resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{ns49}}, raftBase.Add(at)))
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		for k := range got {
			if !strings.Contains(k, `broker="broker-a"`) {
				delete(got, k)
			}
		}
		return got
	}
	vanished := map[string]float64{
		sk("rocketmq_ha_group_master_present", a...): 0,
		sk("rocketmq_ha_group_masters", a...):        0,
		sk("rocketmq_ha_group_slaves", a...):         0,
	}
	steps := []struct {
		name   string
		at     time.Duration
		listed bool
		nsDown bool
		want   map[string]float64
	}{
		{"seen", 0, true, false, map[string]float64{
			sk("rocketmq_ha_group_master_present", a...): 1,
			sk("rocketmq_ha_group_masters", a...):        1,
			sk("rocketmq_ha_group_slaves", a...):         0,
		}},
		{"gone from the NameServer", time.Minute, false, false, vanished},
		{"NameServer down: nothing known", 2 * time.Minute, false, true, map[string]float64{}},
		{"still remembered", 15 * time.Minute, false, false, vanished},
		{"forgotten after 15 minutes", 15*time.Minute + time.Second, false, false, map[string]float64{}},
		{"back", 16 * time.Minute, true, false, map[string]float64{
			sk("rocketmq_ha_group_master_present", a...): 1,
			sk("rocketmq_ha_group_masters", a...):        1,
			sk("rocketmq_ha_group_slaves", a...):         0,
		}},
		{"gone again", 17 * time.Minute, false, false, vanished},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.listed {
				ci.BrokerAddrTable["broker-a"] = listing
				ci.ClusterAddrTable["DefaultCluster"] = []string{"broker-a"}
			} else {
				delete(ci.BrokerAddrTable, "broker-a")
				delete(ci.ClusterAddrTable, "DefaultCluster")
			}
			delete(fc.down, ns49)
			if st.nsDown {
				fc.down[ns49] = fakeDown(ns49)
			}
			if d := diffSeries(scrape(t, st.at), st.want); d != "" {
				t.Errorf("\n%s", d)
			}
		})
	}

	// A sidecar never reports group series, remembered or not.
	sc, _ := newTestHA(t)
	ci.BrokerAddrTable["broker-a"] = listing
	for i, down := range []bool{false, true} {
		delete(fc.down, "127.0.0.1:10911")
		if down {
			fc.down["127.0.0.1:10911"] = fakeDown("127.0.0.1:10911")
		}
		got, err := series(t, sc, resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{"127.0.0.1:10911"}}, raftBase.Add(time.Duration(i)*time.Minute)))
		if err != nil || len(got) != 0 {
			t.Errorf("sidecar (broker down %v): %v, %v", down, got, err)
		}
	}
}

// 907 exists from 5.0 on. A broker whose runtime info names a 4.x version
// is never asked; one whose version is unknown is asked, and a code 3 answer
// keeps it from being asked again for a TTL: one debug line, no error.
func TestHAStatusNotSupportedAskedOnce(t *testing.T) {
	const addr = "127.0.0.1:10911"
	fc := newFakeClient()
	loadFixtures(t, fc, haFixture("4.9.7-steady"), onlyCodes("broker_a.", rocketmq.CodeGetBrokerConfig, rocketmq.CodeGetBrokerRuntimeInfo, rocketmq.CodeGetBrokerHAStatus))
	if err := fc.errs[fakeKey("BrokerHAStatus", addr)]; !rocketmq.IsNotSupported(err) {
		t.Fatalf("fixture: 907 answer %v", err)
	}
	if v := fc.runtime[addr]["brokerVersionDesc"]; v != "V4_9_7" {
		t.Fatalf("fixture: brokerVersionDesc %q", v)
	}
	scrapes := []time.Duration{0, 15 * time.Second, 5 * time.Minute, haUnsupportedTTL - time.Second, haUnsupportedTTL}
	run := func(t *testing.T, c Collector) {
		t.Helper()
		for i, at := range scrapes {
			s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{addr}}, raftBase.Add(at))
			got, err := series(t, c, s)
			if err != nil || len(got) != 0 {
				t.Fatalf("scrape %d: %v, %v; want nothing and no error", i, got, err)
			}
			// The version comes from the one runtime read of the scrape.
			if n := fc.callCount("BrokerRuntimeInfo", addr); n != i+1 {
				t.Fatalf("scrape %d: %d runtime reads so far, want one per scrape", i+1, n)
			}
		}
	}

	// Known to be 4.9.7: never asked, nothing logged.
	c, logs := newTestHA(t)
	run(t, c)
	if asked := fc.callCount("BrokerHAStatus", addr); asked != 0 {
		t.Errorf("907 sent %d times to a broker whose runtime info says V4_9_7", asked)
	}
	if lines := logs.lines("level="); len(lines) != 0 {
		t.Errorf("log lines:\n%s", strings.Join(lines, "\n"))
	}

	// Version unknown (no brokerVersionDesc, or the runtime read failing as
	// in the startup window): asked, then left alone for a TTL.
	for name, unknown := range map[string]func(*fakeClient){
		"no version key": func(fc *fakeClient) { delete(fc.runtime[addr], "brokerVersionDesc") },
		"runtime read fails": func(fc *fakeClient) {
			fc.errs[fakeKey("BrokerRuntimeInfo", addr)] = &rocketmq.ResponseError{RequestCode: rocketmq.CodeGetBrokerRuntimeInfo, Code: rocketmq.ResponseSystemError, Remark: "java.util.NoSuchElementException"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			fc := newFakeClient()
			loadFixtures(t, fc, haFixture("4.9.7-steady"), onlyCodes("broker_a.", rocketmq.CodeGetBrokerConfig, rocketmq.CodeGetBrokerRuntimeInfo, rocketmq.CodeGetBrokerHAStatus))
			unknown(fc)
			c, logs := newTestHA(t)
			for i, at := range scrapes {
				s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{addr}}, raftBase.Add(at))
				got, err := series(t, c, s)
				if err != nil || len(got) != 0 {
					t.Fatalf("scrape %d: %v, %v; want nothing and no error", i, got, err)
				}
			}
			if asked := fc.callCount("BrokerHAStatus", addr); asked != 2 {
				t.Errorf("907 asked %d times over one TTL and a bit, want 2", asked)
			}
			if n := len(logs.lines("GET_BROKER_HA_STATUS")); n != 2 {
				t.Errorf("%d log lines, want one per ask", n)
			}
			if lines := logs.lines("level=DEBUG"); len(lines) != 2 {
				t.Errorf("log lines not at debug level:\n%s", strings.Join(logs.lines(""), "\n"))
			}
		})
	}
}

func TestHAStatusErrors(t *testing.T) {
	const addr = "127.0.0.1:23911"
	fc := newFakeClient()
	loadFixtures(t, fc, haFixture("5.0.0-steady"), onlyCodes("ms_master.", rocketmq.CodeGetBrokerConfig, rocketmq.CodeGetBrokerHAStatus))
	c, _ := newTestHA(t)

	// duplicationEnable brokers have no HA status: like "not supported".
	fc.errs[fakeKey("BrokerHAStatus", addr)] = &rocketmq.ResponseError{RequestCode: rocketmq.CodeGetBrokerHAStatus, Code: rocketmq.ResponseSystemError,
		Remark: "Can not get HARuntimeInfo, may be duplicationEnable is true"}
	s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{addr}}, raftBase)
	if got, err := series(t, c, s); err != nil || len(got) != 0 {
		t.Errorf("duplicationEnable: %v, %v", got, err)
	}

	// Any other failure is this scrape's failure, and is asked again.
	c, _ = newTestHA(t)
	fc.errs[fakeKey("BrokerHAStatus", addr)] = errors.New("read tcp: i/o timeout")
	for range 2 {
		s = resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{addr}}, raftBase)
		if _, err := series(t, c, s); err == nil || !strings.Contains(err.Error(), "i/o timeout") {
			t.Errorf("error = %v, want the timeout", err)
		}
	}
	if n := fc.callCount("BrokerHAStatus", addr); n != 3 {
		t.Errorf("907 asked %d times, want 3 (failures are not cached)", n)
	}
}

// 5.0: controller mode (broker-c) and master/slave (broker-d), cluster mode.
func TestHA50ClusterGolden(t *testing.T) {
	fc := newFakeClient()
	loadFixtures(t, fc, haFixture("5.0.0-steady"), nil)
	c, _ := newTestHA(t)
	s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{ns50}}, raftBase)
	checkGolden(t, c, s, "ha/steady_5.0.0_cluster.prom")
}

// 5.0 sidecars: each node's own 907 view, and the controller's data for its
// group from any node of a controller-mode group.
func TestHA50Sidecars(t *testing.T) {
	fc := newFakeClient()
	loadFixtures(t, fc, haFixture("5.0.0-steady"), nil)
	groupOf := map[string][]string{
		"127.0.0.1:20911": {"cluster", "CtrlCluster", "broker", "broker-c"},
		"127.0.0.1:22911": {"cluster", "CtrlCluster", "broker", "broker-c"},
		"127.0.0.1:23911": {"cluster", "MSCluster", "broker", "broker-d"},
		"127.0.0.1:24911": {"cluster", "MSCluster", "broker", "broker-d"},
	}
	node := func(addr string) []string { return append(slices.Clone(groupOf[addr]), "address", addr) }
	for addr, want := range map[string]map[string]float64{
		"127.0.0.1:20911": {sk("rocketmq_ha_slave_has_master", node("127.0.0.1:20911")...): 1},
		"127.0.0.1:22911": {
			sk("rocketmq_ha_in_sync_slaves", node("127.0.0.1:22911")...):          2,
			sk("rocketmq_ha_slave_connections", node("127.0.0.1:22911")...):       2,
			sk("rocketmq_ha_slave_ack_lag_max_bytes", node("127.0.0.1:22911")...): 0,
		},
		"127.0.0.1:23911": {
			sk("rocketmq_ha_in_sync_slaves", node("127.0.0.1:23911")...):          1,
			sk("rocketmq_ha_slave_connections", node("127.0.0.1:23911")...):       1,
			sk("rocketmq_ha_slave_ack_lag_max_bytes", node("127.0.0.1:23911")...): 0,
		},
		"127.0.0.1:24911": {sk("rocketmq_ha_slave_has_master", node("127.0.0.1:24911")...): 1},
	} {
		// Controller-mode nodes also report what the controller says of
		// their group.
		if groupOf[addr][3] == "broker-c" {
			want[sk("rocketmq_controller_master_epoch", groupOf[addr]...)] = 5
			want[sk("rocketmq_controller_in_sync_replicas", groupOf[addr]...)] = 3
		}
		c, _ := newTestHA(t)
		s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{addr}}, raftBase)
		got, err := series(t, c, s)
		if err != nil {
			t.Errorf("sidecar %s: %v", addr, err)
		}
		if d := diffSeries(got, want); d != "" {
			t.Errorf("sidecar %s:\n%s", addr, d)
		}
	}
}

// A lagging 5.x slave seen from its master's 907: the largest diff.
func TestHA50AckLag(t *testing.T) {
	const addr = "127.0.0.1:22911"
	fc := newFakeClient()
	loadFixtures(t, fc, haFixture("5.0.0-steady"), onlyCodes("ctrl_n2.", rocketmq.CodeGetBrokerConfig, rocketmq.CodeGetBrokerHAStatus))
	hi := *fc.haStatus[addr]
	hi.HAConnectionInfo = slices.Clone(hi.HAConnectionInfo)
	hi.HAConnectionInfo[1].Diff = 5 << 20
	hi.HAConnectionInfo[1].InSync = false
	hi.InSyncSlaveNums = 1
	fc.haStatus[addr] = &hi
	fc.down["127.0.0.1:19878"] = fakeDown("127.0.0.1:19878")
	c, _ := newTestHA(t)
	s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{addr}}, raftBase)
	got, err := series(t, c, s)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:19878") {
		t.Errorf("controller down: error %v, want one naming the controller", err)
	}
	lv := []string{"cluster", "CtrlCluster", "broker", "broker-c", "address", addr}
	want := map[string]float64{
		sk("rocketmq_ha_in_sync_slaves", lv...):          1,
		sk("rocketmq_ha_slave_connections", lv...):       2,
		sk("rocketmq_ha_slave_ack_lag_max_bytes", lv...): 5 << 20,
	}
	if d := diffSeries(got, want); d != "" {
		t.Errorf("lagging 5.x slave:\n%s", d)
	}
}

// The controller leader is found with 1005 on the configured controllers in
// order; 1006 goes to the leader it names.
func TestControllerLeaderDiscovery(t *testing.T) {
	const addr = "127.0.0.1:20911"
	fc := newFakeClient()
	loadFixtures(t, fc, haFixture("5.0.0-steady"), onlyCodes("ctrl_n0.", rocketmq.CodeGetBrokerConfig, rocketmq.CodeGetBrokerHAStatus))
	loadFixtures(t, fc, haFixture("5.0.0-steady"), onlyCodes("controller.", rocketmq.CodeControllerGetSyncStateData))
	recorded := fc.syncState["127.0.0.1:19878"]
	delete(fc.syncState, "127.0.0.1:19878")
	fc.config[addr]["controllerAddr"] = "10.9.9.1:9878;10.9.9.2:9878;10.9.9.3:9878"
	fc.down["10.9.9.1:9878"] = fakeDown("10.9.9.1:9878")
	fc.controller["10.9.9.2:9878"] = &rocketmq.ControllerMetadata{ControllerLeaderID: "n2", ControllerLeaderAddress: "10.9.9.3:9878", IsLeader: false}
	fc.syncState["10.9.9.3:9878"] = recorded
	c, _ := newTestHA(t)
	s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{addr}}, raftBase)
	got, err := series(t, c, s)
	if err != nil {
		t.Fatal(err)
	}
	if v := got[sk("rocketmq_controller_master_epoch", "cluster", "CtrlCluster", "broker", "broker-c")]; v != 5 {
		t.Errorf("master epoch %v, want 5", v)
	}
	if fc.callCount("ControllerMetadata", "10.9.9.3:9878") != 0 || fc.callCount("ControllerSyncStateData", "10.9.9.3:9878") != 1 {
		t.Errorf("calls: %v", fc.calledWith())
	}
	for _, call := range fc.calledWith() {
		if strings.HasPrefix(call, "ControllerSyncStateData|10.9.9.2") {
			t.Errorf("1006 sent to a non-leader: %s", call)
		}
	}
}

func TestHARole(t *testing.T) {
	dl := rocketmq.BrokerConfig{"enableDLegerCommitLog": "true"}
	for _, tc := range []struct {
		id   int64
		role string
		cfg  rocketmq.BrokerConfig
		want string
	}{
		{0, "ASYNC_MASTER", nil, "master"},
		{1, "SLAVE", nil, "slave"},
		// The live id decides when it is set.
		{0, "SLAVE", dl, "master"},
		{3, "SYNC_MASTER", dl, "slave"},
		// 4.9 DLedger before the first election: no role yet.
		{-1, "ASYNC_MASTER", dl, ""},
		// 5.x controller mode: the id is always -1 in the config.
		{-1, "SYNC_MASTER", rocketmq.BrokerConfig{"enableControllerMode": "true"}, "master"},
		{-1, "SLAVE", rocketmq.BrokerConfig{"enableControllerMode": "true"}, "slave"},
		{-1, "", nil, ""},
	} {
		b := &Broker{ID: tc.id, Role: tc.role, Config: tc.cfg}
		if got := haRole(b); got != tc.want {
			t.Errorf("haRole(id %d, %s, %v) = %q, want %q", tc.id, tc.role, tc.cfg, got, tc.want)
		}
	}
}

// The recorded 5.0 controller-mode failover: ctrl_n2 (master, 22911,
// masterEpoch 5) killed after t00, ctrl_n0 master within a second with epoch
// 6 and an in-sync set of one, ctrl_n1 left without a master to replicate
// from until ctrl_n2 rejoins as a slave by t30. Cluster mode and one sidecar
// per node. The failover capture has no runtime info; the steady capture's
// (every node at 551178) stands in, so replication lag is 0 throughout.
func TestControllerFailoverTimeline(t *testing.T) {
	nodes := map[string]string{"n0": "127.0.0.1:20911", "n1": "127.0.0.1:21911", "n2": "127.0.0.1:22911"}
	type nodeHA struct {
		master   bool
		inSync   float64
		conns    float64
		hasMastr float64
	}
	type step struct {
		dir    string
		up     []string
		master string
		epoch  float64
		isr    float64
		ha     map[string]nodeHA
	}
	var steps []step
	steps = append(steps, step{dir: "t00-before", up: []string{"n0", "n1", "n2"}, master: "n2", epoch: 5, isr: 3,
		ha: map[string]nodeHA{"n2": {master: true, inSync: 2, conns: 2}, "n0": {hasMastr: 1}, "n1": {hasMastr: 1}}})
	for i := 1; i <= 10; i++ {
		steps = append(steps, step{dir: fmt.Sprintf("t%02d", i), up: []string{"n0", "n1"}, master: "n0", epoch: 6, isr: 1,
			ha: map[string]nodeHA{"n0": {master: true}, "n1": {hasMastr: 0}}})
	}
	steps = append(steps, step{dir: "t30-rejoin", up: []string{"n0", "n1", "n2"}, master: "n0", epoch: 6, isr: 3,
		ha: map[string]nodeHA{"n0": {master: true, inSync: 2, conns: 2}, "n1": {hasMastr: 1}, "n2": {hasMastr: 1}}})

	g := []string{"cluster", "CtrlCluster", "broker", "broker-c"}
	ctrlSeries := func(st step, want map[string]float64) {
		want[sk("rocketmq_controller_master_epoch", g...)] = st.epoch
		want[sk("rocketmq_controller_in_sync_replicas", g...)] = st.isr
	}
	nodeSeries := func(st step, n string, want map[string]float64) {
		lv := append(slices.Clone(g), "address", nodes[n])
		h := st.ha[n]
		if h.master {
			want[sk("rocketmq_ha_in_sync_slaves", lv...)] = h.inSync
			want[sk("rocketmq_ha_slave_connections", lv...)] = h.conns
			if h.conns > 0 {
				want[sk("rocketmq_ha_slave_ack_lag_max_bytes", lv...)] = 0
			}
			return
		}
		want[sk("rocketmq_ha_slave_has_master", lv...)] = h.hasMastr
	}

	cluster, _ := newTestHA(t)
	sidecars := map[string]Collector{}
	for n := range nodes {
		sidecars[n], _ = newTestHA(t)
	}
	for i, st := range steps {
		t.Run(st.dir, func(t *testing.T) {
			fc := newFakeClient()
			loadFixtures(t, fc, haFixture("controller-failover/"+st.dir), nil)
			loadFixtures(t, fc, haFixture("5.0.0-steady"), func(name string, code int) bool {
				return (strings.HasPrefix(name, "ctrl_") && code == rocketmq.CodeGetBrokerRuntimeInfo) ||
					code == rocketmq.CodeControllerGetMetadataInfo
			})
			keepGroups(fc, "broker-c")
			now := raftBase.Add(time.Duration(i) * time.Second)

			want := map[string]float64{
				sk("rocketmq_ha_group_master_present", g...): 1,
				sk("rocketmq_ha_group_masters", g...):        1,
				sk("rocketmq_ha_group_slaves", g...):         float64(len(st.up) - 1),
			}
			ctrlSeries(st, want)
			for _, n := range st.up {
				nodeSeries(st, n, want)
				if n != st.master {
					want[sk("rocketmq_ha_replication_lag_bytes", append(slices.Clone(g), "address", nodes[n])...)] = 0
				}
			}
			s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{ns50}}, now)
			got, err := series(t, cluster, s)
			if err != nil {
				t.Errorf("cluster: %v", err)
			}
			if d := diffSeries(got, want); d != "" {
				t.Errorf("cluster:\n%s", d)
			}

			for n, addr := range nodes {
				want := map[string]float64{}
				if slices.Contains(st.up, n) {
					ctrlSeries(st, want)
					nodeSeries(st, n, want)
				}
				s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{addr}}, now)
				got, err := series(t, sidecars[n], s)
				if err != nil {
					t.Errorf("sidecar %s: %v", n, err)
				}
				if d := diffSeries(got, want); d != "" {
					t.Errorf("sidecar %s:\n%s", n, d)
				}
			}
		})
	}
}

// A runtime read that hangs until the scrape deadline leaves the version
// unknown and no time for 907: nothing is sent, and the failure is the
// broker collector's to report, not the ha collector's.
func TestHAStatusVersionReadHangs(t *testing.T) {
	const addr = "127.0.0.1:23911"
	fc := newFakeClient()
	loadFixtures(t, fc, haFixture("5.0.0-steady"), onlyCodes("ms_master.", rocketmq.CodeGetBrokerConfig, rocketmq.CodeGetBrokerHAStatus))
	s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{addr}}, raftBase)
	fc.block[addr] = true
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c, _ := newTestHA(t)
	got, err := seriesCtx(t, ctx, c, s)
	if err != nil || len(got) != 0 {
		t.Errorf("got %v, %v; want nothing and no error", got, err)
	}
	if n := fc.callCount("BrokerHAStatus", addr); n != 0 {
		t.Errorf("907 sent %d times after the deadline", n)
	}
	if n := fc.callCount("BrokerRuntimeInfo", addr); n != 1 {
		t.Errorf("%d runtime reads, want 1", n)
	}
}

// The group memory behind vanished groups: a stale scrape does not overwrite
// a newer sighting, the TTL and the size bound forget groups, and concurrent
// scrapes share it safely.
func TestRecentGroups(t *testing.T) {
	at := func(s int) time.Time { return raftBase.Add(time.Duration(s) * time.Second) }
	r := newRecentGroups[string, int](10*time.Second, 3)
	r.remember("a", 1, at(5))
	r.remember("a", 0, at(4)) // an older scrape finishing late
	if got := r.missing(at(6), nil); got["a"] != 1 {
		t.Errorf("stale sighting overwrote the newer one: %v", got)
	}
	if got := r.missing(at(6), map[string]bool{"a": true}); len(got) != 0 {
		t.Errorf("present group reported missing: %v", got)
	}
	if got := r.missing(at(15), nil); len(got) != 1 {
		t.Errorf("at the TTL: %v, want a still remembered", got)
	}
	if got := r.missing(at(16), nil); len(got) != 0 {
		t.Errorf("after the TTL: %v, want nothing", got)
	}
	for i, k := range []string{"b", "c", "d", "e"} {
		r.remember(k, i, at(20+i))
	}
	got := r.missing(at(24), nil)
	if _, kept := got["b"]; kept || len(got) != 3 {
		t.Errorf("size bound: %v, want the 3 most recently seen", got)
	}

	r = newRecentGroups[string, int](time.Hour, 8)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				k := fmt.Sprintf("g%d", (i+j)%12)
				r.remember(k, j, at(j))
				r.missing(at(j), map[string]bool{k: true})
			}
		})
	}
	wg.Wait()
	if got := r.missing(at(200), nil); len(got) > 8 {
		t.Errorf("%d groups kept, bound 8", len(got))
	}
}
