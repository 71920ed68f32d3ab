package rmqsim

import (
	"context"
	"testing"
	"time"
)

func TestDemoTraffic(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Demo(ctx, DemoOptions{TrafficInterval: 20 * time.Millisecond, FailoverInterval: 200 * time.Millisecond,
		Timing: Timing{RegisterDelay: 20 * time.Millisecond, StaleLeaderWindow: 20 * time.Millisecond, RoleChangeDelay: 10 * time.Millisecond, StartupWindow: time.Millisecond}})
	must(t, err)
	defer c.Close()
	adm := newAdmin(t, nil)
	lag := func(group, topic string) int64 {
		var sum int64
		for _, g := range []string{DemoMasterSlave, DemoDLedger, DemoSecond} {
			for q := 0; q < 8; q++ {
				if off := c.ConsumerOffset(g, group, topic, q); off >= 0 {
					sum += c.MaxOffset(g, topic, q) - off
				}
			}
		}
		return sum
	}
	startLag := lag(DemoGroupLagging, "TopicPayments")
	startTerm := c.Term(DemoDLedger)
	eventually(t, "a failover and growing lag", 5*time.Second, func() bool {
		return c.Term(DemoDLedger) > startTerm && lag(DemoGroupLagging, "TopicPayments") > startLag+100
	})
	if got := lag(DemoGroupOffline, "TopicOrders"); got < 300 {
		t.Errorf("offline group lag %d", got)
	}
	if got := lag(DemoGroupStalled, "TopicEvents"); got < 200 {
		t.Errorf("stalled group lag %d", got)
	}
	cc, err := adm.ConsumerConnectionList(ctx, c.Group(DemoMasterSlave)[0].Addr(), DemoGroupBroadcast)
	must(t, err)
	if cc.MessageModel != "BROADCASTING" || len(cc.ConnectionSet) != 3 {
		t.Errorf("broadcast group: %+v", cc)
	}
	if len(c.Describe()) != 7 {
		t.Errorf("describe: %v", c.Describe())
	}
}

func TestScale(t *testing.T) {
	c, err := StartScale(ScaleSpec{Topics: 400, Queues: 8, Groups: 80, BrokerGroups: 4, Messages: 16, Online: 5})
	must(t, err)
	defer c.Close()
	adm := newAdmin(t, nil)
	tl, err := adm.TopicList(ctx(t), c.NameServerAddrs()[0])
	must(t, err)
	if len(tl.TopicList) < 400+80 {
		t.Errorf("%d topics", len(tl.TopicList))
	}
	list, err := adm.BrokerConsumeStats(ctx(t), c.Group("broker-0")[0].Addr())
	must(t, err)
	// 20 of the 80 groups read a topic of broker-0 (half consumed: 8 per topic).
	if list.TotalDiff != 20*8 {
		t.Errorf("totalDiff %d", list.TotalDiff)
	}
	st, err := adm.TopicStats(ctx(t), c.Group("broker-1")[0].Addr(), ScaleTopic(1))
	must(t, err)
	if len(st.OffsetTable) != 8 {
		t.Errorf("queues %d", len(st.OffsetTable))
	}
}

func BenchmarkBrokerConsumeStatsAtScale(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 10,000-topic cluster")
	}
	c, err := StartScale(ScaleSpec{Topics: 10000, Queues: 8, Groups: 2000, BrokerGroups: 4, Messages: 8})
	must(b, err)
	defer c.Close()
	adm := newAdmin(b, nil)
	addr := c.Group("broker-0")[0].Addr()
	b.ResetTimer()
	for b.Loop() {
		if _, err := adm.BrokerConsumeStats(context.Background(), addr); err != nil {
			b.Fatal(err)
		}
	}
}
