package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"go.uber.org/goleak"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

// parallelScrapes is how many scrapes the concurrency tests fire at once.
const parallelScrapes = 100

// concurrencySpec has a master-slave group and a DLedger group, so every
// collector has work and the brokers' connections are shared by all
// scrapes.
func concurrencySpec() rmqsim.Spec {
	return rmqsim.Spec{Groups: []rmqsim.GroupSpec{
		{Cluster: "DemoCluster", Name: "broker-a", Mode: rmqsim.MasterSlave, Replicas: 2},
		{Cluster: "DemoCluster", Name: "raft", Mode: rmqsim.DLedger, Replicas: 3},
	}}
}

func seedTraffic(t *testing.T, sim *rmqsim.Cluster) {
	t.Helper()
	for _, g := range []struct{ broker, topic, group string }{{"broker-a", "TopicA", "GroupA"}, {"raft", "TopicR", "GroupR"}} {
		if err := sim.CreateTopic(g.broker, g.topic, 4); err != nil {
			t.Fatal(err)
		}
		sim.CreateConsumerGroup(g.group, false)
		if err := sim.Subscribe(g.group, g.topic); err != nil {
			t.Fatal(err)
		}
		if _, err := sim.Produce(g.topic, 100); err != nil {
			t.Fatal(err)
		}
		if _, err := sim.Consume(g.group, g.topic, 30); err != nil {
			t.Fatal(err)
		}
		sim.SetOnline(g.group, 2)
	}
}

// fetch is one GET's outcome.
type fetch struct {
	code int
	body string
	err  error
}

// repeat is url n times.
func repeat(url string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = url
	}
	return out
}

// fireAtOnce sends one GET per url, released together, each on its own
// connection, and returns their outcomes.
func fireAtOnce(urls []string, header ...string) []fetch {
	client := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0},
	}
	defer client.CloseIdleConnections()
	out := make([]fetch, len(urls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodGet, urls[i], nil)
			if err != nil {
				out[i].err = err
				return
			}
			for j := 0; j+1 < len(header); j += 2 {
				req.Header.Set(header[j], header[j+1])
			}
			<-start
			resp, err := client.Do(req)
			if err != nil {
				out[i].err = err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			out[i] = fetch{code: resp.StatusCode, body: string(b), err: err}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// checkFullScrape requires a 200 with a valid exposition in which every
// node is up and every collector succeeded.
func checkFullScrape(t *testing.T, i int, f fetch, nodes []*rmqsim.Node) {
	t.Helper()
	if f.err != nil || f.code != http.StatusOK {
		t.Errorf("scrape %d: status %d, err %v\n%s", i, f.code, f.err, f.body)
		return
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(f.body))
	if err != nil {
		t.Errorf("scrape %d: invalid exposition: %v", i, err)
		return
	}
	for _, m := range mfs["rocketmq_scrape_collector_success"].GetMetric() {
		if m.GetGauge().GetValue() != 1 {
			t.Errorf("scrape %d: collector %v failed", i, m.GetLabel())
		}
	}
	for _, n := range nodes {
		if !strings.Contains(f.body, upLine("broker", n.Addr(), 1)) {
			t.Errorf("scrape %d: %s not up", i, n.Addr())
		}
	}
}

// TestParallelScrapesInProcess serves 100 simultaneous scrapes from the
// real handler in this process, so that `go test -race` watches every
// goroutine of the exporter (shared clients and connection pools, shared
// collectors with their caches and leader trackers), and checks that nothing
// is left running once the server is closed.
func TestParallelScrapesInProcess(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	sim, err := rmqsim.Start(concurrencySpec())
	if err != nil {
		t.Fatal(err)
	}
	seedTraffic(t, sim)
	cfg, err := parseConfig([]string{
		"--rocketmq.namesrv-address=" + sim.NameServerAddrs()[0],
		"--web.max-requests=0", "--collector.dledger.term-probe", "--collector.per-queue",
		`--probe.allowed-targets=127\.0\.0\.1:\d+`,
	}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg.logConfig.Writer = logs
	srv, err := newServer(cfg, promslog.New(cfg.logConfig))
	if err != nil {
		t.Fatal(err)
	}
	srv.ready.Store(true)
	ts := httptest.NewServer(srv.handler())

	// Half /metrics, half /probe of one broker each, interleaved: /probe
	// shares the client and the collectors with /metrics.
	nodes := sim.Nodes()
	urls := make([]string, parallelScrapes)
	for i := range urls {
		if i%2 == 0 {
			urls[i] = ts.URL + "/metrics"
		} else {
			urls[i] = ts.URL + "/probe?target=" + nodes[i%len(nodes)].Addr()
		}
	}
	for i, f := range fireAtOnce(urls, "X-Prometheus-Scrape-Timeout-Seconds", "30") {
		if i%2 == 0 {
			checkFullScrape(t, i, f, nodes)
		} else {
			checkFullScrape(t, i, f, nodes[i%len(nodes):i%len(nodes)+1])
		}
	}

	ts.Close()
	srv.close()
	sim.Close()
	goleak.VerifyNone(t, leaks)
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs)
	}
}

// goroutinesRE reads the exporter's own go_goroutines gauge.
var goroutinesRE = regexp.MustCompile(`(?m)^go_goroutines (\d+)$`)

func exporterGoroutines(t *testing.T, p *exporterProc) int {
	t.Helper()
	m := goroutinesRE.FindStringSubmatch(p.scrape(t, "/metrics?collect[]=cluster"))
	if m == nil {
		t.Fatal("go_goroutines is not exported")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestBinaryParallelScrapes fires 100 scrapes at once at the binary with no
// request limit: all succeed, and the goroutines they used are gone
// afterwards.
func TestBinaryParallelScrapes(t *testing.T) {
	sim := startSim(t, concurrencySpec())
	seedTraffic(t, sim)
	p := startExporter(t, nil, "--rocketmq.namesrv-address="+sim.NameServerAddrs()[0], "--web.max-requests=0")
	// Warm up: the connection pool and the collectors' caches.
	p.scrape(t, "/metrics")
	base := exporterGoroutines(t, p)

	results := fireAtOnce(repeat(p.url+"/metrics", parallelScrapes), "X-Prometheus-Scrape-Timeout-Seconds", "30")
	for i, f := range results {
		checkFullScrape(t, i, f, sim.Nodes())
	}

	// Handler goroutines end with their requests; allow a moment for the
	// server to notice the closed connections.
	deadline := time.Now().Add(5 * time.Second)
	n := exporterGoroutines(t, p)
	for n > base+2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		n = exporterGoroutines(t, p)
	}
	if n > base+2 {
		t.Errorf("go_goroutines %d after the scrapes, %d before", n, base)
	}
	if strings.Contains(p.logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", p.logs)
	}
}

// TestBinaryMaxRequestsUnderLoad holds every scrape in a slow identity read
// and fires 100 at once at an exporter allowing 5: at most 5 are served,
// every other one is answered 503 at once, and the slots are free again
// afterwards.
func TestBinaryMaxRequestsUnderLoad(t *testing.T) {
	const limit = 5
	sim := startSim(t, oneGroup())
	node := sim.Nodes()[0]
	p := startExporter(t, nil, "--rocketmq.broker-address="+node.Addr(), "--web.max-requests="+strconv.Itoa(limit))
	node.SetFault(rmqsim.Slow(2 * time.Second).For(rocketmq.CodeGetBrokerConfig))

	start := time.Now()
	results := fireAtOnce(repeat(p.url+"/metrics", parallelScrapes))
	elapsed := time.Since(start)
	var ok, rejected int
	for i, f := range results {
		switch {
		case f.err != nil:
			t.Errorf("scrape %d: %v", i, f.err)
		case f.code == http.StatusOK:
			ok++
		case f.code == http.StatusServiceUnavailable:
			rejected++
			if !strings.Contains(f.body, fmt.Sprintf("Limit of concurrent requests reached (%d)", limit)) {
				t.Errorf("scrape %d: 503 body %q", i, f.body)
			}
		default:
			t.Errorf("scrape %d: status %d %q", i, f.code, f.body)
		}
	}
	if ok < 1 || ok > limit || ok+rejected != parallelScrapes {
		t.Errorf("%d served and %d rejected of %d with --web.max-requests=%d", ok, rejected, parallelScrapes, limit)
	}
	// Rejections do not wait: only the served scrapes are slow.
	if elapsed > 10*time.Second {
		t.Errorf("the burst took %v", elapsed)
	}

	node.ClearFault()
	body := p.scrape(t, "/metrics")
	mustContain(t, body, upLine("broker", node.Addr(), 1),
		fmt.Sprintf(`promhttp_metric_handler_requests_total{code="503"} %d`, rejected))
}
