package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/collector"
)

func noEnv(string) string { return "" }

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustParse(t *testing.T, args []string, env func(string) string) *config {
	t.Helper()
	c, err := parseConfig(args, env)
	if err != nil {
		t.Fatalf("parseConfig(%q): %v", args, err)
	}
	return c
}

func TestParseConfigDefaults(t *testing.T) {
	c := mustParse(t, nil, noEnv)
	if c.targets.Mode != collector.ModeSidecar || !slices.Equal(c.targets.Brokers, []string{"127.0.0.1:10911"}) || len(c.targets.NameServers) != 0 {
		t.Errorf("targets = %+v, want sidecar on 127.0.0.1:10911", c.targets)
	}
	if c.targets.States == nil {
		t.Error("targets have no TargetStates: a down broker would be logged at WARN on every scrape")
	}
	if c.targets.Concurrency != collector.DefaultConcurrency || c.options.Concurrency != collector.DefaultConcurrency {
		t.Errorf("concurrency = %d/%d, want %d", c.targets.Concurrency, c.options.Concurrency, collector.DefaultConcurrency)
	}
	if c.timeout != 10*time.Second || c.timeoutOffset != 500*time.Millisecond {
		t.Errorf("timeout = %v offset %v", c.timeout, c.timeoutOffset)
	}
	if c.maxFrameSize != 64<<20 || c.maxRequests != 40 || c.telemetryPath != "/metrics" {
		t.Errorf("frame %d, max requests %d, path %q", c.maxFrameSize, c.maxRequests, c.telemetryPath)
	}
	if got := *c.web.WebListenAddresses; !slices.Equal(got, []string{":9187"}) {
		t.Errorf("listen = %v", got)
	}
	if c.credentials != nil || c.tls != nil || c.probeAllowed != nil || c.authModules != nil {
		t.Errorf("unexpected creds %v, tls %v, probe %v, modules %v", c.credentials, c.tls, c.probeAllowed, c.authModules)
	}
	if !c.options.LagSeconds || c.options.DLedgerTermProbe || c.options.PerQueue || c.options.SystemTopics || c.options.RetryTopics {
		t.Errorf("options = %+v", c.options)
	}
	if c.options.Topics.Include != nil || c.options.Groups.Exclude != nil {
		t.Errorf("filters should be empty: %+v %+v", c.options.Topics, c.options.Groups)
	}
	for _, r := range collector.Registrations() {
		if c.enabled[r.Name] != r.Default {
			t.Errorf("collector %s enabled = %v, want default %v", r.Name, c.enabled[r.Name], r.Default)
		}
	}
}

func TestParseConfigModes(t *testing.T) {
	c := mustParse(t, []string{"--rocketmq.namesrv-address=ns2:9876", "--rocketmq.namesrv-address=ns1:9876", "--rocketmq.concurrency=4"}, noEnv)
	if c.targets.Mode != collector.ModeCluster || !slices.Equal(c.targets.NameServers, []string{"ns2:9876", "ns1:9876"}) || len(c.targets.Brokers) != 0 {
		t.Errorf("targets = %+v, want cluster mode keeping flag order", c.targets)
	}
	if c.targets.Concurrency != 4 || c.options.Concurrency != 4 {
		t.Errorf("concurrency not passed on: %+v %+v", c.targets, c.options)
	}
	c = mustParse(t, []string{"--rocketmq.broker-address=10.0.0.1:10911", "--rocketmq.broker-address=[::1]:10911"}, noEnv)
	if c.targets.Mode != collector.ModeSidecar || !slices.Equal(c.targets.Brokers, []string{"10.0.0.1:10911", "[::1]:10911"}) {
		t.Errorf("targets = %+v", c.targets)
	}
}

func TestParseConfigCollectors(t *testing.T) {
	c := mustParse(t, []string{"--no-collector.topic", "--collector.per-queue", "--collector.topic.system", "--collector.topic.retry",
		"--collector.topic.include=Topic.*", "--collector.consumer.exclude=CID_.*", "--no-collector.consumer.lag-seconds",
		"--collector.dledger.term-probe"}, noEnv)
	if c.enabled["topic"] || !c.enabled["broker"] {
		t.Errorf("enabled = %v", c.enabled)
	}
	if !c.options.PerQueue || !c.options.SystemTopics || !c.options.RetryTopics || c.options.LagSeconds || !c.options.DLedgerTermProbe {
		t.Errorf("options = %+v", c.options)
	}
	if !c.options.Topics.Match("TopicA") || c.options.Topics.Match("xTopicA") {
		t.Error("topic include not anchored or not applied")
	}
	if c.options.Groups.Match("CID_x") || !c.options.Groups.Match("GroupA") {
		t.Error("group exclude not applied")
	}

	c = mustParse(t, []string{"--collector.disable-defaults", "--collector.broker"}, noEnv)
	for name, on := range c.enabled {
		if on != (name == "broker") {
			t.Errorf("disable-defaults: %s = %v", name, on)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rocketmq.namesrv-address=ns:9876", "--rocketmq.broker-address=b:10911"}, "not both"},
		{[]string{"--rocketmq.broker-address=nohost"}, "nohost"},
		{[]string{"--rocketmq.broker-address=h:0"}, "bad port"},
		{[]string{"--rocketmq.namesrv-address=:9876"}, "missing host"},
		{[]string{"--rocketmq.timeout=0s"}, "--rocketmq.timeout"},
		{[]string{"--rocketmq.timeout-offset=-1s"}, "--rocketmq.timeout-offset"},
		{[]string{"--rocketmq.concurrency=0"}, "--rocketmq.concurrency"},
		{[]string{"--rocketmq.max-frame-size=10B"}, "--rocketmq.max-frame-size"},
		{[]string{"--web.max-requests=-1"}, "--web.max-requests"},
		{[]string{"--web.telemetry-path=metrics"}, "must start with /"},
		{[]string{"--web.telemetry-path=/probe"}, "collides"},
		{[]string{"--collector.topic.include=("}, "--collector.topic"},
		{[]string{"--collector.consumer.exclude=[a"}, "--collector.consumer"},
		{[]string{"--probe.allowed-targets=("}, "--probe.allowed-targets"},
		{[]string{"--rocketmq.tls.insecure-skip-verify"}, "need --rocketmq.tls"},
		{[]string{"--rocketmq.tls", "--rocketmq.tls.ca-file=/nonexistent/ca.pem"}, "CA file"},
		{[]string{"--collector.nope"}, "unknown long flag"},
		{[]string{"--config.file=/nonexistent/config.yml"}, "--config.file"},
	} {
		_, err := parseConfig(tc.args, noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q) error = %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
}

func TestParseConfigTLS(t *testing.T) {
	c := mustParse(t, []string{"--rocketmq.tls", "--rocketmq.tls.insecure-skip-verify", "--rocketmq.tls.server-name=broker.example"}, noEnv)
	if c.tls == nil || !c.tls.InsecureSkipVerify || c.tls.ServerName != "broker.example" {
		t.Errorf("tls = %+v", c.tls)
	}
}

const (
	testAccessKey = "rocketmq2"
	testSecret    = "s3cr3t-Value-that-must-not-leak"
	testToken     = "t0ken-that-must-not-leak"
)

func TestParseConfigCredentials(t *testing.T) {
	env := envOf(map[string]string{
		"ROCKETMQ_ACCESS_KEY": testAccessKey + "\n",
		"ROCKETMQ_SECRET_KEY": testSecret + "\r\n",
	})
	c := mustParse(t, nil, env)
	if c.credentials == nil || c.credentials.AccessKey != testAccessKey || c.credentials.SecretKey != testSecret || c.credentials.SecurityToken != "" {
		t.Fatalf("env credentials = %v", c.credentials)
	}
	if got := strings.Join(c.credentialSources, ","); !strings.Contains(got, "env ROCKETMQ_SECRET_KEY") || strings.Contains(got, testSecret) {
		t.Errorf("sources = %q", got)
	}

	// Files win over the environment; only the trailing newline is dropped.
	sk := writeFile(t, "sk", "file-"+testSecret+" \n")
	tok := writeFile(t, "tok", testToken+"\n")
	c = mustParse(t, []string{"--rocketmq.secret-key-file=" + sk, "--rocketmq.security-token-file=" + tok}, env)
	if c.credentials.SecretKey != "file-"+testSecret+" " || c.credentials.SecurityToken != testToken || c.credentials.AccessKey != testAccessKey {
		t.Errorf("file credentials = %q %q %q", c.credentials.AccessKey, c.credentials.SecretKey, c.credentials.SecurityToken)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"ROCKETMQ_ACCESS_KEY": testAccessKey}, "no secret key"},
		{nil, map[string]string{"ROCKETMQ_SECRET_KEY": testSecret}, "no access key"},
		{nil, map[string]string{"ROCKETMQ_SECURITY_TOKEN": testToken}, "no access key"},
		{[]string{"--rocketmq.secret-key-file=/nonexistent/sk"}, map[string]string{"ROCKETMQ_ACCESS_KEY": testAccessKey}, "secret key"},
		{[]string{"--rocketmq.access-key-file=" + writeFile(t, "empty", "\n")}, nil, "empty"},
		{[]string{"--rocketmq.secret-key-file=" + writeFile(t, "big", strings.Repeat("x", 70<<10))}, map[string]string{"ROCKETMQ_ACCESS_KEY": "a"}, "larger than"},
	} {
		_, err := parseConfig(tc.args, envOf(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: error = %v, want %q", tc.args, tc.env, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), testToken) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

func TestParseConfigProbeAndAuthModules(t *testing.T) {
	ak := writeFile(t, "ak", "probe-user\n")
	sk := writeFile(t, "sk", testSecret+"\n")
	cfgFile := writeFile(t, "config.yml", "auth_modules:\n  prod:\n    access_key_file: "+ak+"\n    secret_key_file: "+sk+"\n")
	c := mustParse(t, []string{"--probe.allowed-targets=10\\.0\\.0\\.\\d+:\\d+", "--config.file=" + cfgFile}, noEnv)
	if c.probeAllowed == nil || !c.probeAllowed.MatchString("10.0.0.7:10911") || c.probeAllowed.MatchString("x10.0.0.7:10911") {
		t.Errorf("probe pattern = %v, want anchored", c.probeAllowed)
	}
	m, ok := c.authModules["prod"]
	if !ok || m.credentials.AccessKey != "probe-user" || m.credentials.SecretKey != testSecret {
		t.Fatalf("auth modules = %v", c.authModules)
	}
	if c.credentials != nil {
		t.Error("auth modules must not become the default account")
	}

	for _, tc := range []struct{ yaml, want string }{
		{"auth_modules:\n  prod:\n    access_key: x\n", "field access_key not found"},
		{"auth_modules:\n  prod:\n    access_key_file: " + ak + "\n", "needs access_key_file and secret_key_file"},
		{"auth_modules:\n  prod:\n    access_key_file: " + ak + "\n    secret_key_file: /nonexistent\n", "auth module \"prod\""},
		{"modules: {}\n", "field modules not found"},
	} {
		_, err := parseConfig([]string{"--config.file=" + writeFile(t, "c.yml", tc.yaml)}, noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestScrapeTimeout(t *testing.T) {
	const fallback, offset, max = 10 * time.Second, 500 * time.Millisecond, time.Minute
	for _, tc := range []struct {
		header  string
		want    time.Duration
		wantErr bool
	}{
		{"", fallback, false},
		{"5", 4500 * time.Millisecond, false},
		{"2.5", 2 * time.Second, false},
		{"0.5", 250 * time.Millisecond, true},
		{"0.2", 100 * time.Millisecond, true},
		{"-3", fallback, true},
		{"abc", fallback, true},
		{"NaN", fallback, true},
		{"+Inf", max, false},
		{"3600", max, false},
	} {
		got, err := scrapeTimeout(tc.header, fallback, offset, max)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("scrapeTimeout(%q) = %v, %v; want %v, err=%v", tc.header, got, err, tc.want, tc.wantErr)
		}
	}
	if got, _ := scrapeTimeout("", 2*max, offset, max); got != max {
		t.Errorf("fallback above max = %v, want capped at %v", got, max)
	}
}
