// Package gen produces every generated file of the repository from its
// sources: the dashboards, the PrometheusRule manifest and the record of
// parsed expressions the main module's tests compare their lexer with.
package gen

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/rocketmq-exporter/rocketmq_exporter/tools/dashboards"
	"github.com/rocketmq-exporter/rocketmq_exporter/tools/promqlx"
	"github.com/rocketmq-exporter/rocketmq_exporter/tools/rules"
)

// Paths of the generated files, relative to the repository root.
const (
	ManifestPath    = "deploy/kubernetes/prometheusrule.yaml"
	ExpressionsPath = "alerts/testdata/expressions.json"
	DashboardsDir   = "dashboards"
)

// ManifestOptions name the generated PrometheusRule.
var ManifestOptions = rules.ManifestOptions{
	Name: "rocketmq-exporter",
	Labels: map[string]string{
		"app.kubernetes.io/name":      "rocketmq-exporter",
		"app.kubernetes.io/component": "alerting",
		// kube-prometheus-stack's default ruleSelector.
		"release": "prometheus",
	},
}

// ParsedExpression is one entry of expressions.json.
type ParsedExpression struct {
	Source   string   `json:"source"`
	Expr     string   `json:"expr"`
	Metrics  []string `json:"metrics"`
	Optional string   `json:"optional,omitempty"`
}

// Files returns every generated file, keyed by its path relative to root.
func Files(root string) (map[string][]byte, error) {
	out := map[string][]byte{}

	rf, err := rules.Load(filepath.Join(root, "alerts"))
	if err != nil {
		return nil, err
	}
	exprs := rules.Expressions(rf)
	manifest, err := rules.Manifest(rf, ManifestOptions)
	if err != nil {
		return nil, err
	}
	out[ManifestPath] = manifest

	var parsed []ParsedExpression
	for _, e := range exprs {
		names, err := promqlx.MetricNames(e.Expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Source, err)
		}
		parsed = append(parsed, ParsedExpression{Source: e.Source, Expr: e.Expr, Metrics: names})
	}

	ds, err := dashboards.All()
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		out[filepath.ToSlash(filepath.Join(DashboardsDir, d.File))] = d.JSON
		for _, q := range d.Query {
			pq, _ := promqlx.FromGrafana(q.Expr)
			names, err := promqlx.MetricNames(pq)
			if err != nil {
				return nil, fmt.Errorf("dashboards/%s %q: %w", d.File, q.Panel, err)
			}
			parsed = append(parsed, ParsedExpression{
				Source:   "dashboards/" + d.File + ":" + q.Panel,
				Expr:     q.Expr,
				Metrics:  names,
				Optional: q.Optional,
			})
		}
	}
	js, err := json.MarshalIndent(parsed, "", "  ")
	if err != nil {
		return nil, err
	}
	out[ExpressionsPath] = append(js, '\n')
	return out, nil
}
