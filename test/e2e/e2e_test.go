package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/canary"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

const (
	dledgerGroup = "RaftNode00"
	cluster      = "E2ECluster"
	topic        = "TopicE2E"
	group        = "GroupE2E"
)

// electionDelay is how long the DLedger group of the simulation stays
// leaderless after its leader dies before the survivors elect a new one by
// themselves (a real group takes about 4 s). It must outlast the no-leader
// alert's way to Alertmanager (a few 1 s scrapes, the 5 s for:, the group
// wait) plus the test's check that the alert stays firing while the group
// has no leader, with room for a busy machine.
const electionDelay = 30 * time.Second

// startCluster starts a healthy simulated cluster: a master/slave group and
// a 3-peer DLedger group, one topic and the canary's probe topic on both, one
// online consumer group. Nothing fails by itself; a killed DLedger leader is
// replaced by an election of the survivors after electionDelay (then the
// new leader takes the master role after a second, as a real one does).
func startCluster(t *testing.T) *rmqsim.Cluster {
	t.Helper()
	c, err := rmqsim.Start(rmqsim.Spec{
		Groups: []rmqsim.GroupSpec{
			{Cluster: cluster, Name: "broker-a", Mode: rmqsim.MasterSlave, Replicas: 2},
			{Cluster: cluster, Name: dledgerGroup, Mode: rmqsim.DLedger, Replicas: 3},
		},
		Timing: rmqsim.Timing{StaleLeaderWindow: electionDelay, RoleChangeDelay: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, g := range []string{"broker-a", dledgerGroup} {
		if err := c.CreateTopic(g, topic, 4); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateTopic(g, canary.DefaultTopic, 2); err != nil {
			t.Fatal(err)
		}
	}
	c.CreateConsumerGroup(group, false)
	if err := c.Subscribe(group, topic); err != nil {
		t.Fatal(err)
	}
	c.SetOnline(group, 2)
	return c
}

// traffic produces and consumes every 200 ms until stopped, so rates have
// data and the consumer group stays caught up.
func traffic(t *testing.T, c *rmqsim.Cluster) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Errors are expected while a group has no master.
			_, _ = c.Produce(topic, 10)
			_, _ = c.Consume(group, topic, -1)
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	promBin, ok := findBinary("E2E_PROMETHEUS", "prometheus")
	if !ok {
		missingTool(t, "prometheus", "Debian package prometheus, or E2E_PROMETHEUS=<path>")
	}
	amBin, ok := findBinary("E2E_ALERTMANAGER", "prometheus-alertmanager", "alertmanager")
	if !ok {
		missingTool(t, "alertmanager", "Debian package prometheus-alertmanager, or E2E_ALERTMANAGER=<path>")
	}
	dir := t.TempDir()
	exporterBin := buildExporter(t, dir)

	sim := startCluster(t)
	simStarted := time.Now()
	stopTraffic := traffic(t, sim)
	defer stopTraffic()
	oldLeader := sim.Leader(dledgerGroup)
	if oldLeader == nil {
		t.Fatal("DLedger group has no initial leader")
	}
	namesrv := sim.NameServerAddrs()[0]

	hook := newWebhook(t)
	exporterAddr, promAddr, amAddr := freeAddr(t), freeAddr(t), freeAddr(t)

	exp := start(t, dir, "exporter", exporterBin,
		"--web.listen-address="+exporterAddr,
		"--rocketmq.namesrv-address="+namesrv,
		"--probe.allowed-targets=127\\.0\\.0\\.1:[0-9]+",
		// Prometheus allows 1 s per scrape; keep most of it for the scrape.
		"--rocketmq.timeout-offset=100ms",
		// The canary (off by default) runs here so its alert and dashboard
		// panels meet real probe traffic.
		"--canary.enable",
		"--log.level=warn")
	exp.waitHTTP(t, "http://"+exporterAddr+"/metrics", 30*time.Second)
	// Its last round trip is 0 until the first probe comes back, which
	// RocketMQCanaryRoundTripFailing (with its for: shortened) would take for
	// a failure: let the first probes through both broker groups arrive
	// before Prometheus starts.
	waitCanaryRoundTrips(t, "http://"+exporterAddr+"/metrics", 60*time.Second, "broker-a", dledgerGroup)

	am := start(t, dir, "alertmanager", amBin,
		"--config.file="+alertmanagerConfig(t, dir, hook.srv.URL),
		"--storage.path="+filepath.Join(dir, "am-data"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=",
		"--log.level=warn")
	am.waitHTTP(t, "http://"+amAddr+"/-/ready", 30*time.Second)

	// Every for: becomes 5 s: long enough to need a condition held over
	// several 1 s evaluations (and to ride out a scrape that misses its 1 s
	// deadline on a busy machine), short enough for a test.
	writeRules(t, dir, "5s")
	prom := start(t, dir, "prometheus", promBin,
		"--config.file="+prometheusConfig(t, dir, exporterAddr, namesrv, amAddr),
		"--storage.tsdb.path="+filepath.Join(dir, "prom-data"),
		"--web.listen-address="+promAddr,
		"--rules.alert.resend-delay=1s",
		"--log.level=warn")
	prom.waitHTTP(t, "http://"+promAddr+"/-/ready", 60*time.Second)
	api := promAPI{base: "http://" + promAddr}

	// Both jobs scrape the cluster and the rules see a healthy DLedger group.
	api.waitQuery(t, 60*time.Second, `count(up{job=~"rocketmq|rocketmq-probe"} == 1) == 2`, nonEmpty)
	api.waitQuery(t, 60*time.Second, `max(rocketmq:dledger_group_leader{dledger_group="`+dledgerGroup+`", leader_id="`+oldLeader.SelfID()+`"})`, nonEmpty)
	api.waitQuery(t, 30*time.Second, `max by (dledger_group) (rocketmq_dledger_group_has_leader) == 1`, nonEmpty)

	t.Run("steady run fires no alert", func(t *testing.T) {
		// 40 s at a 1 s interval: every alert has evaluated dozens of times
		// and any shortened for: has long elapsed.
		deadline := time.Now().Add(40 * time.Second)
		for time.Now().Before(deadline) {
			// Pending is allowed: one scrape that misses its 1 s deadline on
			// a busy machine makes a condition true for one evaluation,
			// which is exactly what for: is there to absorb.
			s, err := api.query(context.Background(), `ALERTS{alertname=~"RocketMQ.*", alertstate="firing"}`)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range s {
				t.Errorf("alert %s fires in a steady run: %v", a.Metric["alertname"], a.Metric)
			}
			if t.Failed() {
				return
			}
			time.Sleep(time.Second)
		}
		if n := hook.all(); len(n) != 0 {
			t.Fatalf("Alertmanager delivered %d notifications in a steady run: %+v", len(n), n)
		}
	})

	t.Run("every dashboard query runs and has data", func(t *testing.T) {
		// The brokers' 60 s TPS window needs 60 one-second samples.
		if d := 70*time.Second - time.Since(simStarted); d > 0 {
			time.Sleep(d)
		}
		// The canary runs in this test: its panels must have data too.
		canaryQueries := 0
		queryDashboards(t, api, func(source, optional string) bool {
			if optional == canaryOptional {
				canaryQueries++
				return true
			}
			return false
		})
		if canaryQueries == 0 {
			t.Errorf("no dashboard query is marked optional with %q: the canary panels were not checked", canaryOptional)
		}
	})

	t.Run("leader killed: no-leader fires, new leader: leader-change fires and no-leader resolves", func(t *testing.T) {
		killedAt := time.Now()
		killed, err := sim.KillLeader(dledgerGroup)
		if err != nil {
			t.Fatal(err)
		}
		if killed.SelfID() != oldLeader.SelfID() {
			t.Fatalf("killed %s, want %s", killed.SelfID(), oldLeader.SelfID())
		}
		isNoLeader := func(e alertEvent) bool {
			return e.labels["alertname"] == "RocketMQDLedgerNoLeader" && e.labels["dledger_group"] == dledgerGroup
		}
		fired := hook.waitEvent(t, 60*time.Second, "RocketMQDLedgerNoLeader firing", func(e alertEvent) bool {
			return isNoLeader(e) && e.status == "firing"
		})
		if fired.path != "/rocketmq/critical" || fired.labels["severity"] != "critical" || fired.labels["cluster"] != cluster {
			t.Errorf("no-leader alert delivered as %+v", fired)
		}
		t.Logf("no-leader alert delivered %s after the kill", time.Since(killedAt).Round(time.Second))
		if fired.startsAt.Before(killedAt.Add(-2 * time.Second)) {
			t.Errorf("no-leader alert started at %s, before the leader was killed at %s", fired.startsAt, killedAt)
		}
		// While the group stays leaderless the alert stays firing.
		time.Sleep(5 * time.Second)
		api.waitQuery(t, 5*time.Second, `ALERTS{alertname="RocketMQDLedgerNoLeader", alertstate="firing"}`, nonEmpty)
		for _, e := range hook.events("RocketMQDLedgerNoLeader") {
			if e.status == "resolved" {
				t.Fatalf("no-leader alert resolved while the group had no leader: %+v", e)
			}
		}

		if d := time.Since(killedAt); d >= electionDelay {
			t.Fatalf("the no-leader checks took %s, not less than the simulated election delay %s: raise electionDelay", d, electionDelay)
		}

		// The survivors elect a new leader by themselves: first the peers
		// name it in a new term (what has_leader reads), then it takes the
		// master role. electedAt is the last time the term was still the
		// old one, so the election happened after it.
		deadline := killedAt.Add(electionDelay + 30*time.Second)
		electedAt := time.Now()
		for sim.Term(dledgerGroup) == 1 {
			if time.Now().After(deadline) {
				t.Fatalf("the DLedger group held no election within %s of the kill", time.Since(killedAt))
			}
			electedAt = time.Now()
			time.Sleep(50 * time.Millisecond)
		}
		var leader *rmqsim.Node
		for leader = sim.Leader(dledgerGroup); leader == nil; leader = sim.Leader(dledgerGroup) {
			if time.Now().After(deadline) {
				t.Fatalf("the elected DLedger peer did not become master within %s of the kill", time.Since(killedAt))
			}
			time.Sleep(50 * time.Millisecond)
		}
		newLeader := leader.SelfID()
		if newLeader == oldLeader.SelfID() || !leader.Alive() {
			t.Fatalf("elected %s (alive %v) after killing %s", newLeader, leader.Alive(), oldLeader.SelfID())
		}
		// Term 1 at start, one more per election: exactly one happened.
		if term := sim.Term(dledgerGroup); term != 2 {
			t.Errorf("DLedger term %d after the failover, want 2", term)
		}

		changed := hook.waitEvent(t, 60*time.Second, "RocketMQDLedgerLeaderChanged", func(e alertEvent) bool {
			return e.labels["alertname"] == "RocketMQDLedgerLeaderChanged" && e.labels["dledger_group"] == dledgerGroup && e.status == "firing"
		})
		if changed.path != "/rocketmq/info" || changed.labels["leader_id"] != newLeader || changed.labels["severity"] != "info" {
			t.Errorf("leader-change alert delivered as %+v, want leader_id %s on /rocketmq/info", changed, newLeader)
		}
		if d := changed.annotations["description"]; !strings.Contains(d, "is now led by "+newLeader+"; before, it was led by "+oldLeader.SelfID()+".") {
			t.Errorf("leader-change description does not name the new (%s) and old (%s) leaders: %q", newLeader, oldLeader.SelfID(), d)
		}
		// Both jobs (cluster mode and /probe) saw exactly one change of the
		// agreed leader, across the leaderless gap.
		api.waitQuery(t, 10*time.Second, `max(changes(rocketmq_dledger_group_leader_index{dledger_group="`+dledgerGroup+`"}[5m])) == 1`, nonEmpty)
		if s, err := api.query(context.Background(), `max(changes(rocketmq_dledger_group_leader_index{dledger_group="`+dledgerGroup+`"}[5m])) > 1`); err != nil || len(s) != 0 {
			t.Errorf("leader index changed more than once: %v %v", s, err)
		}

		resolved := hook.waitEvent(t, 60*time.Second, "RocketMQDLedgerNoLeader resolved", func(e alertEvent) bool {
			return isNoLeader(e) && e.status == "resolved"
		})
		if resolved.endsAt.Before(electedAt) {
			t.Errorf("no-leader alert ended at %s, before the new leader was elected at %s", resolved.endsAt, electedAt)
		}
		api.waitQuery(t, 10*time.Second, `absent(ALERTS{alertname="RocketMQDLedgerNoLeader"})`, nonEmpty)

		// The HA dashboard marks the change with its annotation query.
		queryDashboards(t, api, func(source, _ string) bool {
			return source == "dashboards/rocketmq-ha.json:annotation: DLedger leader changes"
		})
	})
}

// grafanaInterval and grafanaVar match the dashboard template syntax.
var (
	grafanaInterval = regexp.MustCompile(`\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}`)
	grafanaVar      = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*`)
)

// canaryOptional is the reason tools/dashboards gives for the canary's
// panels being optional (the canary is off by default).
const canaryOptional = "the canary is off by default (--canary.enable)"

// queryDashboards runs every dashboard query, as Grafana would with every
// variable at "All", and requires data for all but the optional ones and
// for the optional ones required says must have data now.
func queryDashboards(t *testing.T, api promAPI, required func(source, optional string) bool) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "alerts/testdata/expressions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []struct {
		Source   string `json:"source"`
		Expr     string `json:"expr"`
		Optional string `json:"optional"`
	}
	if err := json.Unmarshal(b, &exprs); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range exprs {
		if !strings.HasPrefix(e.Source, "dashboards/") {
			continue
		}
		n++
		q := grafanaInterval.ReplaceAllString(e.Expr, "30s")
		q = grafanaVar.ReplaceAllString(q, ".*")
		need := e.Optional == "" || required(e.Source, e.Optional)
		// A scrape that misses its 1 s deadline on a busy machine leaves a
		// gap; ask again for a while before calling a query empty.
		deadline := time.Now().Add(15 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s, err := api.query(ctx, q)
			cancel()
			if err != nil {
				t.Errorf("%s: %v", e.Source, err)
				break
			}
			if len(s) > 0 || !need {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: no data\n%s", e.Source, q)
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if n == 0 {
		t.Fatal("no dashboard queries in alerts/testdata/expressions.json")
	}
}

// canaryRoundTrip is a broker group's end-to-end latency count on /metrics.
var canaryRoundTrip = regexp.MustCompile(`(?m)^rocketmq_canary_end_to_end_latency_seconds_count\{broker="([^"]+)"\} [1-9]`)

// waitCanaryRoundTrips waits until the exporter's canary has received a
// probe through each of the broker groups.
func waitCanaryRoundTrips(t *testing.T, metricsURL string, timeout time.Duration, brokers ...string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	var missing []string
	for time.Now().Before(deadline) {
		seen := map[string]bool{}
		if resp, err := client.Get(metricsURL); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
			resp.Body.Close()
			for _, m := range canaryRoundTrip.FindAllStringSubmatch(string(body), -1) {
				seen[m[1]] = true
			}
		}
		missing = missing[:0]
		for _, b := range brokers {
			if !seen[b] {
				missing = append(missing, b)
			}
		}
		if len(missing) == 0 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no canary round trip through %v within %s", missing, timeout)
}
