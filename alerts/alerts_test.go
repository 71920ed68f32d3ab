package alerts

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"
)

// ruleFiles are the rule files users load; the order is the load order of
// the docs and the manifest.
var ruleFiles = []string{"rocketmq-rules.yml", "rocketmq-alerts.yml", "rocketmq-compat.yml"}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleGroup struct {
	Name  string `yaml:"name"`
	Rules []rule `yaml:"rules"`
}

func loadRules(t *testing.T) map[string][]ruleGroup {
	t.Helper()
	out := map[string][]ruleGroup{}
	for _, f := range ruleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf struct {
			Groups []ruleGroup `yaml:"groups"`
		}
		if err := yaml.UnmarshalStrict(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = rf.Groups
	}
	return out
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		missingTool(t, "promtool", "Debian package prometheus")
	}
	return p
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

func TestPromtoolCheckRules(t *testing.T) {
	p := promtool(t)
	out, err := exec.Command(p, append([]string{"check", "rules"}, ruleFiles...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	// promtool prints warnings (duplicate rules, …) without failing.
	if strings.Contains(strings.ToLower(string(out)), "warning") {
		t.Fatalf("promtool check rules warns:\n%s", out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	p := promtool(t)
	tests, err := filepath.Glob("tests/*_test.yml")
	if err != nil || len(tests) == 0 {
		t.Fatalf("no rule tests found: %v", err)
	}
	out, err := exec.Command(p, append([]string{"test", "rules"}, tests...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

type alertTestCase struct {
	EvalTime  string `yaml:"eval_time"`
	Alertname string `yaml:"alertname"`
	ExpAlerts []struct {
		ExpLabels      map[string]string `yaml:"exp_labels"`
		ExpAnnotations map[string]string `yaml:"exp_annotations"`
	} `yaml:"exp_alerts"`
}

type ruleTestFile struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	GroupEvalOrder     []string `yaml:"group_eval_order"`
	Tests              []struct {
		Name          string          `yaml:"name"`
		AlertRuleTest []alertTestCase `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func loadRuleTests(t *testing.T) map[string]ruleTestFile {
	t.Helper()
	files, err := filepath.Glob("tests/*_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ruleTestFile{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf ruleTestFile
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = tf
	}
	return out
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

// TestEveryAlertIsUnitTested requires, for every alert, a test case where it
// fires with its full label set and annotations, and, in the same case, an
// evaluation one interval earlier where it is silent: with for: that is the
// moment just before for elapses, without it the moment before the condition
// holds. promtool itself checks that the expectations are met.
func TestEveryAlertIsUnitTested(t *testing.T) {
	groups := loadRules(t)
	tests := loadRuleTests(t)

	type evidence struct{ fires, silentBefore bool }
	got := map[string]*evidence{}
	for file, tf := range tests {
		interval := mustDuration(t, tf.EvaluationInterval)
		if interval == 0 {
			interval = time.Minute
		}
		// promtool sorts groups by their index in group_eval_order and gives
		// unlisted groups index 0, so a partial list makes the order random.
		if len(tf.GroupEvalOrder) > 0 {
			listed := map[string]bool{}
			for _, g := range tf.GroupEvalOrder {
				listed[g] = true
			}
			for _, rf := range tf.RuleFiles {
				for _, g := range groups[filepath.Base(rf)] {
					if !listed[g.Name] {
						t.Errorf("%s: group %s is missing from group_eval_order", file, g.Name)
					}
				}
			}
		}
		for _, tc := range tf.Tests {
			silentAt := map[string]map[time.Duration]bool{}
			for _, c := range tc.AlertRuleTest {
				if len(c.ExpAlerts) == 0 {
					if silentAt[c.Alertname] == nil {
						silentAt[c.Alertname] = map[time.Duration]bool{}
					}
					silentAt[c.Alertname][mustDuration(t, c.EvalTime)] = true
				}
			}
			for _, c := range tc.AlertRuleTest {
				if len(c.ExpAlerts) == 0 {
					continue
				}
				e := got[c.Alertname]
				if e == nil {
					e = &evidence{}
					got[c.Alertname] = e
				}
				complete := true
				for _, a := range c.ExpAlerts {
					if a.ExpLabels["severity"] == "" || a.ExpAnnotations["summary"] == "" || a.ExpAnnotations["description"] == "" {
						complete = false
						t.Errorf("%s %q: %s at %s must expect the severity label and both annotations", file, tc.Name, c.Alertname, c.EvalTime)
					}
				}
				if complete {
					e.fires = true
				}
				if silentAt[c.Alertname][mustDuration(t, c.EvalTime)-interval] {
					e.silentBefore = true
				}
			}
		}
	}
	for _, gs := range groups {
		for _, g := range gs {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				e := got[r.Alert]
				switch {
				case e == nil || !e.fires:
					t.Errorf("alert %s: no unit test expects it to fire with labels and annotations", r.Alert)
				case !e.silentBefore:
					t.Errorf("alert %s: no unit test expects it silent one evaluation before it fires", r.Alert)
				}
			}
		}
	}
}

var severities = map[string]bool{"critical": true, "warning": true, "info": true}

// TestAlertConventions checks what every alert must carry and that names are
// unique across files (Prometheus accepts duplicates and then both fire).
func TestAlertConventions(t *testing.T) {
	seenAlert := map[string]string{}
	seenRecord := map[string]string{}
	seenGroup := map[string]string{}
	for file, gs := range loadRules(t) {
		for _, g := range gs {
			if prev, dup := seenGroup[g.Name]; dup {
				t.Errorf("group %s in %s and %s", g.Name, prev, file)
			}
			seenGroup[g.Name] = file
			for _, r := range g.Rules {
				switch {
				case r.Alert != "":
					if prev, dup := seenAlert[r.Alert]; dup {
						t.Errorf("alert %s defined in %s and %s", r.Alert, prev, file)
					}
					seenAlert[r.Alert] = file
					if !strings.HasPrefix(r.Alert, "RocketMQ") {
						t.Errorf("alert %s: name must start with RocketMQ", r.Alert)
					}
					if !severities[r.Labels["severity"]] {
						t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
					}
					if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
						t.Errorf("alert %s: needs summary and description annotations", r.Alert)
					}
					if strings.Contains(r.Annotations["summary"], "\n") {
						t.Errorf("alert %s: summary must be one line", r.Alert)
					}
				case r.Record != "":
					if prev, dup := seenRecord[r.Record]; dup {
						t.Errorf("recording rule %s defined in %s and %s", r.Record, prev, file)
					}
					seenRecord[r.Record] = file
				}
			}
		}
	}
	if len(seenAlert) == 0 || len(seenRecord) == 0 {
		t.Fatal("no rules loaded")
	}
}

// loadCatalog reads the metric names the exporter exports from
// docs/metrics.md, which go test ./docs keeps equal to the exporter's real
// output.
func loadCatalog(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := catalogRow.FindStringSubmatch(sc.Text()); m != nil {
			names[m[1]] = true
			if m[2] == "histogram" {
				// Queries read a histogram through these series.
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					names[m[1]+suffix] = true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) < 50 {
		t.Fatalf("only %d metrics in docs/metrics.md", len(names))
	}
	return names
}

// catalogRow is a metric row of docs/metrics.md: | `name` | type | labels | help |.
var catalogRow = regexp.MustCompile("^\\| `(rocketmq_[a-z0-9_]+)` \\| ([a-z]+) \\|")

// prometheusOwn are the series Prometheus writes itself: per target, and
// ALERTS for the alerts it evaluates.
var prometheusOwn = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true, "ALERTS": true}

// templateQuery finds the PromQL of `query` calls in annotation templates:
// printf "<expr>" … | query.
var templateQuery = regexp.MustCompile(`printf\s+"((?:[^"\\]|\\.)*)"[^}]*\|\s*query`)

// ruleExpressions returns every expression of the rule files, annotation
// queries included (with their %q verbs filled in), keyed by where it is.
func ruleExpressions(t *testing.T) (map[string]string, map[string]bool) {
	t.Helper()
	exprs := map[string]string{}
	recorded := map[string]bool{}
	for file, gs := range loadRules(t) {
		for _, g := range gs {
			for _, r := range g.Rules {
				name := r.Alert + r.Record
				exprs[file+":"+name] = r.Expr
				if r.Record != "" {
					recorded[r.Record] = true
				}
				for k, v := range r.Annotations {
					for i, m := range templateQuery.FindAllStringSubmatch(v, -1) {
						q := strings.ReplaceAll(strings.ReplaceAll(m[1], `\"`, `"`), "%q", `"x"`)
						exprs[file+":"+name+":"+k+":"+string(rune('0'+i))] = q
					}
				}
			}
		}
	}
	return exprs, recorded
}

// TestRuleMetricsExist checks that every metric a rule reads is exported by
// the exporter (the catalog), is Prometheus's own, or is recorded by a rule.
func TestRuleMetricsExist(t *testing.T) {
	catalog := loadCatalog(t)
	exprs, recorded := ruleExpressions(t)
	for where, e := range exprs {
		names, err := MetricNames(e)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: selects no metric", where)
		}
		for _, n := range names {
			if !catalog[n] && !recorded[n] && !prometheusOwn[n] {
				t.Errorf("%s: metric %s is neither exported nor recorded", where, n)
			}
		}
	}
}

type parsedExpression struct {
	Source  string   `json:"source"`
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics"`
}

func loadParsedExpressions(t *testing.T) []parsedExpression {
	t.Helper()
	b, err := os.ReadFile("testdata/expressions.json")
	if err != nil {
		t.Fatalf("%v (regenerate with: cd tools && go generate ./...)", err)
	}
	var out []parsedExpression
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricNamesAgreesWithParser compares MetricNames with the real PromQL
// parser's answer for every rule and dashboard expression, as recorded by
// the tools module, and checks that the record covers every rule expression
// as it is now.
func TestMetricNamesAgreesWithParser(t *testing.T) {
	parsed := loadParsedExpressions(t)
	known := map[string]bool{}
	for _, p := range parsed {
		known[p.Expr] = true
		got, err := MetricNames(p.Expr)
		if err != nil {
			t.Errorf("%s: %v", p.Source, err)
			continue
		}
		want := append([]string{}, p.Metrics...)
		sort.Strings(want)
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: MetricNames = %v, parser = %v\n%s", p.Source, got, want, p.Expr)
		}
	}
	exprs, _ := ruleExpressions(t)
	for where, e := range exprs {
		if !known[e] {
			t.Errorf("%s: expression not in testdata/expressions.json; regenerate: cd tools && go generate ./...", where)
		}
	}
}

// TestDashboardMetricsExist checks the dashboards' expressions (recorded in
// expressions.json by the generator) the same way as the rules'.
func TestDashboardMetricsExist(t *testing.T) {
	catalog := loadCatalog(t)
	_, recorded := ruleExpressions(t)
	n := 0
	for _, p := range loadParsedExpressions(t) {
		if !strings.HasPrefix(p.Source, "dashboards/") {
			continue
		}
		n++
		names, err := MetricNames(p.Expr)
		if err != nil {
			t.Errorf("%s: %v", p.Source, err)
			continue
		}
		for _, name := range names {
			if !catalog[name] && !recorded[name] && !prometheusOwn[name] {
				t.Errorf("%s: metric %s is neither exported nor recorded", p.Source, name)
			}
		}
	}
	if n == 0 {
		t.Fatal("no dashboard expressions in testdata/expressions.json")
	}
}

func TestMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
		err  bool
	}{
		{expr: `up`, want: []string{"up"}},
		{expr: `rocketmq_up{kind="broker"} == 0`, want: []string{"rocketmq_up"}},
		{expr: `sum by (cluster, group) (rate(a_total[5m])) / on (cluster) group_left (x) b`, want: []string{"a_total", "b"}},
		{expr: `sum without (type) (x) > bool 3`, want: []string{"x"}},
		{expr: `max(y) by (job)`, want: []string{"y"}},
		{expr: `topk by (a) (3, z)`, want: []string{"z"}},
		{expr: `count_values("v", q)`, want: []string{"q"}},
		{expr: `label_replace(m, "dst", "$1", "src", "(.*)") unless n offset 5m`, want: []string{"m", "n"}},
		{expr: `rocketmq:dledger_group_leader and on (cluster) (count by (cluster) (max_over_time(rocketmq:dledger_group_leader[5m])) > 1)`, want: []string{"rocketmq:dledger_group_leader"}},
		{expr: `{__name__="named", job="j"}`, want: []string{"named"}},
		{expr: `a{label="sum(b)", other='c{d}'} + 1e-3 * 0x1f - .5 + Inf + NaN`, want: []string{"a"}},
		{expr: `rate(x{cluster=~"$cluster"}[$__rate_interval])`, want: []string{"x"}},
		{expr: `max_over_time(x[1h:5m]) # comment with name_like_words`, want: []string{"x"}},
		{expr: `vector(1)`, want: []string{}},
		{expr: `x @ start()`, want: []string{"x"}},
		{expr: `{__name__=~"a.*"}`, err: true},
		{expr: `x{a="unterminated}`, err: true},
		{expr: `x{cluster=$cluster}`, err: true},
	} {
		got, err := MetricNames(c.expr)
		if c.err {
			if err == nil {
				t.Errorf("%s: no error, got %v", c.expr, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.expr, got, c.want)
		}
	}
}
