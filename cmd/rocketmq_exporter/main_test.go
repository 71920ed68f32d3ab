package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

// testVersion is linked into the test binary to prove the version flags work.
const testVersion = "9.9.9-test"

// binary is the exporter built once for all binary tests ("" with -short).
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "rocketmq_exporter_test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "rocketmq_exporter")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goTool, "build", "-o", binary,
		"-ldflags", "-X github.com/prometheus/common/version.Version="+testVersion, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the exporter: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needBinary(t *testing.T) {
	t.Helper()
	if binary == "" {
		t.Skip("builds and runs the binary; skipped with -short")
	}
}

// syncBuffer collects a process' output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type exporterProc struct {
	url  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// listeningRE finds the port in the toolkit's "Listening on" line, logfmt or JSON.
var listeningRE = regexp.MustCompile(`"?msg"?[=:]"Listening on",? ?"?address"?[=:]"?(127\.0\.0\.1:\d+)`)

// startExporter runs the binary on a free port with exactly env as its
// environment (nothing inherited, so no stray ROCKETMQ_* variable) and stops
// it with SIGTERM at the end of the test, expecting a clean exit.
func startExporter(t *testing.T, env []string, args ...string) *exporterProc {
	t.Helper()
	needBinary(t)
	p := &exporterProc{logs: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...)
	p.cmd.Env = env
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("exporter did not exit cleanly on SIGTERM: %v\n%s", err, p.logs)
			}
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("exporter ignored SIGTERM\n%s", p.logs)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningRE.FindStringSubmatch(p.logs.String()); m != nil {
			p.url = "http://" + m[1]
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("exporter exited early: %v\n%s", err, p.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("exporter did not start listening\n%s", p.logs)
	return nil
}

func (p *exporterProc) get(t *testing.T, path string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, p.logs)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape fetches path, requires a 200 with a valid text exposition and
// returns the body.
func (p *exporterProc) scrape(t *testing.T, path string, header ...string) string {
	t.Helper()
	code, body := p.get(t, path, header...)
	if code != http.StatusOK {
		t.Fatalf("GET %s: status %d\n%s\nlogs:\n%s", path, code, body, p.logs)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := parser.TextToMetricFamilies(strings.NewReader(body)); err != nil {
		t.Fatalf("GET %s: invalid exposition: %v\n%s", path, err, body)
	}
	return body
}

func mustContain(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("missing %q in:\n%s", w, body)
		}
	}
}

func startSim(t *testing.T, spec rmqsim.Spec) *rmqsim.Cluster {
	t.Helper()
	needBinary(t)
	c, err := rmqsim.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func oneGroup() rmqsim.Spec {
	return rmqsim.Spec{Groups: []rmqsim.GroupSpec{{Cluster: "DemoCluster", Name: "broker-a", Mode: rmqsim.MasterSlave, Replicas: 2}}}
}

// deadAddr is a local port with nothing listening.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func upLine(kind, addr string, v int) string {
	return fmt.Sprintf(`rocketmq_up{address=%q,kind=%q} %d`, addr, kind, v)
}

func TestBinaryVersion(t *testing.T) {
	needBinary(t)
	out, err := exec.Command(binary, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "rocketmq_exporter, version "+testVersion) {
		t.Errorf("--version printed %q", out)
	}
}

func TestBinaryBadFlags(t *testing.T) {
	needBinary(t)
	cmd := exec.Command(binary, "--rocketmq.broker-address=a:1", "--rocketmq.namesrv-address=b:2")
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "not both") {
		t.Errorf("conflicting flags: err %v, output %q; want exit 2 and the reason", err, out)
	}
}

func TestBinaryClusterMode(t *testing.T) {
	sim := startSim(t, oneGroup())
	ns := sim.NameServerAddrs()[0]
	deadNS := deadAddr(t)
	master, slave := sim.Nodes()[0], sim.Nodes()[1]
	p := startExporter(t, nil, "--rocketmq.namesrv-address="+deadNS, "--rocketmq.namesrv-address="+ns)

	body := p.scrape(t, "/metrics", "X-Prometheus-Scrape-Timeout-Seconds", "10")
	mustContain(t, body,
		upLine("namesrv", ns, 1),
		upLine("namesrv", deadNS, 0),
		upLine("broker", master.Addr(), 1),
		upLine("broker", slave.Addr(), 1),
		`rocketmq_scrape_collector_success{collector="cluster"} 1`,
		`rocketmq_cluster_broker_group_members{broker="broker-a",cluster="DemoCluster"} 2`,
		`rocketmq_exporter_build_info{`,
		`version="`+testVersion+`"`,
		`promhttp_metric_handler_requests_total{code="200"}`,
		`process_start_time_seconds`,
	)
	if !regexp.MustCompile(`(?m)^rocketmq_broker_\w+\{[^}]*address="` + regexp.QuoteMeta(master.Addr()) + `"`).MatchString(body) {
		t.Errorf("no rocketmq_broker_* series for the master %s:\n%s", master.Addr(), body)
	}

	// collect[] narrows the collectors; an unknown one is a client error.
	body = p.scrape(t, "/metrics?collect[]=cluster")
	if strings.Contains(body, `collector="broker"`) || !strings.Contains(body, `rocketmq_scrape_collector_success{collector="cluster"} 1`) {
		t.Errorf("collect[]=cluster not applied:\n%s", body)
	}
	if code, _ := p.get(t, "/metrics?collect[]=nope"); code != http.StatusBadRequest {
		t.Errorf("collect[]=nope: status %d, want 400", code)
	}

	for path, want := range map[string]string{"/-/healthy": "Healthy", "/-/ready": "Ready", "/": "/probe"} {
		code, body := p.get(t, path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d %q, want 200 containing %q", path, code, body, want)
		}
	}
	if code, _ := p.get(t, "/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d", code)
	}
}

func TestBinaryTargetDown(t *testing.T) {
	sim := startSim(t, oneGroup())
	live := sim.Nodes()[0].Addr()
	dead := deadAddr(t)
	p := startExporter(t, nil, "--rocketmq.broker-address="+live, "--rocketmq.broker-address="+dead)

	body := p.scrape(t, "/metrics")
	mustContain(t, body, upLine("broker", live, 1), upLine("broker", dead, 0))
	if !strings.Contains(p.logs.String(), dead) {
		t.Errorf("the dead broker is not named in the logs:\n%s", p.logs)
	}
}

// silentListener accepts connections and reads whatever comes, never
// answering: a broker whose process hangs while the kernel still completes
// the TCP handshake, the case a refused port does not cover.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// A broker that accepts and never answers must cost its own rocketmq_up and
// nothing else: the scrape answers within Prometheus' timeout, with the
// healthy broker's runtime series.
func TestBinaryTargetSilent(t *testing.T) {
	sim := startSim(t, oneGroup())
	live := sim.Nodes()[0].Addr()
	silent := silentListener(t)
	p := startExporter(t, nil, "--rocketmq.broker-address="+live, "--rocketmq.broker-address="+silent, "--rocketmq.timeout=30s")

	const timeout = 3 * time.Second
	for i := range 2 { // the second scrape finds the silent connection pooled, or dropped
		start := time.Now()
		code, body := p.get(t, "/metrics", "X-Prometheus-Scrape-Timeout-Seconds", strconv.Itoa(int(timeout/time.Second)))
		if d := time.Since(start); d >= timeout {
			t.Errorf("scrape %d took %v, past the %v Prometheus waits", i+1, d, timeout)
		}
		if code != http.StatusOK {
			t.Fatalf("scrape %d: status %d\n%s", i+1, code, body)
		}
		mustContain(t, body, upLine("broker", live, 1), upLine("broker", silent, 0),
			`rocketmq_scrape_collector_success{collector="broker"} 1`)
		if !regexp.MustCompile(`(?m)^rocketmq_broker_put_messages_total\{[^}]*address="` + regexp.QuoteMeta(live) + `"[^}]*\} `).MatchString(body) {
			t.Errorf("scrape %d: no rocketmq_broker_put_messages_total for the healthy broker %s:\n%s", i+1, live, body)
		}
		if strings.Contains(body, `address="`+silent+`",broker=`) {
			t.Errorf("scrape %d: series other than rocketmq_up for the silent broker:\n%s", i+1, body)
		}
	}
}

func TestBinaryScrapeTimeoutHeader(t *testing.T) {
	sim := startSim(t, oneGroup())
	node := sim.Nodes()[0]
	node.SetFault(rmqsim.NoAnswer())
	p := startExporter(t, nil, "--rocketmq.broker-address="+node.Addr(), "--rocketmq.timeout=20s")

	start := time.Now()
	body := p.scrape(t, "/metrics", "X-Prometheus-Scrape-Timeout-Seconds", "1.5")
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("scrape with a 1.5s header took %v", d)
	}
	mustContain(t, body, upLine("broker", node.Addr(), 0))
}

func TestBinaryMaxRequests(t *testing.T) {
	sim := startSim(t, oneGroup())
	node := sim.Nodes()[0]
	// Only the identity read is slow, so a scrape holds its slot ~1.5s.
	node.SetFault(rmqsim.Slow(1500 * time.Millisecond).For(rocketmq.CodeGetBrokerConfig))
	p := startExporter(t, nil, "--rocketmq.broker-address="+node.Addr(), "--web.max-requests=1")

	first := make(chan int, 1)
	go func() {
		resp, err := http.Get(p.url + "/metrics")
		if err != nil {
			first <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	time.Sleep(500 * time.Millisecond)
	if code, _ := p.get(t, "/probe?target="+node.Addr()); code != http.StatusServiceUnavailable {
		t.Errorf("second concurrent scrape: status %d, want 503", code)
	}
	if code := <-first; code != http.StatusOK {
		t.Errorf("first scrape: status %d, want 200", code)
	}
	body := p.scrape(t, "/metrics")
	mustContain(t, body, `promhttp_metric_handler_requests_total{code="200"} 1`)
}

func TestBinaryProbe(t *testing.T) {
	sim := startSim(t, oneGroup())
	ns := sim.NameServerAddrs()[0]
	master := sim.Nodes()[0].Addr()

	off := startExporter(t, nil, "--rocketmq.broker-address="+deadAddr(t))
	if code, body := off.get(t, "/probe?target="+master); code != http.StatusForbidden || !strings.Contains(body, "--probe.allowed-targets") {
		t.Errorf("probe without --probe.allowed-targets: %d %q, want 403", code, body)
	}

	p := startExporter(t, nil, "--rocketmq.broker-address="+deadAddr(t), `--probe.allowed-targets=127\.0\.0\.1:\d+`)
	body := p.scrape(t, "/probe?target="+master)
	mustContain(t, body, upLine("broker", master, 1))
	if strings.Contains(body, "rocketmq_exporter_build_info") || strings.Contains(body, `kind="namesrv"`) {
		t.Errorf("probe output has exporter or other targets' series:\n%s", body)
	}
	body = p.scrape(t, "/probe?kind=namesrv&target="+ns)
	mustContain(t, body, upLine("namesrv", ns, 1), upLine("broker", master, 1),
		`rocketmq_cluster_broker_group_members{broker="broker-a",cluster="DemoCluster"} 2`)

	// A dead allowed target is a successful probe saying "down".
	dead := deadAddr(t)
	mustContain(t, p.scrape(t, "/probe?target="+dead), upLine("broker", dead, 0))

	for q, want := range map[string]int{
		"":                                     http.StatusBadRequest,
		"?target=localhost:10911":              http.StatusForbidden,
		"?target=10.1.2.3:10911":               http.StatusForbidden,
		"?target=nohost":                       http.StatusBadRequest,
		"?target=" + master + "&kind=nope":     http.StatusBadRequest,
		"?target=" + master + "&auth_module=x": http.StatusBadRequest,
	} {
		if code, body := p.get(t, "/probe"+q); code != want {
			t.Errorf("/probe%s: %d %q, want %d", q, code, body, want)
		}
	}
}

const (
	aclUser   = "rocketmq2"
	aclSecret = "Sup3r-Secret-Value-Q9"
)

// TestBinaryACLAndSecrets proves the ACL account is used (a signed read
// passes, a wrong secret does not) and that the secret never shows up in the
// logs (at debug level), the metrics or the landing page.
func TestBinaryACLAndSecrets(t *testing.T) {
	spec := oneGroup()
	spec.ACL = &rmqsim.ACL{Accounts: []rmqsim.Account{{AccessKey: aclUser, SecretKey: aclSecret, Admin: true}}}
	sim := startSim(t, spec)
	master := sim.Nodes()[0].Addr()

	wrong := startExporter(t, []string{"ROCKETMQ_ACCESS_KEY=" + aclUser, "ROCKETMQ_SECRET_KEY=not-the-secret"},
		"--rocketmq.broker-address="+master)
	mustContain(t, wrong.scrape(t, "/metrics"), upLine("broker", master, 0))

	env := startExporter(t, []string{"ROCKETMQ_ACCESS_KEY=" + aclUser, "ROCKETMQ_SECRET_KEY=" + aclSecret + "\n"},
		"--rocketmq.broker-address="+master, "--log.level=debug")

	dir := t.TempDir()
	akFile, skFile := filepath.Join(dir, "ak"), filepath.Join(dir, "sk")
	for f, v := range map[string]string{akFile: aclUser + "\n", skFile: aclSecret + "\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte("auth_modules:\n  acl:\n    access_key_file: "+akFile+"\n    secret_key_file: "+skFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := startExporter(t, nil, "--rocketmq.broker-address="+master, "--log.level=debug", "--log.format=json",
		"--rocketmq.access-key-file="+akFile, "--rocketmq.secret-key-file="+skFile)
	// No default account: only the auth module can sign.
	module := startExporter(t, nil, "--rocketmq.broker-address="+master, "--log.level=debug",
		`--probe.allowed-targets=127\.0\.0\.1:\d+`, "--config.file="+cfgFile)

	for _, p := range []*exporterProc{env, files, module} {
		seen := p.scrape(t, "/metrics")
		_, landing := p.get(t, "/")
		seen += landing
		if p == module {
			mustContain(t, seen, upLine("broker", master, 0))
			mustContain(t, p.scrape(t, "/probe?target="+master), upLine("broker", master, 0))
			body := p.scrape(t, "/probe?auth_module=acl&target="+master)
			mustContain(t, body, upLine("broker", master, 1))
			seen += body
		} else {
			mustContain(t, seen, upLine("broker", master, 1))
		}
		for _, where := range []struct{ name, text string }{{"output", seen}, {"logs", p.logs.String()}} {
			if strings.Contains(where.text, aclSecret) {
				t.Errorf("the secret key appears in the %s", where.name)
			}
		}
	}
	if !strings.Contains(files.logs.String(), skFile) {
		t.Errorf("the secret key file path should be logged as the source:\n%s", files.logs)
	}
}

// TestRunBadFlagsInProcess covers run's error path without a binary.
func TestRunBadFlagsInProcess(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"--rocketmq.concurrency=0"}, noEnv, &stderr); code != 2 || !strings.Contains(stderr.String(), "--rocketmq.concurrency") {
		t.Errorf("run = %d, stderr %q", code, stderr.String())
	}
}

func TestDefaultGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	if defaultGCPercent(func(k string) string { return map[string]string{"GOGC": "200"}[k] }) {
		t.Error("applied although GOGC is set")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent %d after GOGC set in the environment, want it untouched (100)", got)
	}
	if defaultGCPercent(func(k string) string { return map[string]string{"GOMEMLIMIT": "64MiB"}[k] }) {
		t.Error("applied although GOMEMLIMIT is set")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent %d after GOMEMLIMIT set in the environment, want it untouched (100)", got)
	}
	if !defaultGCPercent(func(string) string { return "" }) {
		t.Error("not applied without GOGC")
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent %d, want %d", got, gcPercent)
	}
}
