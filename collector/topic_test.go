package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// Recorded masters of the 4.9.7 steady capture and the topic each one has a
// GET_TOPIC_STATS_INFO recording for.
var steadyMasters = []struct{ node, addr, topic string }{
	{"broker_a", "127.0.0.1:10911", "TopicA"},
	{"broker_b_master", "127.0.0.1:11911", "TopicMS"},
	{"raft_n1", "127.0.0.1:31911", "TopicRaft"},
}

// topicFake answers like the recorded 4.9.7 cluster: every master's topic
// config, the recorded topic stats, and for every other topic the recorded
// TOPIC_NOT_EXIST answer (as if deleted between the two requests).
func topicFake(t *testing.T) (*fakeClient, *Scrape) {
	t.Helper()
	f := newFakeClient()
	dir := "rocketmq-4.9.7/steady/"
	missing := fixtureRespError(t, "topic", dir+"broker_a.get_topic_stats_info.missing", rocketmq.CodeGetTopicStatsInfo)
	for _, m := range steadyMasters {
		tc := decodeFixture(t, rocketmq.DecodeTopicConfigWrapper, readFixtureBody(t, "topic", dir+m.node+".get_all_topic_config"))
		f.topicConfig[m.addr] = tc
		for name := range tc.TopicConfigTable {
			f.errs[fakeKey("TopicStats", m.addr, name)] = missing
		}
		delete(f.errs, fakeKey("TopicStats", m.addr, m.topic))
		f.topicStats[fakeKey(m.addr, m.topic)] = decodeFixture(t, rocketmq.DecodeTopicStatsTable, readFixtureBody(t, "topic", dir+m.node+".get_topic_stats_info"))
	}
	delete(f.errs, fakeKey("TopicStats", "127.0.0.1:10911", "%RETRY%GroupA"))
	f.topicStats[fakeKey("127.0.0.1:10911", "%RETRY%GroupA")] = decodeFixture(t, rocketmq.DecodeTopicStatsTable, readFixtureBody(t, "topic", dir+"broker_a.get_topic_stats_info.retry"))
	ci := decodeFixture(t, rocketmq.DecodeClusterInfo, readFixtureBody(t, "topic", dir+"namesrv.get_broker_cluster_info"))
	return f, scrapeOfClusterInfo(f, ci)
}

func newTestTopic(t *testing.T, o Options) Collector {
	t.Helper()
	c, err := newTopicCollector(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustFilter(t *testing.T, include, exclude string) Filter {
	t.Helper()
	f, err := NewFilter(include, exclude)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTopicSteady(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		golden string
	}{
		{"default", Options{}, "topic/steady.prom"},
		{"per-queue", Options{PerQueue: true}, "topic/steady-per-queue.prom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, s := topicFake(t)
			if err := compareGolden(t, newTestTopic(t, tc.opts), s, tc.golden); err != nil {
				t.Errorf("Update: %v", err)
			}
			lintCollector(t, newTestTopic(t, tc.opts), s)
		})
	}
}

func TestTopicValues(t *testing.T) {
	_, s := topicFake(t)
	text, err := collectExposition(t, newTestTopic(t, Options{}), s)
	if err != nil {
		t.Fatal(err)
	}
	// TopicA on broker-a: maxOffsets 303+303+304+304, minOffsets 0, newest
	// message 1795255724261 ms.
	for _, want := range []string{
		`rocketmq_topic_messages_total{broker="broker-a",cluster="DefaultCluster",topic="TopicA",type="normal"} 1214`,
		`rocketmq_topic_retained_messages{broker="broker-a",cluster="DefaultCluster",topic="TopicA",type="normal"} 1214`,
		`rocketmq_topic_queues{broker="broker-a",cluster="DefaultCluster",topic="TopicA",type="normal"} 4`,
		`rocketmq_topic_last_update_timestamp_seconds{broker="broker-a",cluster="DefaultCluster",topic="TopicA",type="normal"} 1.795255724261e+09`,
		`rocketmq_topic_messages_total{broker="broker-b",cluster="MSCluster",topic="TopicMS",type="normal"}`,
		`rocketmq_topic_messages_total{broker="RaftNode00",cluster="RaftCluster",topic="TopicRaft",type="normal"}`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(text, `address=`) {
		t.Error("topic series carry an address label")
	}
	if strings.Contains(text, "type=\"system\"") {
		t.Error("system topics exported by default")
	}
	if strings.Contains(text, "type=\"retry\"") {
		t.Error("retry topics exported by default")
	}

	// With retry topics on: %RETRY%GroupA holds one message on broker-a.
	_, s = topicFake(t)
	text, err = collectExposition(t, newTestTopic(t, Options{RetryTopics: true}), s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `rocketmq_topic_messages_total{broker="broker-a",cluster="DefaultCluster",topic="%RETRY%GroupA",type="retry"} 1`; !hasSample(text, want) {
		t.Errorf("missing %s", want)
	}
}

// Filters and the system-topic switch act before any per-topic request.
func TestTopicFilters(t *testing.T) {
	const a = "127.0.0.1:10911"
	statsCalls := func(f *fakeClient) []string {
		var out []string
		for _, c := range f.calledWith() {
			if rest, ok := strings.CutPrefix(c, "TopicStats|"+a+"|"); ok {
				out = append(out, rest)
			}
		}
		return out
	}
	t.Run("default skips system and retry topics", func(t *testing.T) {
		f, s := topicFake(t)
		if _, err := collectExposition(t, newTestTopic(t, Options{}), s); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(sortedStrings(statsCalls(f)), ","), "TopicA,TopicTest"; got != want {
			t.Errorf("requests %s, want %s", got, want)
		}
	})
	t.Run("retry topics on request", func(t *testing.T) {
		f, s := topicFake(t)
		if _, err := collectExposition(t, newTestTopic(t, Options{RetryTopics: true}), s); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(sortedStrings(statsCalls(f)), ",")
		want := "%RETRY%GroupA,%RETRY%GroupMS,%RETRY%GroupMSFromSlave,%RETRY%GroupOnline,%RETRY%GroupRaft,TopicA,TopicTest"
		if got != want {
			t.Errorf("requests %s, want %s", got, want)
		}
	})
	t.Run("system topics on request", func(t *testing.T) {
		f, s := topicFake(t)
		f.errs[fakeKey("TopicStats", a, "TBW102")] = nil
		f.topicStats[fakeKey(a, "TBW102")] = &rocketmq.TopicStatsTable{OffsetTable: []rocketmq.TopicQueueOffset{
			{MessageQueue: rocketmq.MessageQueue{Topic: "TBW102", BrokerName: "broker-a", QueueID: 0}},
		}}
		text, err := collectExposition(t, newTestTopic(t, Options{SystemTopics: true, RetryTopics: true}), s)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(statsCalls(f)); n != 16 {
			t.Errorf("%d stats requests to broker-a, want all 16 topics", n)
		}
		if !hasSample(text, `rocketmq_topic_queues{broker="broker-a",cluster="DefaultCluster",topic="TBW102",type="system"} 1`) {
			t.Errorf("system topic missing:\n%s", text)
		}
		// An empty topic has no newest message.
		if strings.Contains(text, `rocketmq_topic_last_update_timestamp_seconds{broker="broker-a",cluster="DefaultCluster",topic="TBW102"`) {
			t.Error("last update reported for an empty topic")
		}
	})
	t.Run("include and exclude", func(t *testing.T) {
		f, s := topicFake(t)
		text, err := collectExposition(t, newTestTopic(t, Options{RetryTopics: true, Topics: mustFilter(t, "Topic.*|%RETRY%.*", "TopicTest|%RETRY%GroupM.*")}), s)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(sortedStrings(statsCalls(f)), ",")
		if want := "%RETRY%GroupA,%RETRY%GroupOnline,%RETRY%GroupRaft,TopicA"; got != want {
			t.Errorf("requests %s, want %s", got, want)
		}
		if !strings.Contains(text, `topic="TopicMS"`) || !strings.Contains(text, `topic="TopicRaft"`) {
			t.Error("included topics of other brokers missing")
		}
	})
}

// Only masters are read: a cluster-mode scrape reads each group once; a
// sidecar next to a slave exports nothing and asks nothing.
func TestTopicOwnership(t *testing.T) {
	f, s := topicFake(t)
	if _, err := collectExposition(t, newTestTopic(t, Options{}), s); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1:12911", "127.0.0.1:30911", "127.0.0.1:32911"} {
		if n := f.callCount("TopicNames", addr); n != 0 {
			t.Errorf("slave %s asked %d times", addr, n)
		}
	}
	for _, m := range steadyMasters {
		if n := f.callCount("TopicNames", m.addr); n != 1 {
			t.Errorf("master %s: %d topic config requests, want 1", m.addr, n)
		}
	}

	f = newFakeClient()
	slave := &Scrape{Client: f, Mode: ModeSidecar, Now: steadyNow, Concurrency: 4,
		Brokers: []*Broker{{Addr: "127.0.0.1:12911", Address: "127.0.0.1:12911", Cluster: "MSCluster", Name: "broker-b", ID: 1, Role: "SLAVE"}}}
	if n := countSeries(t, newTestTopic(t, Options{}), slave); n != 0 {
		t.Errorf("sidecar next to a slave: %d series", n)
	}
	if calls := f.calledWith(); len(calls) != 0 {
		t.Errorf("sidecar next to a slave made requests: %v", calls)
	}
}

// One broker failing costs its own series only.
func TestTopicPartialFailure(t *testing.T) {
	f, s := topicFake(t)
	f.errs[fakeKey("TopicNames", "127.0.0.1:11911")] = fakeDown("127.0.0.1:11911")
	f.errs[fakeKey("TopicStats", "127.0.0.1:31911", "TopicRaft")] = &rocketmq.ResponseError{Code: rocketmq.ResponseSystemBusy, Remark: "busy"}
	text, err := collectExposition(t, newTestTopic(t, Options{}), s)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:11911") || !strings.Contains(err.Error(), "TopicRaft") {
		t.Errorf("error %v does not name both failures", err)
	}
	if !strings.Contains(text, `topic="TopicA"`) {
		t.Error("healthy broker's topics lost")
	}
	if strings.Contains(text, `topic="TopicMS"`) || strings.Contains(text, `topic="TopicRaft"`) {
		t.Error("series of failed requests reported")
	}

	// TOPIC_NOT_EXIST (deleted meanwhile) is not a failure.
	f, s = topicFake(t)
	if _, err := collectExposition(t, newTestTopic(t, Options{}), s); err != nil {
		t.Errorf("vanished topics reported as failure: %v", err)
	}
	// An empty topic table is answered with SYSTEM_ERROR "No topic in this broker".
	f.errs[fakeKey("TopicNames", "127.0.0.1:10911")] = &rocketmq.ResponseError{Code: rocketmq.ResponseSystemError, Remark: "No topic in this broker"}
	if _, err := collectExposition(t, newTestTopic(t, Options{}), s); err != nil {
		t.Errorf("empty topic table reported as failure: %v", err)
	}
}

func TestTopic50(t *testing.T) {
	f := newFakeClient()
	dir := "rocketmq-5.0.0/steady/"
	const addr = "127.0.0.1:23911"
	f.topicConfig[addr] = decodeFixture(t, rocketmq.DecodeTopicConfigWrapper, readFixtureBody(t, "topic", dir+"ms_master.get_all_topic_config"))
	f.topicStats[fakeKey(addr, "TopicMS")] = decodeFixture(t, rocketmq.DecodeTopicStatsTable, readFixtureBody(t, "topic", dir+"ms_master.get_topic_stats_info"))
	f.errs[fakeKey("TopicStats", addr, "%RETRY%GroupMS")] = &rocketmq.ResponseError{Code: rocketmq.ResponseTopicNotExist}
	f.errs[fakeKey("TopicStats", addr, "%RETRY%GroupCtrl")] = &rocketmq.ResponseError{Code: rocketmq.ResponseTopicNotExist}
	s := &Scrape{Client: f, Mode: ModeSidecar, Now: steadyNow, Concurrency: 2,
		Brokers: []*Broker{{Addr: addr, Address: addr, Cluster: "MSCluster", Name: "broker-d", ID: 0, Role: "ASYNC_MASTER"}}}
	if err := compareGolden(t, newTestTopic(t, Options{}), s, "topic/steady-5.0.0.prom"); err != nil {
		t.Error(err)
	}
	// rmq_sys_*, the cluster- and broker-named topics and MSCluster_REPLY_TOPIC
	// are system topics on 5.x too; retry topics are off by default.
	var asked []string
	for _, c := range f.calledWith() {
		if rest, ok := strings.CutPrefix(c, "TopicStats|"+addr+"|"); ok {
			asked = append(asked, rest)
		}
	}
	if got := strings.Join(sortedStrings(asked), ","); got != "TopicMS" {
		t.Errorf("asked for %s", got)
	}
}

// Topic stats requests are bounded by the scrape's concurrency.
func TestTopicConcurrencyBound(t *testing.T) {
	f := newFakeClient()
	const addr = "10.0.0.1:10911"
	tc := &rocketmq.TopicConfigWrapper{TopicConfigTable: map[string]rocketmq.TopicConfig{}}
	for i := range 40 {
		name := fmt.Sprintf("T%02d", i)
		tc.TopicConfigTable[name] = rocketmq.TopicConfig{TopicName: name, WriteQueueNums: 1}
		f.topicStats[fakeKey(addr, name)] = &rocketmq.TopicStatsTable{OffsetTable: []rocketmq.TopicQueueOffset{
			{MessageQueue: rocketmq.MessageQueue{Topic: name, QueueID: 0}, TopicOffset: rocketmq.TopicOffset{MaxOffset: int64(i)}},
		}}
	}
	f.topicConfig[addr] = tc
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
		time.Sleep(2 * time.Millisecond)
		return nil
	}
	s := &Scrape{Client: f, Mode: ModeSidecar, Now: steadyNow, Concurrency: 3,
		Brokers: []*Broker{{Addr: addr, Address: addr, Cluster: "C", Name: "b", ID: 0}}}
	if n := countSeries(t, newTestTopic(t, Options{}), s, "rocketmq_topic_messages_total"); n != 40 {
		t.Errorf("%d topics, want 40", n)
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak %d requests in flight, want 2..3", p)
	}
}

// A scrape whose context ends stops quickly and reports it.
func TestTopicContextCancelled(t *testing.T) {
	f, s := topicFake(t)
	for _, m := range steadyMasters {
		f.block[m.addr] = true
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	c := newTestTopic(t, Options{})
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		ch := make(chan prometheus.Metric, 100)
		done <- c.Update(ctx, s, ch)
	})
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Update = %v, want deadline exceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Update outlived its context")
	}
	wg.Wait()
}

// Two nodes of one group claiming brokerId 0 (a deposed DLedger leader that
// has not noticed yet) must not produce duplicate series: the one the
// NameServer lists as master is read.
func TestGroupOwnersSplitBrain(t *testing.T) {
	f, s := topicFake(t)
	f.topicConfig["127.0.0.1:30911"] = f.topicConfig["127.0.0.1:31911"]
	for _, b := range s.Brokers {
		if b.Address == "127.0.0.1:30911" {
			b.ID = 0 // n0 still believes it leads; the NameServer lists n1 (31911) as 0
		}
	}
	sortBrokers(s.Brokers)
	owners := groupOwners(s)
	var raft []string
	for _, b := range owners {
		if b.Name == "RaftNode00" {
			raft = append(raft, b.Address)
		}
	}
	if len(raft) != 1 || raft[0] != "127.0.0.1:31911" {
		t.Errorf("RaftNode00 owners %v, want the NameServer's master only", raft)
	}
	if len(owners) != 3 {
		t.Errorf("%d owners, want 3", len(owners))
	}
	// Without cluster info the first in scrape order wins, still one.
	s.ClusterInfo = nil
	if n := len(groupOwners(s)); n != 3 {
		t.Errorf("%d owners without cluster info, want 3", n)
	}
	// n0 has no canned stats, so the Update fails; what matters is that the
	// exposition gathers (no duplicate series) and one node was read.
	_, _ = collectExposition(t, newTestTopic(t, Options{}), s)
	if n := f.callCount("TopicNames", "127.0.0.1:30911") + f.callCount("TopicNames", "127.0.0.1:31911"); n != 1 {
		t.Errorf("RaftNode00 read %d times", n)
	}
}

// Two masters of one cluster for the slow-broker tests: "broker-a" at
// slowBrokerAddr (sorted first, so a stage-by-stage fan-out would serve it
// first) and "broker-b" at healthyBrokerAddr, each with six topics and five
// groups consuming them with lag, one group online, and a NameServer that
// lists both.
const (
	slowBrokerAddr    = "10.1.0.1:10911"
	healthyBrokerAddr = "10.1.0.2:10911"
	twoMastersNS      = "10.1.0.9:9876"
)

func twoMastersFake(t *testing.T) *fakeClient {
	t.Helper()
	f := newFakeClient()
	f.addNameServer(twoMastersNS)
	for _, m := range []struct{ addr, name string }{{slowBrokerAddr, "broker-a"}, {healthyBrokerAddr, "broker-b"}} {
		f.addBroker(m.addr, "DefaultCluster", m.name, 0, "ASYNC_MASTER")
		tc := &rocketmq.TopicConfigWrapper{TopicConfigTable: map[string]rocketmq.TopicConfig{}}
		list := &rocketmq.ConsumeStatsList{BrokerAddr: m.addr}
		for i := range 6 {
			topic := fmt.Sprint("T", i)
			tc.TopicConfigTable[topic] = rocketmq.TopicConfig{TopicName: topic, WriteQueueNums: 2, ReadQueueNums: 2}
			st := &rocketmq.TopicStatsTable{}
			for q := range 2 {
				st.OffsetTable = append(st.OffsetTable, rocketmq.TopicQueueOffset{
					MessageQueue: rocketmq.MessageQueue{Topic: topic, BrokerName: m.name, QueueID: q},
					TopicOffset:  rocketmq.TopicOffset{MaxOffset: int64(100 + i), LastUpdateTimestamp: steadyNow.UnixMilli()},
				})
			}
			f.topicStats[fakeKey(m.addr, topic)] = st
		}
		for i := range 5 {
			group, topic := fmt.Sprint("G", i), fmt.Sprint("T", i)
			cs := rocketmq.ConsumeStats{ConsumeTps: 1}
			var spans []rocketmq.QueueTimeSpan
			for q := range 2 {
				mq := rocketmq.MessageQueue{Topic: topic, BrokerName: m.name, QueueID: q}
				cs.OffsetTable = append(cs.OffsetTable, rocketmq.QueueOffsetWrapper{MessageQueue: mq, OffsetWrapper: rocketmq.OffsetWrapper{BrokerOffset: int64(100 + i), ConsumerOffset: 50}})
				spans = append(spans, rocketmq.QueueTimeSpan{MessageQueue: mq, DelayTime: int64(10_000 * (i + 1)), MinTimeStamp: steadyNow.UnixMilli() - 3_600_000})
			}
			list.ConsumeStatsList = append(list.ConsumeStatsList, rocketmq.GroupConsumeStats{Group: group, Stats: []rocketmq.ConsumeStats{cs}})
			f.timeSpan[fakeKey(m.addr, topic, group)] = spans
			if i == 0 {
				f.connections[fakeKey(m.addr, group)] = &rocketmq.ConsumerConnection{ConnectionSet: []rocketmq.Connection{{ClientID: "c"}}, MessageModel: "CLUSTERING", ConsumeType: "CONSUME_PASSIVELY"}
			} else {
				f.errs[fakeKey("ConsumerConnectionList", m.addr, group)] = &rocketmq.ResponseError{Code: rocketmq.ResponseConsumerNotOnline}
			}
		}
		f.topicConfig[m.addr] = tc
		f.brokerConsumeStats[m.addr] = list
	}
	return f
}

// slowBrokerScrape runs one full scrape (Resolve and the topic and consumer
// collectors, as /metrics does) of the two masters with a deadline. stall
// lists request prefixes ("Method|addr|") that wait for the deadline, like
// a broker that answered its first requests and then stopped answering.
func slowBrokerScrape(t *testing.T, f *fakeClient, targets Targets, stall ...string) map[string]float64 {
	t.Helper()
	f.before = func(ctx context.Context, key string) error {
		for _, p := range stall {
			if strings.HasPrefix(key, p) {
				<-ctx.Done()
				return ctx.Err()
			}
		}
		return nil
	}
	defer func() { f.before = nil }()
	ctx, cancel := context.WithTimeout(t.Context(), 600*time.Millisecond)
	defer cancel()
	collectors := map[string]Collector{
		"topic":    newTestTopic(t, Options{}),
		"consumer": newTestConsumer(t, Options{LagSeconds: true}),
	}
	return parseSamples(t, exposition(t, New(ctx, targets, f, collectors, nil)))
}

// A master that answers its first requests and then stalls costs its own
// series only: the other master's requests run as their own sequence and
// its series are all there, while the collectors report the failure
// (rocketmq_scrape_collector_success 0) and keep what the slow master did
// answer. In sidecar mode (both masters configured) and in cluster mode.
func TestTopicConsumerSlowBrokerIsolated(t *testing.T) {
	for _, targets := range []Targets{
		{Mode: ModeSidecar, Brokers: []string{slowBrokerAddr, healthyBrokerAddr}, Concurrency: 4},
		{Mode: ModeCluster, NameServers: []string{twoMastersNS}, Concurrency: 4},
	} {
		t.Run(targets.Mode.String(), func(t *testing.T) {
			f := twoMastersFake(t)
			ref := slowBrokerScrape(t, f, targets)
			healthy := 0
			for k := range ref {
				if strings.Contains(k, `broker="broker-b"`) {
					healthy++
				}
			}
			for _, name := range []string{"topic", "consumer"} {
				if v := ref[fmt.Sprintf(`rocketmq_scrape_collector_success{collector=%q}`, name)]; v != 1 {
					t.Fatalf("reference scrape: collector %s failed", name)
				}
			}
			if _, n := sumWhere(ref, "rocketmq_consumer_group_lag_seconds", "broker", "broker-b"); n != 5 || healthy < 60 {
				t.Fatalf("reference scrape too thin to prove anything: %d healthy series, %d lag seconds", healthy, n)
			}

			// broker-a answers its topic table and bulk offsets, then
			// every second-stage request (topic stats, connection lists)
			// hangs until the scrape's deadline.
			got := slowBrokerScrape(t, f, targets,
				fakeKey("TopicStats", slowBrokerAddr)+"|", fakeKey("ConsumerConnectionList", slowBrokerAddr)+"|")
			for k, v := range ref {
				if !strings.Contains(k, `broker="broker-b"`) {
					continue
				}
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("healthy master's %s = %v (present %v), want %v", k, g, ok, v)
				}
			}
			for _, name := range []string{"topic", "consumer"} {
				if v := got[fmt.Sprintf(`rocketmq_scrape_collector_success{collector=%q}`, name)]; v != 0 {
					t.Errorf("collector %s reports success although the deadline cut it short", name)
				}
			}
			// What the slow master answered before it stalled is kept.
			if _, n := sumWhere(got, "rocketmq_consumer_group_lag_messages", "broker", "broker-a"); n != 5 {
				t.Errorf("%d lag series of the slow master, want its 5 from the bulk answer", n)
			}
			if _, n := sumWhere(got, "rocketmq_consumer_group_consumers", "broker", "broker-a"); n != 0 {
				t.Errorf("%d consumer counts of the slow master, whose connection lists never answered", n)
			}
		})
	}
}

// The lane limiter: never more than the bound in flight, the bound reached
// when there is work, a stalled lane holding only its share, shares growing
// as lanes finish, and waiters released when the context ends.
func TestTopicLaneLimiter(t *testing.T) {
	t.Run("bound reached, never exceeded", func(t *testing.T) {
		var inFlight, peak atomic.Int32
		var sent atomic.Int32
		cut := runLanes(t.Context(), 5, 7, func(i int, ln *lane) {
			ln.each(20+i, func(int) {
				if !ln.acquire(t.Context()) {
					t.Error("acquire failed without a deadline")
					return
				}
				n := inFlight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(time.Millisecond)
				inFlight.Add(-1)
				sent.Add(1)
				ln.release()
			})
		})
		if cut || sent.Load() != 7*20+21 || peak.Load() != 5 {
			t.Errorf("cut %v, %d sent, peak %d: want false, %d, 5", cut, sent.Load(), peak.Load(), 7*20+21)
		}
	})
	t.Run("stalled lanes hold their share only", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		var healthyDone atomic.Int32
		var healthyAt atomic.Int64
		start := time.Now()
		cut := runLanes(ctx, 6, 3, func(i int, ln *lane) {
			ln.each(10, func(int) {
				if !ln.acquire(ctx) {
					return
				}
				defer ln.release()
				if i < 2 { // lanes 0 and 1 never get an answer
					<-ctx.Done()
					return
				}
				time.Sleep(time.Millisecond)
				if healthyDone.Add(1) == 10 {
					healthyAt.Store(int64(time.Since(start)))
				}
			})
		})
		if !cut {
			t.Error("requests of the stalled lanes left unsent, but cut is false")
		}
		if healthyDone.Load() != 10 || time.Duration(healthyAt.Load()) > 200*time.Millisecond {
			t.Errorf("healthy lane sent %d of 10, done after %v: want all, long before the deadline",
				healthyDone.Load(), time.Duration(healthyAt.Load()))
		}
	})
	t.Run("shares grow as lanes finish", func(t *testing.T) {
		var inFlight, peak atomic.Int32
		runLanes(t.Context(), 4, 4, func(i int, ln *lane) {
			if i > 0 {
				return // small lanes finish at once
			}
			ln.each(40, func(int) {
				if !ln.acquire(t.Context()) {
					return
				}
				n := inFlight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(time.Millisecond)
				inFlight.Add(-1)
				ln.release()
			})
		})
		if peak.Load() != 4 {
			t.Errorf("the last lane ran at most %d requests at once, want the whole bound of 4", peak.Load())
		}
	})
}
