// Package promqlx wraps the Prometheus PromQL parser for the generators and
// their tests: which metrics an expression reads, adding label matchers to
// every selector, and turning a Grafana query into plain PromQL.
package promqlx

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// MetricNames returns the sorted, de-duplicated metric names the expression
// selects. A selector that picks metrics by a __name__ regexp is an error:
// nothing could check which metrics it means.
func MetricNames(expr string) ([]string, error) {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var walkErr error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName {
				continue
			}
			if m.Type != labels.MatchEqual {
				walkErr = fmt.Errorf("selector %s: metric chosen by a %s matcher", vs, m.Type)
				return walkErr
			}
			name = m.Value
		}
		if name != "" {
			seen[name] = true
		}
		return nil
	})
	if walkErr != nil {
		return nil, walkErr
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// ParseMatchers parses `job="x", env=~"prod|stage"` (braces optional) into
// label matchers. The metric name may not be set.
func ParseMatchers(s string) ([]*labels.Matcher, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if !strings.HasPrefix(s, "{") {
		s = "{" + s + "}"
	}
	ms, err := parser.ParseMetricSelector(s)
	if err != nil {
		return nil, fmt.Errorf("selector %s: %w", s, err)
	}
	for _, m := range ms {
		if m.Name == labels.MetricName {
			return nil, fmt.Errorf("selector %s: may not choose the metric name", s)
		}
	}
	return ms, nil
}

// InjectMatchers adds the matchers to every vector selector of expr whose
// metric skip does not exclude, replacing a matcher on the same label that
// the selector already has (so `up{job=~".*rocketmq.*"}` becomes
// `up{job="prod"}`). It returns the expression printed by the parser.
func InjectMatchers(expr string, ms []*labels.Matcher, skip func(metric string) bool) (string, error) {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return "", err
	}
	if len(ms) == 0 {
		return expr, nil
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || (skip != nil && skip(vs.Name)) {
			return nil
		}
		replaced := map[string]bool{}
		for _, m := range ms {
			replaced[m.Name] = true
		}
		kept := vs.LabelMatchers[:0:0]
		for _, m := range vs.LabelMatchers {
			if !replaced[m.Name] {
				kept = append(kept, m)
			}
		}
		vs.LabelMatchers = append(kept, ms...)
		return nil
	})
	return e.Pretty(0), nil
}

// grafanaInterval matches Grafana's interval macros.
var grafanaInterval = regexp.MustCompile(`\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}`)

// grafanaVar matches $name, ${name} and ${name:format}.
var grafanaVar = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// FromGrafana turns a dashboard query into PromQL the parser accepts:
// interval macros become a fixed duration and every other variable the regexp
// ".+" (dashboards use variables only as =~ matcher values). The variables it
// replaced are returned so callers can check they are defined.
func FromGrafana(q string) (string, []string) {
	var vars []string
	q = grafanaInterval.ReplaceAllString(q, "5m")
	q = grafanaVar.ReplaceAllStringFunc(q, func(v string) string {
		name := strings.TrimPrefix(v, "$")
		name = strings.Trim(name, "{}")
		if i := strings.IndexByte(name, ':'); i >= 0 {
			name = name[:i]
		}
		vars = append(vars, name)
		return ".+"
	})
	return q, vars
}

// Selector is one vector selector of an expression: the metric and the
// labels it matches on.
type Selector struct {
	Metric string
	Labels []string
}

// Selectors lists the vector selectors of expr.
func Selectors(expr string) ([]Selector, error) {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []Selector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := Selector{Metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				if m.Type == labels.MatchEqual {
					s.Metric = m.Value
				}
				continue
			}
			s.Labels = append(s.Labels, m.Name)
		}
		out = append(out, s)
		return nil
	})
	return out, nil
}
