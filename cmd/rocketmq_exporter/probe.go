package main

import (
	"net/http"

	"github.com/rocketmq-exporter/rocketmq_exporter/collector"
)

// serveProbe is the multi-target pattern: /probe?target=host:port reads one
// broker (kind=broker, the default) or a whole cluster through one NameServer
// (kind=namesrv) with the same collectors as /metrics, into an answer of its
// own (without the exporter's self-metrics). It is off unless --probe.allowed-targets is set, because it makes the
// exporter dial any address a caller names. With kind=namesrv only the
// NameServer is checked against the pattern; the brokers it lists are dialed
// as discovered.
func (s *server) serveProbe(w http.ResponseWriter, r *http.Request) {
	if s.cfg.probeAllowed == nil {
		http.Error(w, "/probe is disabled; start the exporter with --probe.allowed-targets", http.StatusForbidden)
		return
	}
	q := r.URL.Query()
	target := q.Get("target")
	if target == "" {
		http.Error(w, "target is required", http.StatusBadRequest)
		return
	}
	if err := checkHostPort(target); err != nil {
		http.Error(w, "target must be host:port: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !s.cfg.probeAllowed.MatchString(target) {
		s.logger.Warn("Probe of a target not allowed", "target", target)
		http.Error(w, "target not allowed by --probe.allowed-targets", http.StatusForbidden)
		return
	}
	t := collector.Targets{Concurrency: s.cfg.targets.Concurrency}
	switch kind := q.Get("kind"); kind {
	case "", collector.KindBroker:
		t.Mode, t.Brokers = collector.ModeSidecar, []string{target}
	case collector.KindNameServer:
		t.Mode, t.NameServers = collector.ModeCluster, []string{target}
	default:
		http.Error(w, "kind must be broker or namesrv", http.StatusBadRequest)
		return
	}
	client := s.client
	// Per account: a target may answer one ACL identity and refuse another.
	t.States = s.probeStates[""]
	if name := q.Get("auth_module"); name != "" {
		c, ok := s.moduleClients[name]
		if !ok {
			http.Error(w, "unknown auth_module "+name, http.StatusBadRequest)
			return
		}
		client = c
		t.States = s.probeStates[name]
	}
	cs, err := s.selectCollectors(q["collect[]"])
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := s.scrapeContext(r)
	defer cancel()
	s.expose.serve(w, r, s.shared.New(ctx, t, client, cs, s.logger.With("probe", target)), nil)
}
