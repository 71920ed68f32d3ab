package main

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gatherAll concatenates what its gatherers return. Each registry already
// checks and sorts its own families; prometheus.Gatherers would merge and
// re-check all of them again, which costs measurable CPU at 100k+ series
// (docs/benchmarks.md). That is only correct while the gatherers never
// share a metric name: the exporter's own registry (process, Go, build and
// remoting self-metrics) and a scrape's registry (rocketmq_* of the cluster)
// do not, which TestGatherAllNamesDisjoint checks against a real scrape.
type gatherAll []prometheus.Gatherer

func (g gatherAll) Gather() ([]*dto.MetricFamily, error) {
	var out []*dto.MetricFamily
	var errs prometheus.MultiError
	for _, x := range g {
		mfs, err := x.Gather()
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, mfs...)
	}
	return out, errs.MaybeUnwrap()
}
