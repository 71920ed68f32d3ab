package rmqsim

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.Local)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func atoi(t testing.TB, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

func TestBrokerRuntimeFollowsTheModel(t *testing.T) {
	clk := newFakeClock()
	c := start(t, Spec{Clock: clk.Now, Groups: []GroupSpec{{Cluster: "C", Name: "b", Replicas: 2}}})
	master, slave := c.Group("b")[0], c.Group("b")[1]
	must(t, c.CreateTopic("b", "T", 4))
	adm := newAdmin(t, nil)

	rt, err := adm.BrokerRuntimeInfo(ctx(t), master.Addr())
	must(t, err)
	if rt["putTps"] != "  " || rt["getTotalTps"] != "0.0 0.0 0.0" || rt["putMessageDistributeTime"] != "null" {
		t.Errorf("just booted: putTps %q getTotalTps %q distribute %q", rt["putTps"], rt["getTotalTps"], rt["putMessageDistributeTime"])
	}
	if rt["commitLogMaxOffset"] != "0" || rt["commitLogMinOffset"] != "-1" || rt["putMessageTimesTotal"] != "1" {
		t.Errorf("empty store: max %q min %q times %q", rt["commitLogMaxOffset"], rt["commitLogMinOffset"], rt["putMessageTimesTotal"])
	}

	clk.Advance(65 * time.Second)
	mustN(t)(c.Produce("T", 100))
	clk.Advance(2 * time.Second)
	mustN(t)(c.Produce("T", 20))
	rt, err = adm.BrokerRuntimeInfo(ctx(t), master.Addr())
	must(t, err)
	if got := atoi(t, rt["commitLogMaxOffset"]); got != 120*msgSize {
		t.Errorf("commitLogMaxOffset %d, want %d", got, 120*msgSize)
	}
	if rt["putMessageTimesTotal"] != "120" || rt["msgPutTotalTodayNow"] != "120" || rt["putMessageSizeTotal"] != strconv.Itoa(120*msgSize) {
		t.Errorf("put totals: %q %q %q", rt["putMessageTimesTotal"], rt["msgPutTotalTodayNow"], rt["putMessageSizeTotal"])
	}
	// Uptime 67 s: the 10 s and 60 s windows exist, 600 s does not yet.
	if rt["putTps"] != "12.0 2.0 " {
		t.Errorf("putTps %q, want %q", rt["putTps"], "12.0 2.0 ")
	}
	if rt["putMessageAverageSize"] != "225.0" || rt["brokerVersionDesc"] != "V4_9_7" || rt["brokerVersion"] != "407" {
		t.Errorf("avg %q desc %q version %q", rt["putMessageAverageSize"], rt["brokerVersionDesc"], rt["brokerVersion"])
	}
	if !strings.HasPrefix(rt["putMessageDistributeTime"], "[<=0ms]:96 [0~10ms]:21 [10~50ms]:3 ") || rt["putLatency99"] != "20.00" {
		t.Errorf("latency: %q p99 %q", rt["putMessageDistributeTime"], rt["putLatency99"])
	}
	if rt["runtime"] != "[ 0 days, 0 hours, 1 minutes, 7 seconds ]" || rt["commitLogDirCapacity"] != "Total : 252.0 GiB, Free : 216.7 GiB." {
		t.Errorf("runtime %q capacity %q", rt["runtime"], rt["commitLogDirCapacity"])
	}
	if _, ok := rt["commitLogDiskRatio_/home/rocketmq/store/commitlog"]; !ok || rt["commitLogDiskRatio"] != "0.14" {
		t.Errorf("disk ratios: %v", rt)
	}

	// A 4.9 master/slave slave replicates without counting puts, trailing
	// by the configured lag.
	slave.SetReplicationLag(1000)
	srt, err := adm.BrokerRuntimeInfo(ctx(t), slave.Addr())
	must(t, err)
	if got := atoi(t, srt["commitLogMaxOffset"]); got != 120*msgSize-1000 {
		t.Errorf("slave commitLogMaxOffset %d, want %d", got, 120*msgSize-1000)
	}
	if srt["putMessageTimesTotal"] != "1" || srt["putTps"] != "0.0 0.0 " {
		t.Errorf("slave puts: %q %q", srt["putMessageTimesTotal"], srt["putTps"])
	}

	master.SetDisk(100<<30, 10<<30)
	master.SetRuntimeValue("sendThreadPoolQueueSize", "17")
	master.RemoveRuntimeKey("putLatency999")
	rt, err = adm.BrokerRuntimeInfo(ctx(t), master.Addr())
	must(t, err)
	if rt["commitLogDiskRatio"] != "0.9" || rt["sendThreadPoolQueueSize"] != "17" {
		t.Errorf("overrides: ratio %q queue %q", rt["commitLogDiskRatio"], rt["sendThreadPoolQueueSize"])
	}
	if _, ok := rt["putLatency999"]; ok {
		t.Error("removed key still present")
	}
}

func TestBrokerConfigIsLive(t *testing.T) {
	c := start(t, Spec{Groups: []GroupSpec{{Cluster: "C", Name: "b", Replicas: 2}, {Cluster: "R", Name: "raft", Mode: DLedger}}})
	adm := newAdmin(t, nil)
	b := c.Group("b")
	cfg, err := adm.BrokerConfig(ctx(t), b[1].Addr())
	must(t, err)
	_, port, _ := strings.Cut(b[1].Addr(), ":")
	for k, want := range map[string]string{
		"brokerClusterName": "C", "brokerName": "b", "brokerId": "1", "brokerRole": "SLAVE", "listenPort": port,
		"namesrvAddr": c.NameServerAddrs()[0], "enableDLegerCommitLog": "false", "aclEnable": "false", "brokerIP1": "127.0.0.1",
	} {
		if cfg[k] != want {
			t.Errorf("%s = %q, want %q", k, cfg[k], want)
		}
	}
	r := c.Group("raft")
	cfg, err = adm.BrokerConfig(ctx(t), r[2].Addr())
	must(t, err)
	peers := "n0-" + r[0].DLedgerAddr() + ";n1-" + r[1].DLedgerAddr() + ";n2-" + r[2].DLedgerAddr()
	if cfg["dLegerPeers"] != peers || cfg["dLegerSelfId"] != "n2" || cfg["dLegerGroup"] != "raft" || cfg["brokerId"] != "3" {
		t.Errorf("dledger config: %q %q %q %q", cfg["dLegerPeers"], cfg["dLegerSelfId"], cfg["dLegerGroup"], cfg["brokerId"])
	}
	b[0].SetConfigValue("brokerPermission", "4")
	cfg, err = adm.BrokerConfig(ctx(t), b[0].Addr())
	must(t, err)
	if cfg["brokerPermission"] != "4" {
		t.Errorf("override: %q", cfg["brokerPermission"])
	}
}

func TestBrokerOffsetsAndLag(t *testing.T) {
	clk := newFakeClock()
	c := start(t, Spec{Clock: clk.Now, Groups: []GroupSpec{{Cluster: "C", Name: "b"}}})
	n := c.Group("b")[0]
	addr := n.Addr()
	adm := newAdmin(t, nil)
	must(t, c.CreateTopic("b", "T", 2))
	c.CreateConsumerGroup("G", false)
	must(t, c.Subscribe("G", "T"))
	t0 := clk.Now().UnixMilli()
	mustN(t)(c.Produce("T", 10)) // 5 per queue at t0
	clk.Advance(time.Second)
	mustN(t)(c.Produce("T", 4)) // 2 per queue at t0+1s
	clk.Advance(time.Second)
	if got, _ := c.Consume("G", "T", 6); got != 6 {
		t.Fatalf("consumed %d", got)
	}

	st, err := adm.TopicStats(ctx(t), addr, "T")
	must(t, err)
	for _, off := range st.OffsetTable {
		if off.MaxOffset != 7 || off.MinOffset != 0 || off.LastUpdateTimestamp != t0+1000 {
			t.Errorf("queue: %+v", off)
		}
	}
	cs, err := adm.ConsumeStats(ctx(t), addr, "G", "T")
	must(t, err)
	var lag, consumed int64
	for _, w := range cs.OffsetTable {
		lag += w.BrokerOffset - w.ConsumerOffset
		consumed += w.ConsumerOffset
		if w.ConsumerOffset != 3 || w.LastTimestamp != t0 {
			t.Errorf("queue: %+v", w)
		}
	}
	if lag != 8 || consumed != 6 {
		t.Errorf("lag %d consumed %d", lag, consumed)
	}
	if cs.ConsumeTps != 0.1 { // 6 pulled in the last minute
		t.Errorf("consumeTps %v", cs.ConsumeTps)
	}

	list, err := adm.BrokerConsumeStats(ctx(t), addr)
	must(t, err)
	if list.TotalDiff != 8 || list.BrokerAddr != addr {
		t.Errorf("317: totalDiff %d addr %s", list.TotalDiff, list.BrokerAddr)
	}
	found := false
	for _, g := range list.ConsumeStatsList {
		switch g.Group {
		case "G":
			found = len(g.Stats) == 2 // T and %RETRY%G
		case "TOOLS_CONSUMER":
			if len(g.Stats) != 0 {
				t.Errorf("system group without offsets must map to []")
			}
		}
	}
	if !found {
		t.Errorf("317 lacks G with two topics: %+v", list.ConsumeStatsList)
	}

	spans, err := adm.ConsumeTimeSpan(ctx(t), addr, "T", "G")
	must(t, err)
	now := clk.Now().UnixMilli()
	for _, s := range spans {
		if s.MinTimeStamp != t0 || s.MaxTimeStamp != t0+1000 || s.ConsumeTimeStamp != t0 || s.DelayTime != now-t0 {
			t.Errorf("time span %+v (now %d)", s, now)
		}
	}
	// No offset at all: the broker reports now+1 (the recorded quirk).
	spans, err = adm.ConsumeTimeSpan(ctx(t), addr, "T", "NoOffsets")
	must(t, err)
	if spans[0].DelayTime != now+1 {
		t.Errorf("delay without offset %d, want %d", spans[0].DelayTime, now+1)
	}

	off, err := adm.ConsumerOffset(ctx(t), addr, "G", "T", 1)
	must(t, err)
	if off != 3 {
		t.Errorf("QUERY_CONSUMER_OFFSET %d", off)
	}
	if off, err := adm.ConsumerOffset(ctx(t), addr, "Nobody", "T", 1); err != nil || off != 0 {
		t.Errorf("no offset while min offset is 0: %d %v", off, err)
	}
	must(t, c.Expire("b", "T", 1, 5))
	if _, err := adm.ConsumerOffset(ctx(t), addr, "Nobody", "T", 1); !rocketmq.IsCode(err, rocketmq.ResponseQueryNotFound) {
		t.Errorf("no offset after retention: %v, want 22", err)
	}
	if m, _ := adm.MinOffset(ctx(t), addr, "T", 1); m != 5 {
		t.Errorf("min offset %d", m)
	}
	if m, _ := adm.MaxOffset(ctx(t), addr, "T", 0); m != 7 {
		t.Errorf("max offset %d", m)
	}
	// The consumer's offset 3 fell below the min offset: store time -1.
	spans, err = adm.ConsumeTimeSpan(ctx(t), addr, "T", "G")
	must(t, err)
	for _, s := range spans {
		if s.MessageQueue.QueueID == 1 && s.DelayTime != now+1 {
			t.Errorf("expired offset: delay %d, want %d", s.DelayTime, now+1)
		}
	}

	who, err := adm.TopicConsumeByWho(ctx(t), addr, "T")
	must(t, err)
	if strings.Join(who.GroupList, ",") != "G" {
		t.Errorf("consume by who: %v", who.GroupList)
	}
	if _, err := adm.TopicStats(ctx(t), addr, "Nope"); !rocketmq.IsCode(err, rocketmq.ResponseTopicNotExist) {
		t.Errorf("missing topic: %v", err)
	}
}

func TestBrokerStatsAndConnections(t *testing.T) {
	clk := newFakeClock()
	c := start(t, Spec{Clock: clk.Now, Groups: []GroupSpec{{Cluster: "C", Name: "b"}}})
	addr := c.Group("b")[0].Addr()
	adm := newAdmin(t, nil)
	must(t, c.CreateTopic("b", "T", 4))
	c.CreateConsumerGroup("G", false)
	c.CreateConsumerGroup("B", true)
	must(t, c.Subscribe("G", "T"))
	must(t, c.Subscribe("B", "T"))

	_, err := adm.BrokerStatsData(ctx(t), addr, "TOPIC_PUT_NUMS", "T")
	if !rocketmq.IsCode(err, rocketmq.ResponseSystemError) || !strings.Contains(err.Error(), "The stats <TOPIC_PUT_NUMS> <T> not exist") {
		t.Errorf("no traffic yet: %v", err)
	}
	mustN(t)(c.Produce("T", 120))
	mustN(t)(c.Consume("G", "T", 64))
	sd, err := adm.BrokerStatsData(ctx(t), addr, "TOPIC_PUT_NUMS", "T")
	must(t, err)
	if sd.StatsMinute.Sum != 120 || sd.StatsMinute.Tps != 2 || sd.StatsMinute.Avgpt != 1 || sd.StatsHour.Sum != 0 {
		t.Errorf("TOPIC_PUT_NUMS: %+v", sd)
	}
	sd, err = adm.BrokerStatsData(ctx(t), addr, "GROUP_GET_NUMS", "T@G")
	must(t, err)
	if sd.StatsMinute.Sum != 64 || sd.StatsMinute.Avgpt != 32 {
		t.Errorf("GROUP_GET_NUMS: %+v", sd)
	}
	if sd, err = adm.BrokerStatsData(ctx(t), addr, "BROKER_PUT_NUMS", "C"); err != nil || sd.StatsMinute.Sum != 120 || sd.StatsMinute.Avgpt != 0 {
		t.Errorf("BROKER_PUT_NUMS: %+v %v", sd, err)
	}
	clk.Advance(2 * time.Minute)
	if sd, _ = adm.BrokerStatsData(ctx(t), addr, "TOPIC_PUT_NUMS", "T"); sd.StatsMinute.Sum != 0 {
		t.Errorf("minute window after 2 minutes: %+v", sd)
	}

	_, err = adm.ConsumerConnectionList(ctx(t), addr, "G")
	if !rocketmq.IsCode(err, rocketmq.ResponseConsumerNotOnline) || !strings.Contains(err.Error(), "the consumer group[G] not online") {
		t.Errorf("offline: %v", err)
	}
	c.SetOnline("G", 2)
	c.SetOnline("B", 1)
	cc, err := adm.ConsumerConnectionList(ctx(t), addr, "G")
	must(t, err)
	if len(cc.ConnectionSet) != 2 || cc.MessageModel != "CLUSTERING" || len(cc.SubscriptionTable) != 2 {
		t.Errorf("online clustering group: %+v", cc)
	}
	if _, ok := cc.SubscriptionTable["%RETRY%G"]; !ok {
		t.Errorf("clustering consumers subscribe their retry topic: %+v", cc.SubscriptionTable)
	}
	cc, err = adm.ConsumerConnectionList(ctx(t), addr, "B")
	must(t, err)
	if cc.MessageModel != "BROADCASTING" || len(cc.SubscriptionTable) != 1 {
		t.Errorf("broadcasting group: %+v", cc)
	}
	c.SetConsumeTps("G", 12.5)
	cs, err := adm.ConsumeStats(ctx(t), addr, "G", "T")
	must(t, err)
	if cs.ConsumeTps != 12.5 {
		t.Errorf("consumeTps %v", cs.ConsumeTps)
	}
	// A broadcasting group keeps offsets on the client.
	list, err := adm.BrokerConsumeStats(ctx(t), addr)
	must(t, err)
	for _, g := range list.ConsumeStatsList {
		if g.Group == "B" && len(g.Stats) != 0 {
			t.Errorf("broadcasting group has broker offsets: %+v", g)
		}
	}
}

func TestBrokerUnknownAndUnsupported(t *testing.T) {
	c := start(t, Spec{Groups: []GroupSpec{{Cluster: "C", Name: "b"}}})
	addr := c.Group("b")[0].Addr()
	for _, code := range []int{9999, rocketmq.CodeGetBrokerHAStatus} {
		resp := mustCall(t, addr, rocketmq.NewRequest(code, nil, nil))
		if resp.Code != 3 || resp.Remark != " request type "+strconv.Itoa(code)+" not supported" {
			t.Errorf("code %d: %d %q", code, resp.Code, resp.Remark)
		}
	}
	// A binary (ROCKETMQ) request gets a binary answer on the normal path.
	req := rocketmq.NewRequest(rocketmq.CodeGetMaxOffset, map[string]string{"topic": "TBW102", "queueId": "0"}, nil)
	req.SerializeType = rocketmq.SerializeRocketMQ
	resp := mustCall(t, addr, req)
	if resp.SerializeType != rocketmq.SerializeRocketMQ || resp.ExtFields["offset"] != "0" {
		t.Errorf("binary request: type %d ext %v", resp.SerializeType, resp.ExtFields)
	}
	// A oneway request gets no answer.
	ow := rocketmq.NewRequest(rocketmq.CodeGetBrokerRuntimeInfo, nil, nil)
	ow.Flag = rocketmq.FlagOneway
	if _, err := rawCall(addr, ow, 200*time.Millisecond); !isTimeout(err) {
		t.Errorf("oneway: %v", err)
	}
}

func TestStartupWindow(t *testing.T) {
	c := start(t, Spec{Groups: []GroupSpec{{Cluster: "C", Name: "b"}}, Timing: Timing{StartupWindow: time.Hour}})
	resp := mustCall(t, c.Group("b")[0].Addr(), rocketmq.NewRequest(rocketmq.CodeGetBrokerRuntimeInfo, nil, nil))
	if resp.Code != 1 || resp.Remark != NoSuchElementRemark {
		t.Errorf("startup window: %d %q", resp.Code, resp.Remark)
	}
	if resp := mustCall(t, c.Group("b")[0].Addr(), rocketmq.NewRequest(rocketmq.CodeGetBrokerConfig, nil, nil)); resp.Code != 0 {
		t.Errorf("other requests work in the startup window: %d", resp.Code)
	}
}

func TestProduceSpreadsEvenly(t *testing.T) {
	c := start(t, Spec{Groups: []GroupSpec{{Cluster: "C", Name: "a"}, {Cluster: "C", Name: "b"}}})
	must(t, c.CreateTopic("a", "T", 3))
	must(t, c.CreateTopic("b", "T", 2))
	for i := 0; i < 50; i++ {
		mustN(t)(c.Produce("T", 3)) // uneven batches: the remainder rotates
	}
	for _, g := range []string{"a", "b"} {
		for q := 0; q < map[string]int{"a": 3, "b": 2}[g]; q++ {
			if got := c.MaxOffset(g, "T", q); got != 30 {
				t.Errorf("%s queue %d holds %d, want 30", g, q, got)
			}
		}
	}
	c.Group("a")[0].Kill()
	if n, err := c.Produce("T", 10); err != nil || n != 10 || c.MaxOffset("b", "T", 0) != 35 {
		t.Errorf("with a's master down, b takes everything: %d %v %d", n, err, c.MaxOffset("b", "T", 0))
	}
}
