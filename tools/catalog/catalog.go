// Package catalog reads docs/metrics.md, the list of metric families the
// exporter sends (kept equal to its real output by go test ./docs), so the
// generators' tests can check every metric and label that rules and
// dashboards use.
package catalog

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Catalog maps a metric name to its label names.
type Catalog map[string]map[string]bool

// row is | `name` | type | `l1`, `l2` | help |.
var row = regexp.MustCompile("^\\| `(rocketmq_[a-z0-9_]+)` \\| ([a-z]+) \\| ([^|]*) \\|")

var label = regexp.MustCompile("`([a-zA-Z_][a-zA-Z0-9_]*)`")

// Load reads a metrics.md file.
func Load(path string) (Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := Catalog{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ls := map[string]bool{}
		for _, l := range label.FindAllStringSubmatch(m[3], -1) {
			ls[l[1]] = true
		}
		c[m[1]] = ls
		if m[2] == "histogram" {
			// A histogram family is exposed as these series; queries
			// read them, never the family name itself.
			bucket := map[string]bool{"le": true}
			for l := range ls {
				bucket[l] = true
			}
			c[m[1]+"_bucket"] = bucket
			c[m[1]+"_sum"] = ls
			c[m[1]+"_count"] = ls
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(c) < 50 {
		return nil, fmt.Errorf("%s: only %d metrics", path, len(c))
	}
	return c, nil
}

// Scrape labels Prometheus adds to every series of a target.
var targetLabels = map[string]bool{"job": true, "instance": true}

// prometheusOwn are series Prometheus writes itself.
var prometheusOwn = map[string]bool{"up": true, "scrape_duration_seconds": true, "ALERTS": true}

// Check reports the problems of one selector: an unknown metric, or a label
// matcher on a label the metric does not have. Names in recorded (series of
// recording rules) are accepted with any label.
func (c Catalog) Check(metric string, labels []string, recorded map[string]bool) []string {
	if recorded[metric] {
		return nil
	}
	if prometheusOwn[metric] {
		return nil
	}
	ls, ok := c[metric]
	if !ok {
		return []string{fmt.Sprintf("metric %s is neither exported nor recorded", metric)}
	}
	var out []string
	for _, l := range labels {
		if !ls[l] && !targetLabels[l] {
			out = append(out, fmt.Sprintf("metric %s has no label %s (it has %s)", metric, l, strings.Join(keys(ls), ", ")))
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
