package dashboards

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/rocketmq-exporter/rocketmq_exporter/tools/catalog"
	"github.com/rocketmq-exporter/rocketmq_exporter/tools/promqlx"
	"github.com/rocketmq-exporter/rocketmq_exporter/tools/rules"
)

// stableUIDs are the dashboard UIDs users link to; changing one breaks
// bookmarks and provisioning, so it must be deliberate.
var stableUIDs = map[string]string{
	"rocketmq-overview.json":  "rocketmq-overview",
	"rocketmq-broker.json":    "rocketmq-broker",
	"rocketmq-ha.json":        "rocketmq-ha",
	"rocketmq-consumers.json": "rocketmq-consumers",
	"rocketmq-topics.json":    "rocketmq-topics",
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	Expr       string `json:"expr"`
	Datasource *dsRef `json:"datasource"`
}

type panel struct {
	ID          int      `json:"id"`
	Type        string   `json:"type"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Datasource  *dsRef   `json:"datasource"`
	Targets     []target `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Panels []panel `json:"panels"`
}

type dashboardJSON struct {
	UID         string  `json:"uid"`
	Title       string  `json:"title"`
	Panels      []panel `json:"panels"`
	Annotations struct {
		List []struct {
			Name       string `json:"name"`
			Expr       string `json:"expr"`
			Datasource *dsRef `json:"datasource"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Datasource *dsRef `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

func known(t *testing.T) (catalog.Catalog, map[string]bool) {
	t.Helper()
	cat, err := catalog.Load("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := rules.Load("../../alerts")
	if err != nil {
		t.Fatal(err)
	}
	return cat, rules.Recorded(fs)
}

// rangeSelector finds the duration of every range selector.
var rangeSelector = regexp.MustCompile(`\[([^\]]*)\]`)

// builtinVars are Grafana's own variables.
var builtinVars = map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}

func TestDashboards(t *testing.T) {
	ds, err := All()
	if err != nil {
		t.Fatal(err)
	}
	cat, recorded := known(t)
	seenUID := map[string]bool{}
	for _, d := range ds {
		var dj dashboardJSON
		if err := json.Unmarshal(d.JSON, &dj); err != nil {
			t.Fatalf("%s: %v", d.File, err)
		}
		if want := stableUIDs[d.File]; want == "" || dj.UID != want {
			t.Errorf("%s: uid %q, want the stable %q", d.File, dj.UID, want)
		}
		if seenUID[dj.UID] {
			t.Errorf("%s: uid %s used twice", d.File, dj.UID)
		}
		seenUID[dj.UID] = true

		vars := map[string]bool{}
		for i, v := range dj.Templating.List {
			vars[v.Name] = true
			if i == 0 && (v.Name != "datasource" || v.Type != "datasource" || v.Query != "prometheus") {
				t.Errorf("%s: the first variable must be the Prometheus datasource variable", d.File)
			}
			if v.Type == "query" {
				if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
					t.Errorf("%s: variable %s does not use ${datasource}", d.File, v.Name)
				}
				q, _ := v.Query.(string)
				m := regexp.MustCompile(`^label_values\((.+), *\w+\)$`).FindStringSubmatch(q)
				if m == nil {
					t.Errorf("%s: variable %s query %q", d.File, v.Name, q)
					continue
				}
				checkExpr(t, d.File+" variable "+v.Name, m[1], vars, cat, recorded, false)
			}
		}
		for _, want := range []string{"datasource", "job", "cluster"} {
			if !vars[want] {
				t.Errorf("%s: no %s variable", d.File, want)
			}
		}

		ids := map[int]bool{}
		var walk func(ps []panel)
		exprs := 0
		walk = func(ps []panel) {
			for _, p := range ps {
				if ids[p.ID] || p.ID == 0 {
					t.Errorf("%s: panel %q has id %d, missing or used twice", d.File, p.Title, p.ID)
				}
				ids[p.ID] = true
				if p.Type == "row" {
					walk(p.Panels)
					continue
				}
				where := d.File + " panel " + p.Title
				if p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("%s: no unit", where)
				}
				if p.Description == "" {
					t.Errorf("%s: no description", where)
				}
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("%s: datasource is not ${datasource}", where)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", where)
				}
				for _, tg := range p.Targets {
					exprs++
					if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
						t.Errorf("%s: query datasource is not ${datasource}", where)
					}
					checkExpr(t, where, tg.Expr, vars, cat, recorded, true)
				}
			}
		}
		walk(dj.Panels)
		if exprs == 0 {
			t.Errorf("%s: no panel queries", d.File)
		}
		for _, a := range dj.Annotations.List {
			if a.Datasource == nil || a.Datasource.UID != "${datasource}" {
				t.Errorf("%s annotation %s: datasource is not ${datasource}", d.File, a.Name)
			}
			checkExpr(t, d.File+" annotation "+a.Name, a.Expr, vars, cat, recorded, false)
		}
	}
	if len(seenUID) != len(stableUIDs) {
		t.Errorf("%d dashboards, want %d", len(seenUID), len(stableUIDs))
	}
}

// checkExpr parses a dashboard query, checks its variables are defined, its
// metrics exist and, for panels, that every range is $__rate_interval (so
// rates work at any scrape interval and zoom).
func checkExpr(t *testing.T, where, expr string, vars map[string]bool, cat catalog.Catalog, recorded map[string]bool, rateInterval bool) {
	t.Helper()
	pq, used := promqlx.FromGrafana(expr)
	for _, v := range used {
		if !vars[v] && !builtinVars[v] {
			t.Errorf("%s: variable $%s is not defined", where, v)
		}
	}
	names, err := promqlx.MetricNames(pq)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return
	}
	if len(names) == 0 {
		t.Errorf("%s: selects no metric", where)
	}
	sels, err := promqlx.Selectors(pq)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	for _, s := range sels {
		for _, p := range cat.Check(s.Metric, s.Labels, recorded) {
			t.Errorf("%s: %s", where, p)
		}
	}
	if rateInterval {
		for _, m := range rangeSelector.FindAllStringSubmatch(expr, -1) {
			if m[1] != "$__rate_interval" {
				t.Errorf("%s: range [%s], want [$__rate_interval]", where, m[1])
			}
		}
	}
	if strings.Contains(expr, `job=~"$job"`) {
		// Recording-rule outputs have no job label; a job matcher would
		// hide them once a job is chosen.
		for _, n := range names {
			if strings.Contains(n, ":") {
				t.Errorf("%s: recorded series %s selected with a job matcher", where, n)
			}
		}
	}
}
