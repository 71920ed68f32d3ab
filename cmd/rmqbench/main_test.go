package main

import (
	"os"
	"testing"
	"time"
)

func TestCountSeries(t *testing.T) {
	body := []byte(`# HELP rocketmq_up Up.
# TYPE rocketmq_up gauge
rocketmq_up{address="a",kind="broker"} 1
go_goroutines 7
rocketmq_scrape_collector_success{collector="topic"} 1
`)
	if n, err := countSeries(body); err != nil || n != 2 {
		t.Errorf("countSeries = %d, %v; want 2, nil", n, err)
	}
	failed := append(body, []byte("rocketmq_scrape_collector_success{collector=\"consumer\"} 0\n")...)
	if _, err := countSeries(failed); err == nil {
		t.Error("a failed collector went unnoticed")
	}
}

// The /proc readings of a live process: this test's own.
func TestProcReadings(t *testing.T) {
	p := &process{pid: os.Getpid()}
	before, err := p.cpu()
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	after, err := p.cpu()
	if err != nil {
		t.Fatal(err)
	}
	if after < before {
		t.Errorf("cpu went from %v to %v", before, after)
	}
	if after < 10*time.Millisecond {
		t.Errorf("cpu %v after a 50ms busy loop", after)
	}
	rss, hwm, err := p.memory()
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 1<<20 || hwm < rss {
		t.Errorf("rss %d, hwm %d", rss, hwm)
	}
}

func TestSummarise(t *testing.T) {
	rs := []scrapeResult{
		{wall: 3 * time.Millisecond, cpu: 2 * time.Millisecond, requests: map[int]int{202: 5}},
		{wall: 1 * time.Millisecond, cpu: 9 * time.Millisecond, requests: map[int]int{202: 5, 303: 1}},
		{wall: 2 * time.Millisecond, cpu: 1 * time.Millisecond, requests: map[int]int{202: 4, 303: 2}, series: 7},
	}
	r := summarise("x", rs)
	if r.wallP50 != 2*time.Millisecond || r.wallMx != 3*time.Millisecond || r.cpuP50 != 2*time.Millisecond {
		t.Errorf("percentiles %+v", r)
	}
	if r.requests != 6 || r.timespan != 2 || r.series != 7 || r.n != 3 {
		t.Errorf("last scrape's counts %+v", r)
	}
}
