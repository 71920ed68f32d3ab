// Package e2e runs the exporter against the simulated RocketMQ cluster with a
// real Prometheus (our rules, 1 s scrape and evaluation) and a real
// Alertmanager (deploy/alertmanager/alertmanager.yml) delivering to a webhook
// of the test. It needs the Debian packages prometheus and
// prometheus-alertmanager (or E2E_PROMETHEUS / E2E_ALERTMANAGER pointing at
// the binaries) and skips without them, and under -short.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"
)

// repoRoot is the repository root relative to this package.
const repoRoot = "../.."

// findBinary returns the binary named by env, or the first of names on PATH.
func findBinary(env string, names ...string) (string, bool) {
	if p := os.Getenv(env); p != "" {
		return p, true
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, true
		}
	}
	return "", false
}

// missingTool skips a test whose external tool is not installed, or fails it
// when RMQ_REQUIRE_TOOLS=1: CI installs the tools, so there a missing one is a
// broken install that must not pass as a skip.
func missingTool(t testing.TB, tool, hint string) {
	t.Helper()
	if os.Getenv("RMQ_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found and RMQ_REQUIRE_TOOLS=1 (%s)", tool, hint)
	}
	t.Skipf("%s not found (%s); RMQ_REQUIRE_TOOLS=1 makes this a failure", tool, hint)
}

// missingCheck is missingTool for one check of several: the test goes on
// (logging, or with RMQ_REQUIRE_TOOLS=1 failing) so the other checks run.
func missingCheck(t testing.TB, tool, what string) {
	t.Helper()
	if os.Getenv("RMQ_REQUIRE_TOOLS") == "1" {
		t.Errorf("%s not found and RMQ_REQUIRE_TOOLS=1: %s", tool, what)
		return
	}
	t.Logf("%s not found: %s (RMQ_REQUIRE_TOOLS=1 makes this a failure)", tool, what)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// process is a child process whose output goes to a file shown when the
// test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func start(t *testing.T, dir, name string, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not exit", name)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, b)
		}
	})
	return p
}

// waitHTTP waits until GET url answers 200, or the process exits.
func (p *process) waitHTTP(t *testing.T, u string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited", p.name)
		default:
		}
		resp, err := client.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %s not ready after %s", p.name, u, timeout)
}

// buildExporter builds cmd/rocketmq_exporter into dir.
func buildExporter(t *testing.T, dir string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		var ok bool
		if goBin, ok = findBinary("GO", "go"); !ok {
			missingTool(t, "go", "the toolchain that builds the exporter")
		}
	}
	out := filepath.Join(dir, "rocketmq_exporter")
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/rocketmq_exporter")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// forLine matches the for: of a rule; alertLine the start of an alert.
var (
	forLine   = regexp.MustCompile(`^(\s+for:\s*)\S+\s*$`)
	alertLine = regexp.MustCompile(`^\s*- alert:\s*(\S+)`)
)

// keepFor are alerts whose for: the e2e test leaves alone: Prometheus
// evaluates rules before its first scrape (target discovery alone takes
// up to 5 s), so absent(up{…}) holds for a few seconds after every start;
// the real 15 minutes cover that, a shortened for: would not.
var keepFor = map[string]bool{"RocketMQExporterAbsent": true}

// writeRules copies the rule files into dir/rules with every for: (but
// keepFor's) shortened to forDur, so alerts fire within seconds at a 1 s
// evaluation interval. The expressions are untouched.
func writeRules(t *testing.T, dir string, forDur string) {
	t.Helper()
	rd := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rd, 0o755); err != nil {
		t.Fatal(err)
	}
	shortened := 0
	for _, f := range []string{"rocketmq-rules.yml", "rocketmq-alerts.yml"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "alerts", f))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		alert := ""
		for i, l := range lines {
			if m := alertLine.FindStringSubmatch(l); m != nil {
				alert = m[1]
			}
			if forLine.MatchString(l) && !keepFor[alert] {
				lines[i] = forLine.ReplaceAllString(l, "${1}"+forDur)
				shortened++
			}
		}
		if err := os.WriteFile(filepath.Join(rd, f), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if shortened < 10 {
		t.Fatalf("only %d for: clauses shortened", shortened)
	}
}

func readYAML(t *testing.T, path string) map[any]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[any]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func writeYAML(t *testing.T, path string, m map[any]any) {
	t.Helper()
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// prometheusConfig is deploy/prometheus/prometheus.yml pointed at this
// test's processes: 1 s intervals, the exporter in cluster mode and through
// /probe, no DNS-discovered sidecars (there is no Kubernetes here).
func prometheusConfig(t *testing.T, dir, exporter, namesrv, alertmanager string) string {
	t.Helper()
	m := readYAML(t, filepath.Join(repoRoot, "deploy/prometheus/prometheus.yml"))
	m["global"] = map[any]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
	m["alerting"] = map[any]any{"alertmanagers": []any{map[any]any{"static_configs": []any{map[any]any{"targets": []any{alertmanager}}}}}}
	var jobs []any
	seen := map[string]bool{}
	for _, j := range m["scrape_configs"].([]any) {
		job := j.(map[any]any)
		name := job["job_name"].(string)
		seen[name] = true
		switch name {
		case "rocketmq":
			job["static_configs"] = []any{map[any]any{"targets": []any{exporter}}}
		case "rocketmq-probe":
			job["static_configs"] = []any{map[any]any{"targets": []any{namesrv}}}
			rl := job["relabel_configs"].([]any)
			last := rl[len(rl)-1].(map[any]any)
			if last["target_label"] != "__address__" {
				t.Fatalf("rocketmq-probe: last relabel rule %v does not set __address__", last)
			}
			last["replacement"] = exporter
		case "rocketmq-sidecar":
			continue
		default:
			t.Fatalf("prometheus.yml: job %s unknown to the e2e test", name)
		}
		jobs = append(jobs, job)
	}
	for _, want := range []string{"rocketmq", "rocketmq-probe", "rocketmq-sidecar"} {
		if !seen[want] {
			t.Fatalf("prometheus.yml has no job %s", want)
		}
	}
	m["scrape_configs"] = jobs
	path := filepath.Join(dir, "prometheus.yml")
	writeYAML(t, path, m)
	return path
}

// exampleReceiverURL is the receiver address of the example Alertmanager
// configuration, replaced by the test's webhook.
const exampleReceiverURL = "http://alert-receiver.example.com:8080"

// alertmanagerConfig is deploy/alertmanager/alertmanager.yml with the
// webhook of the test and 1 s grouping delays.
func alertmanagerConfig(t *testing.T, dir, webhook string) string {
	t.Helper()
	m := readYAML(t, filepath.Join(repoRoot, "deploy/alertmanager/alertmanager.yml"))
	replaced := 0
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[any]any:
			for k, val := range x {
				switch k {
				case "group_wait", "group_interval":
					x[k] = "1s"
				default:
					x[k] = walk(val)
				}
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		case string:
			if strings.HasPrefix(x, exampleReceiverURL) {
				replaced++
				return webhook + strings.TrimPrefix(x, exampleReceiverURL)
			}
		}
		return v
	}
	walk(m)
	if replaced == 0 {
		t.Fatalf("alertmanager.yml has no receiver URL under %s", exampleReceiverURL)
	}
	path := filepath.Join(dir, "alertmanager.yml")
	writeYAML(t, path, m)
	return path
}

// notification is one webhook message from Alertmanager.
type notification struct {
	Path     string `json:"-"`
	Received time.Time
	Receiver string `json:"receiver"`
	Status   string `json:"status"`
	Alerts   []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
	} `json:"alerts"`
}

// webhook records what Alertmanager delivers.
type webhook struct {
	mu  sync.Mutex
	got []notification
	srv *httptest.Server
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		var n notification
		if err := json.Unmarshal(body, &n); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		n.Path, n.Received = r.URL.Path, time.Now()
		w.mu.Lock()
		w.got = append(w.got, n)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) all() []notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]notification(nil), w.got...)
}

// alertEvent is one alert of one notification.
type alertEvent struct {
	path, status string
	labels       map[string]string
	annotations  map[string]string
	startsAt     time.Time
	endsAt       time.Time
}

func (w *webhook) events(alertname string) []alertEvent {
	var out []alertEvent
	for _, n := range w.all() {
		for _, a := range n.Alerts {
			if a.Labels["alertname"] == alertname {
				out = append(out, alertEvent{n.Path, a.Status, a.Labels, a.Annotations, a.StartsAt, a.EndsAt})
			}
		}
	}
	return out
}

// waitEvent waits for a delivered alert that matches.
func (w *webhook) waitEvent(t *testing.T, timeout time.Duration, what string, match func(alertEvent) bool) alertEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range w.all() {
			for _, a := range n.Alerts {
				e := alertEvent{n.Path, a.Status, a.Labels, a.Annotations, a.StartsAt, a.EndsAt}
				if match(e) {
					return e
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no webhook delivery of %s within %s; got %d notifications", what, timeout, len(w.all()))
	return alertEvent{}
}

// promAPI queries Prometheus's HTTP API.
type promAPI struct{ base string }

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (p promAPI) query(ctx context.Context, q string) ([]sample, error) {
	u := p.base + "/api/v1/query?" + url.Values{"query": {q}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", q, err, bytes.TrimSpace(body))
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, r.Error)
	}
	switch r.Data.ResultType {
	case "vector":
		var s []sample
		if err := json.Unmarshal(r.Data.Result, &s); err != nil {
			return nil, err
		}
		return s, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return nil, err
		}
		return []sample{{Value: v}}, nil
	}
	return nil, fmt.Errorf("%s: result type %s", q, r.Data.ResultType)
}

// waitQuery waits until the query returns something that ok accepts.
func (p promAPI) waitQuery(t *testing.T, timeout time.Duration, q string, ok func([]sample) bool) []sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []sample
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := p.query(ctx, q)
		cancel()
		if err == nil && ok(s) {
			return s
		}
		last, lastErr = s, err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("query %s: condition not met within %s (last: %v, err %v)", q, timeout, last, lastErr)
	return nil
}

func nonEmpty(s []sample) bool { return len(s) > 0 }
