package rmqsim

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// TestConcurrentUse mutates the model, injects faults, kills and restarts
// nodes and scrapes every port at the same time; run with -race.
func TestConcurrentUse(t *testing.T) {
	c := start(t, Spec{
		NameServers: 2,
		Groups: []GroupSpec{
			{Cluster: "C", Name: "ms", Replicas: 2},
			{Cluster: "C", Name: "raft", Mode: DLedger},
		},
		Timing: Timing{StaleLeaderWindow: 20 * time.Millisecond, RoleChangeDelay: 10 * time.Millisecond, RegisterDelay: 10 * time.Millisecond},
	})
	for _, g := range []string{"ms", "raft"} {
		must(t, c.CreateTopic(g, "T", 4))
	}
	c.CreateConsumerGroup("G", false)
	must(t, c.Subscribe("G", "T"))
	adm := newAdmin(t, nil)

	runCtx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	loop := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				f()
			}
		}()
	}
	loop(func() { _, _ = c.Produce("T", 7) })
	loop(func() { _, _ = c.Consume("G", "T", 5); c.SetOnline("G", 1); c.SetOnline("G", 0) })
	loop(func() {
		n, err := c.KillLeader("raft")
		if err == nil {
			time.Sleep(30 * time.Millisecond)
			_ = n.Restart()
		}
		time.Sleep(20 * time.Millisecond)
	})
	loop(func() {
		s := c.Group("ms")[1]
		s.SetFault(Slow(time.Millisecond))
		s.SetReplicationLag(100)
		s.ClearFault()
		time.Sleep(time.Millisecond)
	})
	for w := 0; w < 3; w++ {
		loop(func() {
			qctx, qcancel := context.WithTimeout(runCtx, 200*time.Millisecond)
			defer qcancel()
			for _, ns := range c.NameServerAddrs() {
				_, _ = adm.BrokerClusterInfo(qctx, ns)
			}
			for _, n := range c.Nodes() {
				_, _ = adm.BrokerRuntimeInfo(qctx, n.Addr())
				_, _ = adm.BrokerConsumeStats(qctx, n.Addr())
				_, _ = adm.TopicStats(qctx, n.Addr(), "T")
				if n.DLedgerAddr() != "" {
					_, _ = adm.DLedgerMetadata(qctx, n.DLedgerAddr(), "raft", n.SelfID())
				}
			}
		})
	}
	wg.Wait()

	// Afterwards the cluster settles: every node back, one leader.
	for _, n := range c.Group("raft") {
		must(t, n.Restart())
	}
	eventually(t, "raft settles", 3*time.Second, func() bool {
		l := c.Leader("raft")
		if l == nil {
			return false
		}
		for _, n := range c.Group("raft") {
			if _, ok := n.RegisteredID(); !ok {
				return false
			}
		}
		return true
	})
	if resp := mustCall(t, c.Group("ms")[0].Addr(), rocketmq.NewRequest(rocketmq.CodeGetBrokerRuntimeInfo, nil, nil)); resp.Code != 0 {
		t.Errorf("after the storm: %d", resp.Code)
	}
}
