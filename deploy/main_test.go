package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	kjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

// The tests read the repository around this module: ".." is its root.
const repoRoot = ".."

// exporter describes the binary the manifests must match, as built from
// ../cmd/rocketmq_exporter by TestMain and read from its own --help.
type exporter struct {
	path string
	help string
	// flags maps a flag name (without "--") to whether it is a boolean
	// (kingpin prints those as --[no-]name).
	flags map[string]bool
	// defaultPort is the port of --web.listen-address's default.
	defaultPort int
	// envs are the environment variables the help names (ROCKETMQ_*).
	envs map[string]bool
}

var bin *exporter

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = buildExporter(dir)
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "building the exporter:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildExporter builds the binary the way the Dockerfile does (static, no
// cgo) and parses its --help.
func buildExporter(dir string) (*exporter, error) {
	path := filepath.Join(dir, "rocketmq_exporter")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "netgo,osusergo", "-o", path, "./cmd/rocketmq_exporter")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	// kingpin prints the usage to stderr and exits 0.
	out, err := exec.CommandContext(ctx, path, "--help").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("--help: %v\n%s", err, out)
	}
	e, err := parseHelp(string(out))
	if err != nil {
		return nil, err
	}
	e.path = path
	return e, nil
}

var (
	helpFlag = regexp.MustCompile(`^\s+(?:-[a-zA-Z], )?--(\[no-\])?([a-z0-9][a-z0-9._-]*)(?:=(\S*))?`)
	helpEnv  = regexp.MustCompile(`\bROCKETMQ_[A-Z0-9_]+\b`)
)

// parseHelp reads kingpin's usage text: one flag per line starting with
// "--name", "--[no-]name" for booleans, "=default" where one is set.
func parseHelp(help string) (*exporter, error) {
	e := &exporter{help: help, flags: map[string]bool{}, envs: map[string]bool{}}
	listen := ""
	for _, line := range strings.Split(help, "\n") {
		m := helpFlag.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		e.flags[m[2]] = m[1] != ""
		if m[2] == "web.listen-address" {
			listen = m[3]
		}
	}
	for _, env := range helpEnv.FindAllString(help, -1) {
		e.envs[env] = true
	}
	if len(e.flags) < 10 {
		return nil, fmt.Errorf("--help lists only %d flags; has its format changed?\n%s", len(e.flags), help)
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("default --web.listen-address %q: %v", listen, err)
	}
	if e.defaultPort, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("default --web.listen-address %q: %v", listen, err)
	}
	return e, nil
}

func TestHelpParsed(t *testing.T) {
	if bin.defaultPort != 9187 {
		t.Errorf("default listen port %d, the deployment files and docs use 9187", bin.defaultPort)
	}
	for _, f := range []string{"web.listen-address", "rocketmq.broker-address", "rocketmq.namesrv-address",
		"rocketmq.access-key-file", "rocketmq.secret-key-file", "probe.allowed-targets", "web.max-requests"} {
		if _, ok := bin.flags[f]; !ok {
			t.Errorf("--%s missing from the parsed --help", f)
		}
	}
	if !bin.flags["collector.per-queue"] {
		t.Error("--collector.per-queue should parse as a boolean flag")
	}
	for _, env := range []string{"ROCKETMQ_ACCESS_KEY", "ROCKETMQ_SECRET_KEY"} {
		if !bin.envs[env] {
			t.Errorf("%s not named in --help", env)
		}
	}
}

// TestBinaryStatic checks that the build the Dockerfile runs (CGO_ENABLED=0,
// netgo, osusergo) gives a binary that runs on a base image without libc.
func TestBinaryStatic(t *testing.T) {
	f, err := elf.Open(bin.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil {
		t.Fatal(err)
	} else if len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
}

// exporterArgs checks a command line given to the exporter in a manifest
// against the binary's flags and returns the values by flag name.
func exporterArgs(args []string) (map[string][]string, error) {
	out := map[string][]string{}
	var errs []error
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			errs = append(errs, fmt.Errorf("argument %q: the exporter takes --flag=value arguments only", a))
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		isBool, ok := bin.flags[name]
		if !ok && strings.HasPrefix(name, "no-") {
			if b, ok2 := bin.flags[strings.TrimPrefix(name, "no-")]; ok2 && b {
				isBool, ok = true, true
			}
		}
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("flag --%s is not defined by the exporter (see --help)", name))
		case isBool && hasValue:
			errs = append(errs, fmt.Errorf("boolean flag --%s takes no value; use --%s or --no-%s", name, name, name))
		case !isBool && !hasValue:
			errs = append(errs, fmt.Errorf("flag --%s needs =value", name))
		}
		out[name] = append(out[name], value)
	}
	return out, errors.Join(errs...)
}

func TestExporterArgsRejects(t *testing.T) {
	for _, bad := range [][]string{
		{"--rocketmq.brokers=127.0.0.1:10911"},
		{"--collector.per-queue=true"},
		{"--rocketmq.broker-address"},
		{"rocketmq.broker-address=127.0.0.1:10911"},
		{"--no-rocketmq.broker-address=x"},
	} {
		if _, err := exporterArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := exporterArgs([]string{"--no-collector.topic", "--collector.per-queue", "--web.listen-address=:9187"}); err != nil {
		t.Error(err)
	}
}

// listenPort is the port the exporter listens on with these flags.
func listenPort(flags map[string][]string) (int, error) {
	v := flags["web.listen-address"]
	switch len(v) {
	case 0:
		return bin.defaultPort, nil
	case 1:
	default:
		return 0, fmt.Errorf("several --web.listen-address: %q", v)
	}
	_, p, err := net.SplitHostPort(v[0])
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// running is an exporter started by startExporter.
type running struct {
	base string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

// startExporter runs the binary with a manifest's arguments and
// environment. What only exists in the container is replaced: the listen
// address by a free local port, and every *-file flag by a temporary file
// holding a placeholder, so the binary's own validation of every other flag
// value decides whether the manifest is usable.
func startExporter(t *testing.T, args []string, env map[string]string) *running {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	var argv []string
	for i, a := range args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch {
		case name == "web.listen-address":
			a = fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port)
		case name == "web.config.file" || name == "config.file":
			t.Fatalf("%s: this test does not know how to stand in for --%s", a, name)
		case strings.HasSuffix(name, "-file"):
			if !filepath.IsAbs(value) {
				t.Errorf("--%s=%s: use an absolute path; the exporter's working directory is not defined in a container", name, value)
			}
			f := filepath.Join(dir, fmt.Sprintf("file-%d", i))
			if err := os.WriteFile(f, []byte("placeholder-"+name+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			a = "--" + name + "=" + f
		}
		argv = append(argv, a)
	}
	if _, ok := env["ROCKETMQ_ACCESS_KEY"]; !ok {
		// Keep the developer's own environment out of the run.
		env = mergeEnv(env, map[string]string{"ROCKETMQ_ACCESS_KEY": "", "ROCKETMQ_SECRET_KEY": "", "ROCKETMQ_SECURITY_TOKEN": ""})
	}
	if !hasListen(args) {
		argv = append(argv, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	}
	r := &running{base: fmt.Sprintf("http://127.0.0.1:%d", port), log: &bytes.Buffer{}}
	r.cmd = exec.Command(bin.path, argv...)
	r.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("exporter %q exited: %v\n%s", argv, err, r.log)
		default:
		}
		if resp, err := http.Get(r.base + "/-/healthy"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("exporter %q not healthy after 15s\n%s", argv, r.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasListen(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "--web.listen-address=") {
			return true
		}
	}
	return false
}

func mergeEnv(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range b {
		out[k] = v
	}
	for k, v := range a {
		out[k] = v
	}
	return out
}

// get fetches path with the header Prometheus sends, so a scrape of targets
// that do not exist here is cut after a second instead of the exporter's
// default timeout.
func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "2")
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, r.log)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// checkServes asserts the endpoints a manifest relies on answer 200 on the
// running binary, and that the scrape path serves exporter metrics.
func checkServes(t *testing.T, r *running, readiness, liveness, scrape string) {
	t.Helper()
	for _, p := range []string{readiness, liveness} {
		if code, body := r.get(t, p); code != http.StatusOK {
			t.Errorf("GET %s = %d %q, want 200", p, code, body)
		}
	}
	code, body := r.get(t, scrape)
	if code != http.StatusOK {
		t.Errorf("GET %s = %d, want 200\n%s", scrape, code, body)
	}
	if !strings.Contains(body, "rocketmq_up{") || !strings.Contains(body, "rocketmq_exporter_build_info") {
		t.Errorf("GET %s does not look like the exporter's metrics:\n%.500s", scrape, body)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// strictYAML decodes YAML the way the API server decodes a request body:
// case-sensitive field names (encoding/json would let
// readOnlyRootFileSystem pass for readOnlyRootFilesystem), and no unknown or
// duplicate fields.
func strictYAML(raw []byte, v any) error {
	j, err := sigsyaml.YAMLToJSONStrict(raw)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}
