package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

// Other test files of the package may register -update as well; the first
// one to run owns it and everyone reads it through the flag package.
var _ = func() bool {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden .prom files under testdata")
	}
	return true
}()

func brokerGoldenUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

const brokerFixtures = "testdata/broker/fixtures"

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func brokerTestLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// brokerFixture is one recorded node: its GET_BROKER_CONFIG and
// GET_BROKER_RUNTIME_INFO answers.
type brokerFixture struct {
	addr    string // brokerIP1:listenPort
	config  rocketmq.BrokerConfig
	runtime rocketmq.RuntimeInfo
}

// loadBrokerFixture reads <dir>/<node>.get_broker_config[.variant] and
// <dir>/<node>.get_broker_runtime_info[.variant] under testdata/broker.
func loadBrokerFixture(t testing.TB, dir, node, runtimeVariant string) brokerFixture {
	t.Helper()
	read := func(pattern string) []byte {
		t.Helper()
		m, err := filepath.Glob(filepath.Join(brokerFixtures, dir, pattern))
		if err != nil || len(m) != 1 {
			t.Fatalf("fixture %s/%s: %v matches (%v)", dir, pattern, m, err)
		}
		b, err := os.ReadFile(m[0])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cfg, err := rocketmq.DecodeBrokerConfig(read(node + ".get_broker_config*.response.body"))
	if err != nil {
		t.Fatal(err)
	}
	rtName := node + ".get_broker_runtime_info.response.body"
	if runtimeVariant != "" {
		rtName = node + ".get_broker_runtime_info." + runtimeVariant + ".response.body"
	}
	rt, err := rocketmq.DecodeRuntimeInfo(read(rtName))
	if err != nil {
		t.Fatal(err)
	}
	return brokerFixture{addr: cfg["brokerIP1"] + ":" + cfg["listenPort"], config: cfg, runtime: rt}
}

// add makes the fixture's node answer on f.
func (bf brokerFixture) add(f *fakeClient) {
	f.config[bf.addr] = bf.config
	f.runtime[bf.addr] = bf.runtime
}

// sidecarScrape resolves addrs as a sidecar exporter would.
func sidecarScrape(f *fakeClient, addrs ...string) *Scrape {
	return Resolve(context.Background(), f, Targets{Mode: ModeSidecar, Brokers: addrs}, nil)
}

// brokerAdapter runs one Update as a prometheus.Collector and keeps its error.
type brokerAdapter struct {
	c   *brokerCollector
	s   *Scrape
	ctx context.Context

	mu  sync.Mutex
	err error
}

func (a *brokerAdapter) Describe(ch chan<- *prometheus.Desc) { a.c.Describe(ch) }

func (a *brokerAdapter) Collect(ch chan<- prometheus.Metric) {
	err := a.c.Update(a.ctx, a.s, ch)
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
}

func (a *brokerAdapter) lastErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func newBrokerAdapter(t testing.TB, s *Scrape, logger *slog.Logger) *brokerAdapter {
	t.Helper()
	c, err := newBrokerCollector(Options{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	return &brokerAdapter{c: c.(*brokerCollector), s: s, ctx: context.Background()}
}

// brokerExposition gathers the adapter through a pedantic registry (which
// checks every series against Describe) as text.
func brokerExposition(t testing.TB, a *brokerAdapter) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(a); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

// checkBrokerGolden compares the collector's output with
// testdata/broker/<name>.prom (rewritten with -update) and lints it.
func checkBrokerGolden(t *testing.T, a *brokerAdapter, name string) {
	t.Helper()
	file := filepath.Join("testdata", "broker", name+".prom")
	if brokerGoldenUpdate() {
		if err := os.WriteFile(file, []byte(brokerExposition(t, a)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.Open(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	defer want.Close()
	if err := testutil.CollectAndCompare(a, want); err != nil {
		t.Errorf("%s: %v", file, err)
	}
	problems, err := testutil.CollectAndLint(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestBrokerGolden(t *testing.T) {
	for _, tc := range []struct {
		name, dir, node string
	}{
		{"broker_a", "rocketmq-4.9.7/steady", "broker_a"},
		{"broker_b_slave", "rocketmq-4.9.7/steady", "broker_b_slave"},
		{"raft_n0", "rocketmq-4.9.7/steady", "raft_n0"},
		{"ctrl_n0", "rocketmq-5.0.0/steady", "ctrl_n0"},
		// The first seconds after boot: empty TPS windows and no latency
		// distribution yet ("null").
		{"broker_acl_boot", "rocketmq-4.9.7/acl", "broker_acl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			variant := ""
			if tc.dir == "rocketmq-4.9.7/acl" {
				variant = "signed_admin"
			}
			bf := loadBrokerFixture(t, tc.dir, tc.node, variant)
			f := newFakeClient()
			bf.add(f)
			logger, logs := brokerTestLogger()
			a := newBrokerAdapter(t, sidecarScrape(f, bf.addr), logger)
			checkBrokerGolden(t, a, tc.name)
			if err := a.lastErr(); err != nil {
				t.Errorf("Update: %v", err)
			}
			if strings.Contains(logs.String(), "skipping") {
				t.Errorf("recorded values were skipped:\n%s", logs)
			}
		})
	}
}

// sample returns the value of the series with exactly these labels in the
// gathered output, and whether it exists.
func sample(t testing.TB, a *brokerAdapter, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(a); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestBrokerRuntimeSemantics pins the conversions the golden files contain,
// value by value, against the raw broker_a answer.
func TestBrokerRuntimeSemantics(t *testing.T) {
	bf := loadBrokerFixture(t, "rocketmq-4.9.7/steady", "broker_a", "")
	f := newFakeClient()
	bf.add(f)
	a := newBrokerAdapter(t, sidecarScrape(f, bf.addr), nil)
	bl := map[string]string{"cluster": "DefaultCluster", "broker": "broker-a", "address": "127.0.0.1:10911"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for kk, vv := range bl {
			m[kk] = vv
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
		absent bool
	}{
		{name: "rocketmq_broker_info", labels: with("version", "V4_9_7"), want: 1},
		{name: "rocketmq_broker_id", labels: bl, want: 0},
		{name: "rocketmq_broker_role", labels: with("role", "ASYNC_MASTER"), want: 1},
		{name: "rocketmq_broker_role", labels: with("role", "SLAVE"), want: 0},
		{name: "rocketmq_broker_boot_timestamp_seconds", labels: bl, want: 1795255640.019},
		{name: "rocketmq_broker_put_messages_total", labels: bl, want: 214},
		{name: "rocketmq_broker_put_bytes_total", labels: bl, want: 48144},
		{name: "rocketmq_broker_get_messages_total", labels: bl, want: 1214},
		{name: "rocketmq_broker_put_messages_per_second", labels: with("window", "10s"), want: 4.899020195960808},
		{name: "rocketmq_broker_put_messages_per_second", labels: with("window", "60s"), want: 3.5153191276677274},
		{name: "rocketmq_broker_put_messages_per_second", labels: with("window", "600s"), absent: true},
		{name: "rocketmq_broker_get_transferred_messages_per_second", labels: with("window", "60s"), want: 20.175599353581127},
		// getTotalTps says "0.0" for 600s, but that window has no samples yet.
		{name: "rocketmq_broker_get_total_messages_per_second", labels: with("window", "60s"), want: 4.448294820318878},
		{name: "rocketmq_broker_get_total_messages_per_second", labels: with("window", "600s"), absent: true},
		{name: "rocketmq_broker_put_latency_max_seconds", labels: bl, want: 0.039},
		{name: "rocketmq_broker_get_latency_max_seconds", labels: bl, want: 0.002},
		{name: "rocketmq_broker_put_latency_p99_seconds", labels: bl, want: 0.02},
		{name: "rocketmq_broker_put_latency_last_minute_messages", labels: with("range", "<=0ms"), want: 79},
		{name: "rocketmq_broker_put_latency_last_minute_messages", labels: with("range", "0~10ms"), want: 18},
		{name: "rocketmq_broker_commitlog_disk_ratio", labels: bl, want: 0.14},
		{name: "rocketmq_broker_commitlog_path_disk_ratio", labels: with("path", "/home/rocketmq/store/commitlog"), want: 0.14},
		{name: "rocketmq_broker_commitlog_disk_size_bytes", labels: bl, want: 252 << 30},
		{name: "rocketmq_broker_commitlog_disk_free_bytes", labels: bl, want: 84181359002},
		{name: "rocketmq_broker_flush_behind_bytes", labels: bl, want: 3379},
		{name: "rocketmq_broker_commit_behind_bytes", labels: bl, absent: true},
		{name: "rocketmq_broker_transient_store_pool_available_buffers", labels: bl, absent: true},
		{name: "rocketmq_broker_commitlog_max_offset_bytes", labels: bl, want: 346324},
		{name: "rocketmq_broker_earliest_message_timestamp_seconds", labels: bl, absent: true},
		{name: "rocketmq_broker_thread_pool_queue_capacity", labels: with("pool", "send"), want: 10000},
		{name: "rocketmq_broker_thread_pool_queue_capacity", labels: with("pool", "end_transaction"), want: 100000},
		{name: "rocketmq_broker_thread_pool_queue_head_wait_seconds", labels: with("pool", "end_transaction"), absent: true},
		{name: "rocketmq_broker_thread_pool_queue_size", labels: with("pool", "lite_pull"), absent: true},
		{name: "rocketmq_broker_schedule_delay_messages", labels: with("level", "3"), want: 0},
		{name: "rocketmq_broker_active", labels: bl, absent: true},
	} {
		got, ok := sample(t, a, tc.name, tc.labels)
		switch {
		case tc.absent && ok:
			t.Errorf("%s%v = %v, want absent", tc.name, tc.labels, got)
		case !tc.absent && !ok:
			t.Errorf("%s%v absent, want %v", tc.name, tc.labels, tc.want)
		case !tc.absent && got != tc.want:
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

// TestBrokerEveryFixture runs the collector over every recorded runtime
// answer (steady, DLedger failover, ACL, 4.9.7 and 5.0.0): nothing may be
// skipped as malformed, every answer yields the core series, and the output
// is lint-clean.
func TestBrokerEveryFixture(t *testing.T) {
	var n int
	err := filepath.WalkDir(brokerFixtures, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(path, ".get_broker_runtime_info") || !strings.HasSuffix(path, ".response.body") {
			return err
		}
		dir, _ := filepath.Rel(brokerFixtures, filepath.Dir(path))
		base := filepath.Base(path)
		node := base[:strings.Index(base, ".")]
		variant := strings.TrimSuffix(strings.TrimPrefix(base, node+".get_broker_runtime_info"), ".response.body")
		variant = strings.TrimPrefix(variant, ".")
		n++
		t.Run(filepath.Join(dir, base), func(t *testing.T) {
			bf := loadBrokerFixture(t, dir, node, variant)
			f := newFakeClient()
			bf.add(f)
			logger, logs := brokerTestLogger()
			a := newBrokerAdapter(t, sidecarScrape(f, bf.addr), logger)
			out := brokerExposition(t, a)
			if err := a.lastErr(); err != nil {
				t.Fatalf("Update: %v", err)
			}
			if strings.Contains(logs.String(), "skipping") {
				t.Errorf("values skipped:\n%s", logs)
			}
			for _, name := range []string{
				"rocketmq_broker_info{", "rocketmq_broker_role{", "rocketmq_broker_put_messages_total{",
				"rocketmq_broker_commitlog_disk_ratio{", "rocketmq_broker_commitlog_path_disk_ratio{",
				"rocketmq_broker_commitlog_disk_free_bytes{", "rocketmq_broker_flush_behind_bytes{",
				"rocketmq_broker_thread_pool_queue_size{",
			} {
				if !strings.Contains(out, "\n"+name) {
					t.Errorf("no %s… series", name)
				}
			}
			problems, err := testutil.CollectAndLint(a)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("lint %s: %s", p.Metric, p.Text)
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 40 {
		t.Fatalf("only %d runtime fixtures found", n)
	}
}

// TestBrokerDLedgerRoleFollowsConfig checks that a DLedger node's role and id
// come from its live config: raft_n2 was a follower before the leader died
// and the leader after the election.
func TestBrokerDLedgerRoleFollowsConfig(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		role string
		id   float64
	}{
		{"rocketmq-4.9.7/dledger-failover/t00-before", "SLAVE", 3},
		{"rocketmq-4.9.7/dledger-failover/t10", "SYNC_MASTER", 0},
	} {
		bf := loadBrokerFixture(t, tc.dir, "raft_n2", "")
		f := newFakeClient()
		bf.add(f)
		a := newBrokerAdapter(t, sidecarScrape(f, bf.addr), nil)
		bl := map[string]string{"cluster": "RaftCluster", "broker": "RaftNode00", "address": bf.addr}
		if got, ok := sample(t, a, "rocketmq_broker_id", bl); !ok || got != tc.id {
			t.Errorf("%s: rocketmq_broker_id = %v (present %v), want %v", tc.dir, got, ok, tc.id)
		}
		for _, r := range brokerRoles {
			want := boolValue(r == tc.role)
			got, ok := sample(t, a, "rocketmq_broker_role", map[string]string{"address": bf.addr, "role": r})
			if !ok || got != want {
				t.Errorf("%s: role %s = %v (present %v), want %v", tc.dir, r, got, ok, want)
			}
		}
	}
}

// fixtureResponseError rebuilds the error a recorded non-zero answer gives.
func fixtureResponseError(t *testing.T, path string, requestCode int) *rocketmq.ResponseError {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Code   int    `json:"code"`
		Remark string `json:"remark"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if h.Code == 0 {
		t.Fatalf("%s: code 0 is not an error", path)
	}
	return &rocketmq.ResponseError{RequestCode: requestCode, Code: h.Code, Remark: h.Remark}
}

// TestBrokerStartupWindow: a broker answering GET_BROKER_RUNTIME_INFO with
// the recorded startup-window error fails the collector with an error naming
// the broker and the remark; its identity and the other broker's series are
// still exported.
func TestBrokerStartupWindow(t *testing.T) {
	good := loadBrokerFixture(t, "rocketmq-4.9.7/steady", "broker_a", "")
	booting := loadBrokerFixture(t, "rocketmq-4.9.7/acl", "broker_acl", "signed_admin")
	f := newFakeClient()
	good.add(f)
	booting.add(f)
	respErr := fixtureResponseError(t, filepath.Join(brokerFixtures, "rocketmq-4.9.7/startup-window/broker_acl.get_broker_runtime_info.first_seconds.response.header.json"), rocketmq.CodeGetBrokerRuntimeInfo)
	f.errs[fakeKey("BrokerRuntimeInfo", booting.addr)] = respErr

	a := newBrokerAdapter(t, sidecarScrape(f, good.addr, booting.addr), nil)
	out := brokerExposition(t, a)
	err := a.lastErr()
	if err == nil {
		t.Fatal("Update succeeded, want the runtime error of the booting broker")
	}
	for _, want := range []string{booting.addr, "NoSuchElementException"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if !errors.As(err, new(*rocketmq.ResponseError)) {
		t.Errorf("error %v does not wrap the *rocketmq.ResponseError", err)
	}
	if strings.Contains(err.Error(), good.addr) {
		t.Errorf("error %q names the healthy broker", err)
	}
	for _, want := range []string{
		`rocketmq_broker_put_messages_total{address="127.0.0.1:10911",broker="broker-a",cluster="DefaultCluster"} 214`,
		`rocketmq_broker_role{address="127.0.0.1:13911",broker="broker-acl",cluster="AclCluster",role="ASYNC_MASTER"} 1`,
		`rocketmq_broker_id{address="127.0.0.1:13911",broker="broker-acl",cluster="AclCluster"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	if strings.Contains(out, `rocketmq_broker_info{address="127.0.0.1:13911"`) {
		t.Error("rocketmq_broker_info sent for the booting broker without a known version")
	}
	if strings.Contains(out, `rocketmq_broker_put_messages_total{address="127.0.0.1:13911"`) {
		t.Error("runtime series sent for the broker whose runtime read failed")
	}
}

// TestBrokerDownAndUp: a broker that did not answer its identity read is
// neither asked for runtime info nor reported (rocketmq_up covers it); the
// other broker is exported and the collector succeeds.
func TestBrokerDownAndUp(t *testing.T) {
	good := loadBrokerFixture(t, "rocketmq-4.9.7/steady", "broker_b_slave", "")
	f := newFakeClient()
	good.add(f)
	const deadAddr = "127.0.0.1:11911"
	f.down[deadAddr] = fakeDown(deadAddr)
	s := sidecarScrape(f, deadAddr, good.addr)
	a := newBrokerAdapter(t, s, nil)
	out := brokerExposition(t, a)
	if err := a.lastErr(); err != nil {
		t.Errorf("Update: %v", err)
	}
	if n := f.callCount("BrokerRuntimeInfo", deadAddr); n != 0 {
		t.Errorf("%d runtime requests to the dead broker", n)
	}
	if strings.Contains(out, deadAddr) {
		t.Errorf("series for the dead broker:\n%s", out)
	}
	if !strings.Contains(out, `rocketmq_broker_role{address="127.0.0.1:12911",broker="broker-b",cluster="MSCluster",role="SLAVE"} 1`) {
		t.Errorf("healthy slave missing:\n%s", out)
	}
}

// TestBrokerMalformedValues: every malformed value skips only its own series
// with a debug log; the broker and its other series are still exported.
func TestBrokerMalformedValues(t *testing.T) {
	bf := loadBrokerFixture(t, "rocketmq-4.9.7/steady", "broker_a", "")
	bad := map[string]string{
		"putTps":                   "fast",
		"putMessageSizeTotal":      "-5",
		"putMessageEntireTimeMax":  "1.5",
		"commitLogDiskRatio":       "1.7",
		"commitLogDirCapacity":     "Total : lots",
		"remainHowManyDataToFlush": "3.3 KB",
		"putMessageDistributeTime": "[<=0ms]:x",
		"scheduleMessageOffset_3":  "1;1",
		"scheduleMessageOffset_x":  "1,2",
		"sendThreadPoolQueueSize":  "",
		"getTotalTps":              "1 2 3 4",
		"brokerActive":             "yes",
		// Not a configured path: the label value must stay bounded.
		"commitLogDiskRatio_/etc": "0.5",
	}
	for k, v := range bad {
		bf.runtime[k] = v
	}
	f := newFakeClient()
	bf.add(f)
	logger, logs := brokerTestLogger()
	a := newBrokerAdapter(t, sidecarScrape(f, bf.addr), logger)
	out := brokerExposition(t, a)
	if err := a.lastErr(); err != nil {
		t.Fatalf("Update: %v", err)
	}
	for k := range bad {
		if !strings.Contains(logs.String(), "key="+k+" ") {
			t.Errorf("no debug log for %s", k)
		}
	}
	for _, gone := range []string{
		"rocketmq_broker_put_messages_per_second{", "rocketmq_broker_put_bytes_total{", "rocketmq_broker_put_latency_max_seconds{",
		"rocketmq_broker_commitlog_disk_ratio{", "rocketmq_broker_commitlog_disk_size_bytes{", "rocketmq_broker_flush_behind_bytes{",
		"rocketmq_broker_put_latency_last_minute_messages{", "rocketmq_broker_schedule_delay_messages{",
		"rocketmq_broker_get_total_messages_per_second{", "rocketmq_broker_active{", `path="/etc"`,
		`rocketmq_broker_thread_pool_queue_size{address="127.0.0.1:10911",broker="broker-a",cluster="DefaultCluster",pool="send"}`,
	} {
		if strings.Contains(out, gone) {
			t.Errorf("%s… exported from a malformed value", gone)
		}
	}
	for _, kept := range []string{
		`rocketmq_broker_put_messages_total{address="127.0.0.1:10911",broker="broker-a",cluster="DefaultCluster"} 214`,
		`rocketmq_broker_get_found_messages_per_second{address="127.0.0.1:10911",broker="broker-a",cluster="DefaultCluster",window="10s"} 4.899020195960808`,
		`rocketmq_broker_thread_pool_queue_size{address="127.0.0.1:10911",broker="broker-a",cluster="DefaultCluster",pool="pull"} 0`,
		`rocketmq_broker_commitlog_path_disk_ratio{address="127.0.0.1:10911",broker="broker-a",cluster="DefaultCluster",path="/home/rocketmq/store/commitlog"} 0.14`,
		`rocketmq_broker_info{address="127.0.0.1:10911",broker="broker-a",cluster="DefaultCluster",version="V4_9_7"} 1`,
	} {
		if !strings.Contains(out, kept) {
			t.Errorf("missing %s", kept)
		}
	}
}

// TestBrokerVersionKeys: 5.x spells getTransferredTps, 4.9 getTransferedTps;
// both land in the same series, and sentinels are left out.
func TestBrokerVersionKeys(t *testing.T) {
	cfg := fakeBrokerConfig("C", "b", 0, "SYNC_MASTER", "10.0.0.1:10911")
	for _, tc := range []struct {
		rt   rocketmq.RuntimeInfo
		want []string
		not  []string
	}{
		{
			rt:   rocketmq.RuntimeInfo{"getTransferedTps": "1.5  ", "brokerVersionDesc": "V4_9_7"},
			want: []string{`rocketmq_broker_get_transferred_messages_per_second{address="10.0.0.1:10911",broker="b",cluster="C",window="10s"} 1.5`},
		},
		{
			rt:   rocketmq.RuntimeInfo{"getTransferredTps": "2.5 3.5 4.5", "brokerActive": "true"},
			want: []string{`window="600s"} 4.5`, `rocketmq_broker_active{address="10.0.0.1:10911",broker="b",cluster="C"} 1`},
			// No brokerVersionDesc and nothing from Resolve: no info series.
			not: []string{"rocketmq_broker_info"},
		},
		{
			rt: rocketmq.RuntimeInfo{
				"earliestMessageTimeStamp": "-1", "commitLogMinOffset": "-1", "commitLogDiskRatio": "-1.0",
				"remainTransientStoreBufferNumbs": "2147483647", "putMessageDistributeTime": "null",
				"putTps": "  ", "getTotalTps": "0.0 0.0 0.0", "getFoundTps": "  ",
			},
			not: []string{"earliest", "min_offset", "commitlog_disk_ratio", "transient", "last_minute", "per_second"},
		},
		{
			rt: rocketmq.RuntimeInfo{
				"earliestMessageTimeStamp": "1795255640019", "remainTransientStoreBufferNumbs": "5",
				"remainHowManyDataToCommit": "1.5 MiB", "scheduleMessageOffset_18": "10,4",
				"timerReadBehind": "4", "timerEnqueueTps": "2.5",
			},
			want: []string{
				`rocketmq_broker_earliest_message_timestamp_seconds{address="10.0.0.1:10911",broker="b",cluster="C"} 1.795255640019e+09`,
				`rocketmq_broker_transient_store_pool_available_buffers{address="10.0.0.1:10911",broker="b",cluster="C"} 5`,
				`rocketmq_broker_commit_behind_bytes{address="10.0.0.1:10911",broker="b",cluster="C"} 1.572864e+06`,
				// A slave's delivered offset can pass what it has replicated.
				`rocketmq_broker_schedule_delay_messages{address="10.0.0.1:10911",broker="b",cluster="C",level="18"} 0`,
				`rocketmq_broker_timer_read_behind_seconds{address="10.0.0.1:10911",broker="b",cluster="C"} 4`,
				`rocketmq_broker_timer_enqueue_messages_per_second{address="10.0.0.1:10911",broker="b",cluster="C"} 2.5`,
			},
		},
	} {
		f := newFakeClient()
		f.config["10.0.0.1:10911"] = cfg
		f.runtime["10.0.0.1:10911"] = tc.rt
		a := newBrokerAdapter(t, sidecarScrape(f, "10.0.0.1:10911"), nil)
		out := brokerExposition(t, a)
		if err := a.lastErr(); err != nil {
			t.Errorf("%v: Update: %v", tc.rt, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: missing %s in\n%s", tc.rt, w, out)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("%v: unexpected %s in\n%s", tc.rt, n, out)
			}
		}
	}
}

func TestCommitLogPaths(t *testing.T) {
	for _, tc := range []struct {
		cfg  rocketmq.BrokerConfig
		want []string
	}{
		{rocketmq.BrokerConfig{"storePathCommitLog": "/a/commitlog"}, []string{"/a/commitlog"}},
		{rocketmq.BrokerConfig{"storePathCommitLog": "/a,/b, /c"}, []string{"/a", "/b", " /c"}},
		{rocketmq.BrokerConfig{"enableDLegerCommitLog": "true", "storePathRootDir": "/r", "dLegerSelfId": "n1", "storePathCommitLog": "/r/commitlog"}, []string{"/r/dledger-n1/data"}},
		{rocketmq.BrokerConfig{"enableDLegerCommitLog": "true", "storePathDLedgerCommitLog": "/d1,/d2", "storePathRootDir": "/r", "dLegerSelfId": "n1"}, []string{"/d1", "/d2"}},
		{rocketmq.BrokerConfig{"enableDLegerCommitLog": "true"}, nil},
		{nil, nil},
	} {
		var got []string
		for p := range commitLogPaths(tc.cfg) {
			got = append(got, p)
		}
		slices.Sort(got)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("commitLogPaths(%v) = %q, want %q", tc.cfg, got, want)
		}
	}
}

// TestBrokerConcurrencyBound: no more runtime requests are in flight than
// Scrape.Concurrency allows, and every broker is still read.
func TestBrokerConcurrencyBound(t *testing.T) {
	bf := loadBrokerFixture(t, "rocketmq-4.9.7/steady", "broker_a", "")
	f := newFakeClient()
	var addrs []string
	for i := range 8 {
		addr := fmt.Sprintf("10.0.0.%d:10911", i+1)
		addrs = append(addrs, addr)
		f.config[addr] = fakeBrokerConfig("C", fmt.Sprintf("b%d", i), 0, "ASYNC_MASTER", addr)
		f.runtime[addr] = bf.runtime
	}
	var inFlight, peak atomic.Int64
	f.before = func(ctx context.Context, key string) error {
		if !strings.HasPrefix(key, "BrokerRuntimeInfo|") {
			return nil
		}
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		return nil
	}
	s := sidecarScrape(f, addrs...)
	s.Concurrency = 2
	a := newBrokerAdapter(t, s, nil)
	if n := testutil.CollectAndCount(a, "rocketmq_broker_put_messages_total"); n != 8 {
		t.Errorf("%d brokers exported, want 8", n)
	}
	if p := peak.Load(); p > 2 || p < 1 {
		t.Errorf("peak in-flight runtime requests = %d, want 1..2", p)
	}
}

// TestBrokerHonoursDeadline: a broker that never answers ends the collector
// at the scrape deadline with an error naming it.
func TestBrokerHonoursDeadline(t *testing.T) {
	good := loadBrokerFixture(t, "rocketmq-4.9.7/steady", "broker_a", "")
	f := newFakeClient()
	good.add(f)
	const hung = "10.9.9.9:10911"
	f.config[hung] = fakeBrokerConfig("C", "hung", 0, "ASYNC_MASTER", hung)
	s := sidecarScrape(f, good.addr, hung)
	f.block[hung] = true
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	a := newBrokerAdapter(t, s, nil)
	a.ctx = ctx
	start := time.Now()
	n := testutil.CollectAndCount(a, "rocketmq_broker_put_messages_total")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Update took %v", d)
	}
	if n != 1 {
		t.Errorf("%d brokers exported, want the healthy one", n)
	}
	err := a.lastErr()
	if err == nil || !strings.Contains(err.Error(), hung) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want the deadline error naming %s", err, hung)
	}
}

// brokerSimClock is a settable clock for rmqsim, so boot times, store times and
// TPS windows in the simulated answers are deterministic.
type brokerSimClock struct{ ms atomic.Int64 }

func (c *brokerSimClock) now() time.Time      { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *brokerSimClock) set(t time.Time)     { c.ms.Store(t.UnixMilli()) }
func (c *brokerSimClock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// startBrokerSim starts a simulated cluster and an Admin over the real
// protocol; both are closed, and goroutine leaks checked, when t ends.
func startBrokerSim(t *testing.T, spec rmqsim.Spec) (*rmqsim.Cluster, *rocketmq.Admin) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
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

// simAddressNames maps the simulator's ephemeral addresses to stable
// "<brokerName>/<selfID>" names for golden files.
func simAddressNames(sim *rmqsim.Cluster) *strings.Replacer {
	var pairs []string
	for _, n := range sim.Nodes() {
		pairs = append(pairs, `"`+n.Addr()+`"`, `"`+n.BrokerName()+"/"+n.SelfID()+`"`)
	}
	return strings.NewReplacer(pairs...)
}

// sortSamples sorts the sample lines of each metric family: after
// simAddressNames the order of the ephemeral ports no longer matters.
func sortSamples(text string) string {
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && lines[j] != "" && !strings.HasPrefix(lines[j], "#") {
			j++
		}
		slices.Sort(lines[i:j])
		i = j + 1
	}
	return strings.Join(lines, "\n")
}

// checkBrokerSimGolden compares out with testdata/broker/<name>.prom
// (rewritten with -update), showing the differing lines.
func checkBrokerSimGolden(t *testing.T, out, name string) {
	t.Helper()
	out = sortSamples(out)
	file := filepath.Join("testdata", "broker", name+".prom")
	if brokerGoldenUpdate() {
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if out == string(want) {
		return
	}
	t.Errorf("%s differs (run with -update to rewrite it after checking the change):", file)
	got, exp := strings.Split(out, "\n"), strings.Split(string(want), "\n")
	for _, l := range exp {
		if !slices.Contains(got, l) {
			t.Errorf("%s: missing  %s", file, l)
		}
	}
	for _, l := range got {
		if !slices.Contains(exp, l) {
			t.Errorf("%s: unexpected %s", file, l)
		}
	}
}

// TestBrokerSimulated49 runs Resolve and the collector over the real
// protocol against a simulated 4.9.7 cluster (master/slave and DLedger) with
// a fixed clock, one node in its startup window and one node down.
func TestBrokerSimulated49(t *testing.T) {
	var clock brokerSimClock
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock.set(t0)
	sim, admin := startBrokerSim(t, rmqsim.Spec{
		Version: rmqsim.V4_9_7,
		Groups: []rmqsim.GroupSpec{
			{Cluster: "DefaultCluster", Name: "broker-a", Mode: rmqsim.MasterSlave, Replicas: 2},
			{Cluster: "RaftCluster", Name: "RaftNode00", Mode: rmqsim.DLedger, Replicas: 3},
		},
		Clock:  clock.now,
		Timing: rmqsim.Timing{Manual: true},
	})
	for _, step := range []error{
		sim.CreateTopic("broker-a", "TopicA", 4),
		sim.CreateTopic("RaftNode00", "TopicRaft", 2),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	clock.add(5 * time.Second)
	if _, err := sim.Produce("TopicA", 300); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Produce("TopicRaft", 60); err != nil {
		t.Fatal(err)
	}
	clock.add(60 * time.Second)
	if _, err := sim.Produce("TopicA", 50); err != nil {
		t.Fatal(err)
	}
	sim.CreateConsumerGroup("GroupA", false)
	if err := sim.Subscribe("GroupA", "TopicA"); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Consume("GroupA", "TopicA", 120); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetScheduleOffsets("broker-a", 3, 2, 7); err != nil {
		t.Fatal(err)
	}
	a := sim.Group("broker-a")
	a[0].SetDisk(100<<30, 40<<30)
	// The slave is unreachable: its identity read fails.
	a[1].SetFault(rmqsim.CloseConn())
	raft := sim.Group("RaftNode00")
	// n2 was just restarted: its runtime read fails like a real broker's.
	raft[2].SetFault(rmqsim.NoSuchElement())
	clock.add(5 * time.Second) // 70 s after boot: 10 s and 60 s windows, no 600 s one

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := Resolve(ctx, admin, Targets{Mode: ModeCluster, NameServers: sim.NameServerAddrs()}, nil)
	if len(s.Brokers) != 5 {
		t.Fatalf("resolved %d brokers, want 5", len(s.Brokers))
	}
	ad := newBrokerAdapter(t, s, nil)
	ad.ctx = ctx
	out := brokerExposition(t, ad)
	err := ad.lastErr()
	if err == nil || !strings.Contains(err.Error(), raft[2].Addr()) || !strings.Contains(err.Error(), "NoSuchElementException") {
		t.Errorf("Update error = %v, want the startup-window error of %s", err, raft[2].Addr())
	}
	if strings.Contains(out, a[1].Addr()) {
		t.Errorf("series for the unreachable slave %s", a[1].Addr())
	}
	checkBrokerSimGolden(t, simAddressNames(sim).Replace(out), "rmqsim_4.9.7")

	problems, err := testutil.CollectAndLint(ad)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// TestBrokerSimulated50 does the same for 5.0.0: controller-mode nodes
// (brokerId always -1) and a plain master/slave pair, 5.x-only keys.
func TestBrokerSimulated50(t *testing.T) {
	var clock brokerSimClock
	clock.set(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	sim, admin := startBrokerSim(t, rmqsim.Spec{
		Version: rmqsim.V5_0_0,
		Groups: []rmqsim.GroupSpec{
			{Cluster: "CtrlCluster", Name: "broker-c", Mode: rmqsim.Controller, Replicas: 2},
			{Cluster: "MSCluster", Name: "broker-d", Mode: rmqsim.MasterSlave, Replicas: 2},
		},
		Clock:  clock.now,
		Timing: rmqsim.Timing{Manual: true},
	})
	if err := sim.CreateTopic("broker-d", "TopicMS", 2); err != nil {
		t.Fatal(err)
	}
	clock.add(time.Second)
	if _, err := sim.Produce("TopicMS", 100); err != nil {
		t.Fatal(err)
	}
	clock.add(14 * time.Second) // 15 s after boot: only the 10 s windows

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := Resolve(ctx, admin, Targets{Mode: ModeCluster, NameServers: sim.NameServerAddrs()}, nil)
	if len(s.Brokers) != 4 {
		t.Fatalf("resolved %d brokers, want 4", len(s.Brokers))
	}
	ad := newBrokerAdapter(t, s, nil)
	ad.ctx = ctx
	out := brokerExposition(t, ad)
	if err := ad.lastErr(); err != nil {
		t.Errorf("Update: %v", err)
	}
	checkBrokerSimGolden(t, simAddressNames(sim).Replace(out), "rmqsim_5.0.0")
}

// TestBrokerDLedgerNoRoleWithoutID: a DLedger node whose live brokerId is
// negative has not learnt its leader yet (4.9 BrokerStartup sets -1 and keeps
// the config file's brokerRole, ASYNC_MASTER by default). That role is not
// live, so no role series may claim it is a master (PROTOCOL.md §2.6).
func TestBrokerDLedgerNoRoleWithoutID(t *testing.T) {
	bf := loadBrokerFixture(t, "rocketmq-4.9.7/steady", "raft_n0", "")
	if !dledgerEnabled(bf.config) {
		t.Fatal("fixture: raft_n0 does not run DLedger")
	}
	bf.config["brokerId"] = "-1"
	bf.config["brokerRole"] = "ASYNC_MASTER"
	f := newFakeClient()
	bf.add(f)
	a := newBrokerAdapter(t, sidecarScrape(f, bf.addr), nil)
	out := brokerExposition(t, a)
	if err := a.lastErr(); err != nil {
		t.Fatalf("Update: %v", err)
	}
	for _, gone := range []string{"rocketmq_broker_role{", "rocketmq_broker_id{"} {
		if strings.Contains(out, gone) {
			t.Errorf("%s… exported for a DLedger node with brokerId -1:\n%s", gone, out)
		}
	}
	if !strings.Contains(out, `rocketmq_broker_info{address="`+bf.addr+`"`) {
		t.Error("the node's other series went missing too")
	}

	// Without DLedger a negative id says nothing about the role: a 5.x
	// controller-mode slave keeps brokerId -1 and its brokerRole is live.
	cfg := fakeBrokerConfig("C", "b", -1, "SLAVE", "10.0.0.1:10911")
	cfg["enableControllerMode"] = "true"
	f = newFakeClient()
	f.config["10.0.0.1:10911"] = cfg
	f.runtime["10.0.0.1:10911"] = rocketmq.RuntimeInfo{"brokerVersionDesc": "V5_0_0"}
	a = newBrokerAdapter(t, sidecarScrape(f, "10.0.0.1:10911"), nil)
	if v, ok := sample(t, a, "rocketmq_broker_role", map[string]string{"role": "SLAVE"}); !ok || v != 1 {
		t.Errorf("controller-mode slave: role SLAVE = %v (present %v), want 1", v, ok)
	}
}

// brokerRoleSeries returns the role each address reports (the state at 1), ""
// for an address with role series but none at 1.
func brokerRoleSeries(t testing.TB, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for l := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(l, "rocketmq_broker_role{") {
			continue
		}
		addr := l[strings.Index(l, `address="`)+len(`address="`):]
		addr = addr[:strings.Index(addr, `"`)]
		role := l[strings.Index(l, `role="`)+len(`role="`):]
		role = role[:strings.Index(role, `"`)]
		if _, seen := got[addr]; !seen {
			got[addr] = ""
		}
		if strings.HasSuffix(l, "} 1") {
			got[addr] = role
		}
	}
	return got
}

// TestBrokerDLedgerRejoinWindowSimulated walks a restarted DLedger node
// through the window before it learns the leader, over the real protocol:
// its config says brokerId -1 and ASYNC_MASTER, and no exporter may report
// that as a second master.
func TestBrokerDLedgerRejoinWindowSimulated(t *testing.T) {
	sim, admin := startBrokerSim(t, rmqsim.Spec{
		Version: rmqsim.V4_9_7,
		Groups:  []rmqsim.GroupSpec{{Cluster: raftCluster, Name: raftGroup, Mode: rmqsim.DLedger, Replicas: 3, Leader: 1}},
		Timing:  rmqsim.Timing{Manual: true},
	})
	nodes := sim.Group(raftGroup)
	n0, n1, n2 := nodes[0], nodes[1], nodes[2]
	scrape := func(t *testing.T, targets Targets) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a := newBrokerAdapter(t, Resolve(ctx, admin, targets, nil), nil)
		a.ctx = ctx
		out := brokerExposition(t, a)
		if err := a.lastErr(); err != nil {
			t.Errorf("Update: %v", err)
		}
		return out
	}
	sidecars := func(t *testing.T) map[string]string {
		t.Helper()
		roles := map[string]string{}
		for _, n := range nodes {
			for addr, r := range brokerRoleSeries(t, scrape(t, Targets{Mode: ModeSidecar, Brokers: []string{n.Addr()}})) {
				roles[addr] = r
			}
		}
		return roles
	}
	cluster := func(t *testing.T) map[string]string {
		t.Helper()
		return brokerRoleSeries(t, scrape(t, Targets{Mode: ModeCluster, NameServers: sim.NameServerAddrs()}))
	}
	check := func(t *testing.T, what string, got, want map[string]string) {
		t.Helper()
		if !mapsEqual(got, want) {
			t.Errorf("%s roles = %v, want %v", what, got, want)
		}
	}

	t.Run("follower restarted, leader not learnt", func(t *testing.T) {
		n0.Kill()
		if err := n0.Restart(); err != nil {
			t.Fatal(err)
		}
		if n0.ID() != -1 || n0.Role() != "ASYNC_MASTER" {
			t.Fatalf("simulator: restarted n0 is %d/%s, want -1/ASYNC_MASTER", n0.ID(), n0.Role())
		}
		want := map[string]string{n1.Addr(): "SYNC_MASTER", n2.Addr(): "SLAVE"}
		check(t, "sidecars", sidecars(t), want)
		// The NameServer dropped n0 when it died and it has not registered.
		check(t, "cluster", cluster(t), want)
	})
	t.Run("follower learnt the leader", func(t *testing.T) {
		sim.RegisterNow(n0)
		want := map[string]string{n0.Addr(): "SLAVE", n1.Addr(): "SYNC_MASTER", n2.Addr(): "SLAVE"}
		check(t, "sidecars", sidecars(t), want)
		check(t, "cluster", cluster(t), want)
	})
	t.Run("leader restarted before an election", func(t *testing.T) {
		if _, err := sim.KillLeader(raftGroup); err != nil {
			t.Fatal(err)
		}
		if err := n1.Restart(); err != nil {
			t.Fatal(err)
		}
		// Its periodic registration goes out with brokerId -1.
		sim.RegisterNow(n1)
		if id, ok := n1.RegisteredID(); !ok || id != -1 {
			t.Fatalf("simulator: n1 registered as %d (%v), want -1", id, ok)
		}
		want := map[string]string{n0.Addr(): "SLAVE", n2.Addr(): "SLAVE"}
		check(t, "sidecars", sidecars(t), want)
		check(t, "cluster", cluster(t), want)
	})
	t.Run("new leader elected and promoted", func(t *testing.T) {
		if err := sim.ForceLeader(raftGroup, n2.SelfID()); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{n0.Addr(): "SLAVE", n1.Addr(): "SLAVE", n2.Addr(): "SYNC_MASTER"}
		check(t, "sidecars", sidecars(t), want)
		check(t, "cluster", cluster(t), want)
	})
}
