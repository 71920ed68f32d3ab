package promqlx

import (
	"reflect"
	"testing"
)

func TestMetricNames(t *testing.T) {
	got, err := MetricNames(`sum by (a) (rate(x{b="c"}[5m])) / on (a) group_left y unless {__name__="z"}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"x", "y", "z"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := MetricNames(`{__name__=~"x.*"}`); err == nil {
		t.Fatal("regexp name: no error")
	}
	if _, err := MetricNames(`sum(`); err == nil {
		t.Fatal("bad syntax: no error")
	}
}

func TestInjectMatchers(t *testing.T) {
	ms, err := ParseMatchers(`{job="a"}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := InjectMatchers(`up{job=~".*rocketmq.*"} == 0 and on (job) rec:x`, ms, func(m string) bool { return m == "rec:x" })
	if err != nil {
		t.Fatal(err)
	}
	if want := `up{job="a"} == 0 and on (job) rec:x`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if _, err := ParseMatchers(`__name__="x"`); err == nil {
		t.Fatal("metric name in selector: no error")
	}
}

func TestFromGrafana(t *testing.T) {
	got, vars := FromGrafana(`rate(x{a=~"$cluster", b=~"${broker}", c=~"${topic:regex}", d="$1"}[$__rate_interval])`)
	if want := `rate(x{a=~".+", b=~".+", c=~".+", d="$1"}[5m])`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if want := []string{"cluster", "broker", "topic"}; !reflect.DeepEqual(vars, want) {
		t.Fatalf("vars %v, want %v", vars, want)
	}
}
