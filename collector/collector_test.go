package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// The real client must satisfy the interface the collectors use.
var _ Client = (*rocketmq.Admin)(nil)

func TestScrapeMemoReadsOncePerBroker(t *testing.T) {
	f := newFakeClient()
	f.addBroker("10.0.0.1:10911", "C", "b", 0, "ASYNC_MASTER")
	f.runtime["10.0.0.1:10911"] = rocketmq.RuntimeInfo{"commitLogMaxOffset": "42"}
	f.topicConfig["10.0.0.1:10911"] = &rocketmq.TopicConfigWrapper{}
	s := Resolve(context.Background(), f, Targets{Brokers: []string{"10.0.0.1:10911"}}, nil)
	b := s.Brokers[0]

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ri, err := s.RuntimeInfo(context.Background(), b)
			if err != nil || ri["commitLogMaxOffset"] != "42" {
				t.Errorf("RuntimeInfo = %v, %v", ri, err)
			}
			if _, err := s.TopicNames(context.Background(), b); err != nil {
				t.Errorf("TopicNames: %v", err)
			}
		})
	}
	wg.Wait()
	if n := f.callCount("BrokerRuntimeInfo", b.Addr); n != 1 {
		t.Errorf("BrokerRuntimeInfo asked %d times in one scrape, want 1", n)
	}
	if n := f.callCount("TopicNames", b.Addr); n != 1 {
		t.Errorf("TopicNames asked %d times in one scrape, want 1", n)
	}

	// A new scrape asks again: nothing is cached across scrapes.
	s2 := Resolve(context.Background(), f, Targets{Brokers: []string{"10.0.0.1:10911"}}, nil)
	if _, err := s2.RuntimeInfo(context.Background(), s2.Brokers[0]); err != nil {
		t.Fatal(err)
	}
	if n := f.callCount("BrokerRuntimeInfo", b.Addr); n != 2 {
		t.Errorf("BrokerRuntimeInfo asked %d times over two scrapes, want 2", n)
	}
}

func TestScrapeMemoSharesErrors(t *testing.T) {
	f := newFakeClient()
	f.addBroker("10.0.0.1:10911", "C", "b", 0, "ASYNC_MASTER")
	s := Resolve(context.Background(), f, Targets{Brokers: []string{"10.0.0.1:10911"}}, nil)
	for range 3 {
		if _, err := s.RuntimeInfo(context.Background(), s.Brokers[0]); err == nil {
			t.Fatal("RuntimeInfo without an answer: want error")
		}
	}
	if n := f.callCount("BrokerRuntimeInfo", "10.0.0.1:10911"); n != 1 {
		t.Errorf("failing BrokerRuntimeInfo asked %d times, want 1", n)
	}
}

// 5.x controller mode: every node's config says brokerId=-1 (the recorded
// 5.0.0 ctrl_n* answers); the master must still count as master, or its
// topics and groups would never be reported.
func TestResolveControllerModeIDs(t *testing.T) {
	f := newFakeClient()
	master := f.addBroker("127.0.0.1:22911", "CtrlCluster", "broker-c", -1, "SYNC_MASTER")
	master["enableControllerMode"] = "true"
	slave := f.addBroker("127.0.0.1:20911", "CtrlCluster", "broker-c", -1, "SLAVE")
	slave["enableControllerMode"] = "true"

	side := Resolve(context.Background(), f, Targets{Brokers: []string{"127.0.0.1:22911", "127.0.0.1:20911"}}, nil)
	ids := map[string]int64{}
	for _, b := range side.Brokers {
		ids[b.Addr] = b.ID
	}
	if ids["127.0.0.1:22911"] != 0 || ids["127.0.0.1:20911"] != -1 {
		t.Errorf("sidecar ids = %v, want master 0 and slave -1", ids)
	}
	if o := side.Owners(); len(o) != 1 || o[0].Addr != "127.0.0.1:22911" {
		t.Errorf("owners = %v, want the controller-mode master", o)
	}

	f.clusterInfo["ns:9876"] = &rocketmq.ClusterInfo{
		BrokerAddrTable: map[string]rocketmq.BrokerData{"broker-c": {
			Cluster: "CtrlCluster", BrokerName: "broker-c",
			BrokerAddrs: map[int64]string{0: "127.0.0.1:22911", 2: "127.0.0.1:20911"},
		}},
	}
	cl := Resolve(context.Background(), f, Targets{Mode: ModeCluster, NameServers: []string{"ns:9876"}}, nil)
	ids = map[string]int64{}
	for _, b := range cl.Brokers {
		ids[b.Addr] = b.ID
	}
	if ids["127.0.0.1:22911"] != 0 || ids["127.0.0.1:20911"] != 2 {
		t.Errorf("cluster-mode ids = %v, want master 0 and the NameServer's 2 for the slave", ids)
	}
}

func TestSafeGroupPanicBecomesError(t *testing.T) {
	plain := errors.New("plain failure")
	var g safeGroup
	g.SetLimit(3)
	var ran atomic.Int32
	for i := range 20 {
		g.Go(func() error {
			ran.Add(1)
			switch i {
			case 4:
				panic("first boom")
			case 7:
				return plain
			case 11:
				var m map[string]int
				m["x"]++ // a runtime error, as a decoding bug would raise
			}
			return nil
		})
	}
	err := g.Wait()
	if ran.Load() != 20 {
		t.Errorf("%d of 20 goroutines ran: a panic must not stop the others", ran.Load())
	}
	if !errors.Is(err, plain) {
		t.Errorf("Wait = %v, want the ordinary error kept", err)
	}
	var values []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var pe *PanicError
		if errors.As(e, &pe) {
			values = append(values, fmt.Sprint(pe.Value))
			if !strings.Contains(string(pe.Stack), "TestSafeGroupPanicBecomesError") {
				t.Errorf("stack is not the panicking goroutine's:\n%s", pe.Stack)
			}
		}
	}
	sort.Strings(values)
	if len(values) != 2 || values[0] != "assignment to entry in nil map" || values[1] != "first boom" {
		t.Errorf("panics = %q, want both, each as a *PanicError", values)
	}
	if !strings.Contains(err.Error(), "panic: first boom") {
		t.Errorf("error text does not say it was a panic: %v", err)
	}
}

func TestSafeGroupLimitAndNoError(t *testing.T) {
	var g safeGroup
	g.SetLimit(2)
	var inFlight, peak atomic.Int32
	for range 10 {
		g.Go(func() error {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Errorf("Wait = %v", err)
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak = %d, want the limit 2", p)
	}
}

// The broker label names are handed out, not shared: a collector that
// changes its copy must not relabel every other collector's series.
func TestBrokerLabelNamesFresh(t *testing.T) {
	want := []string{"cluster", "broker", "address"}
	mine := brokerLabelNames()
	mine[0] = "changed"
	_ = append(mine[:1], "appended")
	if got := brokerLabelNames(); !slices.Equal(got, want) {
		t.Errorf("brokerLabelNames() = %q after a caller changed its copy, want %q", got, want)
	}
	b := &Broker{Cluster: "C", Name: "b", Address: "10.0.0.1:10911"}
	if got := b.LabelValues(); !slices.Equal(got, []string{"C", "b", "10.0.0.1:10911"}) {
		t.Errorf("LabelValues = %q, not in the order of %q", got, want)
	}
}

func TestCatchPanic(t *testing.T) {
	ran := 0
	if err := catchPanic(func() { ran++ }); err != nil || ran != 1 {
		t.Errorf("catchPanic(no panic) = %v after %d runs", err, ran)
	}
	var pe *PanicError
	if err := catchPanic(func() { panic(errors.New("decoder bug")) }); !errors.As(err, &pe) || fmt.Sprint(pe.Value) != "decoder bug" {
		t.Errorf("catchPanic(panic) = %v, want a *PanicError with the value", err)
	}
}

// Every collector that fans out per broker turns a panic in one of its
// goroutines into a failed collector, never a crashed exporter.
func TestCollectorsSurviveFanOutPanics(t *testing.T) {
	for _, tc := range []struct {
		collector, method string
	}{
		{"broker", "BrokerRuntimeInfo"},
		{"ha", "BrokerHAStatus"},
		{"dledger", "DLedgerMetadata"},
		{"topic", "TopicStats"},
		{"consumer", "ConsumerConnectionList"},
	} {
		t.Run(tc.collector, func(t *testing.T) {
			f := newFakeClient()
			cfg := f.addBroker("10.0.0.1:10911", "C", "g", 0, "SYNC_MASTER")
			cfg["enableDLegerCommitLog"] = "true"
			cfg["dLegerGroup"] = "g"
			cfg["dLegerSelfId"] = "n0"
			cfg["dLegerPeers"] = "n0-10.0.0.1:40911"
			f.runtime["10.0.0.1:10911"] = rocketmq.RuntimeInfo{"brokerVersionDesc": "V5_0_0", "commitLogMaxOffset": "1"}
			f.topicConfig["10.0.0.1:10911"] = &rocketmq.TopicConfigWrapper{TopicConfigTable: map[string]rocketmq.TopicConfig{
				"T": {TopicName: "T", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}}}
			f.brokerConsumeStats["10.0.0.1:10911"] = &rocketmq.ConsumeStatsList{ConsumeStatsList: []rocketmq.GroupConsumeStats{{
				Group: "G", Stats: []rocketmq.ConsumeStats{{OffsetTable: []rocketmq.QueueOffsetWrapper{{
					MessageQueue: rocketmq.MessageQueue{Topic: "T", BrokerName: "g", QueueID: 0}, OffsetWrapper: rocketmq.OffsetWrapper{BrokerOffset: 10, ConsumerOffset: 5}}}}}}}}
			f.before = func(_ context.Context, key string) error {
				if strings.HasPrefix(key, tc.method) {
					panic("boom in " + tc.method)
				}
				return nil
			}
			cols, err := NewCollectors(Registrations(), map[string]bool{
				"broker": tc.collector == "broker", "cluster": false,
				"topic": tc.collector == "topic", "consumer": tc.collector == "consumer",
				"dledger": tc.collector == "dledger", "ha": tc.collector == "ha",
			}, Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			logger, logs := newTestLogger()
			e := New(context.Background(), Targets{Brokers: []string{"10.0.0.1:10911"}}, f, cols, logger)
			want := fmt.Sprintf(`
# HELP rocketmq_scrape_collector_success 1 if the collector succeeded for every target in this scrape, 0 otherwise.
# TYPE rocketmq_scrape_collector_success gauge
rocketmq_scrape_collector_success{collector=%q} 0
`, tc.collector)
			if err := testutil.CollectAndCompare(e, strings.NewReader(want), "rocketmq_scrape_collector_success"); err != nil {
				t.Fatal(err)
			}
			// The failure is the panic, reported with its value.
			got := strings.Join(logs.lines("collector="+tc.collector), "\n")
			if !strings.Contains(got, "boom in "+tc.method) {
				t.Errorf("log does not report the panic: %q", got)
			}
		})
	}
}

func TestForget(t *testing.T) {
	now := time.Unix(1000, 0)
	m := map[string]time.Time{
		"stale": now.Add(-20 * time.Minute), "old": now.Add(-3 * time.Minute),
		"mid": now.Add(-2 * time.Minute), "new": now.Add(-time.Minute),
	}
	seen := func(v time.Time) time.Time { return v }
	forget(m, now, 15*time.Minute, 10, seen)
	if _, ok := m["stale"]; ok || len(m) != 3 {
		t.Errorf("after TTL: %v, want stale gone and 3 left", m)
	}
	forget(m, now, 0, 2, seen)
	if _, ok := m["old"]; ok || len(m) != 2 {
		t.Errorf("after size bound: %v, want the least recently seen gone", m)
	}
	forget(m, now, 0, 0, seen)
	if len(m) != 0 {
		t.Errorf("max 0 keeps %v", m)
	}
}
