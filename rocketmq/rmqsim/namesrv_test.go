package rmqsim

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

func TestNameServerClusterInfo(t *testing.T) {
	c := fixture497(t, Timing{})
	ns := c.NameServerAddrs()[0]
	a, b, r := c.Group("broker-a"), c.Group("broker-b"), c.Group("RaftNode00")
	eventually(t, "broker-b master registered", 2*time.Second, func() bool {
		_, ok := b[0].RegisteredID()
		return ok
	})

	resp := mustCall(t, ns, rocketmq.NewRequest(rocketmq.CodeGetBrokerClusterInfo, nil, nil))
	if resp.Code != 0 || !strings.Contains(string(resp.Body), `"brokerAddrs":{0:"`+a[0].Addr()+`"}`) {
		t.Fatalf("cluster info must use bare integer keys: %s", resp.Body)
	}
	if resp.Version != 407 || resp.Language != "JAVA" || !resp.IsResponse() {
		t.Errorf("header: version %d language %s flag %d", resp.Version, resp.Language, resp.Flag)
	}

	ci, err := newAdmin(t, nil).BrokerClusterInfo(ctx(t), ns)
	must(t, err)
	want := map[string]map[int64]string{
		"broker-a":   {0: a[0].Addr()},
		"broker-b":   {0: b[0].Addr(), 1: b[1].Addr()},
		"RaftNode00": {0: r[1].Addr(), 1: r[0].Addr(), 3: r[2].Addr()}, // leader n1; followers selfId+1
	}
	for name, addrs := range want {
		bd, ok := ci.BrokerAddrTable[name]
		if !ok {
			t.Fatalf("%s missing from %v", name, ci.BrokerAddrTable)
		}
		if len(bd.BrokerAddrs) != len(addrs) {
			t.Errorf("%s: brokerAddrs %v, want %v", name, bd.BrokerAddrs, addrs)
		}
		for id, addr := range addrs {
			if bd.BrokerAddrs[id] != addr {
				t.Errorf("%s: id %d = %q, want %q", name, id, bd.BrokerAddrs[id], addr)
			}
		}
	}
	if got := ci.ClusterAddrTable["RaftCluster"]; !slices.Equal(got, []string{"RaftNode00"}) {
		t.Errorf("clusterAddrTable RaftCluster = %v", got)
	}
}

func TestNameServerTopicsAndRoutes(t *testing.T) {
	c := fixture497(t, Timing{})
	ns := c.NameServerAddrs()[0]
	adm := newAdmin(t, nil)

	tl, err := adm.TopicList(ctx(t), ns)
	must(t, err)
	for _, want := range []string{"TopicA", "TopicRaft", "%RETRY%GroupA", "TBW102", "DefaultCluster", "broker-a", "SCHEDULE_TOPIC_XXXX"} {
		if !slices.Contains(tl.TopicList, want) {
			t.Errorf("topic list lacks %s", want)
		}
	}

	old := rocketmq.NewRequest(rocketmq.CodeGetRouteInfoByTopic, map[string]string{"topic": "TopicA"}, nil)
	old.Version = 317
	if resp := mustCall(t, ns, old); !strings.Contains(string(resp.Body), `{0:"`) {
		t.Errorf("version 317 must get the fastjson route: %s", resp.Body)
	}
	for _, req := range []*rocketmq.Command{
		rocketmq.NewRequest(rocketmq.CodeGetRouteInfoByTopic, map[string]string{"topic": "TopicA"}, nil), // version 409
		{Code: rocketmq.CodeGetRouteInfoByTopic, Language: "JAVA", Version: 317,
			ExtFields: map[string]string{"topic": "TopicA", "acceptStandardJsonOnly": "true"}},
	} {
		if resp := mustCall(t, ns, req); !strings.Contains(string(resp.Body), `{"0":"`) {
			t.Errorf("version %d / %v must get standard JSON: %s", req.Version, req.ExtFields, resp.Body)
		}
	}
	route, err := adm.TopicRoute(ctx(t), ns, "TopicTest")
	must(t, err)
	if len(route.BrokerDatas) != 3 || len(route.QueueDatas) != 3 || route.QueueDatas[0].WriteQueueNums != 4 {
		t.Errorf("TopicTest route on 3 groups with 4 queues: %+v", route)
	}
	_, err = adm.TopicRoute(ctx(t), ns, "NoSuchTopic")
	if !rocketmq.IsCode(err, rocketmq.ResponseTopicNotExist) {
		t.Errorf("missing topic: %v, want code 17", err)
	}

	byCluster := mustCall(t, ns, rocketmq.NewRequest(rocketmq.CodeGetTopicsByCluster, map[string]string{"cluster": "RaftCluster"}, nil))
	if !strings.Contains(string(byCluster.Body), `"TopicRaft"`) || strings.Contains(string(byCluster.Body), `"TopicA"`) {
		t.Errorf("GET_TOPICS_BY_CLUSTER RaftCluster: %s", byCluster.Body)
	}

	// A 4.9 NameServer does not answer unknown codes at all.
	if _, err := rawCall(ns, rocketmq.NewRequest(9999, nil, nil), 300*time.Millisecond); !isTimeout(err) {
		t.Errorf("unknown code: %v, want a read timeout", err)
	}
}

func TestNameServer500(t *testing.T) {
	c := fixture500(t, Timing{})
	ns := c.NameServerAddrs()[0]
	resp := mustCall(t, ns, rocketmq.NewRequest(9999, nil, nil))
	if resp.Code != 3 || resp.Remark != " request type 9999 not supported" || resp.Version != 413 {
		t.Errorf("5.0 unknown code: %d %q version %d", resp.Code, resp.Remark, resp.Version)
	}
	ci := mustCall(t, ns, rocketmq.NewRequest(rocketmq.CodeGetBrokerClusterInfo, nil, nil))
	if !strings.Contains(string(ci.Body), `"enableActingMaster":false`) {
		t.Errorf("5.0 BrokerData has enableActingMaster: %s", ci.Body)
	}
	g := c.Group("broker-c")
	// Controller ids: the initial master (n2) got 1 and registers as 0, the
	// others 2 and 3 — like the recording.
	want := `{0:"` + g[2].Addr() + `",2:"` + g[0].Addr() + `",3:"` + g[1].Addr() + `"}`
	if !strings.Contains(string(ci.Body), want) {
		t.Errorf("broker-c addrs: want %s in %s", want, ci.Body)
	}
}

func TestNameServerRestartForgetsBrokers(t *testing.T) {
	c := start(t, Spec{NameServers: 2, Groups: []GroupSpec{{Cluster: "C", Name: "b"}}, Timing: Timing{RegisterDelay: 100 * time.Millisecond}})
	ns := c.NameServers()[1]
	adm := newAdmin(t, nil)
	ns.Kill()
	if _, err := rawCall(ns.Addr(), rocketmq.NewRequest(rocketmq.CodeGetBrokerClusterInfo, nil, nil), time.Second); err == nil {
		t.Fatal("killed NameServer answered")
	}
	must(t, ns.Restart())
	ci, err := adm.BrokerClusterInfo(ctx(t), ns.Addr())
	must(t, err)
	if len(ci.BrokerAddrTable) != 0 {
		t.Errorf("a restarted NameServer knows no broker before they register: %+v", ci)
	}
	eventually(t, "re-registration", 2*time.Second, func() bool {
		ci, err := adm.BrokerClusterInfo(ctx(t), ns.Addr())
		return err == nil && len(ci.BrokerAddrTable["b"].BrokerAddrs) == 1
	})
	// The other NameServer never forgot.
	ci, err = adm.BrokerClusterInfo(ctx(t), c.NameServerAddrs()[0])
	must(t, err)
	if len(ci.BrokerAddrTable["b"].BrokerAddrs) != 1 {
		t.Errorf("NameServer 0: %+v", ci)
	}
}
