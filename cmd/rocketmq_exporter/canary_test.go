package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	prober "github.com/rocketmq-exporter/rocketmq_exporter/canary"
)

// parseCanary parses a command line with the canary flags and returns the
// canary's configuration.
func parseCanary(t *testing.T, args []string, env func(string) string) (*prober.Config, error) {
	t.Helper()
	app, finish := newApp(env)
	flags := addCanaryFlags(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	cfg, err := finish()
	if err != nil {
		t.Fatalf("config %v: %v", args, err)
	}
	return flags.config(cfg)
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
