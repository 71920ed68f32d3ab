package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDeployConfigs validates the example Prometheus and Alertmanager
// configurations with the tools of those packages. The e2e test runs both.
func TestDeployConfigs(t *testing.T) {
	if promtool, ok := findBinary("E2E_PROMTOOL", "promtool"); ok {
		out, err := exec.Command(promtool, "check", "config", filepath.Join(repoRoot, "deploy/prometheus/prometheus.yml")).CombinedOutput()
		if err != nil {
			t.Errorf("promtool check config: %v\n%s", err, out)
		}
	} else {
		missingCheck(t, "promtool", "prometheus.yml not checked")
	}
	if amtool, ok := findBinary("E2E_AMTOOL", "amtool"); ok {
		out, err := exec.Command(amtool, "check-config", filepath.Join(repoRoot, "deploy/alertmanager/alertmanager.yml")).CombinedOutput()
		if err != nil {
			t.Errorf("amtool check-config: %v\n%s", err, out)
		}
	} else {
		missingCheck(t, "amtool", "alertmanager.yml not checked")
	}
}

// TestPrometheusRuleGlob checks that the rule_files pattern of the example
// configuration matches the rule files users copy next to it.
func TestPrometheusRuleGlob(t *testing.T) {
	m := readYAML(t, filepath.Join(repoRoot, "deploy/prometheus/prometheus.yml"))
	files, _ := m["rule_files"].([]any)
	if len(files) != 1 {
		t.Fatalf("rule_files: %v", files)
	}
	pattern := filepath.Base(files[0].(string))
	for _, f := range []string{"rocketmq-rules.yml", "rocketmq-alerts.yml", "rocketmq-compat.yml"} {
		if ok, _ := filepath.Match(pattern, f); !ok {
			t.Errorf("rule_files pattern %s does not match %s", pattern, f)
		}
	}
}
