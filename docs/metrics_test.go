// Package docs holds the project's documentation. Its test keeps
// docs/metrics.md equal to what the exporter really exports: it scrapes the
// simulated cluster (4.9.7 and 5.0.0 topologies) with every collector and
// every option on, and renders the metric families it saw.
//
//	go test ./docs            # fails when metrics.md and the exporter disagree
//	go test ./docs -update    # rewrites metrics.md
package docs

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	dto "github.com/prometheus/client_model/go"

	"github.com/rocketmq-exporter/rocketmq_exporter/canary"
	"github.com/rocketmq-exporter/rocketmq_exporter/collector"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

var update = flag.Bool("update", false, "rewrite metrics.md from the exporter's output")

// family is one metric family as documented.
type family struct {
	name, typ, help string
	labels          []string
	source          string // collector name, or "exporter" for the framework's own
}

func TestMetricsDoc(t *testing.T) {
	if testing.Short() {
		t.Skip("starts simulated clusters")
	}
	fams := map[string]*family{}
	for _, topo := range []func(*testing.T) (rmqsimCluster, func()){start497, start500} {
		c, stop := topo(t)
		scrapeAll(t, c, fams)
		stop()
	}
	scrapeCanary(t, fams)
	// The build info and the remoting client's counters come from the
	// binary's long-lived registry.
	reg := prometheus.NewRegistry()
	client := rocketmq.NewClient(rocketmq.ClientOptions{})
	defer client.Close()
	reg.MustRegister(versioncollector.NewCollector("rocketmq_exporter"),
		collector.NewRemotingCollector(map[string]*rocketmq.Client{"default": client}))
	addFamilies(t, reg, "exporter", fams)

	got := render(fams)
	if *update {
		if err := os.WriteFile("metrics.md", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("metrics.md")
	if err != nil {
		t.Fatalf("%v (run go test ./docs -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/metrics.md is out of date with the exporter's output; run `go test ./docs -update` and review the diff.\n%s", lineDiff(string(want), string(got)))
	}
}

type rmqsimCluster interface{ NameServerAddrs() []string }

// start497 is the demo topology (master/slave, DLedger group of 3, a second
// cluster, every kind of consumer group) with values that only show on some
// brokers forced, so every family appears.
func start497(t *testing.T) (rmqsimCluster, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	// The clock jumps 11 minutes ahead once the demo history is written, so
	// every TPS window and the last-minute latency histogram are filled.
	var ahead atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	c, err := rmqsim.Demo(ctx, rmqsim.DemoOptions{
		Clock:           clock,
		TrafficInterval: time.Hour, // no background traffic: one stable state
		Timing: rmqsim.Timing{
			StartupWindow: time.Nanosecond, RegisterDelay: time.Millisecond,
			StaleLeaderWindow: time.Millisecond, RoleChangeDelay: time.Millisecond,
		},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ahead.Store(int64(11 * time.Minute))
	if _, err := c.Produce("TopicOrders", 10); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes() {
		n.SetRuntimeValue("remainTransientStoreBufferNumbs", "4")
		n.SetRuntimeValue("remainHowManyDataToCommit", "1.5 MiB")
		n.SetRuntimeValue("earliestMessageTimeStamp", "1795255343811")
	}
	if err := c.SendToDLQ(rmqsim.DemoGroupOffline, 5); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{rmqsim.DemoMasterSlave} {
		for _, n := range c.Group(g)[1:] {
			n.SetReplicationLag(4096)
		}
	}
	return c, func() { c.Close(); cancel() }
}

// start500 is a 5.0.0 controller-mode group and a master/slave pair: HA
// status (907) and the controller's sync state.
func start500(t *testing.T) (rmqsimCluster, func()) {
	c, err := rmqsim.Start(rmqsim.Spec{
		Version: rmqsim.V5_0_0,
		Groups: []rmqsim.GroupSpec{
			{Cluster: "CtrlCluster", Name: "broker-c", Mode: rmqsim.Controller, Replicas: 3},
			{Cluster: "MSCluster", Name: "broker-d", Mode: rmqsim.MasterSlave, Replicas: 2},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic("broker-d", "TopicMS", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Produce("TopicMS", 100); err != nil {
		t.Fatal(err)
	}
	c.Group("broker-d")[1].SetReplicationLag(2048)
	// Let the controller settle its master and in-sync set.
	deadline := time.Now().Add(5 * time.Second)
	for c.Leader("broker-c") == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return c, c.Close
}

// scrapeCanary runs the end-to-end canary against a small cluster until a
// probe made the round trip, and records its families.
func scrapeCanary(t *testing.T, fams map[string]*family) {
	sim, err := rmqsim.Start(rmqsim.Spec{Groups: []rmqsim.GroupSpec{{Cluster: "C", Name: "broker-a"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if err := sim.CreateTopic("broker-a", canary.DefaultTopic, 2); err != nil {
		t.Fatal(err)
	}
	client := rocketmq.NewClient(rocketmq.ClientOptions{})
	defer client.Close()
	c, err := canary.New(canary.Config{
		NameServers: sim.NameServerAddrs(), Admin: rocketmq.NewAdmin(client),
		Interval: 50 * time.Millisecond, SLA: 200 * time.Millisecond, LostAfter: 3 * time.Second, SendTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		done := false
		for _, mf := range mfs {
			if mf.GetName() == "rocketmq_canary_last_round_trip_timestamp_seconds" && len(mf.GetMetric()) > 0 {
				done = true
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the canary made no round trip in 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	addFamilies(t, reg, "canary", fams)
}

func allOptions() collector.Options {
	return collector.Options{
		SystemTopics: true, RetryTopics: true, PerQueue: true, LagSeconds: true, DLedgerTermProbe: true, Concurrency: 8,
	}
}

// scrapeAll scrapes c in cluster mode once per collector (to know which
// collector exports which family) and twice in a row, so families that need
// a previous scrape (status transitions) are there too.
func scrapeAll(t *testing.T, c rmqsimCluster, fams map[string]*family) {
	client := rocketmq.NewClient(rocketmq.ClientOptions{})
	defer client.Close()
	admin := rocketmq.NewAdmin(client)
	targets := collector.Targets{Mode: collector.ModeCluster, NameServers: c.NameServerAddrs()}
	for _, r := range collector.Registrations() {
		cols, err := collector.NewCollectors(collector.Registrations(), onlyCollector(r.Name), allOptions(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			reg := prometheus.NewRegistry()
			reg.MustRegister(collector.New(ctx, targets, admin, cols, nil))
			addFamilies(t, reg, r.Name, fams)
			cancel()
		}
	}
}

func onlyCollector(name string) map[string]bool {
	m := map[string]bool{}
	for _, r := range collector.Registrations() {
		m[r.Name] = r.Name == name
	}
	return m
}

// framework families are sent by the Exporter whatever collectors run.
var framework = []string{"rocketmq_up", "rocketmq_scrape_collector_success", "rocketmq_scrape_collector_duration_seconds"}

func addFamilies(t *testing.T, g prometheus.Gatherer, source string, fams map[string]*family) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather (%s): %v", source, err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		src := source
		if slices.Contains(framework, name) {
			src = "exporter"
		}
		f := fams[name]
		if f == nil {
			f = &family{name: name, typ: strings.ToLower(mf.GetType().String()), help: mf.GetHelp(), source: src}
			fams[name] = f
		}
		if f.help != mf.GetHelp() || f.typ != strings.ToLower(mf.GetType().String()) {
			t.Errorf("%s: HELP or TYPE differs between scrapes", name)
		}
		if f.source != src {
			t.Errorf("%s: exported by both %s and %s", name, f.source, src)
		}
		for _, m := range mf.GetMetric() {
			f.labels = mergeLabels(f.labels, m.GetLabel())
		}
	}
}

func mergeLabels(have []string, pairs []*dto.LabelPair) []string {
	for _, p := range pairs {
		if !slices.Contains(have, p.GetName()) {
			have = append(have, p.GetName())
		}
	}
	return have
}

// sourceOrder is the order of the sections: the framework first, then the
// collectors in registration order.
func sourceOrder() []string {
	out := []string{"exporter"}
	for _, r := range collector.Registrations() {
		out = append(out, r.Name)
	}
	return append(out, "canary")
}

func render(fams map[string]*family) []byte {
	var b bytes.Buffer
	b.WriteString("# Metrics\n\n")
	b.WriteString("<!-- Generated by `go test ./docs -update`; `go test ./docs` fails when this file and the exporter's output differ. Do not edit by hand. -->\n\n")
	b.WriteString("Every metric family the exporter can send, with its type, labels and HELP text, taken from a scrape\n")
	b.WriteString("of the simulated cluster (RocketMQ 4.9.7 and 5.0.0 topologies) with every collector and option enabled\n")
	b.WriteString("(`--collector.per-queue`, `--collector.topic.system`, `--collector.topic.retry`, `--collector.dledger.term-probe`). Which series\n")
	b.WriteString("appear on a real cluster depends on its version and state; see the collector docs for details.\n")
	regs := map[string]collector.Registration{}
	for _, r := range collector.Registrations() {
		regs[r.Name] = r
	}
	for _, src := range sourceOrder() {
		var names []string
		for n, f := range fams {
			if f.source == src {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			continue
		}
		sort.Strings(names)
		switch src {
		case "exporter":
			b.WriteString("\n## Exporter\n\nSent on every scrape, whatever collectors are enabled.\n\n")
		case "canary":
			b.WriteString("\n## Canary (`--canary.enable`, off by default)\n\nThe end-to-end probe's results, see [canary.md](canary.md).\n\n")
		default:
			r := regs[src]
			state := "enabled"
			if !r.Default {
				state = "disabled"
			}
			fmt.Fprintf(&b, "\n## Collector `%s` (%s by default)\n\n%s\n\n", src, state, r.Help)
		}
		b.WriteString("| Metric | Type | Labels | Description |\n|---|---|---|---|\n")
		for _, n := range names {
			f := fams[n]
			labels := "—"
			if len(f.labels) > 0 {
				l := slices.Clone(f.labels)
				sort.Strings(l)
				labels = "`" + strings.Join(l, "`, `") + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", n, f.typ, labels, strings.ReplaceAll(f.help, "|", "\\|"))
		}
	}
	return b.Bytes()
}

// lineDiff lists the lines only one side has (enough to see what changed).
func lineDiff(want, got string) string {
	w := strings.Split(want, "\n")
	g := strings.Split(got, "\n")
	var out []string
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
