// Package soak runs the exporter binary against the simulated demo cluster
// for a long time, scraping at 10/s while brokers fail over, restart and
// misbehave, and checks that the process' memory, goroutines and open files
// stay flat. It only runs when RMQ_SOAK is set to a duration:
//
//	RMQ_SOAK=20s go test -run TestSoak ./test/soak/          # CI smoke
//	RMQ_SOAK=1h  go test -v -timeout 0 -run TestSoak ./test/soak/
//
// RMQ_SOAK_REPORT=<file> also writes the figures as Markdown.
package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

const (
	scrapeRate = 10 // per second
	// scrapeTimeout is what the scrapes announce in
	// X-Prometheus-Scrape-Timeout-Seconds; the exporter's deadline is this
	// minus --rocketmq.timeout-offset (500ms).
	scrapeTimeout = 2 * time.Second
	sampleEvery   = time.Second
	// healthyGap follows every fault: longer than a scrape's deadline, so
	// no scrape slowed down by the fault is still running at the
	// checkpoint.
	healthyGap = 2500 * time.Millisecond
)

// Flatness tolerances between the first and the last third of the run (after
// a warm-up). The compared readings are checkpoints taken in the healthy gap
// after each injected fault, once the scrapes it slowed down have finished,
// so they measure the same state: steady scraping of a healthy cluster. A
// leak shows as a trend that these bounds do not absorb over a long run.
const (
	rssSlack        = 1.25    // factor on the first third's median
	rssSlackBytes   = 8 << 20 // plus this much
	goroutinesSlack = 8       // on the medians
	fdsSlack        = 4       // on the medians
	quietGoroutines = 3       // quiet end vs quiet start
	quietFDs        = 3       // quiet end vs quiet start
	warmupShare     = 6       // the first 1/6 of the run (at most warmupMax) is warm-up
	warmupMax       = 2 * time.Minute
	minCheckpoints  = 3     // at least this many checkpoints after warm-up
	maxFailedShare  = 0.001 // scrapes may fail to complete (HTTP level) at most this often
	processStartMax = 20 * time.Second
)

// sample is one reading of the exporter process.
type sample struct {
	at         time.Duration
	rss        int64 // bytes
	goroutines int
	fds        int
}

// proc is the exporter under test.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs string // log file
	done chan error
}

func TestSoak(t *testing.T) {
	raw := os.Getenv("RMQ_SOAK")
	if raw == "" {
		t.Skip("set RMQ_SOAK=<duration> (e.g. 20s, 1h) to run the soak")
	}
	dur, err := time.ParseDuration(raw)
	if err != nil || dur < 10*time.Second {
		t.Fatalf("RMQ_SOAK=%q: want a duration of at least 10s", raw)
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads the exporter's RSS and open files from /proc")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := rmqsim.Demo(ctx, rmqsim.DemoOptions{TrafficInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	p := startExporter(t, sim.NameServerAddrs()[0])
	// Like Prometheus, keep a couple of connections alive; the ones opened
	// for scrapes running in parallel during a fault are closed when done,
	// so the exporter's open files and goroutines are its own.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	defer client.CloseIdleConnections()

	// A quiet reading before any load, and the warm-up scrape.
	time.Sleep(2 * time.Second)
	if _, _, err := get(client, p.url+"/metrics"); err != nil {
		t.Fatal(err)
	}
	quietStart := read(t, client, p, 0)

	var st stats
	start := time.Now()
	runCtx, stopRun := context.WithTimeout(ctx, dur)
	defer stopRun()
	var wg sync.WaitGroup
	wg.Go(func() { scrapeLoop(runCtx, client, p.url, &st) })
	var samples, checkpoints []sample
	var sMu sync.Mutex
	checkpoint := func() {
		s := read(t, client, p, time.Since(start))
		sMu.Lock()
		checkpoints = append(checkpoints, s)
		sMu.Unlock()
	}
	wg.Go(func() { inject(runCtx, t, sim, &st, checkpoint) })
	wg.Go(func() {
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
				s := read(t, client, p, time.Since(start))
				sMu.Lock()
				samples = append(samples, s)
				sMu.Unlock()
			}
		}
	})
	wg.Wait()
	elapsed := time.Since(start)

	// Heal everything, let the last scrapes finish, and read the quiet end.
	sim.NameServers()[0].ClearFault()
	for _, n := range sim.Nodes() {
		n.ClearFault()
		if !n.Alive() {
			_ = n.Restart()
		}
	}
	time.Sleep(2*scrapeTimeout + time.Second)
	client.CloseIdleConnections()
	time.Sleep(time.Second)
	if _, _, err := get(client, p.url+"/metrics"); err != nil {
		t.Fatal(err)
	}
	client.CloseIdleConnections()
	time.Sleep(500 * time.Millisecond)
	quietEnd := read(t, client, p, elapsed)

	rep := analyse(t, dur, samples, checkpoints, quietStart, quietEnd, &st, elapsed)
	t.Log("\n" + rep)
	if path := os.Getenv("RMQ_SOAK_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(rep), 0o644); err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.Logf("exporter logs: %s", p.logs)
	}
}

// startExporter builds the exporter and runs it in cluster mode against ns.
func startExporter(t *testing.T, ns string) *proc {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "rocketmq_exporter")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goTool, "build", "-o", bin, "github.com/rocketmq-exporter/rocketmq_exporter/cmd/rocketmq_exporter")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the exporter: %v\n%s", err, out)
	}
	// Logs go to a file: a long run logs every injected fault.
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("rocketmq_exporter_soak_%d.log", os.Getpid()))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{logs: logPath, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--web.listen-address=127.0.0.1:0", "--rocketmq.namesrv-address="+ns,
		"--collector.dledger.term-probe", "--collector.per-queue")
	p.cmd.Env = []string{}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("exporter did not exit cleanly: %v (logs %s)", err, logPath)
			}
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("exporter ignored SIGTERM (logs %s)", logPath)
		}
		logFile.Close()
		if !t.Failed() {
			os.Remove(logPath)
		}
	})
	re := regexp.MustCompile(`msg="Listening on" address=(127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(processStartMax)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		if m := re.FindSubmatch(b); m != nil {
			p.url = "http://" + string(m[1])
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("exporter did not start (logs %s)", logPath)
	return nil
}

func get(client *http.Client, url string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(scrapeTimeout.Seconds(), 'f', -1, 64))
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// stats are the counters of the run.
type stats struct {
	scrapes, non200, failed, invalid atomic.Int64
	mu                               sync.Mutex
	latencies                        []time.Duration
	faults                           map[string]int
}

func (s *stats) fault(name string) {
	s.mu.Lock()
	if s.faults == nil {
		s.faults = map[string]int{}
	}
	s.faults[name]++
	s.mu.Unlock()
}

// scrapeLoop starts scrapeRate scrapes per second, each on its own, so a
// slow one does not lower the rate.
func scrapeLoop(ctx context.Context, client *http.Client, url string, st *stats) {
	tick := time.NewTicker(time.Second / scrapeRate)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var n int
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n++
		check := n%10 == 0
		wg.Go(func() {
			t0 := time.Now()
			code, body, err := get(client, url+"/metrics")
			d := time.Since(t0)
			st.scrapes.Add(1)
			switch {
			case err != nil:
				st.failed.Add(1)
			case code != http.StatusOK:
				st.non200.Add(1)
			case check:
				parser := expfmt.NewTextParser(model.UTF8Validation)
				if _, err := parser.TextToMetricFamilies(strings.NewReader(string(body))); err != nil {
					st.invalid.Add(1)
				}
			}
			st.mu.Lock()
			st.latencies = append(st.latencies, d)
			st.mu.Unlock()
		})
	}
}

// inject cycles through failovers, restarts and wire faults until ctx ends,
// with a healthy gap after each one that ends with a checkpoint.
func inject(ctx context.Context, t *testing.T, sim *rmqsim.Cluster, st *stats, checkpoint func()) {
	hold := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	faultOn := func(name string, n *rmqsim.Node, f rmqsim.Fault, d time.Duration) bool {
		st.fault(name)
		n.SetFault(f)
		ok := hold(d)
		n.ClearFault()
		return ok
	}
	brokerA := sim.Group(rmqsim.DemoMasterSlave)
	brokerB := sim.Group(rmqsim.DemoSecond)[0]
	rng := rand.New(rand.NewPCG(1, 2))
	steps := []func() bool{
		func() bool { // DLedger leader dies; restarted once the group re-elected
			n, err := sim.KillLeader(rmqsim.DemoDLedger)
			if err != nil {
				return hold(time.Second)
			}
			st.fault("dledger leader killed")
			ok := hold(2 * time.Second)
			if err := n.Restart(); err != nil {
				t.Errorf("restart %s: %v", n.Addr(), err)
			}
			return ok
		},
		func() bool { // a broker restarts
			st.fault("broker restarted")
			brokerB.Kill()
			ok := hold(2 * time.Second)
			if err := brokerB.Restart(); err != nil {
				t.Errorf("restart %s: %v", brokerB.Addr(), err)
			}
			return ok
		},
		func() bool { return faultOn("slave never answers", brokerA[1], rmqsim.NoAnswer(), 3*time.Second) },
		func() bool { return faultOn("master sends garbage", brokerA[0], rmqsim.Garbage(), 2*time.Second) },
		func() bool {
			return faultOn("follower resets mid-frame", sim.Group(rmqsim.DemoDLedger)[rng.IntN(3)], rmqsim.ResetMidFrame(), 2*time.Second)
		},
		func() bool {
			return faultOn("broker slow past the deadline", brokerB, rmqsim.Slow(3*time.Second), 3*time.Second)
		},
		func() bool { return faultOn("oversized length", brokerA[1], rmqsim.OversizedLength(), 2*time.Second) },
		func() bool {
			return faultOn("runtime info in startup window", brokerA[0], rmqsim.NoSuchElement(), 2*time.Second)
		},
		func() bool { // the NameServer restarts and forgets every broker for a moment
			st.fault("namesrv restarted")
			ns := sim.NameServers()[0]
			ns.Kill()
			ok := hold(time.Second)
			if err := ns.Restart(); err != nil {
				t.Errorf("restart NameServer: %v", err)
			}
			return ok
		},
	}
	for i := 0; ; i++ {
		if !steps[i%len(steps)]() || !hold(healthyGap) {
			return
		}
		checkpoint()
	}
}

var goroutinesRE = regexp.MustCompile(`(?m)^go_goroutines (\d+)$`)

// read samples the exporter: RSS and open files from /proc, goroutines from
// its own go_goroutines.
func read(t *testing.T, client *http.Client, p *proc, at time.Duration) sample {
	s := sample{at: at}
	pid := p.cmd.Process.Pid
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Errorf("exporter process gone: %v", err)
		return s
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			s.rss = kb << 10
		}
	}
	f.Close()
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(ents)
	}
	_, body, err := get(client, p.url+"/metrics?collect[]=cluster")
	if err == nil {
		if m := goroutinesRE.FindSubmatch(body); m != nil {
			s.goroutines, _ = strconv.Atoi(string(m[1]))
		} else {
			t.Error("go_goroutines is not exported")
		}
	}
	return s
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*q))]
}

// analyse compares the first and the last third of the samples taken after
// the warm-up, checks the quiet readings and the scrape outcomes, and
// returns the report.
func analyse(t *testing.T, dur time.Duration, samples, checkpoints []sample, quietStart, quietEnd sample, st *stats, elapsed time.Duration) string {
	warm := min(dur/warmupShare, warmupMax)
	var steady []sample
	for _, s := range checkpoints {
		if s.at >= warm && s.goroutines > 0 {
			steady = append(steady, s)
		}
	}
	if len(steady) < minCheckpoints {
		t.Fatalf("only %d checkpoints after the %v warm-up; run longer", len(steady), warm)
	}
	third := len(steady) / 3
	first, last := steady[:third], steady[len(steady)-third:]
	col := func(ss []sample, f func(sample) float64) []float64 {
		out := make([]float64, len(ss))
		for i, s := range ss {
			out[i] = f(s)
		}
		return out
	}
	rss := func(s sample) float64 { return float64(s.rss) }
	gor := func(s sample) float64 { return float64(s.goroutines) }
	fds := func(s sample) float64 { return float64(s.fds) }
	maxOf := func(xs []float64) float64 { return slices.Max(xs) }

	r1, r3 := median(col(first, rss)), median(col(last, rss))
	g1, g3 := median(col(first, gor)), median(col(last, gor))
	f1, f3 := median(col(first, fds)), median(col(last, fds))
	if r3 > r1*rssSlack+rssSlackBytes {
		t.Errorf("RSS grew: median %.1f MiB in the first third, %.1f MiB in the last", r1/(1<<20), r3/(1<<20))
	}
	if g3 > g1+goroutinesSlack {
		t.Errorf("goroutines grew: median %.0f in the first third, %.0f in the last", g1, g3)
	}
	if f3 > f1+fdsSlack {
		t.Errorf("open files grew: median %.0f in the first third, %.0f in the last", f1, f3)
	}
	if quietEnd.goroutines > quietStart.goroutines+quietGoroutines {
		t.Errorf("quiet goroutines: %d before the run, %d after", quietStart.goroutines, quietEnd.goroutines)
	}
	if quietEnd.fds > quietStart.fds+quietFDs {
		t.Errorf("quiet open files: %d before the run, %d after", quietStart.fds, quietEnd.fds)
	}
	total := st.scrapes.Load()
	if want := int64(elapsed.Seconds()*scrapeRate) * 9 / 10; total < want {
		t.Errorf("%d scrapes in %v, want at least %d", total, elapsed, want)
	}
	if n := st.non200.Load(); n > 0 {
		t.Errorf("%d scrapes answered other than 200", n)
	}
	if n := st.invalid.Load(); n > 0 {
		t.Errorf("%d checked scrapes had an invalid exposition", n)
	}
	if n := st.failed.Load(); float64(n) > maxFailedShare*float64(total) {
		t.Errorf("%d of %d scrapes failed at the HTTP level", n, total)
	}

	st.mu.Lock()
	lat := st.latencies
	faults := st.faults
	st.mu.Unlock()
	var b strings.Builder
	all := func(f func(sample) float64) float64 { return maxOf(col(samples, f)) }
	fmt.Fprintf(&b, "- Soak: %v (%v after a %v warm-up), %d checkpoints, %d scrapes (%.1f/s)\n",
		dur, (elapsed - warm).Round(time.Second), warm.Round(time.Second), len(steady), total, float64(total)/elapsed.Seconds())
	fmt.Fprintf(&b, "- Scrapes: %d non-200, %d failed, %d invalid of %d checked; latency p50 %v, p99 %v, max %v\n",
		st.non200.Load(), st.failed.Load(), st.invalid.Load(), total/10,
		quantile(lat, 0.5).Round(time.Millisecond), quantile(lat, 0.99).Round(time.Millisecond), quantile(lat, 1).Round(time.Millisecond))
	fmt.Fprintf(&b, "\n| | checkpoints, first third (median / max) | checkpoints, last third (median / max) | max of every 1s sample | quiet start | quiet end |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| RSS (MiB) | %.1f / %.1f | %.1f / %.1f | %.1f | %.1f | %.1f |\n",
		r1/(1<<20), maxOf(col(first, rss))/(1<<20), r3/(1<<20), maxOf(col(last, rss))/(1<<20), all(rss)/(1<<20),
		float64(quietStart.rss)/(1<<20), float64(quietEnd.rss)/(1<<20))
	fmt.Fprintf(&b, "| goroutines | %.0f / %.0f | %.0f / %.0f | %.0f | %d | %d |\n",
		g1, maxOf(col(first, gor)), g3, maxOf(col(last, gor)), all(gor), quietStart.goroutines, quietEnd.goroutines)
	fmt.Fprintf(&b, "| open fds | %.0f / %.0f | %.0f / %.0f | %.0f | %d | %d |\n",
		f1, maxOf(col(first, fds)), f3, maxOf(col(last, fds)), all(fds), quietStart.fds, quietEnd.fds)
	names := make([]string, 0, len(faults))
	for n := range faults {
		names = append(names, n)
	}
	slices.Sort(names)
	b.WriteString("\n- Faults injected:")
	for _, n := range names {
		fmt.Fprintf(&b, " %s ×%d;", n, faults[n])
	}
	b.WriteString("\n")
	return b.String()
}
