// Command rmqbench measures the exporter as a process: it starts the
// simulated scale scenario (and a counting, optionally freezing proxy in
// front of it) in its own process, runs the real exporter binary in another,
// scrapes it over HTTP and reads the exporter's CPU time and memory from
// /proc. With -peer it does the same for another exporter binary that
// points at a NameServer and collects on its own schedule
// (qsrg/rocketmq-exporter-go), per collection.
//
//	go run ./cmd/rmqbench                       # the issue-sized scenario, frozen answers
//	go run ./cmd/rmqbench -live                 # against the simulation itself
//	go run ./cmd/rmqbench -peer /tmp/peer/rmq-exporter
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketmq-exporter/rocketmq_exporter/cmd/rmqbench/proxy"
	"github.com/rocketmq-exporter/rocketmq_exporter/cmd/rmqbench/scenario"
	"github.com/rocketmq-exporter/rocketmq_exporter/collector"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rmqbench:", err)
		os.Exit(1)
	}
}

type config struct {
	spec          scenario.Spec
	scrapes       int
	live          bool
	exporter      string
	modes         []string
	gzip          bool
	peer          string
	peerInterval  time.Duration
	peerRounds    int
	codes         bool
	peerDump      string
	exporterFlags []string
	exporterEnv   []string
}

func run(args []string, stdout io.Writer) error {
	var c config
	fs := flag.NewFlagSet("rmqbench", flag.ContinueOnError)
	fs.IntVar(&c.spec.Topics, "topics", scenario.Issue7.Topics, "normal topics")
	fs.IntVar(&c.spec.Queues, "queues", scenario.Issue7.Queues, "queues per topic")
	fs.IntVar(&c.spec.Groups, "groups", scenario.Issue7.Groups, "consumer groups")
	fs.IntVar(&c.spec.BrokerGroups, "broker-groups", scenario.Issue7.BrokerGroups, "broker groups (one DLedger group of 3, the others master/slave pairs)")
	fs.IntVar(&c.scrapes, "scrapes", 11, "steady scrapes per mode, after the first")
	fs.BoolVar(&c.live, "live", false, "scrape the simulation itself instead of its recorded answers; adds a row where the lagging groups moved between scrapes")
	fs.StringVar(&c.exporter, "exporter", "", "exporter binary (default: go build ./cmd/rocketmq_exporter)")
	mode := fs.String("mode", "cluster,sidecar", "modes to measure: cluster, sidecar")
	fs.BoolVar(&c.gzip, "gzip", true, "ask for gzip like Prometheus does")
	fs.StringVar(&c.peer, "peer", "", "peer exporter binary (qsrg/rocketmq-exporter-go cmd/rmq-exporter) to measure per collection")
	fs.DurationVar(&c.peerInterval, "peer-interval", 45*time.Second, "collection interval given to the peer")
	fs.IntVar(&c.peerRounds, "peer-rounds", 2, "peer collections to measure")
	fs.BoolVar(&c.codes, "codes", false, "print the requests of each row by request code")
	fs.StringVar(&c.peerDump, "peer-dump", "", "write the peer's last /metrics answer to this file")
	extra := fs.String("exporter-flags", "", "extra flags for the exporter, space separated")
	env := fs.String("exporter-env", "", "extra environment for the exporter, space separated NAME=value (e.g. GOMEMLIMIT=48MiB)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.modes = strings.Split(*mode, ",")
	c.exporterFlags = strings.Fields(*extra)
	c.exporterEnv = strings.Fields(*env)

	if c.exporter == "" {
		dir, err := os.MkdirTemp("", "rmqbench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.exporter = filepath.Join(dir, "rocketmq_exporter")
		build := exec.Command("go", "build", "-o", c.exporter, "./cmd/rocketmq_exporter")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building the exporter (run from the repository root or pass -exporter): %w", err)
		}
	}

	start := time.Now()
	sim, err := scenario.Start(c.spec)
	if err != nil {
		return err
	}
	defer sim.Close()
	cnt := scenario.Count(c.spec)
	fmt.Fprintf(stdout, "scenario: %d topics × %d queues (%d queues), %d consumer groups %v, %d broker groups / %d nodes; built in %v\n",
		cnt.Topics, c.spec.Queues, cnt.Queues, cnt.Groups, states(cnt), cnt.BrokerGroups, cnt.Nodes, time.Since(start).Round(time.Millisecond))

	px, err := proxy.Start(scenario.Endpoints(sim), proxy.Options{Freeze: !c.live})
	if err != nil {
		return err
	}
	defer px.Close()
	ns := px.Addr(sim.NameServerAddrs()[0])
	sidecar := px.Addr(sim.Leader(scenario.BrokerGroup(1)).Addr())

	if !c.live {
		// Record every answer a starting exporter asks for, so that even its
		// first scrape is served from memory.
		for _, m := range c.modes {
			if err := record(m, ns, sidecar); err != nil {
				return err
			}
		}
		px.Take()
	}

	var rows []row
	for _, m := range c.modes {
		args := []string{"--rocketmq.timeout=2m", "--log.level=warn"}
		switch m {
		case "cluster":
			args = append(args, "--rocketmq.namesrv-address="+ns)
		case "sidecar":
			args = append(args, "--rocketmq.broker-address="+sidecar)
		default:
			return fmt.Errorf("unknown mode %q", m)
		}
		rs, err := c.measureExporter(m, append(args, c.exporterFlags...), px, sim)
		if err != nil {
			return fmt.Errorf("%s mode: %w", m, err)
		}
		rows = append(rows, rs...)
	}
	source := "recorded answers (frozen proxy)"
	if c.live {
		source = "the live simulation (through the counting proxy)"
	}
	fmt.Fprintf(stdout, "exporter %s %s against %s; %d steady scrapes, gzip=%v\n", strings.Join(c.exporterEnv, " "), c.exporter, source, c.scrapes, c.gzip)
	printRows(stdout, rows, c.codes)

	if c.peer != "" {
		prs, err := c.measurePeer(px, ns)
		if err != nil {
			return fmt.Errorf("peer: %w", err)
		}
		fmt.Fprintf(stdout, "peer %s, one collection every %v\n", c.peer, c.peerInterval)
		printRows(stdout, prs, c.codes)
	}
	return nil
}

func states(c scenario.Counts) string {
	var parts []string
	for _, s := range []scenario.GroupState{scenario.CaughtUp, scenario.Lagging, scenario.Stalled, scenario.Offline, scenario.Broadcasting} {
		parts = append(parts, fmt.Sprintf("%d %s", c.States[s], s))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// record runs one cold scrape in this process through the proxy.
func record(mode, ns, sidecar string) error {
	client := rocketmq.NewClient(rocketmq.ClientOptions{})
	defer client.Close()
	cs, err := collector.NewCollectors(collector.Registrations(), nil, collector.Options{LagSeconds: true}, nil)
	if err != nil {
		return err
	}
	t := collector.Targets{Mode: collector.ModeCluster, NameServers: []string{ns}}
	if mode == "sidecar" {
		t = collector.Targets{Mode: collector.ModeSidecar, Brokers: []string{sidecar}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.New(ctx, t, rocketmq.NewAdmin(client), cs, slog.New(slog.DiscardHandler)))
	_, err = reg.Gather()
	return err
}

// row is one line of the result table.
type row struct {
	what            string
	n               int
	wallP50, wallMx time.Duration
	cpuP50          time.Duration
	benchCPUP50     time.Duration
	requests        int
	timespan        int
	series          int
	rss, hwm        int64 // bytes
	bodyBytes       int
	codes           map[int]int
}

func printRows(w io.Writer, rows []row, codes bool) {
	fmt.Fprintf(w, "%-34s %3s %9s %9s %9s %9s %9s %9s %8s %9s %9s %8s\n",
		"", "n", "wall p50", "wall max", "cpu p50", "bench cpu", "requests", "timespan", "series", "RSS MiB", "peak MiB", "body MB")
	for _, r := range rows {
		fmt.Fprintf(w, "%-34s %3d %9s %9s %9s %9s %9d %9d %8d %9.1f %9.1f %8.1f\n", r.what, r.n,
			ms(r.wallP50), ms(r.wallMx), ms(r.cpuP50), ms(r.benchCPUP50), r.requests, r.timespan, r.series,
			float64(r.rss)/(1<<20), float64(r.hwm)/(1<<20), float64(r.bodyBytes)/1e6)
		if codes {
			var parts []string
			for _, code := range slices.Sorted(maps.Keys(r.codes)) {
				parts = append(parts, fmt.Sprintf("%d:%d", code, r.codes[code]))
			}
			fmt.Fprintf(w, "%38s%s\n", "requests by code: ", strings.Join(parts, " "))
		}
	}
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// process is a started binary with its /proc readings.
type process struct {
	cmd    *exec.Cmd
	stderr *tailWriter
	pid    int
}

func startProcess(bin string, args, env []string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr := &tailWriter{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &process{cmd: cmd, stderr: stderr, pid: cmd.Process.Pid}, nil
}

// tailWriter keeps the last 64 KiB written to it.
type tailWriter struct {
	mu sync.Mutex
	b  []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if over := len(w.b) - 64<<10; over > 0 {
		w.b = append(w.b[:0], w.b[over:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// stop asks the process to exit and waits for it.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// cpu is the process's user+system time so far (/proc/<pid>/stat).
func (p *process) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name, which may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// memory returns VmRSS and VmHWM in bytes.
func (p *process) memory() (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &rss
		case "VmHWM":
			dst = &hwm
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, err
		}
		*dst = kb << 10
	}
	return rss, hwm, sc.Err()
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(url string, p *process) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready; stderr:\n%s", url, p.stderr.String())
}

// scrapeResult is one measured scrape.
type scrapeResult struct {
	wall, cpu time.Duration
	// benchCPU is this process's CPU over the scrape: the proxy or
	// simulation answering the exporter (and the HTTP client), which share
	// the machine's cores with it.
	benchCPU  time.Duration
	requests  map[int]int
	series    int
	bodyBytes int
	rss, hwm  int64
}

func (c *config) scrape(url string, p *process, px *proxy.Proxy) (scrapeResult, error) {
	var r scrapeResult
	px.Take()
	self := &process{pid: os.Getpid()}
	cpu0, err := p.cpu()
	if err != nil {
		return r, err
	}
	self0, err := self.cpu()
	if err != nil {
		return r, err
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return r, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if c.gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	start := time.Now()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return r, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.wall = time.Since(start)
	if err != nil {
		return r, err
	}
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("scrape: %s: %s", resp.Status, body)
	}
	r.bodyBytes = len(body)
	cpu1, err := p.cpu()
	if err != nil {
		return r, err
	}
	r.cpu = cpu1 - cpu0
	self1, err := self.cpu()
	if err != nil {
		return r, err
	}
	r.benchCPU = self1 - self0
	r.requests = px.Take()
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return r, err
		}
		if body, err = io.ReadAll(zr); err != nil {
			return r, err
		}
	}
	r.series, err = countSeries(body)
	if err != nil {
		return r, err
	}
	r.rss, r.hwm, err = p.memory()
	return r, err
}

// countSeries counts the rocketmq_ samples and checks that every collector
// succeeded.
func countSeries(body []byte) (int, error) {
	n := 0
	for line := range bytes.Lines(body) {
		if !bytes.HasPrefix(line, []byte("rocketmq_")) {
			continue
		}
		n++
		if bytes.HasPrefix(line, []byte("rocketmq_scrape_collector_success{")) && bytes.HasSuffix(bytes.TrimSpace(line), []byte(" 0")) {
			return n, fmt.Errorf("a collector failed: %s", bytes.TrimSpace(line))
		}
	}
	return n, nil
}

func (c *config) measureExporter(mode string, args []string, px *proxy.Proxy, sim *rmqsim.Cluster) ([]row, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := startProcess(c.exporter, append([]string{"--web.listen-address=" + addr}, args...), c.exporterEnv)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	base := "http://" + addr
	if err := waitReady(base+"/-/ready", p); err != nil {
		return nil, err
	}
	url := base + "/metrics"

	first, err := c.scrape(url, p, px)
	if err != nil {
		return nil, fmt.Errorf("first scrape: %w", err)
	}
	rows := []row{summarise(mode+", first scrape", []scrapeResult{first})}
	steady, err := c.repeat(url, p, px, nil)
	if err != nil {
		return nil, err
	}
	rows = append(rows, summarise(mode+", steady", steady))
	if c.live && mode == "cluster" {
		moving, err := c.repeat(url, p, px, func() error {
			_, err := scenario.Advance(sim, c.spec, 1)
			return err
		})
		if err != nil {
			return nil, err
		}
		rows = append(rows, summarise(mode+", lagging groups moved", moving))
	}
	return rows, nil
}

func (c *config) repeat(url string, p *process, px *proxy.Proxy, between func() error) ([]scrapeResult, error) {
	var out []scrapeResult
	for range c.scrapes {
		if between != nil {
			if err := between(); err != nil {
				return nil, err
			}
		}
		r, err := c.scrape(url, p, px)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func summarise(what string, rs []scrapeResult) row {
	walls := make([]time.Duration, len(rs))
	cpus := make([]time.Duration, len(rs))
	bench := make([]time.Duration, len(rs))
	for i, r := range rs {
		walls[i], cpus[i], bench[i] = r.wall, r.cpu, r.benchCPU
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	slices.Sort(bench)
	last := rs[len(rs)-1]
	reqs := 0
	for _, n := range last.requests {
		reqs += n
	}
	return row{
		what: what, n: len(rs), wallP50: walls[len(walls)/2], wallMx: walls[len(walls)-1], cpuP50: cpus[len(cpus)/2],
		benchCPUP50: bench[len(bench)/2], requests: reqs, timespan: last.requests[rocketmq.CodeQueryConsumeTimeSpan], series: last.series, codes: last.requests,
		rss: last.rss, hwm: last.hwm, bodyBytes: last.bodyBytes,
	}
}

// measurePeer runs the peer exporter with every collection task on one
// interval and measures each collection: from its first request until the
// proxy has seen none for quiet.
func (c *config) measurePeer(px *proxy.Proxy, ns string) ([]row, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	every := "@every " + c.peerInterval.String()
	args := []string{"--namesrv=" + ns, "--listen=" + addr, "--health-check-enabled=false", "--log-level=info", "--cache-ttl=10m"}
	for _, task := range []string{"collectTopicOffset", "collectProducer", "collectConsumerOffset", "collectBrokerStatsTopic", "collectBrokerStats", "collectBrokerRuntimeStats"} {
		args = append(args, "--cron."+task+"="+every)
	}
	p, err := startProcess(c.peer, args, nil)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	const quiet = 3 * time.Second
	var rows []row
	px.Take()
	for round := 1; round <= c.peerRounds; round++ {
		// Wait for the collection to start.
		var counts map[int]int
		deadline := time.Now().Add(c.peerInterval + 30*time.Second)
		for total(counts) == 0 {
			if time.Now().After(deadline) {
				return rows, fmt.Errorf("no collection within %v; stderr:\n%s", c.peerInterval+30*time.Second, p.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
			counts = px.Take()
		}
		cpu0, err := p.cpu()
		if err != nil {
			return rows, err
		}
		start := time.Now().Add(-20 * time.Millisecond)
		last := time.Now()
		for time.Since(last) < quiet {
			time.Sleep(100 * time.Millisecond)
			if n := px.Take(); total(n) > 0 {
				for k, v := range n {
					counts[k] += v
				}
				last = time.Now()
			}
		}
		cpu1, err := p.cpu()
		if err != nil {
			return rows, err
		}
		r := scrapeResult{wall: last.Sub(start), cpu: cpu1 - cpu0, requests: counts}
		// Its /metrics is served from what the collection stored; serving
		// it once belongs to the memory a collection needs.
		if r.series, r.bodyBytes, err = c.peerSeries("http://" + addr + "/metrics"); err != nil {
			return rows, err
		}
		if r.rss, r.hwm, err = p.memory(); err != nil {
			return rows, err
		}
		rows = append(rows, summarise(fmt.Sprintf("peer, collection %d", round), []scrapeResult{r}))
	}
	return rows, nil
}

func total(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (c *config) peerSeries(url string) (int, int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if c.peerDump != "" {
		if err := os.WriteFile(c.peerDump, body, 0o644); err != nil {
			return 0, 0, err
		}
	}
	n := 0
	for line := range bytes.Lines(body) {
		if bytes.HasPrefix(line, []byte("rocketmq_")) {
			n++
		}
	}
	return n, len(body), nil
}
