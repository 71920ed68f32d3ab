// Command rocketmq_exporter serves Prometheus metrics read from Apache
// RocketMQ NameServers and brokers over the remoting protocol.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/rocketmq-exporter/rocketmq_exporter/collector"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// HTTP server limits. WriteTimeout bounds a whole scrape; the scrape's own
// deadline is kept below it (maxScrapeTimeout) so a slow cluster yields a
// partial answer rather than a connection cut mid-body.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 5 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxScrapeTimeout  = writeTimeout - 10*time.Second
	shutdownTimeout   = 10 * time.Second
)

func main() {
	defaultGCPercent(os.Getenv)
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// gcPercent is the garbage collector's target when neither GOGC nor
// GOMEMLIMIT is set. A scrape's memory is mostly answers decoded and dropped
// within the scrape plus the series of one exposition, so the heap Go lets
// grow to twice the live data (GOGC=100) is mostly garbage; at 50 it stays
// at 1.5 times. On the 10,000-topic scale scenario that is 57 instead of
// 68 MiB of peak RSS, for no time measurable on its noisy 2-core machine
// (50-90 ms of CPU per scrape when scrapes made half as much garbage again;
// docs/benchmarks.md).
// It scales with the live heap, unlike a fixed GOMEMLIMIT, so a larger
// cluster never makes the collector thrash. An operator who sets either
// variable has chosen a policy of their own, which is left alone.
const gcPercent = 50

// defaultGCPercent applies gcPercent unless GOGC or GOMEMLIMIT is set, and
// says whether it did.
func defaultGCPercent(env func(string) string) bool {
	if env("GOGC") != "" || env("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(gcPercent)
	return true
}

func run(args []string, env func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, env)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", exporterName, err)
		return 2
	}
	cfg.logConfig.Writer = stderr
	logger := promslog.New(cfg.logConfig)
	logger.Info("Starting "+exporterName, "version", version.Info())
	logger.Info("Build context", "build_context", version.BuildContext())

	srv, err := newServer(cfg, logger)
	if err != nil {
		logger.Error("Cannot start", "err", err)
		return 1
	}
	defer srv.close()

	httpServer := &http.Server{
		Handler:           srv.handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- web.ListenAndServe(httpServer, cfg.web, logger) }()
	srv.ready.Store(true)

	select {
	case err := <-served:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("HTTP server failed", "err", err)
			return 1
		}
		return 0
	case <-ctx.Done():
		logger.Info("Shutting down")
		srv.ready.Store(false)
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := httpServer.Shutdown(sctx); err != nil {
			logger.Warn("HTTP shutdown", "err", err)
		}
		<-served
		return 0
	}
}

// server holds what every request shares: the clients (one per ACL account,
// each with its connection pool), the collectors and the exporter's own
// long-lived registry.
type server struct {
	cfg        *config
	logger     *slog.Logger
	collectors map[string]collector.Collector
	client     collector.Client
	// moduleClients are the /probe auth modules' clients.
	moduleClients map[string]collector.Client
	// probeStates remember which /probe targets are down, per auth module
	// ("" = default credentials), so only state changes are logged.
	probeStates map[string]*collector.TargetStates
	// shared lets concurrent scrapes of the same targets (an HA pair of
	// Prometheus servers) share one collection.
	shared  *collector.Shared
	closers []func() error
	selfReg *prometheus.Registry
	// expose writes /metrics and /probe answers.
	expose *exposer
	// slots bounds concurrent scrapes (nil = unlimited).
	slots chan struct{}
	ready atomic.Bool
}

func newServer(cfg *config, logger *slog.Logger) (*server, error) {
	s := &server{cfg: cfg, logger: logger, moduleClients: map[string]collector.Client{},
		probeStates: map[string]*collector.TargetStates{"": collector.NewTargetStates(0)},
		shared:      collector.NewShared()}
	var err error
	s.collectors, err = collector.NewCollectors(collector.Registrations(), cfg.enabled, cfg.options, logger)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(s.collectors))
	for n := range s.collectors {
		names = append(names, n)
	}
	sort.Strings(names)
	logger.Info("Collectors enabled", "collectors", names)
	logger.Info("Targets", "mode", cfg.targets.Mode.String(), "brokers", cfg.targets.Brokers, "namesrvs", cfg.targets.NameServers)
	if cfg.credentials != nil {
		// Where the secrets came from, never what they are.
		logger.Info("ACL signing enabled", "sources", cfg.credentialSources)
	}
	if cfg.tls != nil {
		logger.Info("TLS to RocketMQ enabled", "insecure_skip_verify", cfg.tls.InsecureSkipVerify)
	}

	c, raw := newRocketMQClient(cfg, cfg.credentials, logger)
	s.client = c
	s.closers = append(s.closers, raw.Close)
	rawClients := map[string]*rocketmq.Client{"default": raw}
	for name, m := range cfg.authModules {
		mc, raw := newRocketMQClient(cfg, m.credentials, logger.With("auth_module", name))
		s.moduleClients[name] = mc
		s.probeStates[name] = collector.NewTargetStates(0)
		s.closers = append(s.closers, raw.Close)
		rawClients["auth_module:"+name] = raw
		logger.Info("Probe auth module loaded", "auth_module", name, "sources", m.sources)
	}
	if cfg.probeAllowed != nil {
		logger.Info("/probe enabled", "allowed_targets", cfg.probeAllowed.String())
	}

	s.selfReg = prometheus.NewRegistry()
	s.selfReg.MustRegister(
		versioncollector.NewCollector(exporterName),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		collector.NewRemotingCollector(rawClients),
	)
	if s.expose, err = newExposer(s.selfReg, s.promHandler, func(msg string) { s.logger.Error("Serving metrics", "err", msg) }); err != nil {
		s.close()
		return nil, err
	}
	if err := s.startCanary(cfg.canary); err != nil {
		s.close()
		return nil, err
	}
	if cfg.maxRequests > 0 {
		s.slots = make(chan struct{}, cfg.maxRequests)
	}
	return s, nil
}

func (s *server) close() {
	for _, c := range s.closers {
		if err := c(); err != nil {
			s.logger.Warn("Closing RocketMQ client", "err", err)
		}
	}
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(s.cfg.telemetryPath, promhttp.InstrumentMetricHandler(s.selfReg, s.limit(http.HandlerFunc(s.serveMetrics))))
	mux.Handle("/probe", s.limit(http.HandlerFunc(s.serveProbe)))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Healthy\n")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "Not ready\n")
			return
		}
		_, _ = io.WriteString(w, "Ready\n")
	})
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "RocketMQ Exporter",
		Description: "Prometheus exporter for Apache RocketMQ (" + s.cfg.targets.Mode.String() + " mode)",
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: s.cfg.telemetryPath, Text: "Metrics"},
			{Address: "/probe", Text: "Probe", Description: "/probe?target=host:port&kind=broker|namesrv&auth_module=name (needs --probe.allowed-targets)"},
			{Address: "/-/healthy", Text: "Health"},
			{Address: "/-/ready", Text: "Readiness"},
		},
	})
	if err != nil {
		// The landing page is built from constants; failing here is a bug.
		panic(err)
	}
	mux.Handle("/", landing)
	return mux
}

// limit answers 503 when --web.max-requests scrapes are already running, as
// promhttp's MaxRequestsInFlight does; it is done here because /metrics and
// /probe write their answers themselves (collector.TextWriter, see
// gather.go), and promhttp, used only for protobuf, is built per request.
func (s *server) limit(h http.Handler) http.Handler {
	if s.slots == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
			h.ServeHTTP(w, r)
		default:
			http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", cap(s.slots)), http.StatusServiceUnavailable)
		}
	})
}

// scrapeContext derives the scrape's deadline from the request.
func (s *server) scrapeContext(r *http.Request) (context.Context, context.CancelFunc) {
	d, err := scrapeTimeout(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), s.cfg.timeout, s.cfg.timeoutOffset, maxScrapeTimeout)
	if err != nil {
		s.logger.Warn("Ignoring the scrape timeout header", "err", err, "timeout", d)
	}
	return context.WithTimeout(r.Context(), d)
}

// selectCollectors applies node_exporter-style collect[] parameters: only
// enabled collectors may be picked.
func (s *server) selectCollectors(names []string) (map[string]collector.Collector, error) {
	if len(names) == 0 {
		return s.collectors, nil
	}
	out := map[string]collector.Collector{}
	for _, n := range names {
		c, ok := s.collectors[n]
		if !ok {
			return nil, fmt.Errorf("collector %q is unknown or not enabled", n)
		}
		out[n] = c
	}
	return out, nil
}

func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	cs, err := s.selectCollectors(r.URL.Query()["collect[]"])
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := s.scrapeContext(r)
	defer cancel()
	s.expose.serve(w, r, s.shared.New(ctx, s.cfg.targets, s.client, cs, s.logger), s.selfReg)
}

// promHandler serves what could be gathered even if some of it was invalid:
// one bad series must not cost the whole scrape. It serves the formats the
// exposer does not write itself (protobuf).
func (s *server) promHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      log.New(&slogWriter{s.logger}, "", 0),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      s.selfReg,
	})
}

// slogWriter adapts promhttp's Println-style error log to slog.
type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	w.l.Error("Serving metrics", "err", string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
