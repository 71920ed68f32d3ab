package deploy

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "compose/docker-compose.yml"

// loadCompose loads the compose file the way `docker compose` does
// (compose-go: schema validation, interpolation with the defaults of the
// file, consistency of depends_on, network_mode and volume references).
// The environment is empty so the defaults in the file are what is tested.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory("compose"),
		cli.WithEnv(nil),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return p
}

// mounts maps container paths to host paths for a service's bind mounts.
func mounts(t *testing.T, svc types.ServiceConfig) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if _, err := os.Stat(v.Source); err != nil {
			t.Errorf("service %s: bind mount source %s: %v", svc.Name, v.Source, err)
		}
		if !v.ReadOnly {
			t.Errorf("service %s: bind mount %s is writable; the demo only reads repository files", svc.Name, v.Target)
		}
		out[v.Target] = v.Source
	}
	return out
}

// hostPath resolves a container path through the service's bind mounts.
func hostPath(m map[string]string, p string) (string, bool) {
	best := ""
	for target := range m {
		if (p == target || strings.HasPrefix(p, strings.TrimSuffix(target, "/")+"/")) && len(target) > len(best) {
			best = target
		}
	}
	if best == "" {
		return "", false
	}
	return filepath.Join(m[best], strings.TrimPrefix(p, best)), true
}

func TestCompose(t *testing.T) {
	p := loadCompose(t)
	jobs := jobSelector(t)

	var exporters, brokers []string
	for name, svc := range p.Services {
		mounts(t, svc) // every bind mount source exists and is read-only
		switch {
		case isExporterImage(svc.Image):
			exporters = append(exporters, name)
		case strings.HasPrefix(svc.Image, "apache/rocketmq:") && strings.Contains(strings.Join(svc.Command, " "), "mqbroker"):
			brokers = append(brokers, name)
		}
	}
	sort.Strings(exporters)
	sort.Strings(brokers)
	if len(brokers) != 3 || len(exporters) != 3 {
		t.Fatalf("want a 3-node broker group and 3 exporter sidecars, got brokers %v, exporters %v", brokers, exporters)
	}

	// plain_acl.yml accounts, to check the exporters' credentials against.
	accounts := map[string]string{}

	// The DLedger group: every broker's conf names the same three peers, its
	// own id among them, and a NameServer that is a service.
	peersOf := map[string]string{}
	for _, name := range brokers {
		svc := p.Services[name]
		m := mounts(t, svc)
		confPath := ""
		for i, a := range svc.Command {
			if a == "-c" && i+1 < len(svc.Command) {
				confPath = svc.Command[i+1]
			}
		}
		host, ok := hostPath(m, confPath)
		if !ok {
			t.Errorf("%s: broker.conf %q is not mounted", name, confPath)
			continue
		}
		b, err := os.ReadFile(host)
		if err != nil {
			t.Fatal(err)
		}
		conf := properties(string(b))
		if conf["enableDLegerCommitLog"] != "true" {
			t.Errorf("%s: not a DLedger broker", name)
		}
		peers := map[string]string{}
		for _, peer := range strings.Split(conf["dLegerPeers"], ";") {
			id, addr, _ := strings.Cut(peer, "-")
			h, _, err := net.SplitHostPort(addr)
			if err != nil {
				t.Errorf("%s: dLegerPeers entry %q: %v", name, peer, err)
				continue
			}
			if _, ok := p.Services[h]; !ok {
				t.Errorf("%s: DLedger peer %s is not a service", name, h)
			}
			peers[id] = h
		}
		if peers[conf["dLegerSelfId"]] != name {
			t.Errorf("%s: dLegerSelfId %s is peer %q, not this service", name, conf["dLegerSelfId"], peers[conf["dLegerSelfId"]])
		}
		peersOf[name] = conf["dLegerPeers"]
		for _, ns := range strings.Split(conf["namesrvAddr"], ";") {
			h, _, err := net.SplitHostPort(ns)
			if _, ok := p.Services[h]; err != nil || !ok {
				t.Errorf("%s: namesrvAddr %q is not a service", name, ns)
			}
			if !dependsOn(svc, h) {
				t.Errorf("%s does not depend on its NameServer %s", name, h)
			}
		}
		if conf["aclEnable"] == "true" {
			version := strings.TrimPrefix(svc.Image, "apache/rocketmq:")
			acl, ok := m["/home/rocketmq/rocketmq-"+version+"/conf/plain_acl.yml"]
			if !ok {
				t.Errorf("%s: ACL on but no plain_acl.yml mounted into $ROCKETMQ_HOME/conf for image %s", name, svc.Image)
				continue
			}
			for k, v := range aclAccounts(t, acl) {
				accounts[k] = v
			}
		}
		brokerPort := conf["listenPort"]

		// Its exporter: in its network namespace, reading 127.0.0.1:listenPort.
		var exp *types.ServiceConfig
		for _, e := range exporters {
			if s := p.Services[e]; s.NetworkMode == types.NetworkModeServicePrefix+name {
				exp = &s
			}
		}
		if exp == nil {
			t.Errorf("broker %s has no exporter sidecar (network_mode: service:%s)", name, name)
			continue
		}
		if !dependsOn(*exp, name) {
			t.Errorf("%s does not depend on its broker %s", exp.Name, name)
		}
		flags, err := exporterArgs(exp.Command)
		if err != nil {
			t.Errorf("%s: %v", exp.Name, err)
		}
		if got := flags["rocketmq.broker-address"]; len(got) != 1 || got[0] != "127.0.0.1:"+brokerPort {
			t.Errorf("%s reads %q; its broker listens on 127.0.0.1:%s", exp.Name, got, brokerPort)
		}
	}
	for name, peers := range peersOf {
		if peers != peersOf[brokers[0]] {
			t.Errorf("%s: dLegerPeers %q differ from %s's", name, peers, brokers[0])
		}
	}

	// The exporters: flags the binary has, credentials that are an account
	// of plain_acl.yml, a healthcheck on the real health endpoint, and the
	// flags start the real binary.
	for _, name := range exporters {
		svc := p.Services[name]
		if svc.Build == nil {
			t.Errorf("%s: not built from the repository's Dockerfile", name)
		} else if df := filepath.Join(svc.Build.Context, svc.Build.Dockerfile); df != mustAbs(t, filepath.Join(repoRoot, "Dockerfile")) {
			t.Errorf("%s: builds %s, want the repository's Dockerfile", name, df)
		}
		if !svc.ReadOnly || len(svc.CapDrop) == 0 || svc.CapDrop[0] != "ALL" {
			t.Errorf("%s: want read_only and cap_drop: [ALL]", name)
		}
		flags, _ := exporterArgs(svc.Command)
		port, err := listenPort(flags)
		if err != nil || port != bin.defaultPort {
			t.Errorf("%s: listens on %d (%v), want %d", name, port, err, bin.defaultPort)
		}
		secretFile := func(flag string) string {
			v := flags[flag]
			if len(v) != 1 {
				t.Errorf("%s: want one --%s", name, flag)
				return ""
			}
			for _, s := range svc.Secrets {
				target := s.Target
				if target == "" {
					target = "/run/secrets/" + s.Source
				} else if !path.IsAbs(target) {
					target = "/run/secrets/" + target
				}
				if target == v[0] {
					top, ok := p.Secrets[s.Source]
					if !ok || top.File == "" {
						t.Errorf("%s: secret %s has no file", name, s.Source)
						return ""
					}
					b, err := os.ReadFile(top.File)
					if err != nil {
						t.Fatal(err)
					}
					return strings.TrimRight(string(b), "\r\n")
				}
			}
			t.Errorf("%s: --%s=%s is not one of its secrets", name, flag, v[0])
			return ""
		}
		ak, sk := secretFile("rocketmq.access-key-file"), secretFile("rocketmq.secret-key-file")
		if want, ok := accounts[ak]; !ok || want != sk {
			t.Errorf("%s: credentials (%q) are not an account of the brokers' plain_acl.yml", name, ak)
		}
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) < 2 {
			t.Errorf("%s: no healthcheck", name)
		} else {
			u, err := url.Parse(svc.HealthCheck.Test[len(svc.HealthCheck.Test)-1])
			if err != nil || u.Path != "/-/healthy" || u.Port() != strconv.Itoa(port) {
				t.Errorf("%s: healthcheck %q does not fetch /-/healthy on port %d", name, svc.HealthCheck.Test, port)
			}
		}
		if gml, ok := svc.Environment["GOMEMLIMIT"]; !ok || gml == nil {
			t.Errorf("%s: no GOMEMLIMIT", name)
		} else if _, err := parseGoMemLimit(*gml); err != nil {
			t.Errorf("%s: GOMEMLIMIT %q: %v", name, *gml, err)
		}
	}
	env := map[string]string{}
	for k, v := range p.Services[exporters[0]].Environment {
		if v != nil {
			env[k] = *v
		}
	}
	r := startExporter(t, p.Services[exporters[0]].Command, env)
	checkServes(t, r, "/-/ready", "/-/healthy", "/metrics")

	checkComposePrometheus(t, p, jobs, exporters)
	checkComposeAlertmanager(t, p)
	checkComposeGrafana(t, p)
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func dependsOn(svc types.ServiceConfig, name string) bool {
	_, ok := svc.DependsOn[name]
	return ok
}

// aclAccounts reads plain_acl.yml (ACL 1.0): accessKey → secretKey.
func aclAccounts(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var acl struct {
		GlobalWhiteRemoteAddresses []string `json:"globalWhiteRemoteAddresses"`
		Accounts                   []struct {
			AccessKey          string `json:"accessKey"`
			SecretKey          string `json:"secretKey"`
			WhiteRemoteAddress string `json:"whiteRemoteAddress"`
			Admin              bool   `json:"admin"`
			DefaultTopicPerm   string `json:"defaultTopicPerm"`
			DefaultGroupPerm   string `json:"defaultGroupPerm"`
		} `json:"accounts"`
	}
	if err := strictYAML(b, &acl); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, w := range acl.GlobalWhiteRemoteAddresses {
		// The exporters connect from 127.0.0.1: whitelisting it would mean
		// their signatures are never checked.
		if w == "*" || strings.HasPrefix(w, "127.") {
			t.Errorf("%s: globalWhiteRemoteAddresses %q lets the exporters in unsigned", file, w)
		}
	}
	out := map[string]string{}
	for _, a := range acl.Accounts {
		if len(a.SecretKey) < 6 {
			// RocketMQ 4.9 rejects shorter secret keys at startup.
			t.Errorf("%s: secretKey of %s is shorter than 6 characters", file, a.AccessKey)
		}
		out[a.AccessKey] = a.SecretKey
	}
	return out
}

// promConfig is the part of Prometheus' configuration the demo uses;
// promtool (when installed) checks the whole file.
type promConfig struct {
	Global struct {
		ScrapeInterval     string `json:"scrape_interval"`
		ScrapeTimeout      string `json:"scrape_timeout"`
		EvaluationInterval string `json:"evaluation_interval"`
	} `json:"global"`
	RuleFiles []string `json:"rule_files"`
	Alerting  struct {
		Alertmanagers []struct {
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"alertmanagers"`
	} `json:"alerting"`
	ScrapeConfigs []struct {
		JobName       string `json:"job_name"`
		MetricsPath   string `json:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `json:"targets"`
		} `json:"static_configs"`
		RelabelConfigs []map[string]any `json:"relabel_configs"`
	} `json:"scrape_configs"`
}

func flagValue(cmd []string, flag string) string {
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func checkComposePrometheus(t *testing.T, p *types.Project, jobs interface{ MatchString(string) bool }, exporters []string) {
	t.Helper()
	svc, ok := p.Services["prometheus"]
	if !ok {
		t.Fatal("no prometheus service")
	}
	m := mounts(t, svc)
	cfgPath := flagValue(svc.Command, "--config.file")
	host, ok := hostPath(m, cfgPath)
	if !ok {
		t.Fatalf("prometheus: --config.file=%s is not mounted", cfgPath)
	}
	b, err := os.ReadFile(host)
	if err != nil {
		t.Fatal(err)
	}
	var cfg promConfig
	if err := strictYAML(b, &cfg); err != nil {
		t.Fatalf("%s: %v", host, err)
	}

	// Rule files: through the mounts, the repository's alerts/*.yml, all of
	// them (the alerts need the recording rules).
	var loaded []string
	for _, rf := range cfg.RuleFiles {
		if !path.IsAbs(rf) {
			rf = path.Join(path.Dir(cfgPath), rf)
		}
		h, ok := hostPath(m, rf)
		if !ok {
			t.Errorf("prometheus: rule_files %s is not mounted", rf)
			continue
		}
		files, err := filepath.Glob(h)
		if err != nil {
			t.Fatal(err)
		}
		loaded = append(loaded, files...)
	}
	want, err := filepath.Glob(filepath.Join(repoRoot, "alerts", "*.yml"))
	if err != nil || len(want) == 0 {
		t.Fatalf("alerts/*.yml: %v", err)
	}
	if got, exp := baseNames(loaded), baseNames(want); strings.Join(got, ",") != strings.Join(exp, ",") {
		t.Errorf("prometheus loads rule files %v, the repository has %v", got, exp)
	}

	// Scrape targets: the sidecars answer on their broker's name.
	covered := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if !jobs.MatchString(sc.JobName) && strings.Contains(sc.JobName, "rocketmq") {
			t.Errorf("prometheus job %q does not match the alerts' job selector", sc.JobName)
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				h, port, err := net.SplitHostPort(target)
				if err != nil {
					t.Errorf("prometheus target %q: %v", target, err)
					continue
				}
				if h == "localhost" {
					continue
				}
				if _, ok := p.Services[h]; !ok {
					t.Errorf("prometheus target %q: no service %s", target, h)
				}
				for _, e := range exporters {
					es := p.Services[e]
					if es.NetworkMode != types.NetworkModeServicePrefix+h {
						continue
					}
					flags, _ := exporterArgs(es.Command)
					lp, _ := listenPort(flags)
					if port != strconv.Itoa(lp) {
						t.Errorf("prometheus target %s: exporter %s listens on %d", target, e, lp)
					}
					if !jobs.MatchString(sc.JobName) {
						t.Errorf("job %q scrapes the exporters but does not match the alerts' job selector", sc.JobName)
					}
					covered[e] = true
				}
			}
		}
	}
	for _, e := range exporters {
		if !covered[e] {
			t.Errorf("prometheus does not scrape %s", e)
		}
	}
	for _, am := range cfg.Alerting.Alertmanagers {
		for _, sc := range am.StaticConfigs {
			for _, target := range sc.Targets {
				h, port, _ := net.SplitHostPort(target)
				if _, ok := p.Services[h]; !ok || port != "9093" {
					t.Errorf("prometheus alerting target %q is not the alertmanager service", target)
				}
			}
		}
	}

	// promtool checks the rest (syntax, rule files) in the layout the
	// container sees.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		missingToolCheck(t, "promtool", "promtool check config")
		return
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rf := range cfg.RuleFiles {
		rel := path.Dir(rf)
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range loaded {
			rb, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, rel, filepath.Base(f)), rb, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}

func baseNames(files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, filepath.Base(f))
	}
	sort.Strings(out)
	return out
}

func checkComposeAlertmanager(t *testing.T, p *types.Project) {
	t.Helper()
	svc, ok := p.Services["alertmanager"]
	if !ok {
		t.Fatal("no alertmanager service")
	}
	m := mounts(t, svc)
	host, ok := hostPath(m, flagValue(svc.Command, "--config.file"))
	if !ok {
		t.Fatal("alertmanager: --config.file is not mounted")
	}
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		missingToolCheck(t, "amtool", "amtool check-config")
		return
	}
	if out, err := exec.Command(amtool, "check-config", host).CombinedOutput(); err != nil {
		t.Errorf("amtool check-config %s: %v\n%s", host, err, out)
	}
}

// Grafana provisioning files, the fields the demo uses
// (https://grafana.com/docs/grafana/latest/administration/provisioning/).
type grafanaDatasources struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		Name      string            `json:"name"`
		UID       string            `json:"uid"`
		Type      string            `json:"type"`
		Access    string            `json:"access"`
		URL       string            `json:"url"`
		IsDefault bool              `json:"isDefault"`
		Editable  bool              `json:"editable"`
		JSONData  map[string]string `json:"jsonData"`
	} `json:"datasources"`
}

type grafanaProviders struct {
	APIVersion int `json:"apiVersion"`
	Providers  []struct {
		Name                  string `json:"name"`
		Folder                string `json:"folder"`
		Type                  string `json:"type"`
		DisableDeletion       bool   `json:"disableDeletion"`
		AllowUIUpdates        bool   `json:"allowUiUpdates"`
		UpdateIntervalSeconds int    `json:"updateIntervalSeconds"`
		Options               struct {
			Path string `json:"path"`
		} `json:"options"`
	} `json:"providers"`
}

func checkComposeGrafana(t *testing.T, p *types.Project) {
	t.Helper()
	svc, ok := p.Services["grafana"]
	if !ok {
		t.Fatal("no grafana service")
	}
	m := mounts(t, svc)
	prov, ok := hostPath(m, "/etc/grafana/provisioning")
	if !ok {
		t.Fatal("grafana: /etc/grafana/provisioning is not mounted")
	}
	dsFiles, _ := filepath.Glob(filepath.Join(prov, "datasources", "*.yml"))
	dbFiles, _ := filepath.Glob(filepath.Join(prov, "dashboards", "*.yml"))
	if len(dsFiles) == 0 || len(dbFiles) == 0 {
		t.Fatalf("grafana provisioning %s: want datasources/*.yml and dashboards/*.yml", prov)
	}
	for _, f := range dsFiles {
		b, _ := os.ReadFile(f)
		var ds grafanaDatasources
		if err := strictYAML(b, &ds); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if ds.APIVersion != 1 || len(ds.Datasources) == 0 {
			t.Errorf("%s: want apiVersion 1 and a datasource", f)
		}
		for _, d := range ds.Datasources {
			u, err := url.Parse(d.URL)
			if err != nil || d.Type != "prometheus" {
				t.Errorf("%s: datasource %q (%s %s)", f, d.Name, d.Type, d.URL)
				continue
			}
			if _, ok := p.Services[u.Hostname()]; !ok || u.Port() != "9090" {
				t.Errorf("%s: datasource url %s is not the prometheus service", f, d.URL)
			}
		}
	}
	want, _ := filepath.Glob(filepath.Join(repoRoot, "dashboards", "*.json"))
	for _, f := range dbFiles {
		b, _ := os.ReadFile(f)
		var pv grafanaProviders
		if err := strictYAML(b, &pv); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if pv.APIVersion != 1 || len(pv.Providers) == 0 {
			t.Errorf("%s: want apiVersion 1 and a provider", f)
		}
		for _, pr := range pv.Providers {
			if pr.Type != "file" {
				t.Errorf("%s: provider %s type %q", f, pr.Name, pr.Type)
				continue
			}
			h, ok := hostPath(m, pr.Options.Path)
			if !ok {
				t.Errorf("%s: provider path %s is not mounted", f, pr.Options.Path)
				continue
			}
			got, _ := filepath.Glob(filepath.Join(h, "*.json"))
			if len(got) == 0 || strings.Join(baseNames(got), ",") != strings.Join(baseNames(want), ",") {
				t.Errorf("%s: provider path %s holds %v, the repository's dashboards are %v", f, pr.Options.Path, baseNames(got), baseNames(want))
			}
		}
	}
}

// missingToolCheck notes a check left out because its tool is not installed
// (the rest of the test has run), or fails the test when RMQ_REQUIRE_TOOLS=1:
// CI installs the tools, so there a missing one is a broken install that must
// not pass unnoticed.
func missingToolCheck(t testing.TB, tool, check string) {
	t.Helper()
	if os.Getenv("RMQ_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found and RMQ_REQUIRE_TOOLS=1: cannot run %s", tool, check)
	}
	t.Logf("%s not found: %s skipped (RMQ_REQUIRE_TOOLS=1 makes this a failure)", tool, check)
}
