package canary

import (
	"context"
	"errors"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

type fakeAdmin struct {
	configs map[string]rocketmq.BrokerConfig
	routes  map[string]*rocketmq.TopicRouteData // topic → route; absent: topic not exist
	down    map[string]bool                     // NameServers that fail
}

func (f *fakeAdmin) BrokerConfig(_ context.Context, addr string) (rocketmq.BrokerConfig, error) {
	if c, ok := f.configs[addr]; ok {
		return c, nil
	}
	return nil, errors.New("connection refused")
}

func (f *fakeAdmin) TopicRoute(_ context.Context, ns, topic string) (*rocketmq.TopicRouteData, error) {
	if f.down[ns] {
		return nil, errors.New("connection refused")
	}
	if r, ok := f.routes[topic]; ok {
		return r, nil
	}
	return nil, &rocketmq.ResponseError{RequestCode: rocketmq.CodeGetRouteInfoByTopic, Code: rocketmq.ResponseTopicNotExist}
}

func TestDiscoverSidecarTargets(t *testing.T) {
	admin := &fakeAdmin{configs: map[string]rocketmq.BrokerConfig{
		"m:10911": {"brokerName": "b1", "namesrvAddr": "ns2:9876;ns1:9876"},
		"s:10911": {"brokerName": "b1", "namesrvAddr": "ns1:9876"},
		"x:10911": {"namesrvAddr": "ns1:9876"},
		"y:10911": {"brokerName": "b2"},
	}}
	got, err := discover(context.Background(), &Config{LocalBrokers: []string{"m:10911", "s:10911"}, Admin: admin})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.nameServers, []string{"ns1:9876", "ns2:9876"}) || !got.allows("b1") || got.allows("b2") {
		t.Errorf("sidecar target: %+v", got)
	}
	got, err = discover(context.Background(), &Config{LocalBrokers: []string{"y:10911"}, NameServers: []string{"ns9:9876"}, Admin: admin})
	if err != nil || !reflect.DeepEqual(got.nameServers, []string{"ns9:9876"}) {
		t.Errorf("explicit NameServers: %+v %v", got, err)
	}
	for _, bad := range [][]string{{"x:10911"}, {"y:10911"}, {"gone:10911"}} {
		if _, err := discover(context.Background(), &Config{LocalBrokers: bad, Admin: admin}); err == nil {
			t.Errorf("discover(%v) succeeded", bad)
		}
	}
	cl, err := discover(context.Background(), &Config{NameServers: []string{"ns1:9876"}})
	if err != nil || cl.local != nil || !cl.allows("anything") {
		t.Errorf("cluster target: %+v %v", cl, err)
	}
}

func TestRouteLookup(t *testing.T) {
	admin := &fakeAdmin{
		routes: map[string]*rocketmq.TopicRouteData{"T": {QueueDatas: []rocketmq.QueueData{{BrokerName: "b"}, {BrokerName: "a"}, {BrokerName: "b"}}}},
		down:   map[string]bool{"ns1": true},
	}
	got, err := route(context.Background(), admin, []string{"ns1", "ns2"}, "T")
	if err != nil || !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("route of T: %v %v", got, err)
	}
	if _, err := route(context.Background(), admin, []string{"ns2"}, "U"); !errors.Is(err, errNoRoute) {
		t.Errorf("missing topic: %v", err)
	}
	if _, err := route(context.Background(), admin, []string{"ns1"}, "T"); err == nil || errors.Is(err, errNoRoute) {
		t.Errorf("every NameServer down: %v", err)
	}
}

func TestNSResolverLooksUpHostNamesAndKeepsTheLastAnswer(t *testing.T) {
	answers := map[string][]net.IPAddr{"ns.example": {{IP: net.ParseIP("10.0.0.2")}, {IP: net.ParseIP("10.0.0.1")}}}
	r := newNSResolver([]string{"ns.example:9876", "10.0.0.9:9876", "bad"}, time.Second)
	r.lookup = func(_ context.Context, host string) ([]net.IPAddr, error) {
		if a, ok := answers[host]; ok {
			return a, nil
		}
		return nil, errors.New("no such host")
	}
	want := []string{"10.0.0.1:9876", "10.0.0.2:9876", "10.0.0.9:9876"}
	if got := r.Resolve(); !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve() = %v", got)
	}
	r.addrs = []string{"ns.example:9876"}
	delete(answers, "ns.example")
	if got := r.Resolve(); !reflect.DeepEqual(got, want) {
		t.Errorf("after a failed lookup Resolve() = %v, want the last answer", got)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{NameServers: []string{"127.0.0.1:9876"}, Admin: &fakeAdmin{}}
	ok.applyDefaults()
	if err := ok.validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"topic":        func(c *Config) { c.Topic = "bad topic" },
		"group":        func(c *Config) { c.Group = "bad/group" },
		"interval":     func(c *Config) { c.Interval = time.Microsecond },
		"lost<=sla":    func(c *Config) { c.LostAfter = c.SLA },
		"send timeout": func(c *Config) { c.SendTimeout = -1 },
		"window":       func(c *Config) { c.Interval, c.LostAfter = time.Millisecond, time.Hour },
		"no admin":     func(c *Config) { c.Admin = nil },
		"no targets":   func(c *Config) { c.NameServers = nil },
	} {
		c := ok
		mutate(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted an empty config")
	}
}

func TestExportedValidateNeedsNoAdmin(t *testing.T) {
	if err := (Config{NameServers: []string{"127.0.0.1:9876"}}).Validate(); err != nil {
		t.Errorf("flags-only config: %v", err)
	}
	if err := (Config{NameServers: []string{"127.0.0.1:9876"}, Topic: "a b"}).Validate(); err == nil {
		t.Error("bad topic accepted")
	}
}
