package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulegen renders the rules with a selector and, when promtool is
// installed, checks them and runs the unit tests against them: the selector
// must not change what the alerts do for series that carry it.
func TestRulegen(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "rules.yaml")
	if err := run([]string{"-alerts", "../../../alerts", "-selector", `job="rocketmq"`, "-out", dir, "-manifest", manifest, "-namespace", "monitoring"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "rocketmq-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var code []string // the YAML without comments, which may quote the default
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			code = append(code, l)
		}
	}
	if c := strings.Join(code, "\n"); !strings.Contains(c, `up{job="rocketmq"} == 0`) || strings.Contains(c, `.*rocketmq.*`) {
		t.Fatalf("default job matcher not replaced:\n%s", b)
	}
	if m, err := os.ReadFile(manifest); err != nil || !strings.Contains(string(m), "namespace: monitoring") {
		t.Fatalf("manifest: %v\n%s", err, m)
	}
	if err := run([]string{"-alerts", "../../../alerts", "-selector", `__name__="x"`, "-out", dir}); err == nil {
		t.Fatal("metric-name selector accepted")
	}
	if err := run(nil); err == nil {
		t.Fatal("no output accepted")
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		missingTool(t, "promtool", "Debian package prometheus")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	if out, err := exec.Command(promtool, append([]string{"check", "rules"}, files...)...).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	// The unit tests use job="rocketmq" everywhere: with that selector every
	// one of them must still pass.
	tests, _ := filepath.Glob("../../../alerts/tests/*_test.yml")
	tdir := filepath.Join(dir, "tests")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	var copied []string
	for _, f := range tests {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "exporter_test.yml" {
			// absent() of an equality matcher keeps its label: the one
			// expected difference.
			const absent = "              severity: critical\n            exp_annotations:\n              summary: No RocketMQ exporter target"
			if !strings.Contains(string(b), absent) {
				t.Fatal("exporter_test.yml: RocketMQExporterAbsent expectation not found")
			}
			b = []byte(strings.Replace(string(b), absent, "              job: rocketmq\n"+absent, 1))
		}
		dst := filepath.Join(tdir, filepath.Base(f))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		copied = append(copied, dst)
	}
	if out, err := exec.Command(promtool, append([]string{"test", "rules"}, copied...)...).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules with the selector: %v\n%s", err, out)
	}
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
