package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

func TestClassifyTopic(t *testing.T) {
	internal := map[string]bool{"DefaultCluster": true, "broker-a": true, "RaftNode00": true}
	for _, tc := range []struct {
		topic, want string
	}{
		{"TopicA", topicTypeNormal},
		{"%RETRY%GroupA", topicTypeRetry},
		{"%RETRY%GroupA_TopicA", topicTypeRetry}, // 5.x POP retry topic
		{"%DLQ%GroupA", topicTypeDLQ},
		{"TBW102", topicTypeSystem},
		{"SCHEDULE_TOPIC_XXXX", topicTypeSystem},
		{"SELF_TEST_TOPIC", topicTypeSystem},
		{"OFFSET_MOVED_EVENT", topicTypeSystem},
		{"BenchmarkTest", topicTypeSystem},
		{"TRANS_CHECK_MAX_TIME_TOPIC", topicTypeSystem},
		{"CHECKPOINT_TOPIC", topicTypeSystem},
		{"RMQ_SYS_TRANS_HALF_TOPIC", topicTypeSystem},
		{"RMQ_SYS_TRACE_TOPIC", topicTypeSystem},
		{"rmq_sys_REVIVE_LOG_MSCluster", topicTypeSystem},
		{"rmq_sys_SYNC_BROKER_MEMBER_broker-d", topicTypeSystem},
		{"DefaultCluster", topicTypeSystem},
		{"broker-a", topicTypeSystem},
		{"RaftNode00", topicTypeSystem},
		{"DefaultCluster_REPLY_TOPIC", topicTypeSystem},
		{"OtherCluster_REPLY_TOPIC", topicTypeNormal}, // not a cluster of this scrape
		{"broker-b", topicTypeNormal},                 // not a broker of this scrape
		{"RMQ_SYS", topicTypeNormal},
		{"tbw102", topicTypeNormal},
		{"", topicTypeNormal},
	} {
		if got := classifyTopic(tc.topic, internal); got != tc.want {
			t.Errorf("classifyTopic(%q) = %q, want %q", tc.topic, got, tc.want)
		}
	}
}

func TestIsSystemGroup(t *testing.T) {
	for group, want := range map[string]bool{
		"TOOLS_CONSUMER":        true,
		"FILTERSRV_CONSUMER":    true,
		"SELF_TEST_C_GROUP":     true,
		"CID_ONS-HTTP-PROXY":    true,
		"CID_ONSAPI_PERMISSION": true,
		"CID_ONSAPI_OWNER":      true,
		"CID_ONSAPI_PULL":       true,
		"CID_RMQ_SYS_TRANS":     true,
		"GroupA":                false,
		"CID_ORDERS":            false,
		"DEFAULT_CONSUMER":      false, // the client default group name carries real traffic
	} {
		if got := isSystemGroup(group); got != want {
			t.Errorf("isSystemGroup(%q) = %v, want %v", group, got, want)
		}
	}
}

// Every topic a real broker created for itself in the recorded fixtures is
// recognised; the user topics are not.
func TestClassifyFixtureTopics(t *testing.T) {
	ci := decodeFixture(t, rocketmq.DecodeClusterInfo, readFixtureBody(t, "topic", "rocketmq-4.9.7/steady/namesrv.get_broker_cluster_info"))
	internal := internalNames(&Scrape{ClusterInfo: ci})
	tc := decodeFixture(t, rocketmq.DecodeTopicConfigWrapper, readFixtureBody(t, "topic", "rocketmq-4.9.7/steady/broker_a.get_all_topic_config"))
	got := map[string]string{}
	for name := range tc.TopicConfigTable {
		got[name] = classifyTopic(name, internal)
	}
	want := map[string]string{
		"TopicA":                     topicTypeNormal,
		"TopicTest":                  topicTypeNormal,
		"%RETRY%GroupA":              topicTypeRetry,
		"%RETRY%GroupMS":             topicTypeRetry,
		"%RETRY%GroupMSFromSlave":    topicTypeRetry,
		"%RETRY%GroupOnline":         topicTypeRetry,
		"%RETRY%GroupRaft":           topicTypeRetry,
		"SCHEDULE_TOPIC_XXXX":        topicTypeSystem,
		"SELF_TEST_TOPIC":            topicTypeSystem,
		"DefaultCluster":             topicTypeSystem,
		"DefaultCluster_REPLY_TOPIC": topicTypeSystem,
		"RMQ_SYS_TRANS_HALF_TOPIC":   topicTypeSystem,
		"broker-a":                   topicTypeSystem,
		"TBW102":                     topicTypeSystem,
		"BenchmarkTest":              topicTypeSystem,
		"OFFSET_MOVED_EVENT":         topicTypeSystem,
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %q, want %q", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("fixture has %d topics, test knows %d: %v", len(got), len(want), got)
	}
}

// ---- helpers shared by the cluster, topic and consumer tests ----

// The -update flag rewrites testdata/*/*.prom instead of comparing. Another
// test file of the package may define -update too; this file sorts late, so
// its initialisation runs after theirs and only defines the flag if nobody
// did. golden reads it through the flag package either way.
var _ = func() bool {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden .prom files under testdata")
	}
	return true
}()

// golden says whether -update was given.
func wantGoldenUpdate() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

// readFixtureBody returns the recorded response body of name under
// testdata/<dir>/fixtures.
func readFixtureBody(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", dir, "fixtures", name+".response.body"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureRespError turns a recorded non-success response header into the error
// the client returns for it.
func fixtureRespError(t *testing.T, dir, name string, requestCode int) *rocketmq.ResponseError {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", dir, "fixtures", name+".response.header.json"))
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
		t.Fatalf("%s: fixture is a success", name)
	}
	return &rocketmq.ResponseError{RequestCode: requestCode, Code: h.Code, Remark: h.Remark}
}

func decodeFixture[T any](t *testing.T, decode func([]byte) (T, error), body []byte) T {
	t.Helper()
	v, err := decode(body)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// updateAdapter adapts one Collector and one Scrape to prometheus.Collector
// for testutil. Describe sends nothing: like the exporter, it is unchecked.
type updateAdapter struct {
	c   Collector
	s   *Scrape
	ctx context.Context
	err error
}

func (u *updateAdapter) Describe(chan<- *prometheus.Desc) {}

func (u *updateAdapter) Collect(ch chan<- prometheus.Metric) {
	u.err = u.c.Update(u.ctx, u.s, ch)
}

func newUpdateAdapter(t *testing.T, c Collector, s *Scrape) *updateAdapter {
	return &updateAdapter{c: c, s: s, ctx: t.Context()}
}

// collectExposition runs one Update and returns the text exposition.
func collectExposition(t *testing.T, c Collector, s *Scrape) (string, error) {
	t.Helper()
	u := newUpdateAdapter(t, c, s)
	return exposition(t, u), u.err
}

// exposition gathers c through a pedantic registry and encodes every family.
func exposition(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

// compareGolden runs one Update and compares it with testdata/<file>, or
// rewrites the file with -update. It returns Update's error.
func compareGolden(t *testing.T, c Collector, s *Scrape, file string) error {
	t.Helper()
	path := filepath.Join("testdata", file)
	u := newUpdateAdapter(t, c, s)
	if wantGoldenUpdate() {
		if err := os.WriteFile(path, []byte(exposition(t, u)), 0o644); err != nil {
			t.Fatal(err)
		}
		return u.err
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if err := testutil.CollectAndCompare(u, bytes.NewReader(want)); err != nil {
		t.Errorf("%s: %v", file, err)
	}
	return u.err
}

// lintCollector runs one Update through promlint.
func lintCollector(t *testing.T, c Collector, s *Scrape) {
	t.Helper()
	problems, err := testutil.CollectAndLint(newUpdateAdapter(t, c, s))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// countSeries counts the samples of the named metrics in one Update.
func countSeries(t *testing.T, c Collector, s *Scrape, names ...string) int {
	t.Helper()
	return testutil.CollectAndCount(newUpdateAdapter(t, c, s), names...)
}

// hasSample reports whether the exposition has a sample line starting with
// prefix (metric name and labels in exposition order).
func hasSample(text, prefix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// steadyNow is about when the steady fixtures were recorded (their
// timestamps are in November 2026).
var steadyNow = time.UnixMilli(1795255725000)

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
