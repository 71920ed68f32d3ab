package collector

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

func TestRemotingCollector(t *testing.T) {
	// A port nobody listens on: the dial is refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	c := rocketmq.NewClient(rocketmq.ClientOptions{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.Invoke(ctx, addr, rocketmq.NewRequest(rocketmq.CodeGetBrokerConfig, nil, nil)); err == nil {
		t.Fatal("Invoke to a closed port succeeded")
	}

	col := NewRemotingCollector(map[string]*rocketmq.Client{"default": c})
	if problems, err := testutil.CollectAndLint(col); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	want := `
# HELP rocketmq_exporter_remoting_dials_total Connection attempts to RocketMQ servers, by client.
# TYPE rocketmq_exporter_remoting_dials_total counter
rocketmq_exporter_remoting_dials_total{client="default"} 1
# HELP rocketmq_exporter_remoting_request_errors_total Remoting requests that failed (transport errors, including timeouts), by client.
# TYPE rocketmq_exporter_remoting_request_errors_total counter
rocketmq_exporter_remoting_request_errors_total{client="default"} 1
# HELP rocketmq_exporter_remoting_requests_total Remoting requests the exporter wrote to RocketMQ servers, by client (default, or auth_module:NAME for a /probe auth module).
# TYPE rocketmq_exporter_remoting_requests_total counter
rocketmq_exporter_remoting_requests_total{client="default"} 0
# HELP rocketmq_exporter_remoting_connections Remoting connections currently open, by client.
# TYPE rocketmq_exporter_remoting_connections gauge
rocketmq_exporter_remoting_connections{client="default"} 0
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want),
		"rocketmq_exporter_remoting_dials_total", "rocketmq_exporter_remoting_request_errors_total",
		"rocketmq_exporter_remoting_requests_total", "rocketmq_exporter_remoting_connections"); err != nil {
		t.Error(err)
	}
}
