package collector

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// RemotingCollector exports the remoting clients' own counters, so the cost
// of scraping (requests per scrape, dials, timeouts) can be watched from
// Prometheus like the exporter's other self-metrics. One client per ACL
// identity: "default", and one per /probe auth module.
type RemotingCollector struct {
	clients map[string]*rocketmq.Client

	requests, errors, timeouts, dials, conns *prometheus.Desc
}

// NewRemotingCollector returns a collector of the clients' counters, keyed
// by the value of the "client" label.
func NewRemotingCollector(clients map[string]*rocketmq.Client) *RemotingCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "exporter_remoting", name), help, []string{"client"}, nil)
	}
	return &RemotingCollector{
		clients:  clients,
		requests: d("requests_total", "Remoting requests the exporter wrote to RocketMQ servers, by client (default, or auth_module:NAME for a /probe auth module)."),
		errors:   d("request_errors_total", "Remoting requests that failed (transport errors, including timeouts), by client."),
		timeouts: d("request_timeouts_total", "Remoting requests that failed because the scrape's deadline passed, by client."),
		dials:    d("dials_total", "Connection attempts to RocketMQ servers, by client."),
		conns:    d("connections", "Remoting connections currently open, by client."),
	}
}

func (c *RemotingCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.errors, c.timeouts, c.dials, c.conns} {
		ch <- d
	}
}

func (c *RemotingCollector) Collect(ch chan<- prometheus.Metric) {
	names := make([]string, 0, len(c.clients))
	for n := range c.clients {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := c.clients[n].Stats()
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(st.Requests), n)
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(st.Errors), n)
		ch <- prometheus.MustNewConstMetric(c.timeouts, prometheus.CounterValue, float64(st.Timeouts), n)
		ch <- prometheus.MustNewConstMetric(c.dials, prometheus.CounterValue, float64(st.Dials), n)
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.OpenConns), n)
	}
}
