package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The binary's /metrics joins its own registry and the scrape's without
// merging: a metric name in both would be exposed twice. Scrape the real
// binary (every collector, cluster mode) and parse the whole answer, which
// fails on a family that appears twice.
func TestGatherAllNamesDisjoint(t *testing.T) {
	sim := startSim(t, oneGroup())
	p := startExporter(t, nil, "--rocketmq.namesrv-address="+sim.NameServerAddrs()[0])
	body := p.scrape(t, "/metrics", "X-Prometheus-Scrape-Timeout-Seconds", "10")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the exposition does not parse (a family exposed twice?): %v", err)
	}
	for _, name := range []string{"rocketmq_up", "rocketmq_broker_info", "rocketmq_exporter_build_info", "go_goroutines", "rocketmq_exporter_remoting_requests_total"} {
		if fams[name] == nil {
			t.Errorf("%s missing from /metrics", name)
		}
	}
}

type gatherFunc func() ([]*dto.MetricFamily, error)

func (f gatherFunc) Gather() ([]*dto.MetricFamily, error) { return f() }

func TestGatherAllKeepsEverythingAndErrors(t *testing.T) {
	a := prometheus.NewRegistry()
	a.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "a_metric", Help: "a"}))
	failing := gatherFunc(func() ([]*dto.MetricFamily, error) {
		name, help := "b_metric", "b"
		return []*dto.MetricFamily{{Name: &name, Help: &help, Type: dto.MetricType_GAUGE.Enum()}}, errors.New("partial")
	})
	mfs, err := gatherAll{a, failing}.Gather()
	if err == nil || !strings.Contains(err.Error(), "partial") {
		t.Errorf("error = %v, want the failing gatherer's", err)
	}
	if len(mfs) != 2 || mfs[0].GetName() != "a_metric" || mfs[1].GetName() != "b_metric" {
		t.Errorf("families = %v, want both, in order", mfs)
	}
}
