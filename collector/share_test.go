package collector

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

// shareable is perBroker behind a pointer: sharing needs collectors that
// compare equal, which functions do not.
var shareable = &struct{ Collector }{perBroker}

// gatedCluster is twoClusters whose NameServer answers only once gate is
// closed, so a test can start scrapes while a collection is running.
func gatedCluster() (*fakeClient, chan struct{}) {
	f := twoClusters()
	gate := make(chan struct{})
	f.before = func(ctx context.Context, key string) error {
		if strings.HasPrefix(key, "BrokerClusterInfo|") {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	return f, gate
}

// scrapeText is the exposition of one /metrics request served by c,
// without the durations (they differ between any two scrapes).
func scrapeText(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	var b strings.Builder
	for _, l := range strings.SplitAfter(exposition(t, c), "\n") {
		if !strings.Contains(l, "rocketmq_scrape_collector_duration_seconds") {
			b.WriteString(l)
		}
	}
	return b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Scrapes that start while a collection runs get its metrics; the cluster
// is read once.
func TestSharedJoinsRunningCollection(t *testing.T) {
	defer goleak.VerifyNone(t)
	f, gate := gatedCluster()
	sh := NewShared()
	cs := map[string]Collector{"test": shareable}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const n = 4
	out := make([]string, n)
	var wg sync.WaitGroup
	wg.Go(func() { out[0] = scrapeText(t, sh.New(ctx, clusterTargets, f, cs, nil)) })
	waitFor(t, "the first collection", func() bool { return sh.running() == 1 })
	for i := 1; i < n; i++ {
		wg.Go(func() { out[i] = scrapeText(t, sh.New(ctx, clusterTargets, f, cs, nil)) })
	}
	waitFor(t, "the others to join", func() bool {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		for _, l := range sh.inflight {
			return len(l) == 1 && l[0].joined == n-1
		}
		return false
	})
	close(gate)
	wg.Wait()

	if got := f.callCount("BrokerClusterInfo", "ns2:9876"); got != 1 {
		t.Errorf("cluster read %d times by %d concurrent scrapes, want once", got, n)
	}
	if !strings.Contains(out[0], "rocketmq_test_broker") || !strings.Contains(out[0], "rocketmq_up") {
		t.Fatalf("leader's scrape lacks series:\n%s", out[0])
	}
	for i := 1; i < n; i++ {
		if out[i] != out[0] {
			t.Errorf("scrape %d differs from the leader's:\n%s\nvs\n%s", i, out[i], out[0])
		}
	}
	if sh.running() != 0 {
		t.Error("finished collection still listed")
	}

	// Nothing is cached: the next scrape reads the cluster again.
	scrapeText(t, sh.New(ctx, clusterTargets, f, cs, nil))
	if got := f.callCount("BrokerClusterInfo", "ns2:9876"); got != 2 {
		t.Errorf("a scrape after the shared one read the cluster %d times in all, want 2", got)
	}
}

// A scrape does not join a collection that may end after its own deadline,
// nor one of other targets, another client or other collectors.
func TestSharedKeepsApart(t *testing.T) {
	defer goleak.VerifyNone(t)
	f, gate := gatedCluster()
	sh := NewShared()
	cs := map[string]Collector{"test": shareable}
	long, cancelLong := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelLong()
	short, cancelShort := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShort()

	var wg sync.WaitGroup
	wg.Go(func() { scrapeText(t, sh.New(long, clusterTargets, f, cs, nil)) })
	waitFor(t, "the first collection", func() bool { return sh.running() == 1 })

	oneNS := Targets{Mode: ModeCluster, NameServers: []string{"ns2:9876"}}
	for _, start := range []func(){
		func() { scrapeText(t, sh.New(short, clusterTargets, f, cs, nil)) },                                     // earlier deadline
		func() { scrapeText(t, sh.New(long, oneNS, f, cs, nil)) },                                               // other targets
		func() { scrapeText(t, sh.New(long, clusterTargets, f, map[string]Collector{"x": shareable}, nil)) },    // other collectors
		func() { scrapeText(t, sh.New(long, clusterTargets, f, map[string]Collector{"test": perBroker}, nil)) }, // not comparable
		func() { // other target states
			withStates := clusterTargets
			withStates.States = NewTargetStates(16)
			scrapeText(t, sh.New(long, withStates, f, cs, nil))
		},
	} {
		n := sh.running()
		wg.Go(start)
		waitFor(t, "a separate collection", func() bool { return sh.running() == n+1 })
	}
	other := twoClusters() // another client: not gated, so it finishes on its own
	scrapeText(t, sh.New(long, clusterTargets, other, cs, nil))
	if got := other.callCount("BrokerClusterInfo", "ns2:9876"); got != 1 {
		t.Errorf("scrape through another client read its cluster %d times, want 1", got)
	}
	close(gate)
	wg.Wait()
	if got := f.callCount("BrokerClusterInfo", "ns2:9876"); got != 6 {
		t.Errorf("cluster read %d times, want one per separate collection (6)", got)
	}
}

// The first scrape hanging up does not cut the collection short for those
// that joined it.
func TestSharedLeaderCancelled(t *testing.T) {
	defer goleak.VerifyNone(t)
	f, gate := gatedCluster()
	sh := NewShared()
	cs := map[string]Collector{"test": shareable}
	deadline := time.Now().Add(10 * time.Second)
	leaderCtx, hangUp := context.WithDeadline(context.Background(), deadline)
	defer hangUp()
	joinerCtx, cancel := context.WithDeadline(context.Background(), deadline.Add(time.Second))
	defer cancel()

	var wg sync.WaitGroup
	wg.Go(func() { scrapeText(t, sh.New(leaderCtx, clusterTargets, f, cs, nil)) })
	waitFor(t, "the first collection", func() bool { return sh.running() == 1 })
	var joined string
	wg.Go(func() { joined = scrapeText(t, sh.New(joinerCtx, clusterTargets, f, cs, nil)) })
	waitFor(t, "the join", func() bool {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		for _, l := range sh.inflight {
			return l[0].joined == 1
		}
		return false
	})
	hangUp()
	close(gate)
	wg.Wait()
	for _, want := range []string{`rocketmq_up{address="ns2:9876",kind="namesrv"} 1`, `rocketmq_test_broker{address="10.0.0.1:10911"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("joined scrape lacks %s: the collection was cut short:\n%s", want, joined)
		}
	}
}
