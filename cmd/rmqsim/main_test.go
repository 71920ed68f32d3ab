package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--namesrv-address=127.0.0.1:0", "--broker-base-port=0", "--dledger-base-port=0",
			"--failover-interval=0", "--traffic-interval=50ms", "--log.format=json"}, &stdout, &stderr)
	}()
	var namesrv string
	deadline := time.Now().Add(5 * time.Second)
	for namesrv == "" && time.Now().Before(deadline) {
		for _, line := range strings.Split(stdout.String(), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "namesrv[0]" {
				namesrv = f[1]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if namesrv == "" {
		cancel()
		<-done
		t.Fatalf("no NameServer address printed; stdout %q stderr %q", stdout.String(), stderr.String())
	}
	cl := rocketmq.NewClient(rocketmq.ClientOptions{RequestTimeout: 2 * time.Second})
	ci, err := rocketmq.NewAdmin(cl).BrokerClusterInfo(context.Background(), namesrv)
	_ = cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(ci.ClusterAddrTable) != 2 || len(ci.BrokerAddrTable["RaftNode00"].BrokerAddrs) != 3 {
		t.Errorf("demo topology: %+v", ci)
	}
	if got := strings.Count(stdout.String(), "broker "); got != 6 {
		t.Errorf("%d broker lines printed:\n%s", got, stdout.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d; stderr %s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	if !strings.Contains(stderr.String(), `"msg":"simulated RocketMQ cluster running"`) {
		t.Errorf("no JSON start log: %s", stderr.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--rocketmq-version=3.0"}, {"--traffic-interval=0s"}, {"--failover-interval=-1s"}, {"--nope"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}
