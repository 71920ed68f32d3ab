package rmqsim

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// DemoOptions configures Demo. Zero values pick the defaults noted.
type DemoOptions struct {
	// NameServer is the NameServer listen address ("" = 127.0.0.1:0).
	NameServer string
	// BrokerBase and DLedgerBase fix broker and DLedger ports (0 =
	// ephemeral); the command uses 10911 and 40911.
	BrokerBase  int
	DLedgerBase int
	// Version is V4_9_7 (default) or V5_0_0.
	Version string
	// TrafficInterval is the period of the simulated producers and
	// consumers (default 1s).
	TrafficInterval time.Duration
	// FailoverInterval kills the DLedger leader of RaftNode00 that often and
	// restarts it a quarter of the interval later (0 = never).
	FailoverInterval time.Duration
	// Timing of the failover timelines; zero fields take DemoTiming's.
	Timing Timing
	Clock  func() time.Time
	Logger *slog.Logger
}

// DemoTiming is close to the recorded real timelines, so that dashboards
// and alerts see what they would see on a real cluster.
var DemoTiming = Timing{
	RegisterDelay:      3 * time.Second,
	StaleLeaderWindow:  4 * time.Second,
	RoleChangeDelay:    time.Second,
	ControllerElection: time.Second,
	HAReconnectDelay:   2 * time.Second,
	StartupWindow:      2 * time.Second,
}

// Demo topology names.
const (
	DemoCluster       = "DemoCluster"
	DemoSecondCluster = "SecondCluster"
	DemoMasterSlave   = "broker-a"
	DemoDLedger       = "RaftNode00"
	DemoSecond        = "broker-b"

	DemoGroupCaughtUp  = "GroupCaughtUp"
	DemoGroupLagging   = "GroupLagging"
	DemoGroupStalled   = "GroupStalled"
	DemoGroupOffline   = "GroupOffline"
	DemoGroupBroadcast = "GroupBroadcast"
)

// Demo starts a small but complete deployment with live traffic:
//
//   - cluster DemoCluster: broker-a (master + slave) and RaftNode00 (3-node
//     DLedger group); cluster SecondCluster: broker-b (single master);
//   - topics TopicOrders (broker-a and RaftNode00), TopicPayments
//     (RaftNode00), TopicEvents (broker-b), TopicLogs (broker-a);
//   - GroupCaughtUp consumes everything it gets, GroupLagging half of it,
//     GroupStalled is online but consumes nothing, GroupOffline has offsets
//     but no consumer, GroupBroadcast is a broadcasting group; a trickle of
//     retries and dead letters;
//   - with FailoverInterval, a periodic DLedger leader kill and restart.
//
// Traffic stops when ctx ends or the cluster is closed.
func Demo(ctx context.Context, o DemoOptions) (*Cluster, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timing := o.Timing
	fill := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	fill(&timing.RegisterDelay, DemoTiming.RegisterDelay)
	fill(&timing.StaleLeaderWindow, DemoTiming.StaleLeaderWindow)
	fill(&timing.RoleChangeDelay, DemoTiming.RoleChangeDelay)
	fill(&timing.ControllerElection, DemoTiming.ControllerElection)
	fill(&timing.HAReconnectDelay, DemoTiming.HAReconnectDelay)
	fill(&timing.StartupWindow, DemoTiming.StartupWindow)
	if o.TrafficInterval <= 0 {
		o.TrafficInterval = time.Second
	}
	spec := Spec{
		Version: o.Version,
		Groups: []GroupSpec{
			{Cluster: DemoCluster, Name: DemoMasterSlave, Replicas: 2},
			{Cluster: DemoCluster, Name: DemoDLedger, Mode: DLedger, Replicas: 3},
			{Cluster: DemoSecondCluster, Name: DemoSecond},
		},
		Timing: timing,
		Clock:  o.Clock,
		Logger: log,
		Ports:  Ports{BrokerBase: o.BrokerBase, DLedgerBase: o.DLedgerBase},
	}
	if o.NameServer != "" {
		spec.Ports.NameServers = []string{o.NameServer}
	}
	c, err := Start(spec)
	if err != nil {
		return nil, err
	}
	if err := demoSetup(c); err != nil {
		c.Close()
		return nil, err
	}
	c.bg.Add(1)
	go c.demoTraffic(ctx, o.TrafficInterval, log)
	if o.FailoverInterval > 0 {
		c.bg.Add(1)
		go c.demoFailover(ctx, o.FailoverInterval, log)
	}
	return c, nil
}

func demoSetup(c *Cluster) error {
	for _, t := range []struct {
		group, topic string
		queues       int
	}{
		{DemoMasterSlave, "TopicOrders", 4}, {DemoDLedger, "TopicOrders", 4},
		{DemoDLedger, "TopicPayments", 8}, {DemoSecond, "TopicEvents", 4}, {DemoMasterSlave, "TopicLogs", 2},
	} {
		if err := c.CreateTopic(t.group, t.topic, t.queues); err != nil {
			return err
		}
	}
	c.CreateConsumerGroup(DemoGroupCaughtUp, false)
	c.CreateConsumerGroup(DemoGroupLagging, false)
	c.CreateConsumerGroup(DemoGroupStalled, false)
	c.CreateConsumerGroup(DemoGroupOffline, false)
	c.CreateConsumerGroup(DemoGroupBroadcast, true)
	for _, s := range []struct{ group, topic string }{
		{DemoGroupCaughtUp, "TopicOrders"}, {DemoGroupLagging, "TopicPayments"}, {DemoGroupStalled, "TopicEvents"},
		{DemoGroupOffline, "TopicOrders"}, {DemoGroupBroadcast, "TopicLogs"},
	} {
		if err := c.Subscribe(s.group, s.topic); err != nil {
			return err
		}
	}
	c.SetOnline(DemoGroupCaughtUp, 2)
	c.SetOnline(DemoGroupLagging, 1)
	c.SetOnline(DemoGroupStalled, 1)
	c.SetOnline(DemoGroupBroadcast, 3)
	for _, g := range []string{DemoMasterSlave, DemoDLedger, DemoSecond} {
		if err := c.SetScheduleOffsets(g, 3, 1, 1); err != nil {
			return err
		}
	}
	// Some history so that the first scrape already shows lag.
	for _, p := range []struct {
		topic string
		n     int
	}{{"TopicOrders", 400}, {"TopicPayments", 600}, {"TopicEvents", 200}, {"TopicLogs", 50}} {
		if _, err := c.Produce(p.topic, p.n); err != nil {
			return err
		}
	}
	for _, s := range []struct {
		group, topic string
		n            int
	}{{DemoGroupCaughtUp, "TopicOrders", -1}, {DemoGroupLagging, "TopicPayments", 300}, {DemoGroupOffline, "TopicOrders", 100}} {
		if _, err := c.CommitOffsets(s.group, s.topic, s.n); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) demoTraffic(ctx context.Context, every time.Duration, log *slog.Logger) {
	defer c.bg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-c.bgStop:
			return
		case <-tick.C:
		}
		for _, p := range []struct {
			topic string
			n     int
		}{{"TopicOrders", 20}, {"TopicPayments", 30}, {"TopicEvents", 10}, {"TopicLogs", 5}} {
			if _, err := c.Produce(p.topic, p.n); err != nil {
				log.Debug("demo producer", "topic", p.topic, "err", err)
			}
		}
		for _, s := range []struct {
			group, topic string
			n            int
		}{{DemoGroupCaughtUp, "TopicOrders", -1}, {DemoGroupLagging, "TopicPayments", 15}, {DemoGroupBroadcast, "TopicLogs", 5}} {
			if _, err := c.Consume(s.group, s.topic, s.n); err != nil {
				log.Debug("demo consumer", "group", s.group, "err", err)
			}
		}
		if i%10 == 0 {
			if err := c.SendToRetry(DemoGroupLagging, 3); err != nil {
				log.Debug("demo retry", "err", err)
			}
		}
		if i%60 == 0 {
			if err := c.SendToDLQ(DemoGroupLagging, 1); err != nil {
				log.Debug("demo dlq", "err", err)
			}
		}
	}
}

func (c *Cluster) demoFailover(ctx context.Context, every time.Duration, log *slog.Logger) {
	defer c.bg.Done()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-c.bgStop:
			return false
		case <-t.C:
			return true
		}
	}
	for wait(every) {
		n, err := c.KillLeader(DemoDLedger)
		if err != nil {
			log.Warn("demo failover: no leader to kill", "group", DemoDLedger, "err", err)
			continue
		}
		log.Info("demo failover: killed the DLedger leader", "group", DemoDLedger, "node", n.SelfID(), "addr", n.Addr())
		if !wait(every / 4) {
			return
		}
		if err := n.Restart(); err != nil {
			log.Error("demo failover: restart", "node", n.SelfID(), "err", err)
			continue
		}
		log.Info("demo failover: restarted", "group", DemoDLedger, "node", n.SelfID())
	}
}

// Describe lists the cluster's endpoints, one per line, for humans.
func (c *Cluster) Describe() []string {
	var out []string
	for i, a := range c.NameServerAddrs() {
		out = append(out, fmt.Sprintf("namesrv[%d]  %s", i, a))
	}
	if a := c.ControllerAddr(); a != "" {
		out = append(out, "controller  "+a)
	}
	for _, n := range c.nodes {
		line := fmt.Sprintf("broker      %s  cluster=%s broker=%s node=%s mode=%s", n.Addr(), n.Cluster(), n.BrokerName(), n.SelfID(), n.Mode())
		if d := n.DLedgerAddr(); d != "" {
			line += " dledger=" + d
		}
		out = append(out, line)
	}
	return out
}
