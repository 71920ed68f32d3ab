package collector

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// logBuffer is a concurrency-safe log sink for asserting on log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func brokerByAddr(t *testing.T, s *Scrape, addr string) *Broker {
	t.Helper()
	for _, b := range s.Brokers {
		if b.Addr == addr {
			return b
		}
	}
	t.Fatalf("no broker %s in scrape; have %v", addr, describeBrokers(s.Brokers))
	return nil
}

func describeBrokers(bs []*Broker) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Cluster+"/"+b.Name+"/"+b.Addr)
	}
	return out
}

func TestResolveSidecar(t *testing.T) {
	f := newFakeClient()
	// Dialed as localhost, advertised as 10.0.0.1: the label must be the
	// advertised address so it matches what a cluster-mode exporter shows.
	f.config["localhost:10911"] = fakeBrokerConfig("C1", "broker-a", 0, "SYNC_MASTER", "10.0.0.1:10911")
	f.down["10.0.0.9:10911"] = fakeDown("10.0.0.9:10911")
	logger, logs := newTestLogger()

	s := Resolve(context.Background(), f, Targets{
		Mode:    ModeSidecar,
		Brokers: []string{"localhost:10911", "10.0.0.9:10911", "localhost:10911", ""},
	}, logger)

	if len(s.Brokers) != 2 {
		t.Fatalf("brokers = %v, want 2 (repeats and empty dropped)", describeBrokers(s.Brokers))
	}
	if s.Mode != ModeSidecar || s.ClusterInfo != nil || len(s.NameServers) != 0 {
		t.Errorf("sidecar scrape has mode %v, cluster info %v, namesrvs %v", s.Mode, s.ClusterInfo, s.NameServers)
	}
	if s.Concurrency != DefaultConcurrency {
		t.Errorf("concurrency = %d, want default %d", s.Concurrency, DefaultConcurrency)
	}
	up := brokerByAddr(t, s, "localhost:10911")
	want := Broker{Addr: "localhost:10911", Address: "10.0.0.1:10911", Cluster: "C1", Name: "broker-a", ID: 0, Role: "SYNC_MASTER"}
	if up.Addr != want.Addr || up.Address != want.Address || up.Cluster != want.Cluster || up.Name != want.Name ||
		up.ID != want.ID || up.Role != want.Role || up.Err != nil || up.Config["brokerIP1"] != "10.0.0.1" {
		t.Errorf("up broker = %+v, want %+v", *up, want)
	}
	if !up.IsMaster() {
		t.Error("brokerId 0 must be master")
	}
	down := brokerByAddr(t, s, "10.0.0.9:10911")
	if down.Up() || down.Address != "10.0.0.9:10911" || down.ID != -1 || down.Config != nil {
		t.Errorf("down broker = %+v, want Err set, Address = Addr, ID -1, no config", *down)
	}
	got := logs.lines("10.0.0.9:10911")
	if len(got) != 1 || !strings.Contains(got[0], "level=WARN") || !strings.Contains(got[0], "connection refused") {
		t.Errorf("want one WARN line naming the address and error, got %q", got)
	}
	if n := len(logs.lines("localhost:10911")); n != 0 {
		t.Errorf("healthy broker logged %d lines", n)
	}
}

func TestResolveSidecarAddressFallback(t *testing.T) {
	f := newFakeClient()
	f.config["b:1"] = rocketmq.BrokerConfig{"brokerClusterName": "C", "brokerName": "n", "brokerId": "1", "brokerRole": "SLAVE"}
	f.config["b:2"] = rocketmq.BrokerConfig{"brokerClusterName": "C", "brokerName": "n", "brokerId": "x", "brokerIP1": "h", "listenPort": "99999"}
	f.config["b:3"] = rocketmq.BrokerConfig{}
	s := Resolve(context.Background(), f, Targets{Brokers: []string{"b:1", "b:2", "b:3"}}, nil)

	b1 := brokerByAddr(t, s, "b:1")
	if b1.Address != "b:1" || b1.ID != 1 || b1.IsMaster() {
		t.Errorf("no brokerIP1: got %+v, want Address b:1, slave id 1", *b1)
	}
	b2 := brokerByAddr(t, s, "b:2")
	if b2.Address != "b:2" || b2.ID != -1 || !b2.Up() {
		t.Errorf("bad port and id: got %+v, want Address b:2, ID -1, up", *b2)
	}
	if b3 := brokerByAddr(t, s, "b:3"); b3.Up() {
		t.Errorf("an empty config says nothing about the node; got up %+v", *b3)
	}
}

func TestResolveClusterLabelsFromEachGroup(t *testing.T) {
	f := newFakeClient()
	// Two clusters behind one NameServer; clusterAddrTable deliberately
	// contradicts nothing but is iterated in random order, so any "first
	// cluster seen" shortcut fails sooner or later.
	f.clusterInfo["ns:9876"] = &rocketmq.ClusterInfo{
		BrokerAddrTable: map[string]rocketmq.BrokerData{
			"broker-a": {Cluster: "DefaultCluster", BrokerName: "broker-a", BrokerAddrs: map[int64]string{0: "10.0.0.1:10911"}},
			"broker-b": {Cluster: "MSCluster", BrokerName: "broker-b", BrokerAddrs: map[int64]string{0: "10.0.0.2:10911", 1: "10.0.0.3:10911"}},
			"raft":     {Cluster: "RaftCluster", BrokerName: "raft", BrokerAddrs: map[int64]string{0: "10.0.0.4:10911", 2: "10.0.0.5:10911"}},
			// An answer without the group's cluster field: looked up by name.
			"legacy": {BrokerName: "legacy", BrokerAddrs: map[int64]string{0: "10.0.0.6:10911"}},
		},
		ClusterAddrTable: map[string][]string{
			"DefaultCluster": {"broker-a"},
			"MSCluster":      {"broker-b"},
			"RaftCluster":    {"raft"},
			"OldCluster":     {"legacy"},
		},
	}
	for addr, id := range map[string]int64{"10.0.0.1:10911": 0, "10.0.0.2:10911": 0, "10.0.0.3:10911": 1, "10.0.0.4:10911": 0, "10.0.0.5:10911": 2, "10.0.0.6:10911": 0} {
		// The node's own config claims another cluster: the NameServer's
		// grouping wins in cluster mode.
		f.config[addr] = fakeBrokerConfig("Wrong", "wrong", id, "ASYNC_MASTER", addr)
	}

	for range 20 {
		s := Resolve(context.Background(), f, Targets{Mode: ModeCluster, NameServers: []string{"ns:9876"}}, nil)
		want := []string{
			"DefaultCluster/broker-a/10.0.0.1:10911",
			"MSCluster/broker-b/10.0.0.2:10911",
			"MSCluster/broker-b/10.0.0.3:10911",
			"OldCluster/legacy/10.0.0.6:10911",
			"RaftCluster/raft/10.0.0.4:10911",
			"RaftCluster/raft/10.0.0.5:10911",
		}
		if got := describeBrokers(s.Brokers); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("brokers = %v, want %v (sorted by cluster, name, id)", got, want)
		}
		if b := brokerByAddr(t, s, "10.0.0.5:10911"); b.ID != 2 || b.Role != "ASYNC_MASTER" || b.Config == nil {
			t.Fatalf("member not filled from its config: %+v", *b)
		}
	}
}

func TestResolveClusterFirstAnsweringNameServer(t *testing.T) {
	f := newFakeClient()
	f.down["ns1:9876"] = fakeDown("ns1:9876")
	f.clusterInfo["ns2:9876"] = &rocketmq.ClusterInfo{BrokerAddrTable: map[string]rocketmq.BrokerData{
		"b": {Cluster: "C", BrokerName: "b", BrokerAddrs: map[int64]string{0: "from-ns2:10911"}},
	}}
	f.clusterInfo["ns3:9876"] = &rocketmq.ClusterInfo{BrokerAddrTable: map[string]rocketmq.BrokerData{
		"b": {Cluster: "C", BrokerName: "b", BrokerAddrs: map[int64]string{0: "from-ns3:10911"}},
	}}
	// ns3 answers first in time; flag order must still win.
	f.before = func(ctx context.Context, key string) error {
		if key == fakeKey("BrokerClusterInfo", "ns2:9876") {
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	}
	f.config["from-ns2:10911"] = fakeBrokerConfig("C", "b", 0, "ASYNC_MASTER", "from-ns2:10911")
	logger, logs := newTestLogger()

	s := Resolve(context.Background(), f, Targets{Mode: ModeCluster, NameServers: []string{"ns1:9876", "ns2:9876", "ns3:9876"}}, logger)

	if s.ClusterInfo != f.clusterInfo["ns2:9876"] {
		t.Error("cluster info is not the first answering NameServer's (ns2)")
	}
	if len(s.NameServers) != 3 {
		t.Fatalf("namesrvs = %v", s.NameServers)
	}
	for i, want := range []struct {
		addr string
		up   bool
	}{{"ns1:9876", false}, {"ns2:9876", true}, {"ns3:9876", true}} {
		if ns := s.NameServers[i]; ns.Addr != want.addr || (ns.Err == nil) != want.up {
			t.Errorf("namesrv %d = %+v, want %s up=%v", i, ns, want.addr, want.up)
		}
	}
	if got := describeBrokers(s.Brokers); len(got) != 1 || got[0] != "C/b/from-ns2:10911" {
		t.Errorf("brokers = %v, want ns2's", got)
	}
	if n := len(logs.lines("ns1:9876")); n != 1 {
		t.Errorf("dead NameServer logged %d lines, want 1", n)
	}
	if f.callCount("BrokerConfig", "from-ns3:10911") != 0 {
		t.Error("brokers of a NameServer not used were dialed")
	}
}

func TestResolveClusterNoNameServer(t *testing.T) {
	f := newFakeClient()
	f.down["ns1:9876"] = fakeDown("ns1:9876")
	f.errs[fakeKey("BrokerClusterInfo", "ns2:9876")] = &rocketmq.ResponseError{RequestCode: 106, Code: 1, Remark: "boom"}
	logger, logs := newTestLogger()
	s := Resolve(context.Background(), f, Targets{Mode: ModeCluster, NameServers: []string{"ns1:9876", "ns2:9876"}}, logger)
	if s.ClusterInfo != nil || len(s.Brokers) != 0 {
		t.Errorf("no NameServer answered, got info %v brokers %v", s.ClusterInfo, describeBrokers(s.Brokers))
	}
	if len(s.NameServers) != 2 || s.NameServers[0].Err == nil || s.NameServers[1].Err == nil {
		t.Errorf("namesrvs = %+v, want both failed", s.NameServers)
	}
	if len(logs.lines("no NameServer answered")) != 1 {
		t.Error("missing the summary error line")
	}
}

func TestResolveClusterMemberDownAndLiveID(t *testing.T) {
	f := newFakeClient()
	f.clusterInfo["ns"] = &rocketmq.ClusterInfo{BrokerAddrTable: map[string]rocketmq.BrokerData{
		"raft": {Cluster: "R", BrokerName: "raft", BrokerAddrs: map[int64]string{
			0:  "n0:1", // listed as leader but dead
			2:  "n1:1", // the NameServer is a step behind: n1 is the leader now
			-1: "n2:1", // 4.9 DLedger node before its first election
			3:  "n3:1",
		}},
	}}
	f.down["n0:1"] = fakeDown("n0:1")
	f.config["n1:1"] = fakeBrokerConfig("R", "raft", 0, "SYNC_MASTER", "n1:1")
	f.config["n2:1"] = fakeBrokerConfig("R", "raft", -1, "SLAVE", "n2:1")
	f.config["n3:1"] = fakeBrokerConfig("R", "raft", -7, "SLAVE", "n3:1")

	s := Resolve(context.Background(), f, Targets{Mode: ModeCluster, NameServers: []string{"ns"}}, nil)

	n0 := brokerByAddr(t, s, "n0:1")
	if n0.Up() || n0.ID != 0 || n0.Cluster != "R" || n0.Name != "raft" || n0.Address != "n0:1" || n0.IsMaster() {
		t.Errorf("dead listed member = %+v, want down, NameServer id 0 kept, identity kept, not master", *n0)
	}
	if n1 := brokerByAddr(t, s, "n1:1"); n1.ID != 0 || !n1.IsMaster() || n1.Role != "SYNC_MASTER" {
		t.Errorf("live id must override the NameServer's: %+v", *n1)
	}
	for _, addr := range []string{"n2:1", "n3:1"} {
		if b := brokerByAddr(t, s, addr); b.ID != -1 || b.IsMaster() {
			t.Errorf("%s: negative ids must stay -1 and never master: %+v", addr, *b)
		}
	}
	owners := s.Owners()
	if len(owners) != 1 || owners[0].Addr != "n1:1" {
		t.Errorf("owners = %v, want only n1", describeBrokers(owners))
	}
	if len(s.UpBrokers()) != 3 {
		t.Errorf("up brokers = %v", describeBrokers(s.UpBrokers()))
	}
}

func TestResolveClusterDuplicateAddress(t *testing.T) {
	f := newFakeClient()
	// A node re-registering under a new id can appear twice for a moment.
	f.clusterInfo["ns"] = &rocketmq.ClusterInfo{BrokerAddrTable: map[string]rocketmq.BrokerData{
		"g": {Cluster: "C", BrokerName: "g", BrokerAddrs: map[int64]string{-1: "a:1", 0: "a:1", 1: "b:1", 2: ""}},
	}}
	f.down["a:1"] = errors.New("down")
	f.down["b:1"] = errors.New("down")
	s := Resolve(context.Background(), f, Targets{Mode: ModeCluster, NameServers: []string{"ns"}}, nil)
	if got := describeBrokers(s.Brokers); len(got) != 2 {
		t.Fatalf("brokers = %v, want a:1 and b:1 once each", got)
	}
	if a := brokerByAddr(t, s, "a:1"); a.ID != 0 {
		t.Errorf("a:1 id = %d, want the non-negative claim 0", a.ID)
	}
	if f.callCount("BrokerConfig", "a:1") != 1 {
		t.Errorf("a:1 dialed %d times", f.callCount("BrokerConfig", "a:1"))
	}
}

func TestResolveConcurrencyBound(t *testing.T) {
	f := newFakeClient()
	var brokers []string
	for _, a := range []string{"a:1", "b:1", "c:1", "d:1", "e:1", "f:1", "g:1", "h:1"} {
		f.addBroker(a, "C", a, 0, "ASYNC_MASTER")
		brokers = append(brokers, a)
	}
	var inFlight, peak atomic.Int32
	f.before = func(ctx context.Context, key string) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
		return nil
	}
	s := Resolve(context.Background(), f, Targets{Brokers: brokers, Concurrency: 3}, nil)
	if len(s.UpBrokers()) != len(brokers) {
		t.Fatalf("up = %d", len(s.UpBrokers()))
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak in flight = %d, want parallel but at most 3", p)
	}
	if s.Concurrency != 3 {
		t.Errorf("scrape concurrency = %d", s.Concurrency)
	}
}

func TestResolveHonoursDeadline(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := newFakeClient()
	f.block["ns1"] = true
	f.clusterInfo["ns2"] = &rocketmq.ClusterInfo{BrokerAddrTable: map[string]rocketmq.BrokerData{
		"g": {Cluster: "C", BrokerName: "g", BrokerAddrs: map[int64]string{0: "a:1", 1: "b:1"}},
	}}
	f.block["a:1"] = true
	f.block["b:1"] = true
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	s := Resolve(ctx, f, Targets{Mode: ModeCluster, NameServers: []string{"ns1", "ns2"}}, nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Resolve took %v past a 100ms deadline", d)
	}
	if !errors.Is(s.NameServers[0].Err, context.DeadlineExceeded) || s.NameServers[1].Err != nil {
		t.Errorf("namesrvs = %+v", s.NameServers)
	}
	if len(s.Brokers) != 2 {
		t.Fatalf("brokers = %v", describeBrokers(s.Brokers))
	}
	for _, b := range s.Brokers {
		if !errors.Is(b.Err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want deadline exceeded", b.Addr, b.Err)
		}
	}
}

// A panic while reading one node's identity (a decoding bug on an odd
// answer) must cost that node only, not the process.
func TestResolvePanicInFanOut(t *testing.T) {
	f := newFakeClient()
	f.addBroker("a:1", "C", "a", 0, "ASYNC_MASTER")
	f.addBroker("b:1", "C", "b", 0, "ASYNC_MASTER")
	f.addNameServer("ns2")
	f.before = func(_ context.Context, key string) error {
		if key == fakeKey("BrokerConfig", "b:1") || key == fakeKey("BrokerClusterInfo", "ns1") {
			panic("decoder bug")
		}
		return nil
	}
	logger, logs := newTestLogger()

	side := Resolve(context.Background(), f, Targets{Brokers: []string{"a:1", "b:1"}}, logger)
	if a := brokerByAddr(t, side, "a:1"); !a.Up() || a.Name != "a" {
		t.Errorf("healthy node = %+v, want up", *a)
	}
	if b := brokerByAddr(t, side, "b:1"); b.Up() || b.IsMaster() {
		t.Errorf("node whose read panicked = %+v, want down", *b)
	}

	cl := Resolve(context.Background(), f, Targets{Mode: ModeCluster, NameServers: []string{"ns1", "ns2"}}, logger)
	if len(cl.NameServers) != 2 || cl.NameServers[0].Err == nil || cl.NameServers[1].Err != nil {
		t.Errorf("namesrvs = %+v, want ns1 down, ns2 up", cl.NameServers)
	}
	if cl.ClusterInfo == nil || len(cl.UpBrokers()) != 1 {
		t.Errorf("cluster scrape: info %v, up %v; want ns2's layout with a:1 up", cl.ClusterInfo, describeBrokers(cl.UpBrokers()))
	}
	got := logs.lines("decoder bug")
	if len(got) != 3 {
		t.Fatalf("want one ERROR per panicking fan-out (2 for brokers, 1 for the NameServers), got %q", got)
	}
	for _, l := range got {
		if !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "TestResolvePanicInFanOut") {
			t.Errorf("panic not logged as ERROR with its stack: %s", l)
		}
	}
}

// The broker parses its booleans with Boolean.parseBoolean, which ignores
// case: "TRUE" and "True" switch controller mode on as "true" does.
func TestResolveControllerModeBooleanCase(t *testing.T) {
	for _, v := range []string{"true", "True", "TRUE", " true"} {
		f := newFakeClient()
		cfg := f.addBroker("m:1", "C", "b", -1, "SYNC_MASTER")
		cfg["enableControllerMode"] = v
		s := Resolve(context.Background(), f, Targets{Brokers: []string{"m:1"}}, nil)
		if b := s.Brokers[0]; b.ID != 0 || !b.IsMaster() {
			t.Errorf("enableControllerMode=%q: id %d, want the controller-mode master's 0", v, b.ID)
		}
	}
	for _, v := range []string{"false", "", "yes", "1"} {
		f := newFakeClient()
		cfg := f.addBroker("m:1", "C", "b", -1, "SYNC_MASTER")
		cfg["enableControllerMode"] = v
		s := Resolve(context.Background(), f, Targets{Brokers: []string{"m:1"}}, nil)
		if b := s.Brokers[0]; b.ID != -1 || b.IsMaster() {
			t.Errorf("enableControllerMode=%q: id %d, want -1 (not controller mode, as Boolean.parseBoolean reads it)", v, b.ID)
		}
	}
}

// levels returns the level of every log line naming substr, in order.
func (l *logBuffer) levels(substr string) []string {
	var out []string
	for _, line := range l.lines(substr) {
		for _, f := range strings.Fields(line) {
			if lv, ok := strings.CutPrefix(f, "level="); ok {
				out = append(out, lv)
			}
		}
	}
	return out
}

// A sidecar whose broker is down must not log a WARN at every scrape: WARN
// when it goes down, DEBUG while it stays down, INFO once when it is back.
func TestResolveLogsTargetStateChanges(t *testing.T) {
	f := newFakeClient()
	f.addBroker("up:1", "C", "up", 0, "ASYNC_MASTER")
	states := NewTargetStates(0)
	logger, logs := newTestLogger()
	targets := Targets{Brokers: []string{"up:1", "flaky:1"}, States: states}
	scrape := func(down bool) {
		t.Helper()
		if down {
			f.down["flaky:1"] = fakeDown("flaky:1")
		} else {
			delete(f.down, "flaky:1")
			f.addBroker("flaky:1", "C", "flaky", 1, "SLAVE")
		}
		s := Resolve(context.Background(), f, targets, logger)
		if b := brokerByAddr(t, s, "flaky:1"); b.Up() == down {
			t.Fatalf("flaky:1 up = %v, want %v", b.Up(), !down)
		}
	}
	for _, down := range []bool{true, true, true, false, false, true} {
		scrape(down)
	}
	want := []string{"WARN", "DEBUG", "DEBUG", "INFO", "WARN"}
	if got := logs.levels("flaky:1"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("levels of the flaky broker's lines = %v, want %v:\n%s", got, want, strings.Join(logs.lines("flaky:1"), "\n"))
	}
	if got := logs.lines("answers GET_BROKER_CONFIG again"); len(got) != 1 || !strings.Contains(got[0], "down_for=") {
		t.Errorf("recovery line = %q, want one saying for how long it was down", got)
	}
	if n := len(logs.lines("up:1")); n != 0 {
		t.Errorf("the healthy broker logged %d lines", n)
	}

	// Without States every failed read is a WARN, as before.
	f.down["flaky:1"] = fakeDown("flaky:1")
	logger, logs = newTestLogger()
	for range 2 {
		Resolve(context.Background(), f, Targets{Brokers: []string{"flaky:1"}}, logger)
	}
	if got := logs.levels("flaky:1"); strings.Join(got, " ") != "WARN WARN" {
		t.Errorf("nil States: levels = %v, want a WARN per scrape", got)
	}
}

func TestResolveLogsNameServerStateChanges(t *testing.T) {
	f := newFakeClient()
	f.addBroker("b:1", "C", "b", 0, "ASYNC_MASTER")
	f.addNameServer("ns2")
	f.down["ns1"] = fakeDown("ns1")
	logger, logs := newTestLogger()
	targets := Targets{Mode: ModeCluster, NameServers: []string{"ns1", "ns2"}, States: NewTargetStates(0)}
	for range 3 {
		Resolve(context.Background(), f, targets, logger)
	}
	f.down["ns2"] = fakeDown("ns2") // the last one goes too
	for range 2 {
		Resolve(context.Background(), f, targets, logger)
	}
	delete(f.down, "ns1")
	f.addNameServer("ns1")
	Resolve(context.Background(), f, targets, logger)

	for addr, want := range map[string]string{
		"ns1": "WARN DEBUG DEBUG DEBUG DEBUG INFO",
		"ns2": "WARN DEBUG DEBUG",
	} {
		if got := logs.levels("address=" + addr + " "); strings.Join(got, " ") != want {
			t.Errorf("%s: levels = %v, want %s", addr, got, want)
		}
	}
	if got := logs.levels("no NameServer answered"); strings.Join(got, " ") != "ERROR DEBUG" {
		t.Errorf("summary line levels = %v, want ERROR once, then DEBUG", got)
	}
}

// Prometheus HA pairs scrape the same exporter at the same moment: of the
// scrapes that find a target down together, exactly one says so at WARN.
func TestResolveTargetStatesConcurrentScrapes(t *testing.T) {
	f := newFakeClient()
	f.down["dead:1"] = fakeDown("dead:1")
	logger, logs := newTestLogger()
	targets := Targets{Brokers: []string{"dead:1"}, States: NewTargetStates(0)}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { Resolve(context.Background(), f, targets, logger) })
	}
	wg.Wait()
	got := logs.levels("dead:1")
	if len(got) != 8 || strings.Count(strings.Join(got, " "), "WARN") != 1 {
		t.Errorf("levels = %v, want 8 lines with exactly one WARN", got)
	}
}

func TestTargetStatesBoundedAndForgetful(t *testing.T) {
	ts := NewTargetStates(2)
	t0 := time.Unix(1_700_000_000, 0)
	if _, changed := ts.markDown(KindBroker, "a", t0); !changed {
		t.Error("first sighting down must be a change")
	}
	ts.markDown(KindBroker, "b", t0.Add(time.Second))
	if since, changed := ts.markDown(KindBroker, "a", t0.Add(2*time.Second)); changed || !since.Equal(t0) {
		t.Errorf("a still down: changed %v since %v, want no change since %v", changed, since, t0)
	}
	// Full: c pushes out b, the one read longest ago.
	ts.markDown(KindBroker, "c", t0.Add(3*time.Second))
	if len(ts.down) != 2 {
		t.Fatalf("%d targets kept, want at most 2", len(ts.down))
	}
	if _, changed := ts.markDown(KindBroker, "b", t0.Add(4*time.Second)); !changed {
		t.Error("the evicted target must count as news again")
	}
	// The same address as another kind is another target.
	if _, changed := ts.markUp(KindNameServer, "c", t0.Add(5*time.Second)); changed {
		t.Error("a NameServer recovery must not clear a broker's state")
	}
	// Not read for longer than the TTL: forgotten, so down is news again
	// and up is no recovery.
	late := t0.Add(4*time.Second + targetStateTTL + time.Second)
	if _, changed := ts.markDown(KindBroker, "b", late); !changed {
		t.Error("a target not read for longer than the TTL must be news again")
	}
	if _, changed := ts.markUp(KindBroker, "c", late); changed {
		t.Error("a recovery after the TTL must not be reported")
	}
	if since, changed := ts.markUp(KindBroker, "b", late.Add(time.Minute)); !changed || !since.Equal(late) {
		t.Errorf("b back up: changed %v since %v, want a change since %v", changed, since, late)
	}
	if len(ts.down) != 0 {
		t.Errorf("%d targets kept after all recovered", len(ts.down))
	}
	var none *TargetStates
	if _, changed := none.markDown(KindBroker, "a", t0); !changed {
		t.Error("nil states: every down is a change")
	}
	if _, changed := none.markUp(KindBroker, "a", t0); changed {
		t.Error("nil states: no recovery is known")
	}
}
