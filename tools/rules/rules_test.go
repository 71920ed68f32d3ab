package rules

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/rocketmq-exporter/rocketmq_exporter/tools/catalog"
	"github.com/rocketmq-exporter/rocketmq_exporter/tools/promqlx"
)

func load(t *testing.T) []*File {
	t.Helper()
	fs, err := Load("../../alerts")
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestExpressionsParseAndUseKnownMetrics parses every rule expression and
// annotation query with the Prometheus parser and checks that each metric
// is exported (docs/metrics.md) or recorded, and that label matchers name
// labels the metric has.
func TestExpressionsParseAndUseKnownMetrics(t *testing.T) {
	fs := load(t)
	cat, err := catalog.Load("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	recorded := Recorded(fs)
	exprs := Expressions(fs)
	if len(exprs) < 50 {
		t.Fatalf("only %d expressions", len(exprs))
	}
	for _, e := range exprs {
		sels, err := promqlx.Selectors(e.Expr)
		if err != nil {
			t.Errorf("%s: %v", e.Source, err)
			continue
		}
		if _, err := promqlx.MetricNames(e.Expr); err != nil {
			t.Errorf("%s: %v", e.Source, err)
		}
		for _, s := range sels {
			for _, p := range cat.Check(s.Metric, s.Labels, recorded) {
				t.Errorf("%s: %s", e.Source, p)
			}
		}
	}
}

// TestManifestKeepsRules checks that the manifest holds every group and
// rule of the sources with the same expressions.
func TestManifestKeepsRules(t *testing.T) {
	fs := load(t)
	b, err := Manifest(fs, ManifestOptions{Name: "x", Namespace: "monitoring", Labels: map[string]string{"release": "prometheus"}})
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name      string            `yaml:"name"`
			Namespace string            `yaml:"namespace"`
			Labels    map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Alert  string `yaml:"alert"`
					Record string `yaml:"record"`
					Expr   string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.APIVersion != "monitoring.coreos.com/v1" || m.Kind != "PrometheusRule" || m.Metadata.Name != "x" || m.Metadata.Namespace != "monitoring" || m.Metadata.Labels["release"] != "prometheus" {
		t.Fatalf("header: %+v", m)
	}
	var want []string
	for _, f := range fs {
		for _, r := range f.Rules() {
			want = append(want, r.Group+"/"+r.Name()+"/"+r.Expr.Value)
		}
	}
	var got []string
	for _, g := range m.Spec.Groups {
		for _, r := range g.Rules {
			got = append(got, g.Name+"/"+r.Alert+r.Record+"/"+r.Expr)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("manifest rules differ from the sources:\n got %d\nwant %d", len(got), len(want))
	}
}

// TestInjectSelector adds a job selector: exporter metrics get it (replacing
// the default job matcher of up), recording-rule outputs do not.
func TestInjectSelector(t *testing.T) {
	fs := load(t)
	ms, err := promqlx.ParseMatchers(`job="rmq-prod", env="prod"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := InjectSelector(fs, ms); err != nil {
		t.Fatal(err)
	}
	recorded := Recorded(fs)
	checked := 0
	for _, f := range fs {
		for _, r := range f.Rules() {
			e, err := parser.ParseExpr(r.Expr.Value)
			if err != nil {
				t.Fatalf("%s: %v", r.Name(), err)
			}
			parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				checked++
				var job, env string
				jobs := 0
				for _, m := range vs.LabelMatchers {
					switch m.Name {
					case "job":
						job = m.String()
						jobs++
					case "env":
						env = m.String()
					}
				}
				if recorded[vs.Name] {
					if jobs != 0 || env != "" {
						t.Errorf("%s: recorded series %s got a selector", r.Name(), vs)
					}
					return nil
				}
				if jobs != 1 || job != `job="rmq-prod"` || env != `env="prod"` {
					t.Errorf("%s: selector %s", r.Name(), vs)
				}
				return nil
			})
		}
	}
	if checked < 50 {
		t.Fatalf("only %d selectors checked", checked)
	}
	// The file still renders and parses as YAML.
	for _, f := range fs {
		b, err := Marshal(f.Root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(f.Name, b); err != nil {
			t.Fatal(err)
		}
	}
}
