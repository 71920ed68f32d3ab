// Package dashboards defines the Grafana dashboards of rocketmq_exporter with
// the Grafana Foundation SDK. cmd/gen writes them to dashboards/*.json.
package dashboards

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Dashboard is one generated dashboard.
type Dashboard struct {
	File  string // file name under dashboards/
	UID   string
	JSON  []byte
	Query []Query // every PromQL query of the dashboard, annotations included
}

// Query is one PromQL query of a dashboard and whether a running cluster must
// return data for it.
type Query struct {
	Panel string
	Expr  string
	// Optional says why the query may legitimately return nothing (a 5.x-only
	// metric, an error counter, …); empty means a healthy cluster with traffic
	// always has data for it.
	Optional string
}

// Units used on panels. Grafana shows unknown unit ids as a suffix; these are
// its built-in ids plus one custom suffix.
const (
	unitMsgPerSec = "suffix: msg/s"
	unitCount     = "short"
	unitNone      = "none"
	unitBytes     = "bytes"
	unitBytesSec  = "Bps"
	unitSeconds   = "s"
	unitRatio     = "percentunit"
	unitReqPerSec = "reqps"
)

// datasource is the reference every panel and query uses: the dashboard's
// datasource variable, so the dashboards import into any Grafana unchanged.
func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
}

// q is a query of a panel.
type q struct {
	expr     string
	legend   string
	instant  bool
	optional string
}

// board wraps the SDK builder: it numbers panels and keeps the queries.
type board struct {
	file, uid string
	b         *dashboard.DashboardBuilder
	nextID    uint32
	queries   []Query
}

func newBoard(file, uid, title, description string, vars ...string) *board {
	b := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"rocketmq", "rocketmq_exporter"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-3h", "now").
		Timezone("browser")
	b.WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
		Label("Data source").
		Type("prometheus"))
	for _, v := range vars {
		b.WithVariable(variable(v))
	}
	return &board{file: file, uid: uid, b: b, nextID: 1}
}

// variables: name → label and the query that lists its values. Each one is
// constrained by the variables before it.
var variableDefs = map[string]struct{ label, metric, label2 string }{
	"job":     {"Job", `rocketmq_up`, "job"},
	"cluster": {"Cluster", `rocketmq_broker_info{job=~"$job"}`, "cluster"},
	"broker":  {"Broker group", `rocketmq_broker_info{job=~"$job", cluster=~"$cluster"}`, "broker"},
	"group":   {"Consumer group", `rocketmq_consumer_group_lag_messages{job=~"$job", cluster=~"$cluster"}`, "group"},
	"topic":   {"Topic", `rocketmq_topic_messages_total{job=~"$job", cluster=~"$cluster", type="normal"}`, "topic"},
}

func variable(name string) cog.Builder[dashboard.VariableModel] {
	d, ok := variableDefs[name]
	if !ok {
		panic("dashboards: unknown variable " + name)
	}
	query := fmt.Sprintf("label_values(%s, %s)", d.metric, d.label2)
	return dashboard.NewQueryVariableBuilder(name).
		Label(d.label).
		Datasource(datasource()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*").
		Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		})
}

func (b *board) targets(panel string, qs []q) []cog.Builder[variants.Dataquery] {
	var out []cog.Builder[variants.Dataquery]
	for i, x := range qs {
		t := prometheus.NewDataqueryBuilder().
			Expr(strings.TrimSpace(x.expr)).
			LegendFormat(x.legend).
			RefId(string(rune('A' + i))).
			Datasource(datasource())
		if x.instant {
			t.Instant().Format(prometheus.PromQueryFormatTable)
		} else {
			t.Range()
		}
		out = append(out, t)
		b.queries = append(b.queries, Query{Panel: panel, Expr: strings.TrimSpace(x.expr), Optional: x.optional})
	}
	return out
}

func (b *board) id() uint32 {
	id := b.nextID
	b.nextID++
	return id
}

func (b *board) row(title string) {
	b.b.WithRow(dashboard.NewRowBuilder(title).Id(b.id()))
}

// timeseries adds a graph. w is its width in grid columns (24 = full).
func (b *board) timeseries(w uint32, title, desc, unit string, qs ...q) {
	p := timeseries.NewPanelBuilder().
		Id(b.id()).
		Title(title).
		Description(desc).
		Datasource(datasource()).
		Unit(unit).
		Span(w).
		Height(8).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true).
			Calcs([]string{"lastNotNull", "max"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)).
		Targets(b.targets(title, qs))
	b.b.WithPanel(p)
}

// stat adds a single-value panel with threshold colours (nil = none).
func (b *board) stat(w uint32, title, desc, unit string, steps []dashboard.Threshold, qs ...q) {
	if steps == nil {
		steps = []dashboard.Threshold{{Color: "green"}}
	}
	p := stat.NewPanelBuilder().
		Id(b.id()).
		Title(title).
		Description(desc).
		Datasource(datasource()).
		Unit(unit).
		Span(w).
		Height(4).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeArea).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps)).
		Targets(b.targets(title, qs))
	b.b.WithPanel(p)
}

// state is one value of a state timeline: the number the query returns, the
// text shown and its colour.
type state struct {
	value float64
	text  string
	color string
}

func mappings(states []state) []dashboard.ValueMapping {
	opts := map[string]dashboard.ValueMappingResult{}
	for i, s := range states {
		opts[fmt.Sprint(s.value)] = dashboard.ValueMappingResult{
			Text:  cog.ToPtr(s.text),
			Color: cog.ToPtr(s.color),
			Index: cog.ToPtr(int32(i)),
		}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}}
}

// timeline adds a state timeline whose values are mapped to named states.
func (b *board) timeline(w uint32, title, desc string, states []state, qs ...q) {
	p := statetimeline.NewPanelBuilder().
		Id(b.id()).
		Title(title).
		Description(desc).
		Datasource(datasource()).
		Unit(unitNone).
		Span(w).
		Height(8).
		Mappings(mappings(states)).
		ShowValue(common.VisibilityModeAuto).
		MergeValues(true).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeSingle).Sort(common.SortOrderNone)).
		Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).
			Steps([]dashboard.Threshold{{Color: "green"}})).
		Targets(b.targets(title, qs))
	b.b.WithPanel(p)
}

// table adds a table of instant query results, one row per series.
func (b *board) table(w uint32, title, desc, unit string, hide []string, qs ...q) {
	for i := range qs {
		qs[i].instant = true
	}
	exclude := map[string]any{"Time": true}
	for _, h := range hide {
		exclude[h] = true
	}
	p := table.NewPanelBuilder().
		Id(b.id()).
		Title(title).
		Description(desc).
		Datasource(datasource()).
		Unit(unit).
		Span(w).
		Height(8).
		WithTransformation(dashboard.DataTransformerConfig{
			Id:      "organize",
			Options: map[string]any{"excludeByName": exclude},
		}).
		Targets(b.targets(title, qs))
	b.b.WithPanel(p)
}

// annotation marks events on every time series panel: the expression returns
// a series at the times the event happened.
func (b *board) annotation(name, color, expr, title string) {
	b.b.Annotation(dashboard.NewAnnotationQueryBuilder().
		Name(name).
		Datasource(datasource()).
		Enable(true).
		IconColor(color).
		Expr(expr).
		Step("30s").
		TitleFormat(title).
		TagKeys("cluster,broker"))
	b.queries = append(b.queries, Query{Panel: "annotation: " + name, Expr: expr, Optional: "events happen only on failover"})
}

func (b *board) build() (Dashboard, error) {
	d, err := b.b.Build()
	if err != nil {
		return Dashboard{}, fmt.Errorf("%s: %w", b.file, err)
	}
	js, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return Dashboard{}, fmt.Errorf("%s: %w", b.file, err)
	}
	return Dashboard{File: b.file, UID: b.uid, JSON: append(js, '\n'), Query: b.queries}, nil
}

// All builds every dashboard.
func All() ([]Dashboard, error) {
	var out []Dashboard
	for _, f := range []func() *board{overview, brokers, ha, consumers, topics} {
		d, err := f().build()
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// sel builds a label selector constrained by the dashboard variables: job
// and cluster always, plus the named extra variables, plus fixed matchers.
// Series written by the recording rules carry no job label; use rsel.
func sel(vars []string, fixed ...string) string {
	parts := []string{`job=~"$job"`, `cluster=~"$cluster"`}
	for _, v := range vars {
		parts = append(parts, fmt.Sprintf(`%s=~"$%s"`, v, v))
	}
	parts = append(parts, fixed...)
	return "{" + strings.Join(parts, ", ") + "}"
}

// rsel is sel for recording-rule outputs, which have no job label.
func rsel(vars []string, fixed ...string) string {
	parts := []string{`cluster=~"$cluster"`}
	for _, v := range vars {
		parts = append(parts, fmt.Sprintf(`%s=~"$%s"`, v, v))
	}
	parts = append(parts, fixed...)
	return "{" + strings.Join(parts, ", ") + "}"
}

func thresholds(steps ...any) []dashboard.Threshold {
	out := []dashboard.Threshold{{Color: steps[0].(string)}}
	for i := 1; i+1 < len(steps); i += 2 {
		out = append(out, dashboard.Threshold{Value: cog.ToPtr(steps[i].(float64)), Color: steps[i+1].(string)})
	}
	return out
}
