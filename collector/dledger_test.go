package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// Shared helpers of the dledger and ha tests: recorded fixtures loaded into
// the package's fakeClient, a scrape adapter, flattened series and golden
// files.

func init() {
	// Other test files of the package may define -update too; whichever
	// runs first owns it.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// fixtureRequest is a recorded .request.json.
type fixtureRequest struct {
	Name string            `json:"name"`
	Addr string            `json:"addr"`
	Code int               `json:"code"`
	Ext  map[string]string `json:"ext"`
	Body json.RawMessage   `json:"body"`
}

// fixtureHeader is a recorded .response.header.json.
type fixtureHeader struct {
	Code      int               `json:"code"`
	Remark    string            `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
}

// loadFixtures fills fc with every recorded request in dir for which keep
// returns true (nil keeps all): answers become canned answers, a recorded
// dial error makes the address down, a non-success header code becomes an
// injected *rocketmq.ResponseError for that request.
func loadFixtures(t testing.TB, fc *fakeClient, dir string, keep func(name string, code int) bool) {
	t.Helper()
	reqs, err := filepath.Glob(filepath.Join(dir, "*.request.json"))
	if err != nil || len(reqs) == 0 {
		t.Fatalf("no fixtures in %s (%v)", dir, err)
	}
	for _, rp := range reqs {
		base := strings.TrimSuffix(rp, ".request.json")
		var req fixtureRequest
		readJSONFile(t, rp, &req)
		if keep != nil && !keep(filepath.Base(base), req.Code) {
			continue
		}
		if _, err := os.Stat(base + ".error.txt"); err == nil {
			fc.down[req.Addr] = fakeDown(req.Addr)
			continue
		}
		var hdr fixtureHeader
		readJSONFile(t, base+".response.header.json", &hdr)
		body, err := os.ReadFile(base + ".response.body")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		ok := hdr.Code == 0 || (hdr.Code == rocketmq.DLedgerSuccess && req.Code >= rocketmq.CodeDLedgerMetadata)
		var respErr error
		if !ok {
			respErr = &rocketmq.ResponseError{RequestCode: req.Code, Code: hdr.Code, Remark: hdr.Remark}
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", base, err)
			}
		}
		switch req.Code {
		case rocketmq.CodeGetBrokerClusterInfo:
			if respErr != nil {
				fc.errs[fakeKey("BrokerClusterInfo", req.Addr)] = respErr
				continue
			}
			ci, err := rocketmq.DecodeClusterInfo(body)
			must(err)
			fc.clusterInfo[req.Addr] = ci
		case rocketmq.CodeGetBrokerConfig:
			if respErr != nil {
				fc.errs[fakeKey("BrokerConfig", req.Addr)] = respErr
				continue
			}
			cfg, err := rocketmq.DecodeBrokerConfig(body)
			must(err)
			fc.config[req.Addr] = cfg
		case rocketmq.CodeGetBrokerRuntimeInfo:
			if respErr != nil {
				fc.errs[fakeKey("BrokerRuntimeInfo", req.Addr)] = respErr
				continue
			}
			ri, err := rocketmq.DecodeRuntimeInfo(body)
			must(err)
			fc.runtime[req.Addr] = ri
		case rocketmq.CodeGetBrokerHAStatus:
			if respErr != nil {
				fc.errs[fakeKey("BrokerHAStatus", req.Addr)] = respErr
				continue
			}
			hi, err := rocketmq.DecodeHARuntimeInfo(body)
			must(err)
			fc.haStatus[req.Addr] = hi
		case rocketmq.CodeDLedgerMetadata:
			var rb struct{ Group, RemoteID string }
			must(json.Unmarshal(req.Body, &struct {
				Group    *string `json:"group"`
				RemoteID *string `json:"remoteId"`
			}{&rb.Group, &rb.RemoteID}))
			key := fakeKey(req.Addr, rb.Group, rb.RemoteID)
			if respErr != nil {
				fc.errs[fakeKey("DLedgerMetadata", key)] = respErr
				continue
			}
			md, err := rocketmq.DecodeDLedgerMetadata(body)
			must(err)
			fc.dledger[key] = md
		case rocketmq.CodeDLedgerHeartBeat:
			var rb struct {
				Group    string `json:"group"`
				RemoteID string `json:"remoteId"`
				LeaderID string `json:"leaderId"`
			}
			must(json.Unmarshal(req.Body, &rb))
			var ans struct {
				Code int   `json:"code"`
				Term int64 `json:"term"`
			}
			must(json.Unmarshal(body, &ans))
			if ans.Code != rocketmq.DLedgerExpiredTerm {
				t.Fatalf("%s: term probe answered code %d", base, ans.Code)
			}
			fc.dledgerTerms[fakeKey(req.Addr, rb.Group, rb.RemoteID, rb.LeaderID)] = ans.Term
		case rocketmq.CodeControllerGetMetadataInfo:
			if respErr != nil {
				fc.errs[fakeKey("ControllerMetadata", req.Addr)] = respErr
				continue
			}
			md, err := rocketmq.DecodeControllerMetadata(hdr.ExtFields)
			must(err)
			fc.controller[req.Addr] = md
		case rocketmq.CodeControllerGetSyncStateData:
			if respErr != nil {
				fc.errs[fakeKey("ControllerSyncStateData", req.Addr)] = respErr
				continue
			}
			sd, err := rocketmq.DecodeSyncStateData(body)
			must(err)
			fc.syncState[req.Addr] = sd
		}
	}
}

func readJSONFile(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// onlyCodes keeps the recorded requests with one of the codes, optionally
// only for nodes whose name starts with prefix.
func onlyCodes(prefix string, codes ...int) func(string, int) bool {
	return func(name string, code int) bool {
		return strings.HasPrefix(name, prefix) && slices.Contains(codes, code)
	}
}

// scrapeAdapter runs one Update as a prometheus.Collector, keeping its error.
type scrapeAdapter struct {
	ctx context.Context // nil = context.Background()
	c   Collector
	s   *Scrape
	err error
}

func (a *scrapeAdapter) Describe(chan<- *prometheus.Desc) {}

func (a *scrapeAdapter) Collect(ch chan<- prometheus.Metric) {
	ctx := a.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	a.err = a.c.Update(ctx, a.s, ch)
}

// resolveAt builds a scrape with the real Resolve at a fixed time.
func resolveAt(fc *fakeClient, t Targets, now time.Time) *Scrape {
	s := Resolve(context.Background(), fc, t, nil)
	s.Now = now
	return s
}

// series runs one Update through a pedantic registry and flattens the
// result to "name{l="v",…}" → value, sorted labels. The registry rejects
// duplicate series and inconsistent label sets.
func series(t testing.TB, c Collector, s *Scrape) (map[string]float64, error) {
	t.Helper()
	return seriesCtx(t, context.Background(), c, s)
}

// seriesCtx is series with the scrape's context.
func seriesCtx(t testing.TB, ctx context.Context, c Collector, s *Scrape) (map[string]float64, error) {
	t.Helper()
	a := &scrapeAdapter{ctx: ctx, c: c, s: s}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(ls)
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out, a.err
}

// sk builds a series key as series() does; labels as name, value pairs.
func sk(name string, kv ...string) string {
	var ls []string
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, fmt.Sprintf("%s=%q", kv[i], kv[i+1]))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

// diffSeries describes how got differs from want, "" when equal.
func diffSeries(got, want map[string]float64) string {
	var b strings.Builder
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var all []string
	for k := range keys {
		all = append(all, k)
	}
	sort.Strings(all)
	for _, k := range all {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			fmt.Fprintf(&b, "  missing %s (want %v)\n", k, w)
		case !wok:
			fmt.Fprintf(&b, "  unexpected %s = %v\n", k, g)
		case g != w:
			fmt.Fprintf(&b, "  %s = %v, want %v\n", k, g, w)
		}
	}
	return b.String()
}

// checkGolden compares one Update's exposition with testdata/<file> (or
// rewrites it with -update) and lints it.
func checkGolden(t *testing.T, c Collector, s *Scrape, file string) {
	t.Helper()
	path := filepath.Join("testdata", file)
	a := &scrapeAdapter{c: c, s: s}
	if updateGolden() {
		// testutil.CollectAndFormat keeps only the names it is given, so
		// encode the whole gather here.
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(a)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		enc := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	a = &scrapeAdapter{c: c, s: s}
	if err := testutil.CollectAndCompare(a, bytes.NewReader(want)); err != nil {
		t.Errorf("%s: %v", path, err)
	}
	a = &scrapeAdapter{c: c, s: s}
	problems, err := testutil.CollectAndLint(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

const (
	raftNS      = "127.0.0.1:9876"
	raftCluster = "RaftCluster"
	raftGroup   = "RaftNode00"
)

// raftNodes maps DLedger self ids to the broker addresses of the recorded
// deployment.
var raftNodes = map[string]string{"n0": "127.0.0.1:30911", "n1": "127.0.0.1:31911", "n2": "127.0.0.1:32911"}

func dledgerFixture(dir string) string {
	return filepath.Join("testdata", "dledger", "fixtures", filepath.FromSlash(dir))
}

// raftClient is one recorded moment of the DLedger deployment: the step's
// answers plus the 907 (code 3) answers from steady/, which the failover
// capture did not repeat.
func raftClient(t testing.TB, step string) *fakeClient {
	fc := newFakeClient()
	loadFixtures(t, fc, dledgerFixture(step), nil)
	loadFixtures(t, fc, dledgerFixture("steady"), onlyCodes("raft_", rocketmq.CodeGetBrokerHAStatus))
	// The failover capture recorded only the Raft nodes; the NameServer
	// also listed two other clusters, whose members would look down here.
	keepGroups(fc, raftGroup)
	return fc
}

func newTestDLedger(t testing.TB, termProbe bool) Collector {
	t.Helper()
	c, err := newDLedgerCollector(Options{DLedgerTermProbe: termProbe}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var raftBase = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func TestDLedgerSteadyGolden(t *testing.T) {
	fc := raftClient(t, "steady")
	s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, raftBase)
	checkGolden(t, newTestDLedger(t, false), s, "dledger/steady_cluster.prom")

	// One METADATA per peer and scrape, although all three nodes are in the
	// scrape; nothing else on the DLedger ports.
	fc = raftClient(t, "steady")
	s = resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, raftBase)
	if _, err := series(t, newTestDLedger(t, false), s); err != nil {
		t.Fatal(err)
	}
	for id, addr := range map[string]string{"n0": "127.0.0.1:40911", "n1": "127.0.0.1:40912", "n2": "127.0.0.1:40913"} {
		if n := fc.callCount("DLedgerMetadata", addr); n != 1 {
			t.Errorf("METADATA to %s (%s): %d calls in one scrape, want 1", id, addr, n)
		}
		if n := fc.callCount("DLedgerTerm", addr); n != 0 {
			t.Errorf("term probe sent to %s without the option", addr)
		}
	}
}

func TestDLedgerTermProbeGolden(t *testing.T) {
	fc := raftClient(t, "steady")
	loadFixtures(t, fc, dledgerFixture("dledger-term-probe"), nil)
	s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, raftBase)
	checkGolden(t, newTestDLedger(t, true), s, "dledger/term_probe_cluster.prom")
	// The probe names another known peer as leaderId (the recorded probes
	// used n1 for n0 and n0 for the leader n1), never the target itself.
	for _, call := range fc.calledWith() {
		if !strings.HasPrefix(call, "DLedgerTerm|") {
			continue
		}
		parts := strings.Split(call, "|")
		if parts[3] == parts[4] || raftNodes[parts[4]] == "" {
			t.Errorf("term probe %s names the target or an unknown peer as leader", call)
		}
	}
}

func TestDLedgerSidecarGolden(t *testing.T) {
	fc := raftClient(t, "steady")
	s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{raftNodes["n2"]}}, raftBase)
	checkGolden(t, newTestDLedger(t, false), s, "dledger/steady_sidecar_n2.prom")
}

func TestParseDLedgerPeers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		err  bool
	}{
		{in: "n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913",
			want: map[string]string{"n0": "127.0.0.1:40911", "n1": "127.0.0.1:40912", "n2": "127.0.0.1:40913"}},
		// Hosts may contain '-'; the id ends at the first one, as in DLedger.
		{in: " n0-rmq-0.rmq-headless.ns.svc:40911 ; n1-rmq-1.rmq-headless.ns.svc:40911;",
			want: map[string]string{"n0": "rmq-0.rmq-headless.ns.svc:40911", "n1": "rmq-1.rmq-headless.ns.svc:40911"}},
		{in: "", err: true},
		{in: "n0:127.0.0.1:40911", err: true},
		{in: "n0-a:1;n0-b:1", err: true},
		{in: "-a:1", err: true},
	} {
		got, err := parseDLedgerPeers(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("parseDLedgerPeers(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if !tc.err && !mapsEqual(got, tc.want) {
			t.Errorf("parseDLedgerPeers(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// The recorded failover: n1 (leader, 127.0.0.1:31911) killed after t00, the
// NameServer drops it at once, the survivors name n1 until the election at
// t04, n2 registers as brokerId 0 at t05, n1 rejoins as a follower by t15.
// Every HA series of both collectors is checked at every step, in cluster
// mode and in sidecar mode with one sidecar per node, each an exporter with
// its own state.
type failoverStep struct {
	dir string
	at  time.Duration
	// DLedger: each answering node's role and the leader it names; nodes
	// absent from roles do not answer at all.
	roles   map[string]string
	names   map[string]string
	inNS    []string // nodes the NameServer lists (cluster mode brokers)
	peersUp float64
	leader  bool
	changes float64
	// HA (cluster mode): master present, slave count, lag per slave node.
	master float64
	slaves float64
	lag    map[string]float64
}

var failoverSteps = func() []failoverStep {
	all := []string{"n0", "n1", "n2"}
	survivors := []string{"n0", "n2"}
	followers := func(leader string, nodes ...string) map[string]string {
		m := map[string]string{}
		for _, n := range nodes {
			m[n] = "follower"
			if n == leader {
				m[n] = "leader"
			}
		}
		return m
	}
	naming := func(leader string, nodes ...string) map[string]string {
		m := map[string]string{}
		for _, n := range nodes {
			m[n] = leader
		}
		return m
	}
	steps := []failoverStep{{
		dir: "t00-before", roles: followers("n1", all...), names: naming("n1", all...), inNS: all,
		peersUp: 3, leader: true, changes: 0, master: 1, slaves: 2,
		lag: map[string]float64{"n0": 422259 - 421711, "n2": 422259 - 421985},
	}}
	for _, d := range []string{"t01", "t02", "t03"} {
		// Survivors still name the dead n1: no agreed leader, no master.
		steps = append(steps, failoverStep{dir: d, roles: followers("", survivors...), names: naming("n1", survivors...),
			inNS: survivors, peersUp: 2, leader: false, changes: 0, master: 0, slaves: 2})
	}
	// t04: elected in DLedger, not yet brokerId 0 / SYNC_MASTER in the config.
	steps = append(steps, failoverStep{dir: "t04", roles: followers("n2", survivors...), names: naming("n2", survivors...),
		inNS: survivors, peersUp: 2, leader: true, changes: 1, master: 0, slaves: 2})
	for _, d := range []string{"t05", "t06", "t07", "t08", "t09", "t10", "t11", "t12"} {
		steps = append(steps, failoverStep{dir: d, roles: followers("n2", survivors...), names: naming("n2", survivors...),
			inNS: survivors, peersUp: 2, leader: true, changes: 1, master: 1, slaves: 1, lag: map[string]float64{"n0": 0}})
	}
	for d, lag := range map[string]float64{"t15-rejoin": 0, "t20-rejoin": 0, "t25-rejoin": 425547 - 425273, "t30-rejoin": 429657 - 429383} {
		steps = append(steps, failoverStep{dir: d, roles: followers("n2", all...), names: naming("n2", all...),
			inNS: all, peersUp: 3, leader: true, changes: 1, master: 1, slaves: 2, lag: map[string]float64{"n0": lag, "n1": lag}})
	}
	for i := range steps {
		var sec int
		if _, err := fmt.Sscanf(steps[i].dir, "t%d", &sec); err != nil {
			panic(err)
		}
		steps[i].at = time.Duration(sec) * time.Second
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	return steps
}()

// wantDLedger is the complete dledger output expected from an exporter that
// sees the nodes in view (cluster mode: the NameServer's list; a sidecar:
// its own node while it answers).
func (st failoverStep) wantDLedger(view []string, addrs map[string]string) map[string]float64 {
	want := map[string]float64{}
	if len(view) == 0 {
		return want
	}
	g := []string{"cluster", raftCluster, "broker", raftGroup, "dledger_group", raftGroup}
	want[sk("rocketmq_dledger_group_peers", g...)] = 3
	want[sk("rocketmq_dledger_group_peers_up", g...)] = st.peersUp
	want[sk("rocketmq_dledger_group_quorum", g...)] = 1
	want[sk("rocketmq_dledger_group_has_leader", g...)] = boolValue(st.leader)
	want[sk("rocketmq_dledger_leader_changes_total", g...)] = st.changes
	if st.leader {
		// Every answering node names the agreed leader in these steps.
		var leader string
		for _, l := range st.names {
			leader = l
		}
		want[sk("rocketmq_dledger_group_leader", append(slices.Clone(g), "leader_id", leader)...)] = 1
		want[sk("rocketmq_dledger_group_leader_index", g...)] = float64(slices.Index([]string{"n0", "n1", "n2"}, leader))
	}
	for _, n := range view {
		node := []string{"cluster", raftCluster, "broker", raftGroup, "address", addrs[n], "dledger_group", raftGroup}
		for _, r := range []string{"leader", "follower", "candidate"} {
			want[sk("rocketmq_dledger_role", append(slices.Clone(node), "self_id", n, "role", r)...)] = boolValue(st.roles[n] == r)
		}
		want[sk("rocketmq_dledger_leader", append(slices.Clone(node), "leader_id", st.names[n])...)] = 1
	}
	return want
}

// wantHACluster is the complete ha output of a cluster-mode exporter.
func (st failoverStep) wantHACluster(addrs map[string]string) map[string]float64 {
	g := []string{"cluster", raftCluster, "broker", raftGroup}
	want := map[string]float64{
		sk("rocketmq_ha_group_master_present", g...): st.master,
		sk("rocketmq_ha_group_masters", g...):        st.master,
		sk("rocketmq_ha_group_slaves", g...):         st.slaves,
	}
	for n, lag := range st.lag {
		want[sk("rocketmq_ha_replication_lag_bytes", append(slices.Clone(g), "address", addrs[n])...)] = lag
	}
	return want
}

func TestDLedgerFailoverTimeline(t *testing.T) {
	clusterDL := newTestDLedger(t, false)
	clusterHA, _ := newHACollector(Options{}, nil)
	haLogger, haLogs := newTestLogger()
	sidecarDL := map[string]Collector{}
	sidecarHA := map[string]Collector{}
	for n := range raftNodes {
		sidecarDL[n] = newTestDLedger(t, false)
		sidecarHA[n], _ = newHACollector(Options{}, haLogger)
	}
	var clients []*fakeClient
	for _, st := range failoverSteps {
		t.Run(st.dir, func(t *testing.T) {
			fc := raftClient(t, "dledger-failover/"+st.dir)
			clients = append(clients, fc)
			now := raftBase.Add(st.at)

			// The NameServer's view is the input the whole story hinges on:
			// no brokerId 0 between the kill and the re-registration.
			ci := fc.clusterInfo[raftNS].BrokerAddrTable[raftGroup]
			if _, has0 := ci.BrokerAddrs[0]; has0 != (st.master == 1) {
				t.Fatalf("fixture: NameServer brokerId 0 present = %v, step expects master %v", has0, st.master)
			}

			s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, now)
			got, err := series(t, clusterDL, s)
			if err != nil {
				t.Errorf("cluster dledger: unexpected error %v", err)
			}
			if d := diffSeries(got, st.wantDLedger(st.inNS, raftNodes)); d != "" {
				t.Errorf("cluster dledger:\n%s", d)
			}
			got, err = series(t, clusterHA, s)
			if err != nil {
				t.Errorf("cluster ha: unexpected error %v", err)
			}
			if d := diffSeries(got, st.wantHACluster(raftNodes)); d != "" {
				t.Errorf("cluster ha:\n%s", d)
			}

			for n, addr := range raftNodes {
				s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{addr}}, now)
				var view []string
				if _, up := st.roles[n]; up {
					view = []string{n}
				}
				got, err := series(t, sidecarDL[n], s)
				if err != nil {
					t.Errorf("sidecar %s dledger: unexpected error %v", n, err)
				}
				if d := diffSeries(got, st.wantDLedger(view, raftNodes)); d != "" {
					t.Errorf("sidecar %s dledger:\n%s", n, d)
				}
				// A 4.9 sidecar has no HA view of its own: no group series,
				// no lag (the master is not in its scrape), 907 unsupported.
				got, err = series(t, sidecarHA[n], s)
				if err != nil {
					t.Errorf("sidecar %s ha: unexpected error %v", n, err)
				}
				if d := diffSeries(got, map[string]float64{}); d != "" {
					t.Errorf("sidecar %s ha:\n%s", n, d)
				}
			}
		})
	}
	// Every node's runtime info says V4_9_7, so 907 (5.x only) is never
	// sent over the whole 30 s timeline, by any exporter, and nothing is
	// logged about it.
	for _, fc := range clients {
		for n, addr := range raftNodes {
			if k := fc.callCount("BrokerHAStatus", addr); k != 0 {
				t.Errorf("907 sent to the 4.9.7 node %s (%s) %d times", n, addr, k)
			}
		}
	}
	if lines := haLogs.lines("GET_BROKER_HA_STATUS"); len(lines) != 0 {
		t.Errorf("sidecar 907 log lines:\n%s", strings.Join(lines, "\n"))
	}
	for _, lvl := range []string{"level=WARN", "level=ERROR", "level=INFO"} {
		if lines := haLogs.lines(lvl); len(lines) > 0 {
			t.Errorf("unexpected %s lines:\n%s", lvl, strings.Join(lines, "\n"))
		}
	}
}

// A node whose DLedger port is closed while its broker answers: no role
// series (not "candidate"), an error naming the node, and the group view
// still built from the other peers.
func TestDLedgerClosedPortIsAnErrorNotARole(t *testing.T) {
	fc := raftClient(t, "steady")
	fc.down["127.0.0.1:40913"] = fakeDown("127.0.0.1:40913")
	s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, raftBase)
	got, err := series(t, newTestDLedger(t, false), s)
	if err == nil || !strings.Contains(err.Error(), "n2") || !strings.Contains(err.Error(), "127.0.0.1:40913") {
		t.Fatalf("error = %v, want one naming n2 and its DLedger address", err)
	}
	for k := range got {
		if strings.Contains(k, `self_id="n2"`) || (strings.HasPrefix(k, "rocketmq_dledger_leader{") && strings.Contains(k, raftNodes["n2"])) {
			t.Errorf("series for the node with the closed port: %s", k)
		}
	}
	g := []string{"cluster", raftCluster, "broker", raftGroup, "dledger_group", raftGroup}
	for k, v := range map[string]float64{
		sk("rocketmq_dledger_group_peers_up", g...):   2,
		sk("rocketmq_dledger_group_quorum", g...):     1,
		sk("rocketmq_dledger_group_has_leader", g...): 1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// A group that loses quorum: two of three peers gone. The remaining leader
// still names itself, but nobody else does, so the group has no leader.
func TestDLedgerQuorumLost(t *testing.T) {
	fc := raftClient(t, "steady")
	fc.down["127.0.0.1:40911"] = fakeDown("127.0.0.1:40911")
	fc.down["127.0.0.1:40913"] = fakeDown("127.0.0.1:40913")
	c := newTestDLedger(t, false)
	s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{raftNodes["n1"]}}, raftBase)
	got, err := series(t, c, s)
	if err != nil {
		t.Fatalf("sidecar of the reachable node: %v", err)
	}
	g := []string{"cluster", raftCluster, "broker", raftGroup, "dledger_group", raftGroup}
	node := []string{"cluster", raftCluster, "broker", raftGroup, "address", raftNodes["n1"], "dledger_group", raftGroup, "self_id", "n1"}
	want := map[string]float64{
		sk("rocketmq_dledger_group_peers", g...):                                        3,
		sk("rocketmq_dledger_group_peers_up", g...):                                     1,
		sk("rocketmq_dledger_group_quorum", g...):                                       0,
		sk("rocketmq_dledger_group_has_leader", g...):                                   0,
		sk("rocketmq_dledger_leader_changes_total", g...):                               0,
		sk("rocketmq_dledger_role", append(slices.Clone(node), "role", "leader")...):    1,
		sk("rocketmq_dledger_role", append(slices.Clone(node), "role", "follower")...):  0,
		sk("rocketmq_dledger_role", append(slices.Clone(node), "role", "candidate")...): 0,
		sk("rocketmq_dledger_leader", "cluster", raftCluster, "broker", raftGroup, "address", raftNodes["n1"], "dledger_group", raftGroup, "leader_id", "n1"): 1,
	}
	if d := diffSeries(got, want); d != "" {
		t.Errorf("quorum lost:\n%s", d)
	}
}

// While an election runs a node names no leader: candidate, no leader series.
func TestDLedgerCandidate(t *testing.T) {
	fc := raftClient(t, "steady")
	for _, id := range []string{"n0", "n1", "n2"} {
		for k, md := range fc.dledger {
			if strings.HasSuffix(k, "|"+raftGroup+"|"+id) {
				cp := *md
				cp.LeaderID = ""
				fc.dledger[k] = &cp
			}
		}
	}
	s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{raftNodes["n0"]}}, raftBase)
	got, err := series(t, newTestDLedger(t, false), s)
	if err != nil {
		t.Fatal(err)
	}
	node := []string{"cluster", raftCluster, "broker", raftGroup, "address", raftNodes["n0"], "dledger_group", raftGroup, "self_id", "n0"}
	if v := got[sk("rocketmq_dledger_role", append(node, "role", "candidate")...)]; v != 1 {
		t.Errorf("candidate role = %v, want 1", v)
	}
	for k := range got {
		if strings.HasPrefix(k, "rocketmq_dledger_leader{") {
			t.Errorf("leader series while no leader is named: %s", k)
		}
	}
	if v := got[sk("rocketmq_dledger_group_has_leader", "cluster", raftCluster, "broker", raftGroup, "dledger_group", raftGroup)]; v != 0 {
		t.Errorf("has_leader = %v during an election", v)
	}
}

// The recorded answers to a wrong group / an empty body (DLedger codes 400
// and 401, remoting code 200) mean our config does not match the node: an
// error, not a role, even though leaderId is set.
func TestDLedgerUnknownGroupAnswer(t *testing.T) {
	fc := raftClient(t, "steady")
	wrong := fc.dledger[fakeKey("127.0.0.1:40911", "Nope", "n0")]
	if wrong == nil || wrong.Code != rocketmq.DLedgerUnknownGroup || wrong.LeaderID == "" {
		t.Fatalf("fixture: wrong-group answer %+v", wrong)
	}
	fc.dledger[fakeKey("127.0.0.1:40911", raftGroup, "n0")] = wrong
	s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{raftNodes["n0"]}}, raftBase)
	got, err := series(t, newTestDLedger(t, false), s)
	if err == nil || !strings.Contains(err.Error(), "code 400") {
		t.Fatalf("error = %v, want the DLedger code", err)
	}
	for k := range got {
		if strings.Contains(k, `self_id="n0"`) {
			t.Errorf("role reported from an unknown-group answer: %s", k)
		}
	}
}

func TestDLedgerConfigErrors(t *testing.T) {
	fc := raftClient(t, "steady")
	fc.config[raftNodes["n0"]]["dLegerSelfId"] = "n7"
	s := resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{raftNodes["n0"]}}, raftBase)
	got, err := series(t, newTestDLedger(t, false), s)
	if err == nil || !strings.Contains(err.Error(), "n7") {
		t.Fatalf("error = %v, want the bad self id named", err)
	}
	if len(got) != 0 {
		t.Errorf("series from a node with a broken DLedger config: %v", got)
	}
	if n := fc.callCount("DLedgerMetadata", "127.0.0.1:40911"); n != 0 {
		t.Errorf("METADATA sent with a broken config")
	}

	// Brokers without DLedger are not touched.
	fc = newFakeClient()
	fc.addBroker("10.0.0.1:10911", "C", "b", 0, "ASYNC_MASTER")
	s = resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{"10.0.0.1:10911"}}, raftBase)
	got, err = series(t, newTestDLedger(t, false), s)
	if err != nil || len(got) != 0 {
		t.Errorf("non-DLedger broker: %v, %v", got, err)
	}
}

func TestLeaderTracker(t *testing.T) {
	k := dledgerGroupKey{"c", "b", "g"}
	at := func(s int) time.Time { return raftBase.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name  string
		steps []struct {
			leader string
			term   int64
		}
		want float64
	}{
		{"first sighting is no change", steps("n1:-1"), 0},
		{"identity change", steps("n1:-1", "n2:-1"), 1},
		{"gap without leader then same leader", steps("n1:-1", ":-1", "n1:-1"), 0},
		{"gap without leader then another", steps("n1:-1", ":-1", ":-1", "n2:-1"), 1},
		{"flapping", steps("n1:-1", "n2:-1", "n1:-1", "n2:-1"), 3},
		{"same leader newer term", steps("n1:3", "n1:3", "n1:5"), 1},
		{"unknown term in between keeps the last known", steps("n1:3", "n1:-1", "n1:7"), 1},
		{"no term to compare with", steps("n1:-1", "n1:5", "n1:5"), 0},
		{"new leader and new term count once", steps("n1:3", "n2:4"), 1},
	} {
		tr := newLeaderTracker(time.Hour, 10)
		var got float64
		for i, st := range tc.steps {
			got = tr.observe(k, at(i), st.leader, st.term)
		}
		if got != tc.want {
			t.Errorf("%s: %v changes, want %v", tc.name, got, tc.want)
		}
	}

	// An observation older than the last applied one (a slow concurrent
	// scrape) does not flip the leader back.
	tr := newLeaderTracker(time.Hour, 10)
	tr.observe(k, at(0), "n1", -1)
	tr.observe(k, at(10), "n2", -1)
	if got := tr.observe(k, at(5), "n1", -1); got != 1 {
		t.Errorf("stale observation counted: %v", got)
	}
	if got := tr.observe(k, at(11), "n2", -1); got != 1 {
		t.Errorf("after stale observation: %v, want 1", got)
	}
	// Nor does one with the same time as the last applied one: the two
	// cannot be ordered.
	if got := tr.observe(k, at(11), "n1", -1); got != 1 {
		t.Errorf("same-time observation counted: %v", got)
	}
	if got := tr.observe(k, at(12), "n2", 9); got != 1 {
		t.Errorf("after same-time observation: %v, want 1", got)
	}

	// Bounded: unseen groups expire, and the size bound drops the least
	// recently seen.
	tr = newLeaderTracker(time.Hour, 2)
	for i, g := range []string{"a", "b", "c"} {
		tr.observe(dledgerGroupKey{"c", g, g}, at(i), "n1", -1)
	}
	tr.expire(at(3))
	if _, ok := tr.groups[dledgerGroupKey{"c", "a", "a"}]; ok || len(tr.groups) != 2 {
		t.Errorf("size bound: %d groups left, oldest kept: %v", len(tr.groups), ok)
	}
	tr.expire(at(3).Add(2 * time.Hour))
	if len(tr.groups) != 0 {
		t.Errorf("TTL: %d groups left", len(tr.groups))
	}
}

func steps(specs ...string) []struct {
	leader string
	term   int64
} {
	var out []struct {
		leader string
		term   int64
	}
	for _, s := range specs {
		var st struct {
			leader string
			term   int64
		}
		l, term, _ := strings.Cut(s, ":")
		st.leader = l
		if _, err := fmt.Sscan(term, &st.term); err != nil {
			panic(err)
		}
		out = append(out, st)
	}
	return out
}

// Concurrent scrapes share one collector: the tracker must be safe, and the
// counter must end at exactly one change however scrapes of the two sides of
// the failover interleave. Each scrape is held at its METADATA requests until
// the test lets it go, so scrapes of the old state (n1 leads) with earlier
// reference times finish after scrapes of the new state (n2 leads) with later
// ones: without the stale-scrape guard each of those would flip the leader
// back and count again.
func TestDLedgerConcurrentScrapes(t *testing.T) {
	c := newTestDLedger(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	type gatedScrape struct {
		open chan struct{} // closed: its METADATA requests may proceed
		done chan struct{} // closed: its Update returned
	}
	// start resolves one scrape of the recorded step at raftBase+at and runs
	// its Update in the background, held until open is closed.
	start := func(step string, at time.Duration) gatedScrape {
		fc := raftClient(t, "dledger-failover/"+step)
		s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, raftBase.Add(at))
		g := gatedScrape{open: make(chan struct{}), done: make(chan struct{})}
		fc.before = func(ctx context.Context, key string) error {
			if !strings.HasPrefix(key, "DLedgerMetadata|") {
				return nil
			}
			select {
			case <-g.open:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		go func() {
			defer close(g.done)
			ch := make(chan prometheus.Metric)
			drained := make(chan struct{})
			go func() {
				for range ch {
				}
				close(drained)
			}()
			_ = c.Update(ctx, s, ch)
			close(ch)
			<-drained
		}()
		return g
	}
	finish := func(gs ...gatedScrape) {
		for _, g := range gs {
			close(g.open)
		}
		for _, g := range gs {
			<-g.done
		}
	}
	const before, after = "t00-before", "t05"

	// The first leader seen: n1.
	finish(start(before, 0))
	// Three scrapes in flight at once; the latest one (n2) finishes first,
	// then an earlier one (still n1), then one (still n1) whose reference
	// time equals the latest's, as on a coarse clock.
	old, same, cur := start(before, 10*time.Second), start(before, 20*time.Second), start(after, 20*time.Second)
	finish(cur)
	finish(old)
	finish(same)
	// Many at once: old-state scrapes no newer than everything applied so
	// far, new-state ones newer, released alternately.
	var olds, curs []gatedScrape
	for i := range 10 {
		olds = append(olds, start(before, time.Duration(11+i)*time.Second))
		curs = append(curs, start(after, time.Duration(21+i)*time.Second))
	}
	for i := range 10 {
		close(curs[i].open)
		close(olds[9-i].open)
	}
	for i := range 10 {
		<-curs[i].done
		<-olds[i].done
	}

	fc := raftClient(t, "dledger-failover/"+after)
	s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, raftBase.Add(time.Minute))
	got, err := series(t, c, s)
	if err != nil {
		t.Fatal(err)
	}
	g := []string{"cluster", raftCluster, "broker", raftGroup, "dledger_group", raftGroup}
	if v := got[sk("rocketmq_dledger_leader_changes_total", g...)]; v != 1 {
		t.Errorf("leader changes after crossed concurrent scrapes = %v, want 1", v)
	}
}

// setLeaderViews makes each listed node's METADATA name the given leader
// ("" = none) in the recorded steady answers.
func setLeaderViews(fc *fakeClient, views map[string]string) {
	for k, md := range fc.dledger {
		for id, leader := range views {
			if strings.HasSuffix(k, "|"+raftGroup+"|"+id) {
				cp := *md
				cp.LeaderID = leader
				fc.dledger[k] = &cp
			}
		}
	}
}

// The agreed leader as a group series: its id as a label, and its position
// in the sorted peer ids as a value, absent without an agreed leader. The
// position needs no exporter state, so changes() over its stored history
// counts A → B → A as two changes however often the exporter restarted, and
// a gap without a leader in between adds none.
func TestDLedgerGroupLeaderIndex(t *testing.T) {
	g := []string{"cluster", raftCluster, "broker", raftGroup, "dledger_group", raftGroup}
	indexKey := sk("rocketmq_dledger_group_leader_index", g...)
	all := func(leader string) map[string]string {
		return map[string]string{"n0": leader, "n1": leader, "n2": leader}
	}
	var (
		c       = newTestDLedger(t, false)
		history []float64 // the stored samples of the index series
	)
	for i, tc := range []struct {
		views   map[string]string
		restart bool // a new exporter from this scrape on
		leader  string
		index   float64
	}{
		{views: all("n1"), leader: "n1", index: 1},
		{views: all("")},
		// Survivors naming a leader that does not claim the role: no
		// agreed leader either.
		{views: map[string]string{"n0": "n1", "n1": "", "n2": "n1"}},
		{views: all("n2"), restart: true, leader: "n2", index: 2},
		{views: all("n1"), leader: "n1", index: 1},
		{views: all("n1"), restart: true, leader: "n1", index: 1},
	} {
		fc := raftClient(t, "steady")
		// The order of dLegerPeers does not matter: the ids are sorted.
		for _, cfg := range fc.config {
			cfg["dLegerPeers"] = "n2-127.0.0.1:40913;n0-127.0.0.1:40911;n1-127.0.0.1:40912"
		}
		setLeaderViews(fc, tc.views)
		if tc.restart {
			c = newTestDLedger(t, false)
		}
		s := resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, raftBase.Add(time.Duration(i)*time.Minute))
		got, err := series(t, c, s)
		if err != nil {
			t.Fatalf("scrape %d: %v", i, err)
		}
		var leaders []string
		for k := range got {
			if strings.HasPrefix(k, "rocketmq_dledger_group_leader{") {
				leaders = append(leaders, k)
			}
		}
		idx, ok := got[indexKey]
		if tc.leader == "" {
			if ok || len(leaders) != 0 || got[sk("rocketmq_dledger_group_has_leader", g...)] != 0 {
				t.Errorf("scrape %d without an agreed leader: index %v (present %v), leader series %v", i, idx, ok, leaders)
			}
			continue
		}
		want := sk("rocketmq_dledger_group_leader", append(slices.Clone(g), "leader_id", tc.leader)...)
		if !ok || idx != tc.index || len(leaders) != 1 || leaders[0] != want || got[want] != 1 {
			t.Errorf("scrape %d: index %v (present %v), leader series %v; want %v and %s", i, idx, ok, leaders, tc.index, want)
		}
		history = append(history, idx)
	}
	// What changes() computes over the stored samples: n1 → n2 → n1.
	changes := 0
	for i := 1; i < len(history); i++ {
		if history[i] != history[i-1] {
			changes++
		}
	}
	if changes != 2 {
		t.Errorf("changes over the index history %v = %d, want 2", history, changes)
	}
}

// In cluster mode a group none of whose brokers is in the scrape any more
// (all dead, or no longer listed by the NameServer) is still asked about for
// 15 minutes from its last known peers: a dead group reports peers_up 0,
// quorum 0, has_leader 0 instead of vanishing, and one the NameServer merely
// forgot reports what its peers say. Sidecars never do this.
func TestDLedgerVanishedGroup(t *testing.T) {
	g := []string{"cluster", raftCluster, "broker", raftGroup, "dledger_group", raftGroup}
	dead := map[string]float64{
		sk("rocketmq_dledger_group_peers", g...):          3,
		sk("rocketmq_dledger_group_peers_up", g...):       0,
		sk("rocketmq_dledger_group_quorum", g...):         0,
		sk("rocketmq_dledger_group_has_leader", g...):     0,
		sk("rocketmq_dledger_leader_changes_total", g...): 0,
	}
	forgotten := map[string]float64{
		sk("rocketmq_dledger_group_peers", g...):                                           3,
		sk("rocketmq_dledger_group_peers_up", g...):                                        3,
		sk("rocketmq_dledger_group_quorum", g...):                                          1,
		sk("rocketmq_dledger_group_has_leader", g...):                                      1,
		sk("rocketmq_dledger_leader_changes_total", g...):                                  0,
		sk("rocketmq_dledger_group_leader", append(slices.Clone(g), "leader_id", "n1")...): 1,
		sk("rocketmq_dledger_group_leader_index", g...):                                    1,
	}
	dledgerPorts := []string{"127.0.0.1:40911", "127.0.0.1:40912", "127.0.0.1:40913"}
	unlist := func(fc *fakeClient) { delete(fc.clusterInfo[raftNS].BrokerAddrTable, raftGroup) }
	for _, tc := range []struct {
		name  string
		setup func(fc *fakeClient)
		want  map[string]float64
	}{
		{"every member dead and unlisted", func(fc *fakeClient) {
			unlist(fc)
			for _, a := range dledgerPorts {
				fc.down[a] = fakeDown(a)
			}
		}, dead},
		{"every member listed but dead", func(fc *fakeClient) {
			for _, a := range append(slices.Collect(maps.Values(raftNodes)), dledgerPorts...) {
				fc.down[a] = fakeDown(a)
			}
		}, dead},
		{"unlisted while the DLedger ports answer (NameServer restart)", unlist, forgotten},
		{"no NameServer answers, the DLedger ports do", func(fc *fakeClient) { fc.down[raftNS] = fakeDown(raftNS) }, forgotten},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestDLedger(t, false)
			fc := raftClient(t, "steady")
			if _, err := series(t, c, resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, raftBase)); err != nil {
				t.Fatal(err)
			}
			fc = raftClient(t, "steady")
			tc.setup(fc)
			for i, at := range []time.Duration{time.Minute, 15 * time.Minute} {
				got, err := series(t, c, resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, raftBase.Add(at)))
				if err != nil {
					// The remembered peers are not brokers of this scrape.
					t.Errorf("scrape %d: %v", i, err)
				}
				if d := diffSeries(got, tc.want); d != "" {
					t.Errorf("%v after the last sighting:\n%s", at, d)
				}
			}
			{
				// Forgotten 15 minutes after the last sighting (the scrapes
				// in between did not see it either).
				got, _ := series(t, c, resolveAt(fc, Targets{Mode: ModeCluster, NameServers: []string{raftNS}}, raftBase.Add(15*time.Minute+time.Second)))
				if len(got) != 0 {
					t.Errorf("still reported after 15 minutes: %v", got)
				}
			}
		})
	}

	// A sidecar whose broker is down says nothing about its group, however
	// recently it saw it.
	c := newTestDLedger(t, false)
	fc := raftClient(t, "steady")
	if got, _ := series(t, c, resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{raftNodes["n0"]}}, raftBase)); len(got) == 0 {
		t.Fatal("sidecar: no series while up")
	}
	fc.down[raftNodes["n0"]] = fakeDown(raftNodes["n0"])
	fc.down["127.0.0.1:40911"] = fakeDown("127.0.0.1:40911")
	if got, err := series(t, c, resolveAt(fc, Targets{Mode: ModeSidecar, Brokers: []string{raftNodes["n0"]}}, raftBase.Add(time.Minute))); len(got) != 0 || err != nil {
		t.Errorf("sidecar of a dead broker: %v, %v", got, err)
	}
}
