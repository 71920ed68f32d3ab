package rmqsim

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// rawCall sends one request on a fresh connection and reads one frame. It
// is the minimal client the fault tests need: it sees exactly what the
// server writes.
func rawCall(addr string, req *rocketmq.Command, timeout time.Duration) (*rocketmq.Command, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if req.Opaque == 0 {
		req.Opaque = 7
	}
	frame, err := rocketmq.EncodeFrame(req)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(frame); err != nil {
		return nil, err
	}
	return rocketmq.ReadFrame(conn, rocketmq.DefaultMaxFrameSize)
}

func mustCall(t testing.TB, addr string, req *rocketmq.Command) *rocketmq.Command {
	t.Helper()
	resp, err := rawCall(addr, req, 3*time.Second)
	if err != nil {
		t.Fatalf("request %d to %s: %v", req.Code, addr, err)
	}
	if resp.Opaque != req.Opaque {
		t.Fatalf("request %d: opaque %d answered with %d", req.Code, req.Opaque, resp.Opaque)
	}
	return resp
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// newAdmin returns the project's real client over the simulator.
func newAdmin(t testing.TB, creds *rocketmq.Credentials) *rocketmq.Admin {
	t.Helper()
	cl := rocketmq.NewClient(rocketmq.ClientOptions{RequestTimeout: 3 * time.Second, Credentials: creds})
	t.Cleanup(func() { _ = cl.Close() })
	return rocketmq.NewAdmin(cl)
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func start(t testing.TB, spec Spec) *Cluster {
	t.Helper()
	c, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustN(t testing.TB) func(int, error) {
	return func(_ int, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fixture497 builds the topology of the 4.9.7 recording (same cluster,
// broker, topic and group names), with traffic shaped like the recording:
// offline groups with lag and no pulls since boot, one online slow group.
func fixture497(t testing.TB, timing Timing) *Cluster {
	t.Helper()
	if timing.RegisterDelay == 0 {
		timing.RegisterDelay = 10 * time.Millisecond
	}
	c := start(t, Spec{
		Groups: []GroupSpec{
			{Cluster: "DefaultCluster", Name: "broker-a"},
			{Cluster: "MSCluster", Name: "broker-b", Replicas: 2},
			{Cluster: "RaftCluster", Name: "RaftNode00", Mode: DLedger, Replicas: 3, Leader: 1},
		},
		Timing: timing,
	})
	for _, tq := range []struct{ g, t string }{
		{"broker-a", "TopicA"}, {"broker-b", "TopicMS"}, {"RaftNode00", "TopicRaft"},
		{"broker-a", "TopicTest"}, {"broker-b", "TopicTest"}, {"RaftNode00", "TopicTest"},
	} {
		must(t, c.CreateTopic(tq.g, tq.t, 4))
	}
	for _, g := range []string{"GroupMS", "GroupRaft", "GroupA", "GroupOnline", "GroupMSFromSlave"} {
		c.CreateConsumerGroup(g, false)
	}
	for _, s := range []struct{ g, t string }{{"GroupA", "TopicA"}, {"GroupOnline", "TopicA"}, {"GroupMS", "TopicMS"}, {"GroupRaft", "TopicRaft"}} {
		must(t, c.Subscribe(s.g, s.t))
	}
	for _, topic := range []string{"TopicA", "TopicMS", "TopicRaft"} {
		mustN(t)(c.Produce(topic, 1200))
	}
	mustN(t)(c.CommitOffsets("GroupA", "TopicA", 300))
	mustN(t)(c.CommitOffsets("GroupMS", "TopicMS", 300))
	mustN(t)(c.CommitOffsets("GroupRaft", "TopicRaft", 300))
	mustN(t)(c.Consume("GroupOnline", "TopicA", 40))
	must(t, c.SendToRetry("GroupA", 1))
	c.SetOnline("GroupOnline", 1)
	for _, g := range []string{"broker-a", "broker-b", "RaftNode00"} {
		must(t, c.SetScheduleOffsets(g, 3, 1, 1))
	}
	// broker-b's master was restarted after its traffic in the recording:
	// messages and offsets, but no put stats since boot.
	m := c.Group("broker-b")[0]
	m.Kill()
	must(t, m.Restart())
	c.RegisterNow(m)
	return c
}

// fixture500 builds the topology of the 5.0.0 recording.
func fixture500(t testing.TB, timing Timing) *Cluster {
	t.Helper()
	c := start(t, Spec{
		Version: V5_0_0,
		Groups: []GroupSpec{
			{Cluster: "CtrlCluster", Name: "broker-c", Mode: Controller, Replicas: 3, Leader: 2},
			{Cluster: "MSCluster", Name: "broker-d", Replicas: 2},
		},
		Timing: timing,
	})
	must(t, c.CreateTopic("broker-c", "TopicCtrl", 4))
	must(t, c.CreateTopic("broker-d", "TopicMS", 4))
	c.CreateConsumerGroup("GroupCtrl", false)
	c.CreateConsumerGroup("GroupMS", false)
	must(t, c.Subscribe("GroupCtrl", "TopicCtrl"))
	must(t, c.Subscribe("GroupMS", "TopicMS"))
	mustN(t)(c.Produce("TopicCtrl", 2000))
	mustN(t)(c.Produce("TopicMS", 2000))
	mustN(t)(c.CommitOffsets("GroupCtrl", "TopicCtrl", 600))
	mustN(t)(c.CommitOffsets("GroupMS", "TopicMS", 600))
	must(t, c.SendToRetry("GroupCtrl", 2))
	must(t, c.SendToRetry("GroupMS", 2))
	must(t, c.SetScheduleOffsets("broker-c", 3, 1, 2))
	must(t, c.SetScheduleOffsets("broker-d", 3, 2, 2))
	return c
}
