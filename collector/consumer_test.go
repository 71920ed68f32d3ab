package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq/rmqsim"
)

const (
	brokerAAddr      = "127.0.0.1:10911" // broker-a, DefaultCluster
	brokerBAddr      = "127.0.0.1:11911" // broker-b master, MSCluster
	brokerBSlaveAddr = "127.0.0.1:12911" // broker-b slave
	raftN1Addr       = "127.0.0.1:31911" // RaftNode00 leader (n1)
	raftN0Addr       = "127.0.0.1:30911"
	raftN2Addr       = "127.0.0.1:32911"
)

const steady497Dir = "rocketmq-4.9.7/steady/"

// consumerFake answers like the recorded 4.9.7 cluster: every master's bulk
// consume stats and topic config, the recorded time spans, GroupOnline online
// on broker-a (recorded connection list) and every other group offline with
// the recorded CONSUMER_NOT_ONLINE answer.
func consumerFake(t *testing.T) (*fakeClient, *Scrape) {
	t.Helper()
	f := newFakeClient()
	nodes := map[string]string{brokerAAddr: "broker_a", brokerBAddr: "broker_b_master", raftN1Addr: "raft_n1", raftN0Addr: "raft_n0"}
	for addr, node := range nodes {
		f.brokerConsumeStats[addr] = decodeFixture(t, rocketmq.DecodeConsumeStatsList, readFixtureBody(t, "consumer", steady497Dir+node+".get_broker_consume_stats"))
		f.topicConfig[addr] = decodeFixture(t, rocketmq.DecodeTopicConfigWrapper, readFixtureBody(t, "consumer", steady497Dir+node+".get_all_topic_config"))
	}
	span := func(addr, topic, group, name string) {
		f.timeSpan[fakeKey(addr, topic, group)] = decodeFixture(t, rocketmq.DecodeConsumeTimeSpan, readFixtureBody(t, "consumer", steady497Dir+name))
	}
	span(brokerAAddr, "TopicA", "GroupA", "broker_a.query_consume_time_span")
	span(brokerAAddr, "TopicA", "GroupOnline", "broker_a.query_consume_time_span.online")
	span(brokerBAddr, "TopicMS", "GroupMS", "broker_b_master.query_consume_time_span")
	span(raftN1Addr, "TopicRaft", "GroupRaft", "raft_n1.query_consume_time_span")
	span(raftN0Addr, "TopicRaft", "GroupRaft", "raft_n0.query_consume_time_span")

	offline := fixtureRespError(t, "consumer", steady497Dir+"broker_a.get_consumer_connection_list.offline", rocketmq.CodeGetConsumerConnectionList)
	for addr := range nodes {
		for _, gs := range f.brokerConsumeStats[addr].ConsumeStatsList {
			f.errs[fakeKey("ConsumerConnectionList", addr, gs.Group)] = &rocketmq.ResponseError{
				RequestCode: offline.RequestCode, Code: offline.Code,
				Remark: fmt.Sprintf("the consumer group[%s] not online", gs.Group)}
		}
	}
	setGroupOnline(t, f, brokerAAddr, "GroupOnline")

	ci := decodeFixture(t, rocketmq.DecodeClusterInfo, readFixtureBody(t, "consumer", steady497Dir+"namesrv.get_broker_cluster_info"))
	return f, scrapeOfClusterInfo(f, ci)
}

// setGroupOnline gives group the recorded online connection list on addr.
func setGroupOnline(t *testing.T, f *fakeClient, addr, group string) *rocketmq.ConsumerConnection {
	t.Helper()
	conn := decodeFixture(t, rocketmq.DecodeConsumerConnection, readFixtureBody(t, "consumer", steady497Dir+"broker_a.get_consumer_connection_list.online"))
	delete(f.errs, fakeKey("ConsumerConnectionList", addr, group))
	f.connections[fakeKey(addr, group)] = conn
	return conn
}

func setGroupOffline(f *fakeClient, addr, group string) {
	delete(f.connections, fakeKey(addr, group))
	f.errs[fakeKey("ConsumerConnectionList", addr, group)] = &rocketmq.ResponseError{
		RequestCode: rocketmq.CodeGetConsumerConnectionList, Code: rocketmq.ResponseConsumerNotOnline}
}

// moveQueueOffsets changes one queue of one group in a broker's bulk answer; a
// negative value leaves that offset as it is.
func moveQueueOffsets(t *testing.T, f *fakeClient, addr, group, topic string, queue int, broker, consumer int64) {
	t.Helper()
	for _, gs := range f.brokerConsumeStats[addr].ConsumeStatsList {
		if gs.Group != group {
			continue
		}
		for _, cs := range gs.Stats {
			for i := range cs.OffsetTable {
				if ow := &cs.OffsetTable[i]; ow.Topic == topic && ow.QueueID == queue {
					if broker >= 0 {
						ow.BrokerOffset = broker
					}
					if consumer >= 0 {
						ow.ConsumerOffset = consumer
					}
					return
				}
			}
		}
	}
	t.Fatalf("no queue %s/%s/%d on %s", group, topic, queue, addr)
}

// queueOffsetsOf returns a queue's offsets from a broker's bulk answer.
func queueOffsetsOf(t *testing.T, f *fakeClient, addr, group, topic string, queue int) (broker, consumer int64) {
	t.Helper()
	for _, gs := range f.brokerConsumeStats[addr].ConsumeStatsList {
		if gs.Group != group {
			continue
		}
		for _, cs := range gs.Stats {
			for _, ow := range cs.OffsetTable {
				if ow.Topic == topic && ow.QueueID == queue {
					return ow.BrokerOffset, ow.ConsumerOffset
				}
			}
		}
	}
	t.Fatalf("no queue %s/%s/%d on %s", group, topic, queue, addr)
	return 0, 0
}

func newTestConsumer(t *testing.T, o Options) Collector {
	t.Helper()
	c, err := newConsumerCollector(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// Answers arrive at the scrape's reference time unless a test sets
	// a clock of its own.
	c.(*consumerCollector).lag.clock = scrapeTimeClock
	return c
}

// sidecarScrapeOf is what a sidecar next to one node sees.
func sidecarScrapeOf(client Client, now time.Time, b *Broker) *Scrape {
	return &Scrape{Client: client, Mode: ModeSidecar, Now: now, Concurrency: 4, Brokers: []*Broker{b}, Logger: slog.New(slog.DiscardHandler)}
}

func brokerANode() *Broker {
	return &Broker{Addr: brokerAAddr, Address: brokerAAddr, Cluster: "DefaultCluster", Name: "broker-a", ID: 0, Role: "ASYNC_MASTER"}
}

func TestConsumerSteady(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		golden string
	}{
		{"default", Options{LagSeconds: true}, "consumer/steady.prom"},
		{"per-queue", Options{LagSeconds: true, PerQueue: true}, "consumer/steady-per-queue.prom"},
		{"no lag seconds", Options{}, "consumer/steady-no-lag-seconds.prom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, s := consumerFake(t)
			if err := compareGolden(t, newTestConsumer(t, tc.opts), s, tc.golden); err != nil {
				t.Errorf("Update: %v", err)
			}
			lintCollector(t, newTestConsumer(t, tc.opts), s)
			if !tc.opts.LagSeconds && f.callCount("ConsumeTimeSpan", brokerAAddr) != 0 {
				t.Error("QUERY_CONSUME_TIME_SPAN sent with lag seconds off")
			}
		})
	}
}

func TestConsumerValues(t *testing.T) {
	f, s := consumerFake(t)
	text, err := collectExposition(t, newTestConsumer(t, Options{LagSeconds: true}), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		// GroupA on TopicA: (304-72)+(303-76)+(304-72)+(303-80).
		`rocketmq_consumer_group_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} 914`,
		`rocketmq_consumer_group_consumed_messages_total{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} 300`,
		// The largest recorded delayTime of its four queues.
		`rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} 379.738`,
		`rocketmq_consumer_group_retry_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupA"} 1`,
		`rocketmq_consumer_group_consumers{broker="broker-a",cluster="DefaultCluster",group="GroupA"} 0`,
		`rocketmq_consumer_group_status{broker="broker-a",cluster="DefaultCluster",group="GroupA",status="stopped"} 1`,
		`rocketmq_consumer_group_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupOnline",topic="TopicA"} 1174`,
		`rocketmq_consumer_group_consumers{broker="broker-a",cluster="DefaultCluster",group="GroupOnline"} 1`,
		`rocketmq_consumer_group_info{broker="broker-a",cluster="DefaultCluster",consume_type="CONSUME_PASSIVELY",group="GroupOnline",message_model="CLUSTERING"} 1`,
		`rocketmq_consumer_group_consume_messages_per_second{broker="broker-a",cluster="DefaultCluster",group="GroupOnline"} 119.2`,
		`rocketmq_consumer_group_status{broker="broker-a",cluster="DefaultCluster",group="GroupOnline",status="ok"} 1`,
		// 317 totalDiff of broker-b is 701 = 700 on TopicMS + 1 retry.
		`rocketmq_consumer_group_lag_messages{broker="broker-b",cluster="MSCluster",group="GroupMS",topic="TopicMS"} 700`,
		`rocketmq_consumer_group_retry_lag_messages{broker="broker-b",cluster="MSCluster",group="GroupMS"} 1`,
		`rocketmq_consumer_group_lag_messages{broker="RaftNode00",cluster="RaftCluster",group="GroupRaft",topic="TopicRaft"}`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s", want)
		}
	}
	for _, absent := range []string{
		`group="TOOLS_CONSUMER"`, `group="SELF_TEST_C_GROUP"`, `group="CID_ONSAPI_OWNER"`,
		`topic="%RETRY%GroupA"`, // the group's retry topic is its own series
		`address=`,
		`rocketmq_consumer_group_info{broker="broker-a",cluster="DefaultCluster",consume_type="",group="GroupA"`,
		// A group that never consumed on this broker (TestConsumerIdleGroupsOmitted).
		`group="GroupMSFromSlave"`,
	} {
		if strings.Contains(text, absent) {
			t.Errorf("unexpected %s", absent)
		}
	}
	for _, c := range f.calledWith() {
		if strings.HasPrefix(c, "ConsumerConnectionList|") && (strings.HasSuffix(c, "|TOOLS_CONSUMER") || strings.HasSuffix(c, "|CID_ONSAPI_PULL")) {
			t.Errorf("asked about a system group: %s", c)
		}
		if strings.HasPrefix(c, "ConsumeStats|") {
			t.Errorf("per-group consume stats requested although 317 answered: %s", c)
		}
	}
	// Lag seconds only where there is lag to age: no request for the groups
	// that only have an empty retry topic on a broker.
	if n := len(f.calledWith()); n == 0 {
		t.Fatal("no requests")
	}
	for _, addr := range []string{brokerAAddr, brokerBAddr, raftN1Addr} {
		if n := f.callCount("BrokerConsumeStats", addr); n != 1 {
			t.Errorf("%s: %d bulk requests, want 1", addr, n)
		}
	}
	if got := f.callCount("ConsumeTimeSpan", brokerAAddr); got != 2 {
		t.Errorf("broker-a: %d time span requests, want 2 (GroupA and GroupOnline on TopicA)", got)
	}
}

// Lag in seconds costs no request while offsets stand still, and one per
// (topic, group) whose consumer offset moved.
func TestConsumerLagSecondsCache(t *testing.T) {
	f, _ := consumerFake(t)
	c := newTestConsumer(t, Options{LagSeconds: true})
	spanCalls := func() int { return f.callCount("ConsumeTimeSpan", brokerAAddr) }

	now := steadyNow
	text, err := collectExposition(t, c, sidecarScrapeOf(f, now, brokerANode()))
	if err != nil {
		t.Fatal(err)
	}
	if spanCalls() != 2 {
		t.Fatalf("first scrape: %d time span requests, want 2", spanCalls())
	}
	const groupA = `rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} `
	if !hasSample(text, groupA+"379.738") {
		t.Errorf("first scrape:\n%s", text)
	}

	now = now.Add(30 * time.Second)
	text, err = collectExposition(t, c, sidecarScrapeOf(f, now, brokerANode()))
	if err != nil {
		t.Fatal(err)
	}
	if spanCalls() != 2 {
		t.Errorf("unchanged offsets: %d time span requests in total, want still 2", spanCalls())
	}
	if !hasSample(text, groupA+"409.738") {
		t.Errorf("age did not grow by 30s:\n%s", grepSamples(text, "lag_seconds"))
	}

	// GroupOnline consumes on queue 0: one new request, for that pair only.
	_, cons := queueOffsetsOf(t, f, brokerAAddr, "GroupOnline", "TopicA", 0)
	moveQueueOffsets(t, f, brokerAAddr, "GroupOnline", "TopicA", 0, -1, cons+5)
	now = now.Add(30 * time.Second)
	if _, err := collectExposition(t, c, sidecarScrapeOf(f, now, brokerANode())); err != nil {
		t.Fatal(err)
	}
	if spanCalls() != 3 || f.callCount("ConsumeTimeSpan", brokerAAddr+"|TopicA|GroupOnline") != 2 {
		t.Errorf("after a move: calls %v", callsOf(f, "ConsumeTimeSpan"))
	}
}

// The "no offset / deleted message" answer (delay ≈ now) is no 55-year lag:
// the oldest unconsumed message still stored is the queue's first one, aged
// by the answer's minTimeStamp. A lagging queue whose age nobody can tell
// leaves the series out; the lag in messages stays.
func TestConsumerLagSecondsUnknown(t *testing.T) {
	f, _ := consumerFake(t)
	spans := f.timeSpan[fakeKey(brokerAAddr, "TopicA", "GroupA")]
	oldest := int64(math.MaxInt64)
	for i := range spans {
		spans[i].DelayTime = steadyNow.UnixMilli() + 1
		oldest = min(oldest, spans[i].MinTimeStamp)
	}
	text, err := collectExposition(t, newTestConsumer(t, Options{LagSeconds: true}), sidecarScrapeOf(f, steadyNow, brokerANode()))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} %g`, float64(steadyNow.UnixMilli()-oldest)/1000)
	if !hasSample(text, want) {
		t.Errorf("want %s (the oldest stored message) in\n%s", want, grepSamples(text, "lag_seconds"))
	}

	// One lagging queue stores nothing at all: its age is unknown, and the
	// max of the others could hide it.
	f, _ = consumerFake(t)
	spans = f.timeSpan[fakeKey(brokerAAddr, "TopicA", "GroupA")]
	for i := range spans {
		if spans[i].MessageQueue.QueueID == 2 {
			spans[i].DelayTime = steadyNow.UnixMilli() + 1
			spans[i].MinTimeStamp = -1
		}
	}
	text, err = collectExposition(t, newTestConsumer(t, Options{LagSeconds: true}), sidecarScrapeOf(f, steadyNow, brokerANode()))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, `rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupA"`) {
		t.Errorf("lag seconds reported although queue 2's age is unknown:\n%s", grepSamples(text, "lag_seconds"))
	}
	if !hasSample(text, `rocketmq_consumer_group_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} 914`) {
		t.Error("lag in messages lost")
	}
}

// The broker measures delayTime when QUERY_CONSUME_TIME_SPAN runs, seconds
// into the scrape here: the store time is anchored on the answer's arrival,
// so the ages (at the scrape's time) are right now and while cached.
func TestConsumerLagSecondsAnchoredOnArrival(t *testing.T) {
	f, _ := consumerFake(t)
	c := newTestConsumer(t, Options{LagSeconds: true})
	clk := &fixedClock{t: steadyNow}
	c.(*consumerCollector).lag.clock = clk.Now
	const gap = 4 * time.Second
	var scrapeAt time.Time
	f.before = func(_ context.Context, key string) error {
		if strings.HasPrefix(key, "ConsumeTimeSpan|") {
			clk.Set(scrapeAt.Add(gap)) // the recorded delays were measured now
		}
		return nil
	}
	const groupA = `rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} `
	for _, step := range []struct {
		at   time.Duration
		want string
	}{
		{0, "375.738"},                // 379.738 measured 4s after the scrape began
		{30 * time.Second, "405.738"}, // from the cache, 30s later
	} {
		scrapeAt = steadyNow.Add(step.at)
		clk.Set(scrapeAt)
		text, err := collectExposition(t, c, sidecarScrapeOf(f, scrapeAt, brokerANode()))
		if err != nil {
			t.Fatal(err)
		}
		if !hasSample(text, groupA+step.want) {
			t.Errorf("at +%v: want %s in\n%s", step.at, step.want, grepSamples(text, "GroupA"))
		}
	}
	if n := f.callCount("ConsumeTimeSpan", brokerAAddr+"|TopicA|GroupA"); n != 1 {
		t.Errorf("%d time span requests for GroupA, want 1", n)
	}
}

// A caught-up group reports 0 seconds without any request.
func TestConsumerLagSecondsCaughtUp(t *testing.T) {
	f, _ := consumerFake(t)
	for q := range 4 {
		b, _ := queueOffsetsOf(t, f, brokerAAddr, "GroupA", "TopicA", q)
		moveQueueOffsets(t, f, brokerAAddr, "GroupA", "TopicA", q, -1, b)
	}
	text, err := collectExposition(t, newTestConsumer(t, Options{LagSeconds: true}), sidecarScrapeOf(f, steadyNow, brokerANode()))
	if err != nil {
		t.Fatal(err)
	}
	if !hasSample(text, `rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} 0`) {
		t.Errorf("caught-up group:\n%s", grepSamples(text, "GroupA"))
	}
	if n := f.callCount("ConsumeTimeSpan", brokerAAddr+"|TopicA|GroupA"); n != 0 {
		t.Errorf("%d time span requests for a caught-up group", n)
	}
	if !hasSample(text, `rocketmq_consumer_group_status{broker="broker-a",cluster="DefaultCluster",group="GroupA",status="ok"} 1`) {
		t.Error("caught-up offline group not ok")
	}
}

// groupStatusOf returns the status value that is 1 for group on broker-a.
func groupStatusOf(t *testing.T, text, group string) string {
	t.Helper()
	var found []string
	for _, st := range consumerStatuses {
		if hasSample(text, fmt.Sprintf(`rocketmq_consumer_group_status{broker="broker-a",cluster="DefaultCluster",group=%q,status=%q} 1`, group, st)) {
			found = append(found, st)
		}
	}
	if len(found) != 1 {
		t.Fatalf("status of %s: %v\n%s", group, found, grepSamples(text, "group_status"))
	}
	return found[0]
}

func TestConsumerStatusTransitions(t *testing.T) {
	f, _ := consumerFake(t)
	c := newTestConsumer(t, Options{})
	now := steadyNow
	scrape := func(step time.Duration) string {
		t.Helper()
		now = now.Add(step)
		text, err := collectExposition(t, c, sidecarScrapeOf(f, now, brokerANode()))
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	// produce adds n messages to every queue of TopicA; consume advances
	// GroupOnline by n on every queue (capped at the broker offset).
	produce := func(n int64) {
		for _, g := range []string{"GroupOnline", "GroupA"} {
			for q := range 4 {
				b, _ := queueOffsetsOf(t, f, brokerAAddr, g, "TopicA", q)
				moveQueueOffsets(t, f, brokerAAddr, g, "TopicA", q, b+n, -1)
			}
		}
	}
	consume := func(queues []int, n int64) {
		for _, q := range queues {
			b, c := queueOffsetsOf(t, f, brokerAAddr, "GroupOnline", "TopicA", q)
			moveQueueOffsets(t, f, brokerAAddr, "GroupOnline", "TopicA", q, -1, min(b, c+n))
		}
	}
	all := []int{0, 1, 2, 3}
	steps := []struct {
		name  string
		step  time.Duration
		setup func()
		want  string
	}{
		{"first sight: no history", 0, func() {}, statusOK},
		{"broker moves, consumer stands", 30 * time.Second, func() { produce(10) }, statusStalled},
		{"too soon to judge again", 5 * time.Second, func() { consume(all, 1) }, statusStalled},
		{"consumer moves, lag grows", 30 * time.Second, func() { produce(20); consume(all, 5) }, statusLagging},
		{"consumer moves, lag shrinks", 30 * time.Second, func() { produce(1); consume(all, 50) }, statusOK},
		{"one queue stuck while the others move", 30 * time.Second, func() { produce(5); consume([]int{0, 1, 2}, 10) }, statusStalled},
		{"nothing new, consumer idle with lag", 30 * time.Second, func() {}, statusStalled},
		{"caught up", 30 * time.Second, func() { consume(all, 1<<20) }, statusOK},
		{"caught up and idle", 30 * time.Second, func() {}, statusOK},
		{"offline with lag", 30 * time.Second, func() { produce(3); setGroupOffline(f, brokerAAddr, "GroupOnline") }, statusStopped},
		{"back online, consuming", 30 * time.Second, func() { setGroupOnline(t, f, brokerAAddr, "GroupOnline"); consume(all, 1) }, statusOK},
	}
	for _, st := range steps {
		st.setup()
		text := scrape(st.step)
		if got := groupStatusOf(t, text, "GroupOnline"); got != st.want {
			t.Errorf("%s: status %s, want %s", st.name, got, st.want)
		}
	}
	// GroupA never had a consumer: stopped throughout.
	if got := groupStatusOf(t, scrape(30*time.Second), "GroupA"); got != statusStopped {
		t.Errorf("GroupA: %s", got)
	}
}

// Broadcasting clients keep offsets locally: no lag, seconds or status from
// the broker's leftovers, but consumers, info and TPS.
func TestConsumerBroadcasting(t *testing.T) {
	f, _ := consumerFake(t)
	conn := setGroupOnline(t, f, brokerAAddr, "GroupOnline")
	conn.MessageModel = "BROADCASTING"
	text, err := collectExposition(t, newTestConsumer(t, Options{LagSeconds: true, PerQueue: true}), sidecarScrapeOf(f, steadyNow, brokerANode()))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`rocketmq_consumer_group_info{broker="broker-a",cluster="DefaultCluster",consume_type="CONSUME_PASSIVELY",group="GroupOnline",message_model="BROADCASTING"} 1`,
		`rocketmq_consumer_group_consumers{broker="broker-a",cluster="DefaultCluster",group="GroupOnline"} 1`,
		`rocketmq_consumer_group_consume_messages_per_second{broker="broker-a",cluster="DefaultCluster",group="GroupOnline"} 119.2`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s", want)
		}
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, `group="GroupOnline"`) && !strings.HasPrefix(l, "#") &&
			!strings.HasPrefix(l, "rocketmq_consumer_group_info") && !strings.HasPrefix(l, "rocketmq_consumer_group_consumers") &&
			!strings.HasPrefix(l, "rocketmq_consumer_group_consume_messages_per_second") {
			t.Errorf("broadcasting group series: %s", l)
		}
	}
	if n := f.callCount("ConsumeTimeSpan", brokerAAddr+"|TopicA|GroupOnline"); n != 0 {
		t.Errorf("%d time span requests for a broadcasting group", n)
	}
}

func TestConsumerRetryAndDLQ(t *testing.T) {
	f, _ := consumerFake(t)
	tc := f.topicConfig[brokerAAddr]
	for _, g := range []string{"GroupA", "Gone", "TOOLS_CONSUMER", "Filtered"} {
		tc.TopicConfigTable[dlqTopic(g)] = rocketmq.TopicConfig{TopicName: dlqTopic(g), WriteQueueNums: 1, ReadQueueNums: 1, Perm: 2}
	}
	f.topicStats[fakeKey(brokerAAddr, dlqTopic("GroupA"))] = &rocketmq.TopicStatsTable{OffsetTable: []rocketmq.TopicQueueOffset{{
		MessageQueue: rocketmq.MessageQueue{Topic: dlqTopic("GroupA"), BrokerName: "broker-a", QueueID: 0},
		TopicOffset:  rocketmq.TopicOffset{MinOffset: 2, MaxOffset: 7, LastUpdateTimestamp: steadyNow.UnixMilli()},
	}}}
	f.errs[fakeKey("TopicStats", brokerAAddr, dlqTopic("Gone"))] = &rocketmq.ResponseError{Code: rocketmq.ResponseTopicNotExist}

	o := Options{Groups: mustFilter(t, "", "Filtered")}
	text, err := collectExposition(t, newTestConsumer(t, o), sidecarScrapeOf(f, steadyNow, brokerANode()))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`rocketmq_consumer_group_dlq_messages{broker="broker-a",cluster="DefaultCluster",group="GroupA"} 5`,
		// The recorded %RETRY%GroupA entry: brokerOffset 1, consumerOffset 0.
		`rocketmq_consumer_group_retry_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupA"} 1`,
		`rocketmq_consumer_group_retry_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupOnline"} 0`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s", want)
		}
	}
	if got := strings.Count(text, "rocketmq_consumer_group_dlq_messages{"); got != 1 {
		t.Errorf("%d DLQ series, want 1 (deleted, system and filtered groups have none):\n%s", got, grepSamples(text, "dlq"))
	}
	for _, g := range []string{"TOOLS_CONSUMER", "Filtered"} {
		if n := f.callCount("TopicStats", brokerAAddr+"|"+dlqTopic(g)); n != 0 {
			t.Errorf("DLQ of %s read", g)
		}
	}
	// Only groups with a DLQ topic cost a request.
	if n := f.callCount("TopicStats", brokerAAddr); n != 2 {
		t.Errorf("%d topic stats requests, want 2: %v", n, callsOf(f, "TopicStats"))
	}
}

func TestConsumerFilters(t *testing.T) {
	t.Run("groups", func(t *testing.T) {
		f, _ := consumerFake(t)
		o := Options{Groups: mustFilter(t, "Group.*", "GroupMS.*")}
		text, err := collectExposition(t, newTestConsumer(t, o), sidecarScrapeOf(f, steadyNow, brokerANode()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, `group="GroupMS`) {
			t.Error("excluded group exported")
		}
		if !strings.Contains(text, `group="GroupOnline"`) || !strings.Contains(text, `group="GroupA"`) {
			t.Error("included groups missing")
		}
		for _, c := range callsOf(f, "ConsumerConnectionList") {
			if strings.Contains(c, "GroupMS") {
				t.Errorf("request for an excluded group: %s", c)
			}
		}
		// GroupRaft is idle on broker-a (no series) but included: asked.
		if n := f.callCount("ConsumerConnectionList", brokerAAddr+"|GroupRaft"); n != 1 {
			t.Errorf("included group GroupRaft asked %d times, want 1", n)
		}
	})
	t.Run("topics", func(t *testing.T) {
		f, _ := consumerFake(t)
		o := Options{LagSeconds: true, Topics: mustFilter(t, "", "TopicA")}
		text, err := collectExposition(t, newTestConsumer(t, o), sidecarScrapeOf(f, steadyNow, brokerANode()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, `topic="TopicA"`) {
			t.Error("excluded topic exported")
		}
		if f.callCount("ConsumeTimeSpan", brokerAAddr) != 0 {
			t.Error("time span asked for an excluded topic")
		}
		if !hasSample(text, `rocketmq_consumer_group_retry_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupA"} 1`) {
			t.Error("per-group series lost with the topic filter")
		}
	})
	t.Run("system groups on request", func(t *testing.T) {
		f, _ := consumerFake(t)
		setGroupOnline(t, f, brokerAAddr, "TOOLS_CONSUMER")
		text, err := collectExposition(t, newTestConsumer(t, Options{SystemTopics: true}), sidecarScrapeOf(f, steadyNow, brokerANode()))
		if err != nil {
			t.Fatal(err)
		}
		if !hasSample(text, `rocketmq_consumer_group_consumers{broker="broker-a",cluster="DefaultCluster",group="TOOLS_CONSUMER"} 1`) {
			t.Error("system group missing with SystemTopics")
		}
	})
}

// Sidecars next to the three DLedger nodes: exactly the leader reports, before
// and after a failover, under the same labels (the series continue).
func TestConsumerSidecarOwnershipFailover(t *testing.T) {
	f, _ := consumerFake(t)
	// n2 answers like n0 did (the followers' recorded offsets).
	f.brokerConsumeStats[raftN2Addr] = f.brokerConsumeStats[raftN0Addr]
	f.topicConfig[raftN2Addr] = f.topicConfig[raftN0Addr]
	f.timeSpan[fakeKey(raftN2Addr, "TopicRaft", "GroupRaft")] = f.timeSpan[fakeKey(raftN0Addr, "TopicRaft", "GroupRaft")]
	for _, gs := range f.brokerConsumeStats[raftN2Addr].ConsumeStatsList {
		f.errs[fakeKey("ConsumerConnectionList", raftN2Addr, gs.Group)] = &rocketmq.ResponseError{Code: rocketmq.ResponseConsumerNotOnline}
	}

	node := func(addr string, id int64, err error) *Broker {
		role := "SYNC_MASTER"
		if id != 0 {
			role = "SLAVE"
		}
		return &Broker{Addr: addr, Address: addr, Cluster: "RaftCluster", Name: "RaftNode00", ID: id, Role: role, Err: err}
	}
	// One collector per sidecar, kept across the failover.
	sidecars := map[string]Collector{raftN0Addr: newTestConsumer(t, Options{LagSeconds: true}), raftN1Addr: newTestConsumer(t, Options{LagSeconds: true}), raftN2Addr: newTestConsumer(t, Options{LagSeconds: true})}
	const lagSeries = `rocketmq_consumer_group_lag_messages{broker="RaftNode00",cluster="RaftCluster",group="GroupRaft",topic="TopicRaft"}`
	reporting := func(views map[string]*Broker, now time.Time) []string {
		var out []string
		for addr, b := range views {
			text, _ := collectExposition(t, sidecars[addr], sidecarScrapeOf(f, now, b))
			if hasSample(text, lagSeries) {
				out = append(out, addr)
			}
			if !b.IsMaster() && text != "" {
				t.Errorf("%s (id %d) is not the leader but exported:\n%s", addr, b.ID, text)
			}
		}
		return out
	}

	before := reporting(map[string]*Broker{raftN0Addr: node(raftN0Addr, 1, nil), raftN1Addr: node(raftN1Addr, 0, nil), raftN2Addr: node(raftN2Addr, 3, nil)}, steadyNow)
	if len(before) != 1 || before[0] != raftN1Addr {
		t.Errorf("before failover reported by %v, want only the leader %s", before, raftN1Addr)
	}
	after := reporting(map[string]*Broker{raftN0Addr: node(raftN0Addr, 1, nil), raftN1Addr: node(raftN1Addr, -1, fakeDown(raftN1Addr)), raftN2Addr: node(raftN2Addr, 0, nil)}, steadyNow.Add(30*time.Second))
	if len(after) != 1 || after[0] != raftN2Addr {
		t.Errorf("after failover reported by %v, want only the new leader %s", after, raftN2Addr)
	}
	for _, addr := range []string{raftN0Addr} {
		if n := f.callCount("BrokerConsumeStats", addr); n != 0 {
			t.Errorf("follower %s read %d times", addr, n)
		}
	}
}

// In cluster mode each master's offsets are read exactly once, slaves never.
func TestConsumerClusterModeMastersOnce(t *testing.T) {
	f, s := consumerFake(t)
	if _, err := collectExposition(t, newTestConsumer(t, Options{LagSeconds: true}), s); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]int{brokerAAddr: 1, brokerBAddr: 1, raftN1Addr: 1, brokerBSlaveAddr: 0, raftN0Addr: 0, raftN2Addr: 0} {
		if n := f.callCount("BrokerConsumeStats", addr); n != want {
			t.Errorf("%s: %d bulk requests, want %d", addr, n, want)
		}
	}
}

func TestConsumerPartialFailure(t *testing.T) {
	f, s := consumerFake(t)
	f.errs[fakeKey("BrokerConsumeStats", brokerBAddr)] = fakeDown(brokerBAddr)
	f.errs[fakeKey("ConsumerConnectionList", brokerAAddr, "GroupA")] = &rocketmq.ResponseError{Code: rocketmq.ResponseSystemBusy, Remark: "busy"}
	f.errs[fakeKey("ConsumeTimeSpan", brokerAAddr, "TopicA", "GroupOnline")] = &rocketmq.ResponseError{Code: rocketmq.ResponseSystemError, Remark: "x"}
	text, err := collectExposition(t, newTestConsumer(t, Options{LagSeconds: true}), s)
	if err == nil {
		t.Fatal("failures not reported")
	}
	for _, part := range []string{brokerBAddr, "GroupA", "GroupOnline"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error does not name %s: %v", part, err)
		}
	}
	if strings.Contains(text, `broker="broker-b"`) {
		t.Error("series of the failed broker")
	}
	if !strings.Contains(text, `broker="RaftNode00"`) {
		t.Error("healthy broker lost")
	}
	// GroupA: offsets known, consumers unknown → lag but no consumers/status.
	if !hasSample(text, `rocketmq_consumer_group_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} 914`) {
		t.Error("GroupA lag lost")
	}
	for _, absent := range []string{
		`rocketmq_consumer_group_consumers{broker="broker-a",cluster="DefaultCluster",group="GroupA"}`,
		`rocketmq_consumer_group_status{broker="broker-a",cluster="DefaultCluster",group="GroupA"`,
		`rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupOnline"`,
	} {
		if strings.Contains(text, absent) {
			t.Errorf("unexpected %s", absent)
		}
	}
}

// A broker that does not know GET_BROKER_CONSUME_STATS is read group by group.
func TestConsumerFallbackWithoutBulkStats(t *testing.T) {
	f, _ := consumerFake(t)
	f.errs[fakeKey("BrokerConsumeStats", brokerAAddr)] = &rocketmq.ResponseError{Code: rocketmq.ResponseRequestCodeNotSupported, Remark: " request type 317 not supported"}
	f.subscriptionGroups[brokerAAddr] = &rocketmq.SubscriptionGroupWrapper{SubscriptionGroupTable: map[string]rocketmq.SubscriptionGroupConfig{
		"GroupA": {GroupName: "GroupA"}, "GroupOnline": {GroupName: "GroupOnline"}, "TOOLS_CONSUMER": {GroupName: "TOOLS_CONSUMER"}, "Deleted": {GroupName: "Deleted"},
	}}
	f.consumeStats[fakeKey(brokerAAddr, "GroupA", "")] = decodeFixture(t, rocketmq.DecodeConsumeStats, readFixtureBody(t, "consumer", steady497Dir+"broker_a.get_consume_stats.all_topics"))
	f.consumeStats[fakeKey(brokerAAddr, "GroupOnline", "")] = decodeFixture(t, rocketmq.DecodeConsumeStats, readFixtureBody(t, "consumer", steady497Dir+"broker_a.get_consume_stats.online"))
	f.errs[fakeKey("ConsumeStats", brokerAAddr, "Deleted", "")] = &rocketmq.ResponseError{Code: rocketmq.ResponseSubscriptionGroupAbsent}
	f.errs[fakeKey("ConsumerConnectionList", brokerAAddr, "Deleted")] = &rocketmq.ResponseError{Code: rocketmq.ResponseConsumerNotOnline}

	text, err := collectExposition(t, newTestConsumer(t, Options{}), sidecarScrapeOf(f, steadyNow, brokerANode()))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`rocketmq_consumer_group_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} 914`,
		`rocketmq_consumer_group_retry_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupA"} 1`,
		`rocketmq_consumer_group_consume_messages_per_second{broker="broker-a",cluster="DefaultCluster",group="GroupOnline"} 119.2`,
		`rocketmq_consumer_group_status{broker="broker-a",cluster="DefaultCluster",group="GroupA",status="stopped"} 1`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(text, `group="Deleted"`) || strings.Contains(text, `group="TOOLS_CONSUMER"`) {
		t.Error("deleted or system group exported")
	}
}

func TestConsumer50(t *testing.T) {
	f := newFakeClient()
	const addr = "127.0.0.1:23911"
	dir := "rocketmq-5.0.0/steady/"
	f.brokerConsumeStats[addr] = decodeFixture(t, rocketmq.DecodeConsumeStatsList, readFixtureBody(t, "consumer", dir+"ms_master.get_broker_consume_stats"))
	f.topicConfig[addr] = decodeFixture(t, rocketmq.DecodeTopicConfigWrapper, readFixtureBody(t, "consumer", dir+"ms_master.get_all_topic_config"))
	f.timeSpan[fakeKey(addr, "TopicMS", "GroupMS")] = decodeFixture(t, rocketmq.DecodeConsumeTimeSpan, readFixtureBody(t, "consumer", dir+"ms_master.query_consume_time_span"))
	offline := fixtureRespError(t, "consumer", dir+"ms_master.get_consumer_connection_list", rocketmq.CodeGetConsumerConnectionList)
	for _, g := range []string{"GroupMS", "GroupCtrl"} {
		f.errs[fakeKey("ConsumerConnectionList", addr, g)] = offline
	}
	b := &Broker{Addr: addr, Address: addr, Cluster: "MSCluster", Name: "broker-d", ID: 0, Role: "ASYNC_MASTER"}
	if err := compareGolden(t, newTestConsumer(t, Options{LagSeconds: true}), sidecarScrapeOf(f, time.UnixMilli(1795257920000), b), "consumer/steady-5.0.0.prom"); err != nil {
		t.Error(err)
	}
}

// Requests are bounded by the scrape's concurrency in every phase.
func TestConsumerConcurrencyBound(t *testing.T) {
	f, s := consumerFake(t)
	var inFlight, peak atomic.Int32
	f.before = func(ctx context.Context, key string) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(3 * time.Millisecond)
		return nil
	}
	s.Concurrency = 2
	if _, err := collectExposition(t, newTestConsumer(t, Options{LagSeconds: true}), s); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak %d requests in flight, want 2", p)
	}
}

// The documented series count (docs/consumer-lag.md) for a synthetic
// topology: B masters, G groups each consuming T topics of Q queues on every
// master, with retry topics, all online, and I groups that never used any
// master.
func TestConsumerCardinality(t *testing.T) {
	const B, G, T, Q, I = 3, 4, 2, 8, 3
	f := newFakeClient()
	s := &Scrape{Client: f, Mode: ModeCluster, Now: steadyNow, Concurrency: 4}
	for b := range B {
		addr := fmt.Sprintf("10.0.0.%d:10911", b+1)
		s.Brokers = append(s.Brokers, &Broker{Addr: addr, Address: addr, Cluster: "C", Name: fmt.Sprint("broker-", b), ID: 0})
		list := &rocketmq.ConsumeStatsList{BrokerAddr: addr}
		f.topicConfig[addr] = &rocketmq.TopicConfigWrapper{TopicConfigTable: map[string]rocketmq.TopicConfig{}}
		for g := range G {
			group := fmt.Sprint("G", g)
			var stats []rocketmq.ConsumeStats
			for tp := range T + 1 {
				topic := fmt.Sprint("T", tp)
				if tp == T {
					topic = retryTopic(group)
				}
				cs := rocketmq.ConsumeStats{ConsumeTps: 1}
				for q := range Q {
					cs.OffsetTable = append(cs.OffsetTable, rocketmq.QueueOffsetWrapper{
						MessageQueue:  rocketmq.MessageQueue{Topic: topic, QueueID: q},
						OffsetWrapper: rocketmq.OffsetWrapper{BrokerOffset: 100, ConsumerOffset: 50},
					})
				}
				stats = append(stats, cs)
				var spans []rocketmq.QueueTimeSpan
				for q := range Q {
					spans = append(spans, rocketmq.QueueTimeSpan{MessageQueue: rocketmq.MessageQueue{Topic: topic, QueueID: q}, DelayTime: 1000})
				}
				f.timeSpan[fakeKey(addr, topic, group)] = spans
			}
			list.ConsumeStatsList = append(list.ConsumeStatsList, rocketmq.GroupConsumeStats{Group: group, Stats: stats})
			f.connections[fakeKey(addr, group)] = &rocketmq.ConsumerConnection{ConnectionSet: []rocketmq.Connection{{ClientID: "c"}}, MessageModel: "CLUSTERING", ConsumeType: "CONSUME_PASSIVELY"}
		}
		// Groups that never used this master: offline, only the empty
		// retry entry every client registers, or nothing at all.
		for i := range I {
			group := fmt.Sprint("Idle", i)
			gs := rocketmq.GroupConsumeStats{Group: group}
			if i%2 == 0 {
				gs.Stats = []rocketmq.ConsumeStats{{OffsetTable: []rocketmq.QueueOffsetWrapper{
					{MessageQueue: rocketmq.MessageQueue{Topic: retryTopic(group), QueueID: 0}},
				}}}
			}
			list.ConsumeStatsList = append(list.ConsumeStatsList, gs)
			f.errs[fakeKey("ConsumerConnectionList", addr, group)] = &rocketmq.ResponseError{Code: rocketmq.ResponseConsumerNotOnline}
		}
		f.brokerConsumeStats[addr] = list
	}
	// Per (master, group): consumers, info, TPS, retry lag and total, 4
	// status = 9; per (master, group, topic): lag, consumed, lag seconds =
	// 3; per queue 1; idle groups none.
	want := B * G * (9 + 3*T)
	if n := countSeries(t, newTestConsumer(t, Options{LagSeconds: true}), s); n != want {
		t.Errorf("%d series, want %d", n, want)
	}
	if n := countSeries(t, newTestConsumer(t, Options{LagSeconds: true, PerQueue: true}), s); n != want+B*G*T*Q {
		t.Errorf("per-queue: %d series, want %d", n, want+B*G*T*Q)
	}
}

func grepSamples(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func callsOf(f *fakeClient, method string) []string {
	var out []string
	for _, c := range f.calledWith() {
		if strings.HasPrefix(c, method+"|") {
			out = append(out, c)
		}
	}
	return out
}

// ---- against the simulated cluster, over the real protocol ----

// simClock is the simulated cluster's clock and the scrapes' Now.
type simClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingClient counts the requests of a real client by method and
// address, like the fake does.
type countingClient struct {
	Client
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingClient) count(method, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[method+"|"+addr]++
}

func (c *countingClient) get(method, addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method+"|"+addr]
}

func (c *countingClient) total(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.calls {
		if strings.HasPrefix(k, method+"|") {
			n += v
		}
	}
	return n
}

func (c *countingClient) BrokerConsumeStats(ctx context.Context, addr string) (*rocketmq.ConsumeStatsList, error) {
	c.count("BrokerConsumeStats", addr)
	return c.Client.BrokerConsumeStats(ctx, addr)
}

func (c *countingClient) ConsumeTimeSpan(ctx context.Context, addr, topic, group string) ([]rocketmq.QueueTimeSpan, error) {
	c.count("ConsumeTimeSpan", addr)
	return c.Client.ConsumeTimeSpan(ctx, addr, topic, group)
}

func (c *countingClient) TopicStats(ctx context.Context, addr, topic string) (*rocketmq.TopicStatsTable, error) {
	c.count("TopicStats", addr)
	return c.Client.TopicStats(ctx, addr, topic)
}

func (c *countingClient) TopicStatsSummary(ctx context.Context, addr, topic string) (rocketmq.TopicStatsSummary, error) {
	c.count("TopicStatsSummary", addr)
	return c.Client.TopicStatsSummary(ctx, addr, topic)
}

func (c *countingClient) TopicNames(ctx context.Context, addr string) ([]string, error) {
	c.count("TopicNames", addr)
	return c.Client.TopicNames(ctx, addr)
}

// startLagSim starts a simulated cluster and a real client; both are closed,
// and goroutine leaks checked, when the test ends.
func startLagSim(t *testing.T, spec rmqsim.Spec) (*rmqsim.Cluster, *countingClient) {
	t.Helper()
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	sim, err := rmqsim.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	client := rocketmq.NewClient(rocketmq.ClientOptions{DialTimeout: time.Second})
	t.Cleanup(func() {
		_ = client.Close()
		sim.Close()
	})
	return sim, &countingClient{Client: rocketmq.NewAdmin(client)}
}

// simScrape resolves the targets like the exporter does and runs the
// collectors, at the simulated clock's time. It returns the samples by
// "name{labels}" and the collectors' errors.
func simScrape(t *testing.T, client Client, targets Targets, now time.Time, cs ...Collector) (map[string]float64, error) {
	t.Helper()
	text, err := simScrapeText(t, client, targets, now, cs...)
	return parseSamples(t, text), err
}

// simScrapeText is simScrape's exposition text.
func simScrapeText(t *testing.T, client Client, targets Targets, now time.Time, cs ...Collector) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s := Resolve(ctx, client, targets, nil)
	s.Now = now
	var text strings.Builder
	var errs []error
	for _, c := range cs {
		u := &updateAdapter{c: c, s: s, ctx: ctx}
		text.WriteString(exposition(t, u))
		if u.err != nil {
			errs = append(errs, u.err)
		}
	}
	return text.String(), errors.Join(errs...)
}

// compareGoldenText compares an exposition with testdata/<file>, or rewrites
// the file with -update.
func compareGoldenText(t *testing.T, text, file string) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if wantGoldenUpdate() {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if string(want) != text {
		t.Errorf("%s differs:\n%s", file, lineDiff(string(want), text))
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var out []string
	for l := range w {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range g {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(sortedStrings(out), "\n")
}

// parseSamples maps each sample line of an exposition to its value.
func parseSamples(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, l := range strings.Split(text, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", l, err)
		}
		out[l[:i]] = v
	}
	return out
}

// sumWhere adds the samples of name whose labels contain every label pair.
func sumWhere(samples map[string]float64, name string, labels ...string) (float64, int) {
	var sum float64
	n := 0
next:
	for k, v := range samples {
		if !strings.HasPrefix(k, name+"{") {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(k, fmt.Sprintf("%s=%q", labels[i], labels[i+1])) {
				continue next
			}
		}
		sum += v
		n++
	}
	return sum, n
}

func mustSim(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// One exporter in cluster mode against three clusters behind one NameServer
// (master/slave, single master, DLedger): every group is reported once, by
// its master, with its own cluster label; lag in messages and seconds, retry,
// DLQ, broadcasting, offline and stalled groups, and QUERY_CONSUME_TIME_SPAN
// only when an offset moved.
func TestConsumerSimulatedClusterMode(t *testing.T) {
	clk := &simClock{now: time.UnixMilli(1795255000000)}
	t0 := clk.Now()
	sim, client := startLagSim(t, rmqsim.Spec{
		Version: rmqsim.V4_9_7,
		Groups: []rmqsim.GroupSpec{
			{Cluster: "DefaultCluster", Name: "broker-a", Mode: rmqsim.MasterSlave, Replicas: 2},
			{Cluster: "SecondCluster", Name: "broker-b", Mode: rmqsim.MasterSlave},
			{Cluster: "RaftCluster", Name: "RaftNode00", Mode: rmqsim.DLedger, Replicas: 3, Leader: 1},
		},
		Clock:  clk.Now,
		Timing: rmqsim.Timing{Manual: true},
	})
	mustSim(t, sim.CreateTopic("broker-a", "TopicA", 4))
	mustSim(t, sim.CreateTopic("broker-b", "TopicB", 2))
	mustSim(t, sim.CreateTopic("RaftNode00", "TopicRaft", 4))
	sim.CreateConsumerGroup("GroupA", false)
	sim.CreateConsumerGroup("GroupOnline", false)
	sim.CreateConsumerGroup("GroupBroadcast", true)
	sim.CreateConsumerGroup("GroupRaft", false)
	mustSim(t, sim.Subscribe("GroupA", "TopicA"))
	mustSim(t, sim.Subscribe("GroupOnline", "TopicB"))
	mustSim(t, sim.Subscribe("GroupBroadcast", "TopicA"))
	mustSim(t, sim.Subscribe("GroupRaft", "TopicRaft"))

	_, err := sim.Produce("TopicA", 100) // 25 per queue at t0
	mustSim(t, err)
	clk.Advance(60 * time.Second)
	_, err = sim.Produce("TopicA", 300)
	mustSim(t, err)
	_, err = sim.Produce("TopicB", 50)
	mustSim(t, err)
	_, err = sim.Produce("TopicRaft", 40)
	mustSim(t, err)
	_, err = sim.Consume("GroupA", "TopicA", 96) // offset 24 on every queue: next message stored at t0
	mustSim(t, err)
	_, err = sim.Consume("GroupOnline", "TopicB", 20)
	mustSim(t, err)
	_, err = sim.Consume("GroupRaft", "TopicRaft", -1)
	mustSim(t, err)
	sim.SetOnline("GroupOnline", 2)
	sim.SetOnline("GroupBroadcast", 3)
	sim.SetOnline("GroupRaft", 1)
	mustSim(t, sim.SendToRetry("GroupA", 3))
	mustSim(t, sim.SendToDLQ("GroupA", 2))
	clk.Advance(40 * time.Second)

	targets := Targets{Mode: ModeCluster, NameServers: sim.NameServerAddrs(), Concurrency: 4}
	consumer := newTestConsumer(t, Options{LagSeconds: true})
	topic, cluster := newTestTopic(t, Options{}), newTestCluster(t)
	text, err := simScrapeText(t, client, targets, clk.Now(), consumer, topic, cluster)
	if err != nil {
		t.Fatal(err)
	}
	got := parseSamples(t, text)
	// Topic and consumer series carry no node address, so they are stable
	// across runs (the simulated ports are not); the cluster series are
	// checked one by one below.
	compareGoldenText(t, grepPrefix(text, "rocketmq_consumer_", "rocketmq_topic_"), "consumer/simulated-cluster-mode.prom")

	// Topic stats are summed while they are decoded, except on DLQ topics,
	// whose table the consumer collector shares: one full read each.
	dlq, other := 0, 0
	for k := range got {
		if strings.HasPrefix(k, "rocketmq_topic_messages_total{") {
			if strings.Contains(k, `type="dlq"`) {
				dlq++
			} else {
				other++
			}
		}
	}
	if full, summed := client.total("TopicStats"), client.total("TopicStatsSummary"); dlq == 0 || full != dlq || summed != other {
		t.Errorf("%d full and %d summed topic stats reads for %d DLQ and %d other topics; want one full read per DLQ topic and one summed read per other", full, summed, dlq, other)
	}
	// With per-queue detail every table is read whole, for the same topic
	// series.
	perQueue, err := simScrapeText(t, client, targets, clk.Now(), newTestTopic(t, Options{PerQueue: true}))
	if err != nil {
		t.Fatal(err)
	}
	withoutQueues := func(text string) string {
		var b strings.Builder
		for _, l := range strings.SplitAfter(grepPrefix(text, "rocketmq_topic_"), "\n") {
			if !strings.Contains(l, "rocketmq_topic_queue_") {
				b.WriteString(l)
			}
		}
		return b.String()
	}
	if a, b := withoutQueues(text), withoutQueues(perQueue); a != b || a == "" {
		t.Errorf("topic series with per-queue detail differ:\n%s\nwithout:\n%s", b, a)
	}
	if n := client.total("TopicStatsSummary"); n != other {
		t.Errorf("%d summed topic stats reads with per-queue detail, want none more than %d", n, other)
	}
	if !strings.Contains(perQueue, "rocketmq_topic_queue_max_offset{") {
		t.Error("no per-queue series with per-queue detail")
	}

	want := map[string]float64{
		`rocketmq_consumer_group_lag_messages{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"}`:                                                304,
		`rocketmq_consumer_group_consumed_messages_total{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"}`:                                     96,
		`rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"}`:                                                 100,
		`rocketmq_consumer_group_consumers{broker="broker-a",cluster="DefaultCluster",group="GroupA"}`:                                                                  0,
		`rocketmq_consumer_group_status{broker="broker-a",cluster="DefaultCluster",group="GroupA",status="stopped"}`:                                                    1,
		`rocketmq_consumer_group_lag_messages{broker="broker-b",cluster="SecondCluster",group="GroupOnline",topic="TopicB"}`:                                            30,
		`rocketmq_consumer_group_consumers{broker="broker-b",cluster="SecondCluster",group="GroupOnline"}`:                                                              2,
		`rocketmq_consumer_group_info{broker="broker-b",cluster="SecondCluster",consume_type="CONSUME_PASSIVELY",group="GroupOnline",message_model="CLUSTERING"}`:       1,
		`rocketmq_consumer_group_info{broker="broker-a",cluster="DefaultCluster",consume_type="CONSUME_PASSIVELY",group="GroupBroadcast",message_model="BROADCASTING"}`: 1,
		`rocketmq_consumer_group_lag_messages{broker="RaftNode00",cluster="RaftCluster",group="GroupRaft",topic="TopicRaft"}`:                                           0,
		`rocketmq_consumer_group_lag_seconds{broker="RaftNode00",cluster="RaftCluster",group="GroupRaft",topic="TopicRaft"}`:                                            0,
		`rocketmq_consumer_group_status{broker="RaftNode00",cluster="RaftCluster",group="GroupRaft",status="ok"}`:                                                       1,
		`rocketmq_topic_messages_total{broker="broker-a",cluster="DefaultCluster",topic="TopicA",type="normal"}`:                                                        400,
		`rocketmq_cluster_broker_group_members{broker="broker-a",cluster="DefaultCluster"}`:                                                                             2,
		`rocketmq_cluster_broker_group_members{broker="RaftNode00",cluster="RaftCluster"}`:                                                                              3,
		`rocketmq_cluster_broker_group_masters{broker="broker-b",cluster="SecondCluster"}`:                                                                              1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// Retry and DLQ messages spread over every broker group hosting them.
	if sum, _ := sumWhere(got, "rocketmq_consumer_group_retry_lag_messages", "group", "GroupA"); sum != 3 {
		t.Errorf("retry lag of GroupA over brokers = %v, want 3", sum)
	}
	if sum, n := sumWhere(got, "rocketmq_consumer_group_dlq_messages", "group", "GroupA"); sum != 2 || n != 3 {
		t.Errorf("DLQ of GroupA = %v over %d brokers, want 2 over 3", sum, n)
	}
	// Broadcasting: no lag series at all.
	if _, n := sumWhere(got, "rocketmq_consumer_group_lag_messages", "group", "GroupBroadcast"); n != 0 {
		t.Errorf("broadcasting group has %d lag series", n)
	}
	// Each group's series once, labelled with its own cluster.
	for k := range got {
		if strings.Contains(k, `broker="broker-a"`) && !strings.Contains(k, `cluster="DefaultCluster"`) ||
			strings.Contains(k, `broker="broker-b"`) && !strings.Contains(k, `cluster="SecondCluster"`) ||
			strings.Contains(k, `broker="RaftNode00"`) && !strings.Contains(k, `cluster="RaftCluster"`) {
			t.Errorf("wrong cluster label: %s", k)
		}
	}
	// Masters read once, slaves and followers never.
	for _, n := range sim.Nodes() {
		want := 0
		if n.IsMaster() {
			want = 1
		}
		if c := client.get("BrokerConsumeStats", n.Addr()); c != want {
			t.Errorf("%s/%s (master %v): %d bulk requests, want %d", n.BrokerName(), n.SelfID(), n.IsMaster(), c, want)
		}
	}
	if n := client.total("ConsumeTimeSpan"); n != 2 {
		t.Errorf("%d time span requests, want 2 (GroupA/TopicA and GroupOnline/TopicB)", n)
	}

	// Nothing moves: no time span request, ages grow with the clock, the
	// online group that does not consume is stalled.
	clk.Advance(30 * time.Second)
	got, err = simScrape(t, client, targets, clk.Now(), consumer)
	if err != nil {
		t.Fatal(err)
	}
	if n := client.total("ConsumeTimeSpan"); n != 2 {
		t.Errorf("%d time span requests after a scrape with no movement, want still 2", n)
	}
	if g := got[`rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"}`]; g != 130 {
		t.Errorf("GroupA lag seconds %v, want 130", g)
	}
	if g := got[`rocketmq_consumer_group_status{broker="broker-b",cluster="SecondCluster",group="GroupOnline",status="stalled"}`]; g != 1 {
		t.Errorf("GroupOnline not stalled: %v", sortedStrings(keysWith(got, "GroupOnline")))
	}

	// GroupA consumes the last message of the first batch on every queue:
	// exactly one new request, and the age follows the next message, stored
	// 60s after t0.
	_, err = sim.Consume("GroupA", "TopicA", 4)
	mustSim(t, err)
	clk.Advance(30 * time.Second)
	got, err = simScrape(t, client, targets, clk.Now(), consumer)
	if err != nil {
		t.Fatal(err)
	}
	if n := client.total("ConsumeTimeSpan"); n != 3 {
		t.Errorf("%d time span requests after GroupA moved, want 3", n)
	}
	if g, w := got[`rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"}`], clk.Now().Sub(t0.Add(time.Minute)).Seconds(); g != w {
		t.Errorf("GroupA lag seconds %v, want %v", g, w)
	}
}

// Three sidecars next to the three nodes of a DLedger group, and one
// cluster-mode exporter, through a failover: exactly the leader's sidecar
// reports the group's lag before, nobody during the election, exactly the new
// leader's after, under the same labels; the cluster exporter reports it once
// whenever there is a master.
func TestConsumerSimulatedDLedgerFailover(t *testing.T) {
	const group = "RaftNode00"
	clk := &simClock{now: time.UnixMilli(1795255000000)}
	sim, client := startLagSim(t, rmqsim.Spec{
		Version: rmqsim.V4_9_7,
		Groups: []rmqsim.GroupSpec{
			{Cluster: "RaftCluster", Name: group, Mode: rmqsim.DLedger, Replicas: 3, Leader: 1},
			{Cluster: "MSCluster", Name: "broker-b", Mode: rmqsim.MasterSlave, Replicas: 2},
		},
		Clock:  clk.Now,
		Timing: rmqsim.Timing{Manual: true},
	})
	mustSim(t, sim.CreateTopic(group, "TopicRaft", 4))
	mustSim(t, sim.CreateTopic("broker-b", "TopicMS", 4))
	sim.CreateConsumerGroup("GroupRaft", false)
	mustSim(t, sim.Subscribe("GroupRaft", "TopicRaft"))
	mustSim(t, sim.Subscribe("GroupRaft", "TopicMS"))
	_, err := sim.Produce("TopicRaft", 100)
	mustSim(t, err)
	_, err = sim.Produce("TopicMS", 80)
	mustSim(t, err)
	_, err = sim.Consume("GroupRaft", "TopicRaft", 40)
	mustSim(t, err)
	clk.Advance(time.Minute)

	nodes := map[string]*rmqsim.Node{}
	for _, n := range sim.Nodes() {
		nodes[n.BrokerName()+"/"+n.SelfID()] = n
	}
	type exporter struct {
		name     string
		targets  Targets
		consumer Collector
	}
	var exporters []*exporter
	for _, n := range sim.Nodes() {
		exporters = append(exporters, &exporter{n.BrokerName() + "/" + n.SelfID(), Targets{Mode: ModeSidecar, Brokers: []string{n.Addr()}}, newTestConsumer(t, Options{LagSeconds: true})})
	}
	clusterExp := &exporter{"cluster", Targets{Mode: ModeCluster, NameServers: sim.NameServerAddrs()}, newTestConsumer(t, Options{LagSeconds: true})}

	const raftLag = `rocketmq_consumer_group_lag_messages{broker="RaftNode00",cluster="RaftCluster",group="GroupRaft",topic="TopicRaft"}`
	const msLag = `rocketmq_consumer_group_lag_messages{broker="broker-b",cluster="MSCluster",group="GroupRaft",topic="TopicMS"}`
	// golden, when set, is compared with the output of the sidecar that
	// reports RaftNode00.
	check := func(t *testing.T, wantRaft, wantMS, golden string) {
		t.Helper()
		clk.Advance(15 * time.Second)
		var raftBy, msBy []string
		for _, e := range exporters {
			text, err := simScrapeText(t, client, e.targets, clk.Now(), e.consumer)
			if err != nil {
				// Only the dead node's sidecar has nothing to read; the
				// collector itself must not fail.
				t.Errorf("%s: %v", e.name, err)
			}
			got := parseSamples(t, text)
			if v, ok := got[raftLag]; ok {
				raftBy = append(raftBy, e.name)
				if golden != "" {
					compareGoldenText(t, text, golden)
				}
				if v != 60 {
					t.Errorf("%s: RaftNode00 lag %v, want 60", e.name, v)
				}
			}
			if v, ok := got[msLag]; ok {
				msBy = append(msBy, e.name)
				if v != 80 {
					t.Errorf("%s: broker-b lag %v, want 80", e.name, v)
				}
			}
		}
		if strings.Join(raftBy, ",") != wantRaft {
			t.Errorf("RaftNode00 lag reported by sidecars [%s], want [%s]", strings.Join(raftBy, ","), wantRaft)
		}
		if strings.Join(msBy, ",") != wantMS {
			t.Errorf("broker-b lag reported by sidecars [%s], want [%s]", strings.Join(msBy, ","), wantMS)
		}
		got, err := simScrape(t, client, clusterExp.targets, clk.Now(), clusterExp.consumer)
		if err != nil {
			t.Errorf("cluster mode: %v", err)
		}
		_, n := sumWhere(got, "rocketmq_consumer_group_lag_messages", "broker", group)
		if want := min(1, len(raftBy)); n != want {
			t.Errorf("cluster mode: %d RaftNode00 lag series, want %d", n, want)
		}
		if _, n := sumWhere(got, "rocketmq_consumer_group_lag_messages", "broker", "broker-b"); n != 1 {
			t.Errorf("cluster mode: %d broker-b lag series, want 1", n)
		}
	}

	t.Run("before", func(t *testing.T) { check(t, "RaftNode00/n1", "broker-b/n0", "consumer/simulated-dledger-before.prom") })
	t.Run("leader killed", func(t *testing.T) {
		if n, err := sim.KillLeader(group); err != nil || n.SelfID() != "n1" {
			t.Fatalf("KillLeader: %v, %v", n, err)
		}
		check(t, "", "broker-b/n0", "")
	})
	t.Run("elected, not yet promoted", func(t *testing.T) {
		mustSim(t, sim.Elect(group, "n2"))
		check(t, "", "broker-b/n0", "")
	})
	t.Run("promoted", func(t *testing.T) {
		mustSim(t, sim.Promote(group))
		check(t, "RaftNode00/n2", "broker-b/n0", "consumer/simulated-dledger-after.prom")
	})
	t.Run("old leader rejoined as follower", func(t *testing.T) {
		mustSim(t, nodes["RaftNode00/n1"].Restart())
		sim.RegisterNow(nodes["RaftNode00/n1"])
		check(t, "RaftNode00/n2", "broker-b/n0", "")
	})
}

func keysWith(m map[string]float64, substr string) []string {
	var out []string
	for k := range m {
		if strings.Contains(k, substr) {
			out = append(out, k)
		}
	}
	return out
}

// grepPrefix keeps the lines (comments included) about metrics whose name
// starts with one of the prefixes.
func grepPrefix(text string, prefixes ...string) string {
	var out strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(l, "# HELP "), "# TYPE ")
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				out.WriteString(l)
				break
			}
		}
	}
	return out.String()
}

// twinOfBrokerA makes addr answer like broker-a of the recorded cluster, with
// its own copies of the answers: a second cluster with the same cluster,
// broker and group names (e.g. two clusters left at DefaultCluster/broker-a
// probed through one exporter).
func twinOfBrokerA(t *testing.T, f *fakeClient, addr string) {
	t.Helper()
	f.brokerConsumeStats[addr] = decodeFixture(t, rocketmq.DecodeConsumeStatsList, readFixtureBody(t, "consumer", steady497Dir+"broker_a.get_broker_consume_stats"))
	f.topicConfig[addr] = decodeFixture(t, rocketmq.DecodeTopicConfigWrapper, readFixtureBody(t, "consumer", steady497Dir+"broker_a.get_all_topic_config"))
	f.timeSpan[fakeKey(addr, "TopicA", "GroupA")] = decodeFixture(t, rocketmq.DecodeConsumeTimeSpan, readFixtureBody(t, "consumer", steady497Dir+"broker_a.query_consume_time_span"))
	f.timeSpan[fakeKey(addr, "TopicA", "GroupOnline")] = decodeFixture(t, rocketmq.DecodeConsumeTimeSpan, readFixtureBody(t, "consumer", steady497Dir+"broker_a.query_consume_time_span.online"))
	for _, gs := range f.brokerConsumeStats[addr].ConsumeStatsList {
		setGroupOffline(f, addr, gs.Group)
	}
	setGroupOnline(t, f, addr, "GroupOnline")
}

// /metrics and /probe share the collector: two clusters with identical names
// scraped alternately keep their own status history and lag cache, because
// the state is keyed by the dialed broker address too.
func TestConsumerStateKeyedBySource(t *testing.T) {
	const twinAddr = "10.9.9.9:10911"
	f, _ := consumerFake(t)
	twinOfBrokerA(t, f, twinAddr)
	// The twin's GroupA is 100s further behind on every queue.
	for i := range f.timeSpan[fakeKey(twinAddr, "TopicA", "GroupA")] {
		f.timeSpan[fakeKey(twinAddr, "TopicA", "GroupA")][i].DelayTime += 100_000
	}
	one := brokerANode()
	two := brokerANode()
	two.Addr, two.Address = twinAddr, twinAddr

	c := newTestConsumer(t, Options{LagSeconds: true})
	now := steadyNow
	scrape := func(b *Broker) string {
		t.Helper()
		now = now.Add(15 * time.Second)
		text, err := collectExposition(t, c, sidecarScrapeOf(f, now, b))
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	// Cluster one: messages keep arriving, GroupOnline's consumer stands
	// still. Cluster two: GroupOnline keeps up with every message.
	produce := func(addr string, n int64) {
		for q := range 4 {
			b, _ := queueOffsetsOf(t, f, addr, "GroupOnline", "TopicA", q)
			moveQueueOffsets(t, f, addr, "GroupOnline", "TopicA", q, b+n, -1)
		}
	}
	catchUp := func(addr string) {
		for q := range 4 {
			b, _ := queueOffsetsOf(t, f, addr, "GroupOnline", "TopicA", q)
			moveQueueOffsets(t, f, addr, "GroupOnline", "TopicA", q, -1, b)
		}
	}
	const groupA = `rocketmq_consumer_group_lag_seconds{broker="broker-a",cluster="DefaultCluster",group="GroupA",topic="TopicA"} `
	for round := range 3 {
		produce(brokerAAddr, 10)
		text := scrape(one)
		want := statusStalled
		if round == 0 {
			want = statusOK // first sight: no history
		}
		if got := groupStatusOf(t, text, "GroupOnline"); got != want {
			t.Errorf("round %d, cluster one: GroupOnline %s, want %s", round, got, want)
		}
		if age := fmt.Sprintf("%g", (time.Duration(379738+30_000*round) * time.Millisecond).Seconds()); !hasSample(text, groupA+age) {
			t.Errorf("round %d, cluster one: want GroupA %s s in\n%s", round, age, grepSamples(text, "lag_seconds"))
		}

		produce(twinAddr, 10)
		catchUp(twinAddr)
		text = scrape(two)
		if got := groupStatusOf(t, text, "GroupOnline"); got != statusOK {
			t.Errorf("round %d, cluster two: GroupOnline %s, want ok", round, got)
		}
		if age := fmt.Sprintf("%g", (time.Duration(479738+30_000*round) * time.Millisecond).Seconds()); !hasSample(text, groupA+age) {
			t.Errorf("round %d, cluster two: want GroupA %s s in\n%s", round, age, grepSamples(text, "lag_seconds"))
		}
	}
	// Each cluster's GroupA was asked once: neither evicted the other.
	for _, addr := range []string{brokerAAddr, twinAddr} {
		if n := f.callCount("ConsumeTimeSpan", addr+"|TopicA|GroupA"); n != 1 {
			t.Errorf("%s: %d time span requests for GroupA, want 1", addr, n)
		}
	}
}

// A group that never touched a broker — no offsets there but the empty
// %RETRY% entry every client registers, and nobody online there — gets no
// per-broker series at all; offsets or an online consumer bring them back.
func TestConsumerIdleGroupsOmitted(t *testing.T) {
	f, s := consumerFake(t)
	text, err := collectExposition(t, newTestConsumer(t, Options{LagSeconds: true}), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, idle := range []string{
		`broker="RaftNode00",cluster="RaftCluster",group="GroupA"`,
		`broker="RaftNode00",cluster="RaftCluster",group="GroupMS"`,
		`broker="RaftNode00",cluster="RaftCluster",group="GroupOnline"`,
		`broker="RaftNode00",cluster="RaftCluster",group="GroupMSFromSlave"`,
		`broker="broker-a",cluster="DefaultCluster",group="GroupMSFromSlave"`,
		`broker="broker-b",cluster="MSCluster",group="GroupOnline"`,
	} {
		if strings.Contains(text, idle) {
			t.Errorf("series of an idle group: %s\n%s", idle, grepSamples(text, idle))
		}
	}
	for _, want := range []string{
		// Offsets of a consumed topic.
		`rocketmq_consumer_group_consumers{broker="RaftNode00",cluster="RaftCluster",group="GroupRaft"} 0`,
		`rocketmq_consumer_group_status{broker="RaftNode00",cluster="RaftCluster",group="GroupRaft",status="stopped"} 1`,
		// Offsets of the consumed topic elsewhere, a retry entry with a
		// message here (GroupMS has 1 retry message on broker-b).
		`rocketmq_consumer_group_retry_lag_messages{broker="broker-b",cluster="MSCluster",group="GroupMS"} 1`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s", want)
		}
	}

	// Online on RaftNode00 without offsets there: consumers, info, status.
	setGroupOnline(t, f, raftN1Addr, "GroupMS")
	// A retried message of GroupA lands on RaftNode00.
	for _, gs := range f.brokerConsumeStats[raftN1Addr].ConsumeStatsList {
		if gs.Group == "GroupA" {
			for _, cs := range gs.Stats {
				for i := range cs.OffsetTable {
					cs.OffsetTable[i].BrokerOffset = 1
				}
			}
		}
	}
	text, err = collectExposition(t, newTestConsumer(t, Options{LagSeconds: true}), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`rocketmq_consumer_group_consumers{broker="RaftNode00",cluster="RaftCluster",group="GroupMS"} 1`,
		`rocketmq_consumer_group_info{broker="RaftNode00",cluster="RaftCluster",consume_type="CONSUME_PASSIVELY",group="GroupMS",message_model="CLUSTERING"} 1`,
		`rocketmq_consumer_group_status{broker="RaftNode00",cluster="RaftCluster",group="GroupMS",status="ok"} 1`,
		`rocketmq_consumer_group_retry_lag_messages{broker="RaftNode00",cluster="RaftCluster",group="GroupA"} 1`,
		`rocketmq_consumer_group_consumers{broker="RaftNode00",cluster="RaftCluster",group="GroupA"} 0`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s", want)
		}
	}
	// The connection list is still asked for every group: it is what tells
	// an online group without offsets.
	if n := f.callCount("ConsumerConnectionList", raftN1Addr); n != 2*5 {
		t.Errorf("%d connection lists asked on RaftNode00 in two scrapes, want 10: %v", n, callsOf(f, "ConsumerConnectionList"))
	}
}

// groupFromStats reads rows in runs of one topic; whatever the order and
// split of the rows (topics spread over several tables, unsorted hand-built
// tables, one queue id under two broker names), it gives what gathering
// every row by topic and sorting each topic's rows stably by queue id gives.
func TestGroupFromStatsRuns(t *testing.T) {
	row := func(topic, broker string, q int, b, c int64) rocketmq.QueueOffsetWrapper {
		return rocketmq.QueueOffsetWrapper{
			MessageQueue:  rocketmq.MessageQueue{Topic: topic, BrokerName: broker, QueueID: q},
			OffsetWrapper: rocketmq.OffsetWrapper{BrokerOffset: b, ConsumerOffset: c},
		}
	}
	cases := map[string][]rocketmq.ConsumeStats{
		"sorted":               {{ConsumeTps: 1, OffsetTable: []rocketmq.QueueOffsetWrapper{row("A", "b", 0, 5, 1), row("A", "b", 1, 6, -1), row("B", "b", 0, 7, 2)}}},
		"split":                {{OffsetTable: []rocketmq.QueueOffsetWrapper{row("A", "b", 2, 5, 1)}}, {ConsumeTps: 2, OffsetTable: []rocketmq.QueueOffsetWrapper{row("A", "b", 0, 1, 1), row("B", "b", 3, 1, 1)}}, {}},
		"unsorted":             {{OffsetTable: []rocketmq.QueueOffsetWrapper{row("B", "b", 1, 1, 1), row("A", "b", 1, 2, 1), row("B", "b", 0, 3, 1), row("A", "b", 0, 4, 1)}}},
		"brokers":              {{OffsetTable: []rocketmq.QueueOffsetWrapper{row("A", "b", 1, 1, 0), row("A", "b", 0, 2, 0), row("A", "c", 0, 3, 0), row("A", "c", 1, 4, 0)}}},
		"retry only, empty":    {{OffsetTable: []rocketmq.QueueOffsetWrapper{row(retryTopic("G"), "b", 0, 0, 0)}}},
		"retry only, used":     {{OffsetTable: []rocketmq.QueueOffsetWrapper{row(retryTopic("G"), "b", 0, 0, 3)}}},
		"retry and a topic":    {{OffsetTable: []rocketmq.QueueOffsetWrapper{row(retryTopic("G"), "b", 0, 0, 0), row("A", "b", 0, 0, 0)}}},
		"no stats":             nil,
		"stats without queues": {{ConsumeTps: 3}},
	}
	c := newTestConsumer(t, Options{Topics: mustFilter(t, "", "B")}).(*consumerCollector)
	for name, stats := range cases {
		// The plain reading: every row by topic, in the order given.
		want := &consumerGroup{name: "G", stats: len(stats) > 0}
		byTopic := map[string]*consumerTopic{}
		for _, cs := range stats {
			want.tps += cs.ConsumeTps
			for _, r := range cs.OffsetTable {
				tp := byTopic[r.Topic]
				if tp == nil {
					tp = &consumerTopic{topic: r.Topic}
					byTopic[r.Topic] = tp
				}
				tp.queues = append(tp.queues, queueOffsets{queue: r.QueueID, broker: r.BrokerOffset, consumer: max(0, r.ConsumerOffset)})
				if r.Topic != retryTopic("G") || r.BrokerOffset > 0 || r.ConsumerOffset > 0 {
					want.active = true
				}
			}
		}
		for _, topic := range slices.Sorted(maps.Keys(byTopic)) {
			tp := byTopic[topic]
			sort.SliceStable(tp.queues, func(i, j int) bool { return tp.queues[i].queue < tp.queues[j].queue })
			switch {
			case topic == retryTopic("G"):
				want.retry = tp
			case topic != "B":
				want.topics = append(want.topics, tp)
			}
		}
		if got := c.groupFromStats("G", stats); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
}
