package collector

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

const fixtureNameServer = "127.0.0.1:9876"

// scrapeOfClusterInfo is a cluster-mode Scrape over the layout ci describes, every
// member up with the id the NameServer lists (what Resolve builds when every
// broker answers).
func scrapeOfClusterInfo(client Client, ci *rocketmq.ClusterInfo) *Scrape {
	s := &Scrape{
		Client:      client,
		Logger:      slog.New(slog.DiscardHandler),
		Mode:        ModeCluster,
		Now:         steadyNow,
		NameServers: []NameServer{{Addr: fixtureNameServer}},
		ClusterInfo: ci,
		Concurrency: 4,
	}
	for name, bd := range ci.BrokerAddrTable {
		for id, addr := range bd.BrokerAddrs {
			role := "ASYNC_MASTER"
			if id != 0 {
				role = "SLAVE"
			}
			s.Brokers = append(s.Brokers, &Broker{Addr: addr, Address: addr, Cluster: bd.Cluster, Name: name, ID: id, Role: role})
		}
	}
	sortBrokers(s.Brokers)
	return s
}

func newTestCluster(t *testing.T) Collector {
	t.Helper()
	c, err := newClusterCollector(Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func clusterInfoFixture(t *testing.T, name string) *rocketmq.ClusterInfo {
	t.Helper()
	return decodeFixture(t, rocketmq.DecodeClusterInfo, readFixtureBody(t, "cluster", name))
}

// One NameServer serving three clusters (plain, master/slave, DLedger): every
// group carries its own cluster label.
func TestClusterSteady(t *testing.T) {
	for _, tc := range []struct{ version, golden string }{
		{"rocketmq-4.9.7", "cluster/steady-4.9.7.prom"},
		{"rocketmq-5.0.0", "cluster/steady-5.0.0.prom"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			f := newFakeClient()
			ci := clusterInfoFixture(t, tc.version+"/steady/namesrv.get_broker_cluster_info")
			f.topicList[fixtureNameServer] = decodeFixture(t, rocketmq.DecodeTopicList, readFixtureBody(t, "cluster", tc.version+"/steady/namesrv.get_all_topic_list"))
			s := scrapeOfClusterInfo(f, ci)
			if err := compareGolden(t, newTestCluster(t), s, tc.golden); err != nil {
				t.Fatal(err)
			}
			lintCollector(t, newTestCluster(t), s)
		})
	}
}

func TestClusterSteadyLabels(t *testing.T) {
	f := newFakeClient()
	f.topicList[fixtureNameServer] = &rocketmq.TopicList{TopicList: []string{"a", "b"}}
	s := scrapeOfClusterInfo(f, clusterInfoFixture(t, "rocketmq-4.9.7/steady/namesrv.get_broker_cluster_info"))
	text, err := collectExposition(t, newTestCluster(t), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`rocketmq_cluster_broker_member_id{address="127.0.0.1:10911",broker="broker-a",cluster="DefaultCluster"} 0`,
		`rocketmq_cluster_broker_member_id{address="127.0.0.1:12911",broker="broker-b",cluster="MSCluster"} 1`,
		`rocketmq_cluster_broker_member_id{address="127.0.0.1:32911",broker="RaftNode00",cluster="RaftCluster"} 3`,
		`rocketmq_cluster_broker_group_members{broker="RaftNode00",cluster="RaftCluster"} 3`,
		`rocketmq_cluster_broker_group_masters{broker="broker-b",cluster="MSCluster"} 1`,
		`rocketmq_cluster_topics 2`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s in\n%s", want, text)
		}
	}
}

// During a DLedger failover the NameServer lists the group without brokerId 0
// for a few seconds (recorded at t03); then the new leader registers as 0.
func TestClusterDLedgerFailoverWindow(t *testing.T) {
	f := newFakeClient()
	f.topicList[fixtureNameServer] = &rocketmq.TopicList{}
	s := scrapeOfClusterInfo(f, clusterInfoFixture(t, "rocketmq-4.9.7/dledger-failover/t03/namesrv.get_broker_cluster_info"))
	if err := compareGolden(t, newTestCluster(t), s, "cluster/dledger-failover-t03.prom"); err != nil {
		t.Fatal(err)
	}
	text, _ := collectExposition(t, newTestCluster(t), s)
	for _, want := range []string{
		`rocketmq_cluster_broker_group_masters{broker="RaftNode00",cluster="RaftCluster"} 0`,
		`rocketmq_cluster_broker_group_members{broker="RaftNode00",cluster="RaftCluster"} 2`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s", want)
		}
	}

	s = scrapeOfClusterInfo(f, clusterInfoFixture(t, "rocketmq-4.9.7/dledger-failover/t05/namesrv.get_broker_cluster_info"))
	text, _ = collectExposition(t, newTestCluster(t), s)
	for _, want := range []string{
		`rocketmq_cluster_broker_group_masters{broker="RaftNode00",cluster="RaftCluster"} 1`,
		`rocketmq_cluster_broker_member_id{address="127.0.0.1:32911",broker="RaftNode00",cluster="RaftCluster"} 0`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s", want)
		}
	}
}

// The group's own BrokerData decides its cluster; the cluster table is only a
// fallback, and a group it names with no live member shows as 0/0.
func TestClusterLabelFromBrokerData(t *testing.T) {
	f := newFakeClient()
	f.topicList[fixtureNameServer] = &rocketmq.TopicList{}
	ci := &rocketmq.ClusterInfo{
		BrokerAddrTable: map[string]rocketmq.BrokerData{
			"g1": {Cluster: "C1", BrokerName: "g1", BrokerAddrs: map[int64]string{0: "10.0.0.1:10911"}},
			"g2": {Cluster: "C2", BrokerName: "g2", BrokerAddrs: map[int64]string{1: "10.0.0.2:10911"}},
			"g3": {BrokerName: "g3", BrokerAddrs: map[int64]string{0: "10.0.0.3:10911"}},
		},
		ClusterAddrTable: map[string][]string{
			"C1": {"g1", "g2"}, // stale: g2 says C2
			"C3": {"g3", "gone"},
		},
	}
	text, err := collectExposition(t, newTestCluster(t), scrapeOfClusterInfo(f, ci))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`rocketmq_cluster_broker_group_masters{broker="g1",cluster="C1"} 1`,
		`rocketmq_cluster_broker_group_masters{broker="g2",cluster="C2"} 0`,
		`rocketmq_cluster_broker_group_members{broker="g3",cluster="C3"} 1`,
		`rocketmq_cluster_broker_group_members{broker="gone",cluster="C3"} 0`,
		`rocketmq_cluster_broker_group_masters{broker="gone",cluster="C3"} 0`,
	} {
		if !hasSample(text, want) {
			t.Errorf("missing %s in\n%s", want, text)
		}
	}
	if strings.Contains(text, `broker="g2",cluster="C1"`) {
		t.Errorf("g2 labelled with the stale cluster table entry:\n%s", text)
	}
}

func TestClusterSidecarExportsNothing(t *testing.T) {
	f := newFakeClient()
	s := scrapeOfClusterInfo(f, clusterInfoFixture(t, "rocketmq-4.9.7/steady/namesrv.get_broker_cluster_info"))
	s.Mode = ModeSidecar
	if n := countSeries(t, newTestCluster(t), s); n != 0 {
		t.Errorf("sidecar mode: %d series, want 0", n)
	}
	if calls := f.calledWith(); len(calls) != 0 {
		t.Errorf("sidecar mode made requests: %v", calls)
	}
}

func TestClusterNoNameServerAnswered(t *testing.T) {
	s := &Scrape{Client: newFakeClient(), Mode: ModeCluster, NameServers: []NameServer{{Addr: fixtureNameServer, Err: errors.New("down")}}}
	text, err := collectExposition(t, newTestCluster(t), s)
	if err == nil {
		t.Error("no error without cluster info")
	}
	if text != "" {
		t.Errorf("series without cluster info:\n%s", text)
	}
}

func TestClusterTopicList(t *testing.T) {
	ci := clusterInfoFixture(t, "rocketmq-4.9.7/steady/namesrv.get_broker_cluster_info")

	t.Run("first answering NameServer", func(t *testing.T) {
		f := newFakeClient()
		f.topicList["ns2:9876"] = &rocketmq.TopicList{TopicList: []string{"x"}}
		s := scrapeOfClusterInfo(f, ci)
		s.NameServers = []NameServer{{Addr: fixtureNameServer, Err: errors.New("down")}, {Addr: "ns2:9876"}}
		text, err := collectExposition(t, newTestCluster(t), s)
		if err != nil {
			t.Fatal(err)
		}
		if !hasSample(text, "rocketmq_cluster_topics 1") {
			t.Errorf("topic count missing:\n%s", text)
		}
		if n := f.callCount("TopicList", fixtureNameServer); n != 0 {
			t.Errorf("asked the NameServer that failed %d times", n)
		}
	})
	t.Run("disabled on 5.x", func(t *testing.T) {
		f := newFakeClient()
		f.errs[fakeKey("TopicList", fixtureNameServer)] = &rocketmq.ResponseError{
			RequestCode: rocketmq.CodeGetAllTopicListFromNameServer, Code: rocketmq.ResponseSystemError, Remark: "disable"}
		text, err := collectExposition(t, newTestCluster(t), scrapeOfClusterInfo(f, ci))
		if err != nil {
			t.Errorf("disabled topic list is an error: %v", err)
		}
		if strings.Contains(text, "rocketmq_cluster_topics") {
			t.Error("topic count reported while disabled")
		}
		if !strings.Contains(text, "rocketmq_cluster_broker_group_members") {
			t.Error("topology lost")
		}
	})
	t.Run("failure keeps the topology", func(t *testing.T) {
		f := newFakeClient()
		f.errs[fakeKey("TopicList", fixtureNameServer)] = fakeDown(fixtureNameServer)
		text, err := collectExposition(t, newTestCluster(t), scrapeOfClusterInfo(f, ci))
		if err == nil {
			t.Error("topic list failure not reported")
		}
		if !strings.Contains(text, "rocketmq_cluster_broker_group_members") {
			t.Error("topology lost")
		}
	})
}
