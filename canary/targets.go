package canary

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// Admin is what the canary reads with the exporter's own remoting client
// (*rocketmq.Admin satisfies it): the local brokers' config in sidecar mode
// (brokerName, namesrvAddr), and the probe topic's route before it starts
// the client library, whose consumer cannot start without one.
type Admin interface {
	BrokerConfig(ctx context.Context, addr string) (rocketmq.BrokerConfig, error)
	TopicRoute(ctx context.Context, namesrv, topic string) (*rocketmq.TopicRouteData, error)
}

// target is what one client session probes.
type target struct {
	nameServers []string
	// local lists the broker groups to probe in sidecar mode; nil probes
	// every broker group of the topic.
	local map[string]bool
}

func (t target) allows(brokerName string) bool { return t.local == nil || t.local[brokerName] }

// discover finds the NameServers and, in sidecar mode, the local broker
// groups by reading each local broker's configuration.
func discover(ctx context.Context, cfg *Config) (target, error) {
	if len(cfg.LocalBrokers) == 0 {
		return target{nameServers: slices.Clone(cfg.NameServers)}, nil
	}
	t := target{local: map[string]bool{}}
	var fromBrokers []string
	for _, addr := range cfg.LocalBrokers {
		bc, err := cfg.Admin.BrokerConfig(ctx, addr)
		if err != nil {
			return target{}, fmt.Errorf("reading the config of local broker %s: %w", addr, err)
		}
		name := bc["brokerName"]
		if name == "" {
			return target{}, fmt.Errorf("local broker %s reports no brokerName", addr)
		}
		t.local[name] = true
		for _, ns := range strings.Split(bc["namesrvAddr"], ";") {
			if ns = strings.TrimSpace(ns); ns != "" {
				fromBrokers = append(fromBrokers, ns)
			}
		}
	}
	t.nameServers = slices.Clone(cfg.NameServers)
	if len(t.nameServers) == 0 {
		sort.Strings(fromBrokers)
		t.nameServers = slices.Compact(fromBrokers)
	}
	if len(t.nameServers) == 0 {
		return target{}, errors.New("the local brokers name no NameServer (namesrvAddr); set --canary.namesrv-address")
	}
	return t, nil
}

// nsResolver gives the client library its NameServer list. The library
// only accepts IP literals, so host names are looked up here, every time
// the library asks (at start and every two minutes); when a lookup fails
// the last good answer stays.
type nsResolver struct {
	addrs   []string
	timeout time.Duration
	lookup  func(ctx context.Context, host string) ([]net.IPAddr, error)

	mu   sync.Mutex
	last []string
}

func newNSResolver(addrs []string, timeout time.Duration) *nsResolver {
	return &nsResolver{addrs: addrs, timeout: timeout, lookup: net.DefaultResolver.LookupIPAddr}
}

// Resolve implements primitive.NsResolver.
func (r *nsResolver) Resolve() []string {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	var out []string
	for _, a := range r.addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if net.ParseIP(host) != nil {
			out = append(out, a)
			continue
		}
		ips, err := r.lookup(ctx, host)
		if err != nil {
			continue
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip.IP.String(), port))
		}
	}
	sort.Strings(out)
	out = slices.Compact(out)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(out) == 0 {
		return slices.Clone(r.last)
	}
	r.last = out
	return slices.Clone(out)
}

// Description implements primitive.NsResolver.
func (r *nsResolver) Description() string {
	return "rocketmq_exporter canary NameServers " + strings.Join(r.addrs, ",")
}

// errNoRoute is a NameServer's answer for a topic no broker hosts.
var errNoRoute = errors.New("no route")

// route asks the NameServers in turn for a topic's route and returns the
// broker groups hosting it (errNoRoute when a NameServer says none does).
func route(ctx context.Context, admin Admin, nameServers []string, topic string) ([]string, error) {
	var errs []error
	for _, ns := range nameServers {
		rd, err := admin.TopicRoute(ctx, ns, topic)
		if rocketmq.IsCode(err, rocketmq.ResponseTopicNotExist) {
			return nil, errNoRoute
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ns, err))
			continue
		}
		var brokers []string
		for _, q := range rd.QueueDatas {
			brokers = append(brokers, q.BrokerName)
		}
		if len(brokers) == 0 {
			return nil, errNoRoute
		}
		sort.Strings(brokers)
		return slices.Compact(brokers), nil
	}
	return nil, fmt.Errorf("reading the route of %s: %w", topic, errors.Join(errs...))
}
