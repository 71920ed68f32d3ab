package main

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	prober "github.com/rocketmq-exporter/rocketmq_exporter/canary"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

// parseCanary parses a command line and returns the canary's
// configuration.
func parseCanary(t *testing.T, args []string, env func(string) string) (*prober.Config, error) {
	t.Helper()
	cfg, err := parseConfig(args, env)
	if err != nil {
		return nil, err
	}
	return cfg.canary, nil
}

func TestCanaryFlags(t *testing.T) {
	off, err := parseCanary(t, []string{"--rocketmq.namesrv-address=10.0.0.1:9876"}, noEnv)
	if err != nil || off != nil {
		t.Fatalf("canary without --canary.enable: %+v %v", off, err)
	}

	cc, err := parseCanary(t, []string{"--rocketmq.namesrv-address=10.0.0.1:9876", "--canary.enable",
		"--canary.interval=250ms", "--canary.sla=2s", "--canary.lost-after=30s", "--canary.topic=probe", "--canary.group=probers",
		"--canary.client-log-level=warning"}, envOf(map[string]string{envAccessKey: "ak", envSecretKey: "sk"}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cc.NameServers, []string{"10.0.0.1:9876"}) || cc.LocalBrokers != nil || cc.Topic != "probe" ||
		cc.Group != "probers" || cc.Interval != 250*time.Millisecond || cc.SLA != 2*time.Second || cc.LostAfter != 30*time.Second ||
		cc.SendTimeout != prober.DefaultSendTimeout || cc.ClientLogLevel != prober.ClientLogWarning {
		t.Errorf("cluster mode canary: %+v", cc)
	}
	if cc.Credentials == nil || cc.Credentials.AccessKey != "ak" {
		t.Errorf("the exporter's ACL account is not reused: %v", cc.Credentials)
	}

	side, err := parseCanary(t, []string{"--rocketmq.broker-address=10.0.0.5:10911", "--canary.enable"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(side.LocalBrokers, []string{"10.0.0.5:10911"}) || len(side.NameServers) != 0 {
		t.Errorf("sidecar canary: %+v", side)
	}
	side, err = parseCanary(t, []string{"--rocketmq.broker-address=10.0.0.5:10911", "--canary.enable",
		"--canary.namesrv-address=10.0.0.1:9876"}, noEnv)
	if err != nil || !reflect.DeepEqual(side.NameServers, []string{"10.0.0.1:9876"}) {
		t.Errorf("sidecar canary with its own NameServer: %+v %v", side, err)
	}

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"tls":        {[]string{"--rocketmq.tls"}, "cannot use TLS"},
		"log level":  {[]string{"--canary.client-log-level=loud"}, "--canary.client-log-level"},
		"lost < sla": {[]string{"--canary.sla=2m"}, "lost-after"},
		"topic":      {[]string{"--canary.topic=a b"}, "topic"},
		"namesrv":    {[]string{"--canary.namesrv-address=nope"}, "--canary.namesrv-address"},
	} {
		args := append([]string{"--rocketmq.namesrv-address=10.0.0.1:9876", "--canary.enable"}, tc.args...)
		_, err := parseCanary(t, args, noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one about %q", name, err, tc.want)
		}
	}
}

// TestBinaryCanary runs the binary with the canary against the simulated
// cluster, in cluster and sidecar mode, and reads its series on /metrics.
func TestBinaryCanary(t *testing.T) {
	sim := startSim(t, rmqsim.Spec{Groups: []rmqsim.GroupSpec{{Cluster: "C", Name: "broker-a"}, {Cluster: "C", Name: "broker-b"}}})
	for _, g := range []string{"broker-a", "broker-b"} {
		if err := sim.CreateTopic(g, prober.DefaultTopic, 2); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		mode    string
		target  string
		brokers []string
	}{
		{"cluster", "--rocketmq.namesrv-address=" + sim.NameServerAddrs()[0], []string{"broker-a", "broker-b"}},
		{"sidecar", "--rocketmq.broker-address=" + sim.Group("broker-b")[0].Addr(), []string{"broker-b"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			p := startExporter(t, nil, tc.target, "--canary.enable", "--canary.interval=50ms", "--canary.sla=500ms",
				"--canary.client-log-level=warning")
			var body string
			deadline := time.Now().Add(30 * time.Second)
			for {
				body = p.scrape(t, "/metrics")
				// The broker-side collectors see the canary's traffic and group.
				done := strings.Contains(body, "\nrocketmq_canary_up 1\n") &&
					canaryTopicMessages.MatchString(body) && canaryGroupOnline.MatchString(body)
				for _, b := range tc.brokers {
					done = done && canaryCount.FindStringSubmatch(body) != nil &&
						strings.Contains(body, `rocketmq_canary_end_to_end_latency_seconds_count{broker="`+b+`"}`) &&
						!strings.Contains(body, `rocketmq_canary_end_to_end_latency_seconds_count{broker="`+b+`"} 0`)
				}
				if done {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no round trip on /metrics:\n%s\nlogs:\n%s", body, p.logs)
				}
				time.Sleep(100 * time.Millisecond)
			}
			mustContain(t, body,
				"# HELP rocketmq_canary_produce_total ",
				"# TYPE rocketmq_canary_end_to_end_latency_seconds histogram",
				`rocketmq_canary_end_to_end_latency_seconds_bucket{broker="`+tc.brokers[0]+`",le="0.5"}`,
				`rocketmq_canary_info{group="rocketmq_exporter_canary",mode="`+tc.mode+`",topic="rocketmq_exporter_canary"} 1`,
				"rocketmq_canary_sla_seconds 0.5",
			)
			if tc.mode == "sidecar" && strings.Contains(body, `broker="broker-a"`) {
				t.Errorf("the sidecar of broker-b reports on broker-a:\n%s", body)
			}
			stopExporter(t, p)
			if strings.Contains(p.logs.String(), "did not shut down in time") {
				t.Errorf("canary shutdown timed out:\n%s", p.logs)
			}
		})
	}
}

var (
	canaryCount         = regexp.MustCompile(`(?m)^rocketmq_canary_produce_total\{broker="[^"]+"\} [1-9]`)
	canaryTopicMessages = regexp.MustCompile(`(?m)^rocketmq_topic_messages_total\{[^}]*topic="rocketmq_exporter_canary"[^}]*\} [1-9]`)
	canaryGroupOnline   = regexp.MustCompile(`(?m)^rocketmq_consumer_group_consumers\{[^}]*group="rocketmq_exporter_canary"[^}]*\} 1$`)
)
