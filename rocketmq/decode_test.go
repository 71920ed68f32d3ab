package rocketmq

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fixture is one recorded answer: its header and body.
type fixture struct {
	name   string
	header struct {
		Code      int               `json:"code"`
		Remark    string            `json:"remark"`
		ExtFields map[string]string `json:"extFields"`
	}
	body []byte
}

// loadFixture reads testdata/fixtures/<name>.response.{header.json,body};
// the body is optional.
func loadFixture(tb testing.TB, name string) fixture {
	tb.Helper()
	f := fixture{name: name}
	base := filepath.Join(fixtureRoot, filepath.FromSlash(name))
	h, err := os.ReadFile(base + ".response.header.json")
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(h, &f.header); err != nil {
		tb.Fatalf("%s header: %v", name, err)
	}
	if f.body, err = os.ReadFile(base + ".response.body"); err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	return f
}

func mustDecode[T any](t *testing.T, decode func([]byte) (T, error), body []byte) T {
	t.Helper()
	v, err := decode(body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func lag(cs ConsumeStats) int64 {
	var n int64
	for _, ow := range cs.OffsetTable {
		n += ow.BrokerOffset - ow.ConsumerOffset
	}
	return n
}

func mq(topic, broker string, id int) MessageQueue {
	return MessageQueue{Topic: topic, BrokerName: broker, QueueID: id}
}

const (
	v4 = "rocketmq-4.9.7/"
	v5 = "rocketmq-5.0.0/"
)

// TestDecodeFixtures asserts the decoded values of recorded answers, one
// fixture per row.
func TestDecodeFixtures(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, f fixture)
	}{
		{v4 + "steady/namesrv.get_broker_cluster_info", func(t *testing.T, f fixture) {
			ci := mustDecode(t, DecodeClusterInfo, f.body)
			eq(t, "clusters", ci.ClusterAddrTable, map[string][]string{
				"RaftCluster": {"RaftNode00"}, "DefaultCluster": {"broker-a"}, "MSCluster": {"broker-b"},
			})
			eq(t, "RaftNode00", ci.BrokerAddrTable["RaftNode00"], BrokerData{
				Cluster: "RaftCluster", BrokerName: "RaftNode00",
				BrokerAddrs: map[int64]string{0: "127.0.0.1:31911", 1: "127.0.0.1:30911", 3: "127.0.0.1:32911"},
			})
			eq(t, "broker-b addrs", ci.BrokerAddrTable["broker-b"].BrokerAddrs,
				map[int64]string{0: "127.0.0.1:11911", 1: "127.0.0.1:12911"})
			eq(t, "broker-a addrs", ci.BrokerAddrTable["broker-a"].BrokerAddrs, map[int64]string{0: "127.0.0.1:10911"})
		}},
		// The NameServer drops the dead DLedger leader at once: no id 0.
		{v4 + "dledger-failover/t01/namesrv.get_broker_cluster_info", func(t *testing.T, f fixture) {
			ci := mustDecode(t, DecodeClusterInfo, f.body)
			eq(t, "RaftNode00 addrs", ci.BrokerAddrTable["RaftNode00"].BrokerAddrs,
				map[int64]string{1: "127.0.0.1:30911", 3: "127.0.0.1:32911"})
		}},
		// n2 won the election and registered as id 0.
		{v4 + "dledger-failover/t05/namesrv.get_broker_cluster_info", func(t *testing.T, f fixture) {
			ci := mustDecode(t, DecodeClusterInfo, f.body)
			eq(t, "RaftNode00 addrs", ci.BrokerAddrTable["RaftNode00"].BrokerAddrs,
				map[int64]string{0: "127.0.0.1:32911", 1: "127.0.0.1:30911"})
		}},
		{v4 + "dledger-failover/t15-rejoin/namesrv.get_broker_cluster_info", func(t *testing.T, f fixture) {
			ci := mustDecode(t, DecodeClusterInfo, f.body)
			eq(t, "RaftNode00 addrs", ci.BrokerAddrTable["RaftNode00"].BrokerAddrs,
				map[int64]string{0: "127.0.0.1:32911", 1: "127.0.0.1:30911", 2: "127.0.0.1:31911"})
		}},
		{v5 + "steady/namesrv.get_broker_cluster_info", func(t *testing.T, f fixture) {
			ci := mustDecode(t, DecodeClusterInfo, f.body)
			eq(t, "clusters", ci.ClusterAddrTable, map[string][]string{"CtrlCluster": {"broker-c"}, "MSCluster": {"broker-d"}})
			eq(t, "broker-c", ci.BrokerAddrTable["broker-c"], BrokerData{
				Cluster: "CtrlCluster", BrokerName: "broker-c",
				BrokerAddrs: map[int64]string{0: "127.0.0.1:22911", 2: "127.0.0.1:20911", 3: "127.0.0.1:21911"},
			})
		}},
		{v5 + "controller-failover/t01/namesrv.get_broker_cluster_info", func(t *testing.T, f fixture) {
			ci := mustDecode(t, DecodeClusterInfo, f.body)
			eq(t, "broker-c addrs", ci.BrokerAddrTable["broker-c"].BrokerAddrs,
				map[int64]string{0: "127.0.0.1:20911", 3: "127.0.0.1:21911"})
		}},
		{v4 + "steady/namesrv.get_all_topic_list", func(t *testing.T, f fixture) {
			tl := mustDecode(t, DecodeTopicList, f.body)
			eq(t, "topics", len(tl.TopicList), 24)
			for _, want := range []string{"TopicA", "TopicMS", "TopicRaft", "%RETRY%GroupA", "TBW102"} {
				if !contains(tl.TopicList, want) {
					t.Errorf("topic list lacks %s", want)
				}
			}
		}},
		{v5 + "steady/namesrv.get_all_topic_list", func(t *testing.T, f fixture) {
			tl := mustDecode(t, DecodeTopicList, f.body)
			eq(t, "topics", len(tl.TopicList), 21)
			eq(t, "first", tl.TopicList[0], "rmq_sys_REVIVE_LOG_CtrlCluster")
		}},
		{v4 + "steady/namesrv.get_routeinfo_by_topic.fastjson", func(t *testing.T, f fixture) {
			rd := mustDecode(t, DecodeTopicRouteData, f.body)
			eq(t, "route", *rd, TopicRouteData{
				QueueDatas: []QueueData{{BrokerName: "broker-a", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}},
				BrokerDatas: []BrokerData{{Cluster: "DefaultCluster", BrokerName: "broker-a",
					BrokerAddrs: map[int64]string{0: "127.0.0.1:10911"}}},
			})
			std := mustDecode(t, DecodeTopicRouteData, loadFixture(t, v4+"steady/namesrv.get_routeinfo_by_topic.standard").body)
			eq(t, "standard form", *std, *rd)
		}},
		{v4 + "steady/namesrv.get_routeinfo_by_topic.raft", func(t *testing.T, f fixture) {
			rd := mustDecode(t, DecodeTopicRouteData, f.body)
			eq(t, "addrs", rd.BrokerDatas[0].BrokerAddrs,
				map[int64]string{0: "127.0.0.1:31911", 1: "127.0.0.1:30911", 3: "127.0.0.1:32911"})
		}},
		{v5 + "steady/namesrv.get_routeinfo_by_topic.standard", func(t *testing.T, f fixture) {
			rd := mustDecode(t, DecodeTopicRouteData, f.body)
			eq(t, "addrs", rd.BrokerDatas[0].BrokerAddrs,
				map[int64]string{0: "127.0.0.1:22911", 2: "127.0.0.1:20911", 3: "127.0.0.1:21911"})
			fj := mustDecode(t, DecodeTopicRouteData, loadFixture(t, v5+"steady/namesrv.get_routeinfo_by_topic.fastjson").body)
			eq(t, "fastjson form", *fj, *rd)
		}},
		{v4 + "steady/broker_a.get_broker_runtime_info", func(t *testing.T, f fixture) {
			ri := mustDecode(t, DecodeRuntimeInfo, f.body)
			eq(t, "keys", len(ri), 49)
			eq(t, "brokerVersionDesc", ri["brokerVersionDesc"], "V4_9_7")
			eq(t, "putTps", ri["putTps"], "4.899020195960808 3.5153191276677274 ")
			eq(t, "getTotalTps", ri["getTotalTps"], "9.898020395920815 4.448294820318878 0.0")
			eq(t, "commitLogMaxOffset", ri["commitLogMaxOffset"], "346324")
			eq(t, "per-path ratio", ri["commitLogDiskRatio_/home/rocketmq/store/commitlog"], ri["commitLogDiskRatio"])
			eq(t, "remainHowManyDataToFlush", ri["remainHowManyDataToFlush"], "3.3 KiB")
		}},
		{v4 + "acl/broker_acl.get_broker_runtime_info.signed_admin", func(t *testing.T, f fixture) {
			ri := mustDecode(t, DecodeRuntimeInfo, f.body)
			eq(t, "putMessageDistributeTime", ri["putMessageDistributeTime"], "null")
			eq(t, "getFoundTps", ri["getFoundTps"], "  ")
		}},
		{v5 + "steady/ctrl_n0.get_broker_runtime_info", func(t *testing.T, f fixture) {
			ri := mustDecode(t, DecodeRuntimeInfo, f.body)
			eq(t, "keys", len(ri), 58)
			eq(t, "brokerActive", ri["brokerActive"], "false")
			eq(t, "getTransferredTps", ri["getTransferredTps"], "0.0 0.0 ")
		}},
		{v4 + "steady/broker_a.get_broker_config", func(t *testing.T, f fixture) {
			cfg := mustDecode(t, DecodeBrokerConfig, f.body)
			eq(t, "keys", len(cfg), 177)
			for k, v := range map[string]string{
				"brokerClusterName": "DefaultCluster", "brokerName": "broker-a", "brokerId": "0",
				"brokerRole": "ASYNC_MASTER", "listenPort": "10911", "namesrvAddr": "127.0.0.1:9876",
				"enableDLegerCommitLog": "false",
			} {
				eq(t, k, cfg[k], v)
			}
		}},
		{v4 + "steady/raft_n0.get_broker_config", func(t *testing.T, f fixture) {
			cfg := mustDecode(t, DecodeBrokerConfig, f.body)
			eq(t, "keys", len(cfg), 180)
			eq(t, "dLegerPeers", cfg["dLegerPeers"], "n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913")
			eq(t, "dLegerSelfId", cfg["dLegerSelfId"], "n0")
			eq(t, "brokerId", cfg["brokerId"], "1")
			eq(t, "brokerRole", cfg["brokerRole"], "SLAVE")
		}},
		{v5 + "steady/ctrl_n0.get_broker_config", func(t *testing.T, f fixture) {
			cfg := mustDecode(t, DecodeBrokerConfig, f.body)
			eq(t, "keys", len(cfg), 294)
			eq(t, "enableControllerMode", cfg["enableControllerMode"], "true")
			eq(t, "controllerAddr", cfg["controllerAddr"], "127.0.0.1:19878")
			eq(t, "brokerId", cfg["brokerId"], "-1")
		}},
		{v4 + "steady/broker_a.get_all_topic_config", func(t *testing.T, f fixture) {
			w := mustDecode(t, DecodeTopicConfigWrapper, f.body)
			eq(t, "topics", len(w.TopicConfigTable), 16)
			eq(t, "dataVersion", w.DataVersion, DataVersion{Counter: 8, Timestamp: 1795255681596})
			eq(t, "TopicA", w.TopicConfigTable["TopicA"], TopicConfig{
				TopicName: "TopicA", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6, TopicFilterType: "SINGLE_TAG",
			})
			eq(t, "SCHEDULE_TOPIC_XXXX queues", w.TopicConfigTable["SCHEDULE_TOPIC_XXXX"].WriteQueueNums, 18)
		}},
		{v5 + "steady/ctrl_n2.get_all_topic_config", func(t *testing.T, f fixture) {
			w := mustDecode(t, DecodeTopicConfigWrapper, f.body)
			eq(t, "topics", len(w.TopicConfigTable), 15)
			eq(t, "dataVersion", w.DataVersion, DataVersion{Counter: 6, Timestamp: 1795257855827})
			eq(t, "TopicCtrl", w.TopicConfigTable["TopicCtrl"], TopicConfig{
				TopicName: "TopicCtrl", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6, TopicFilterType: "SINGLE_TAG",
			})
		}},
		{v4 + "steady/broker_a.get_all_subscriptiongroup_config", func(t *testing.T, f fixture) {
			w := mustDecode(t, DecodeSubscriptionGroupWrapper, f.body)
			eq(t, "groups", len(w.SubscriptionGroupTable), 12)
			eq(t, "dataVersion", w.DataVersion, DataVersion{Counter: 1, Timestamp: 1795255681558})
			eq(t, "GroupA", w.SubscriptionGroupTable["GroupA"], SubscriptionGroupConfig{
				GroupName: "GroupA", ConsumeEnable: true, ConsumeFromMinEnable: true, ConsumeBroadcastEnable: true,
				RetryQueueNums: 1, RetryMaxTimes: 16, WhichBrokerWhenConsumeSlowly: 1, NotifyConsumerIdsChangedEnable: true,
			})
		}},
		{v5 + "steady/ctrl_n0.get_all_subscriptiongroup_config", func(t *testing.T, f fixture) {
			w := mustDecode(t, DecodeSubscriptionGroupWrapper, f.body)
			eq(t, "groups", len(w.SubscriptionGroupTable), 10)
			eq(t, "GroupCtrl", w.SubscriptionGroupTable["GroupCtrl"], SubscriptionGroupConfig{
				GroupName: "GroupCtrl", ConsumeEnable: true, ConsumeFromMinEnable: true, ConsumeBroadcastEnable: true,
				RetryQueueNums: 1, RetryMaxTimes: 16, WhichBrokerWhenConsumeSlowly: 1, NotifyConsumerIdsChangedEnable: true,
			})
		}},
		{v4 + "steady/broker_a.get_topic_stats_info", func(t *testing.T, f fixture) {
			ts := mustDecode(t, DecodeTopicStatsTable, f.body)
			eq(t, "offsetTable", ts.OffsetTable, []TopicQueueOffset{
				{mq("TopicA", "broker-a", 0), TopicOffset{MaxOffset: 303, LastUpdateTimestamp: 1795255723653}},
				{mq("TopicA", "broker-a", 1), TopicOffset{MaxOffset: 303, LastUpdateTimestamp: 1795255723856}},
				{mq("TopicA", "broker-a", 2), TopicOffset{MaxOffset: 304, LastUpdateTimestamp: 1795255724058}},
				{mq("TopicA", "broker-a", 3), TopicOffset{MaxOffset: 304, LastUpdateTimestamp: 1795255724261}},
			})
			eq(t, "topicPutTps", ts.TopicPutTps, 0.0)
		}},
		{v4 + "steady/broker_a.get_topic_stats_info.retry", func(t *testing.T, f fixture) {
			ts := mustDecode(t, DecodeTopicStatsTable, f.body)
			eq(t, "offsetTable", ts.OffsetTable, []TopicQueueOffset{
				{mq("%RETRY%GroupA", "broker-a", 0), TopicOffset{MaxOffset: 1, LastUpdateTimestamp: 1795255363108}},
			})
		}},
		{v5 + "steady/ms_master.get_topic_stats_info", func(t *testing.T, f fixture) {
			ts := mustDecode(t, DecodeTopicStatsTable, f.body)
			eq(t, "queues", len(ts.OffsetTable), 4)
			eq(t, "queue 2", ts.OffsetTable[2], TopicQueueOffset{mq("TopicMS", "broker-d", 2), TopicOffset{MaxOffset: 500, LastUpdateTimestamp: 1795257901462}})
		}},
		{v4 + "steady/broker_a.get_consume_stats", func(t *testing.T, f fixture) {
			cs := mustDecode(t, DecodeConsumeStats, f.body)
			eq(t, "queues", len(cs.OffsetTable), 4)
			eq(t, "lag", lag(*cs), int64((304-72)+(303-76)+(304-72)+(303-80)))
			eq(t, "queue 0", cs.OffsetTable[0], QueueOffsetWrapper{mq("TopicA", "broker-a", 0),
				OffsetWrapper{BrokerOffset: 303, ConsumerOffset: 80, LastTimestamp: 1795255344702}})
		}},
		{v4 + "steady/broker_a.get_consume_stats.all_topics", func(t *testing.T, f fixture) {
			cs := mustDecode(t, DecodeConsumeStats, f.body)
			eq(t, "queues", len(cs.OffsetTable), 5)
			// '%' sorts before every letter.
			eq(t, "retry queue", cs.OffsetTable[0], QueueOffsetWrapper{mq("%RETRY%GroupA", "broker-a", 0), OffsetWrapper{BrokerOffset: 1}})
		}},
		{v4 + "steady/broker_a.get_consume_stats.online", func(t *testing.T, f fixture) {
			cs := mustDecode(t, DecodeConsumeStats, f.body)
			eq(t, "consumeTps", cs.ConsumeTps, 119.2)
			eq(t, "lag", lag(*cs), int64((305-11)+(304-8)+(305-8)+(304-16)))
		}},
		{v5 + "steady/ms_master.get_consume_stats", func(t *testing.T, f fixture) {
			cs := mustDecode(t, DecodeConsumeStats, f.body)
			eq(t, "consumeTps", cs.ConsumeTps, 170.0)
			eq(t, "lag", lag(*cs), int64((500-152)+(500-147)+(500-144)+(500-156)))
		}},
		{v4 + "steady/broker_a.get_broker_consume_stats", func(t *testing.T, f fixture) {
			l := mustDecode(t, DecodeConsumeStatsList, f.body)
			eq(t, "brokerAddr", l.BrokerAddr, "127.0.0.1:10911")
			eq(t, "totalDiff", l.TotalDiff, int64(2089))
			var groups []string
			var total int64
			byGroup := map[string][]ConsumeStats{}
			for _, g := range l.ConsumeStatsList {
				groups = append(groups, g.Group)
				byGroup[g.Group] = g.Stats
				for _, cs := range g.Stats {
					total += lag(cs)
				}
			}
			eq(t, "groups in broker order", groups, []string{
				"SELF_TEST_C_GROUP", "GroupMS", "GroupRaft", "CID_ONSAPI_OWNER", "GroupA", "CID_ONSAPI_PERMISSION",
				"GroupOnline", "TOOLS_CONSUMER", "CID_ONS-HTTP-PROXY", "FILTERSRV_CONSUMER", "CID_ONSAPI_PULL", "GroupMSFromSlave",
			})
			eq(t, "Σ lag", total, l.TotalDiff)
			eq(t, "SELF_TEST_C_GROUP stats", byGroup["SELF_TEST_C_GROUP"], []ConsumeStats{})
			if len(byGroup["GroupA"]) != 2 {
				t.Fatalf("GroupA has %d topics, want 2", len(byGroup["GroupA"]))
			}
			var topicA ConsumeStats
			for _, cs := range byGroup["GroupA"] {
				if len(cs.OffsetTable) > 0 && cs.OffsetTable[0].MessageQueue == mq("TopicA", "broker-a", 0) {
					topicA = cs
				}
			}
			eq(t, "GroupA TopicA lag", lag(topicA), int64((304-72)+(303-76)+(304-72)+(303-80)))
			eq(t, "GroupOnline TopicA tps", byGroup["GroupOnline"][1].ConsumeTps, 119.2)
		}},
		{v4 + "acl/broker_acl.get_broker_consume_stats.signed_admin", func(t *testing.T, f fixture) {
			l := mustDecode(t, DecodeConsumeStatsList, f.body)
			eq(t, "groups", len(l.ConsumeStatsList), 7)
			eq(t, "totalDiff", l.TotalDiff, int64(0))
			for _, g := range l.ConsumeStatsList {
				if g.Stats == nil || len(g.Stats) != 0 {
					t.Errorf("group %s: stats %v, want empty", g.Group, g.Stats)
				}
			}
		}},
		{v5 + "steady/ms_master.get_broker_consume_stats", func(t *testing.T, f fixture) {
			l := mustDecode(t, DecodeConsumeStatsList, f.body)
			eq(t, "totalDiff", l.TotalDiff, int64(1402))
			eq(t, "groups", len(l.ConsumeStatsList), 10)
			eq(t, "GroupMS", l.ConsumeStatsList[1].Group, "GroupMS")
			eq(t, "GroupMS TopicMS lag", lag(l.ConsumeStatsList[1].Stats[0]), int64(348+353+356+344))
			eq(t, "GroupCtrl kept", l.ConsumeStatsList[3], GroupConsumeStats{Group: "GroupCtrl", Stats: []ConsumeStats{}})
		}},
		{v4 + "steady/broker_a.query_topic_consume_by_who", func(t *testing.T, f fixture) {
			gl := mustDecode(t, DecodeGroupList, f.body)
			eq(t, "groups", gl.GroupList, []string{"GroupA", "GroupOnline"})
		}},
		{v4 + "steady/broker_a.query_consume_time_span", func(t *testing.T, f fixture) {
			spans := mustDecode(t, DecodeConsumeTimeSpan, f.body)
			delays := map[int]int64{}
			for _, s := range spans {
				delays[s.MessageQueue.QueueID] = s.DelayTime
			}
			eq(t, "delayTime by queue", delays, map[int]int64{0: 379683, 1: 379728, 2: 379738, 3: 379737})
			eq(t, "queue 0", spans[0], QueueTimeSpan{
				MessageQueue: mq("TopicA", "broker-a", 0), MinTimeStamp: 1795255343811, MaxTimeStamp: 1795255723653,
				ConsumeTimeStamp: 1795255344702, DelayTime: 379683,
			})
		}},
		{v4 + "steady/broker_a.query_consume_time_span.online", func(t *testing.T, f fixture) {
			spans := mustDecode(t, DecodeConsumeTimeSpan, f.body)
			eq(t, "queues", len(spans), 4)
			eq(t, "queue 3 delay", spans[3].DelayTime, int64(381230))
		}},
		{v5 + "steady/ctrl_n0.query_consume_time_span", func(t *testing.T, f fixture) {
			spans := mustDecode(t, DecodeConsumeTimeSpan, f.body)
			eq(t, "queue 0", spans[0].MessageQueue, mq("TopicCtrl", "broker-c", 0))
			eq(t, "queue 0 delay", spans[0].DelayTime, int64(264231))
		}},
		{v4 + "steady/broker_a.get_consumer_connection_list.online", func(t *testing.T, f fixture) {
			cc := mustDecode(t, DecodeConsumerConnection, f.body)
			eq(t, "connections", cc.ConnectionSet, []Connection{{
				ClientID: "192.0.2.2@31607#1212836487332", ClientAddr: "127.0.0.1:53376", Language: "JAVA", Version: 407,
			}})
			eq(t, "consumeType", cc.ConsumeType, "CONSUME_PASSIVELY")
			eq(t, "messageModel", cc.MessageModel, "CLUSTERING")
			eq(t, "consumeFromWhere", cc.ConsumeFromWhere, "CONSUME_FROM_FIRST_OFFSET")
			eq(t, "subscriptions", len(cc.SubscriptionTable), 2)
			eq(t, "TopicA", cc.SubscriptionTable["TopicA"], SubscriptionData{
				Topic: "TopicA", SubString: "*", ExpressionType: "TAG", SubVersion: 1795255681815, TagsSet: []string{},
			})
		}},
		{v4 + "steady/broker_a.view_broker_stats.topic_put_nums", func(t *testing.T, f fixture) {
			sd := mustDecode(t, DecodeBrokerStatsData, f.body)
			eq(t, "stats", *sd, BrokerStatsData{StatsMinute: BrokerStatsItem{Sum: 192, Tps: 4.800120003000075, Avgpt: 1}})
		}},
		{v5 + "steady/ms_master.view_broker_stats.topic_put_nums", func(t *testing.T, f fixture) {
			sd := mustDecode(t, DecodeBrokerStatsData, f.body)
			eq(t, "minute", sd.StatsMinute, BrokerStatsItem{Sum: 1000, Tps: 50, Avgpt: 1})
		}},
		{v4 + "steady/raft_n0.dledger.metadata", func(t *testing.T, f fixture) {
			md := mustDecode(t, DecodeDLedgerMetadata, f.body)
			eq(t, "metadata", *md, DLedgerMetadata{
				Code: 200, Group: "RaftNode00", LeaderID: "n1", Term: -1,
				Peers: map[string]string{"n0": "127.0.0.1:40911", "n1": "127.0.0.1:40912", "n2": "127.0.0.1:40913"},
			})
		}},
		{v4 + "steady/raft_n0.dledger.metadata.empty_body", func(t *testing.T, f fixture) {
			md := mustDecode(t, DecodeDLedgerMetadata, f.body)
			eq(t, "metadata", *md, DLedgerMetadata{Code: 401, LeaderID: "n1", Term: -1})
		}},
		{v4 + "steady/raft_n2.dledger.metadata.wrong_group", func(t *testing.T, f fixture) {
			md := mustDecode(t, DecodeDLedgerMetadata, f.body)
			eq(t, "metadata", *md, DLedgerMetadata{Code: 400, Group: "Nope", LeaderID: "n1", Term: -1})
		}},
		{v4 + "dledger-failover/t04/raft_n0.dledger.metadata", func(t *testing.T, f fixture) {
			md := mustDecode(t, DecodeDLedgerMetadata, f.body)
			eq(t, "leader after election", md.LeaderID, "n2")
		}},
		{v5 + "steady/ctrl_n2.get_broker_ha_status", func(t *testing.T, f fixture) {
			hi := mustDecode(t, DecodeHARuntimeInfo, f.body)
			eq(t, "master", hi.Master, true)
			eq(t, "inSyncSlaveNums", hi.InSyncSlaveNums, 2)
			eq(t, "masterCommitLogMaxOffset", hi.MasterCommitLogMaxOffset, int64(551178))
			eq(t, "connections", hi.HAConnectionInfo, []HAConnectionInfo{
				{Addr: "127.0.0.1:39362", SlaveAckOffset: 551178, InSync: true, TransferFromWhere: 551178},
				{Addr: "127.0.0.1:39364", SlaveAckOffset: 551178, InSync: true, TransferFromWhere: 551178},
			})
		}},
		{v5 + "steady/ms_master.get_broker_ha_status", func(t *testing.T, f fixture) {
			hi := mustDecode(t, DecodeHARuntimeInfo, f.body)
			eq(t, "connection", hi.HAConnectionInfo, []HAConnectionInfo{{
				Addr: "127.0.0.1:58216", SlaveAckOffset: 543150, InSync: true, TransferFromWhere: 543150, TransferredByteInSecond: 24,
			}})
		}},
		{v5 + "steady/ctrl_n1.get_broker_ha_status", func(t *testing.T, f fixture) {
			hi := mustDecode(t, DecodeHARuntimeInfo, f.body)
			eq(t, "master", hi.Master, false)
			eq(t, "connections", len(hi.HAConnectionInfo), 0)
			if hi.HAClientRuntimeInfo == nil {
				t.Fatal("no haClientRuntimeInfo")
			}
			eq(t, "client", *hi.HAClientRuntimeInfo, HAClientRuntimeInfo{
				MasterAddr: "127.0.0.1:22912", MaxOffset: 551178,
				LastReadTimestamp: 1795257911857, LastWriteTimestamp: 1795257911857,
			})
		}},
		{v5 + "steady/controller.get_sync_state_data", func(t *testing.T, f fixture) {
			sd := mustDecode(t, DecodeSyncStateData, f.body)
			eq(t, "sync state", sd, SyncStateData{"broker-c": {
				MasterAddress: "127.0.0.1:22911", MasterBrokerID: -1, MasterEpoch: 5, SyncStateSetEpoch: 12,
				InSyncMembers: []SyncStateMember{
					{Address: "127.0.0.1:22911", BrokerID: 0}, {Address: "127.0.0.1:20911", BrokerID: 2},
					{Address: "127.0.0.1:21911", BrokerID: 3},
				},
			}})
		}},
		{v5 + "controller-failover/t01/controller.get_sync_state_data", func(t *testing.T, f fixture) {
			sd := mustDecode(t, DecodeSyncStateData, f.body)
			eq(t, "sync state", sd["broker-c"], SyncStateInfo{
				MasterAddress: "127.0.0.1:20911", MasterBrokerID: -1, MasterEpoch: 6, SyncStateSetEpoch: 13,
				InSyncMembers: []SyncStateMember{{Address: "127.0.0.1:20911", BrokerID: 0}},
			})
		}},
		{v5 + "controller-failover/t30-rejoin/controller.get_sync_state_data", func(t *testing.T, f fixture) {
			sd := mustDecode(t, DecodeSyncStateData, f.body)
			eq(t, "syncStateSetEpoch", sd["broker-c"].SyncStateSetEpoch, int64(15))
			eq(t, "rejoined member", sd["broker-c"].InSyncMembers[0], SyncStateMember{Address: "127.0.0.1:22911", BrokerID: 1})
		}},
		{v5 + "steady/controller.get_replica_info", func(t *testing.T, f fixture) {
			ri, err := DecodeReplicaInfo(f.header.ExtFields, f.body)
			if err != nil {
				t.Fatal(err)
			}
			// The 5.0 header's brokerId (-1) is the caller's id, not the master's.
			eq(t, "replica info", *ri, ReplicaInfo{
				MasterAddress: "127.0.0.1:22911", MasterBrokerID: -1, MasterEpoch: 5, SyncStateSetEpoch: 12,
				SyncStateSet: []string{"127.0.0.1:22911", "127.0.0.1:20911", "127.0.0.1:21911"},
			})
		}},
		{v5 + "controller-failover/t01/controller.get_replica_info", func(t *testing.T, f fixture) {
			ri, err := DecodeReplicaInfo(f.header.ExtFields, f.body)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "replica info", *ri, ReplicaInfo{
				MasterAddress: "127.0.0.1:20911", MasterBrokerID: -1, MasterEpoch: 6, SyncStateSetEpoch: 13,
				SyncStateSet: []string{"127.0.0.1:20911"},
			})
		}},
		{v5 + "steady/controller.get_metadata_info", func(t *testing.T, f fixture) {
			if len(f.body) != 0 {
				t.Errorf("1005 body: %q", f.body)
			}
			md, err := DecodeControllerMetadata(f.header.ExtFields)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "metadata", *md, ControllerMetadata{
				Group: "ctrlgroup", ControllerLeaderID: "n0", ControllerLeaderAddress: "127.0.0.1:19878",
				IsLeader: true, Peers: "n0:127.0.0.1:19878;",
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) { tt.check(t, loadFixture(t, tt.file)) })
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fixtureDecoders maps the request part of a fixture name to the decoder of
// its body.
var fixtureDecoders = []struct {
	request string
	decode  func(body []byte, ext map[string]string) (any, error)
}{
	{".get_broker_cluster_info.", bodyOnly(DecodeClusterInfo)},
	{".get_all_topic_list.", bodyOnly(DecodeTopicList)},
	{".get_routeinfo_by_topic.", bodyOnly(DecodeTopicRouteData)},
	{".get_broker_runtime_info.", bodyOnly(DecodeRuntimeInfo)},
	{".get_broker_config.", bodyOnly(DecodeBrokerConfig)},
	{".get_all_topic_config.", bodyOnly(DecodeTopicConfigWrapper)},
	{".get_all_subscriptiongroup_config.", bodyOnly(DecodeSubscriptionGroupWrapper)},
	{".get_topic_stats_info.", bodyOnly(DecodeTopicStatsTable)},
	{".get_consume_stats.", bodyOnly(DecodeConsumeStats)},
	{".get_broker_consume_stats.", bodyOnly(DecodeConsumeStatsList)},
	{".query_topic_consume_by_who.", bodyOnly(DecodeGroupList)},
	{".query_consume_time_span.", bodyOnly(DecodeConsumeTimeSpan)},
	{".get_consumer_connection_list.", bodyOnly(DecodeConsumerConnection)},
	{".view_broker_stats.", bodyOnly(DecodeBrokerStatsData)},
	{".dledger.metadata.", bodyOnly(DecodeDLedgerMetadata)},
	{".dledger.heartbeat_term_probe.", bodyOnly(decodeDLedgerTerm)},
	{".get_broker_ha_status.", bodyOnly(DecodeHARuntimeInfo)},
	{".get_sync_state_data.", bodyOnly(DecodeSyncStateData)},
	{".get_replica_info.", func(b []byte, ext map[string]string) (any, error) { return DecodeReplicaInfo(ext, b) }},
}

func bodyOnly[T any](fn func([]byte) (T, error)) func([]byte, map[string]string) (any, error) {
	return func(b []byte, _ map[string]string) (any, error) { return fn(b) }
}

// TestDecodeAllFixtures decodes every recorded body with its decoder.
func TestDecodeAllFixtures(t *testing.T) {
	used := map[string]int{}
	for name, body := range fixtureBodies(t) {
		if strings.Contains(name, ".get_consumer_running_info.") {
			continue // relayed from the client; only normalized (relaxed_test.go)
		}
		found := false
		for _, d := range fixtureDecoders {
			if !strings.Contains(name, d.request) {
				continue
			}
			found = true
			used[d.request]++
			f := loadFixture(t, strings.TrimSuffix(name, ".response.body"))
			v, err := d.decode(body, f.header.ExtFields)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if rv := reflect.Indirect(reflect.ValueOf(v)); rv.IsZero() ||
				(rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice) && rv.Len() == 0 {
				t.Errorf("%s: decoded to nothing", name)
			}
			break
		}
		if !found {
			t.Errorf("%s: no decoder", name)
		}
	}
	for _, d := range fixtureDecoders {
		if used[d.request] == 0 {
			t.Errorf("no fixture for %s", d.request)
		}
	}
}

func TestDecodeBrokerConfigText(t *testing.T) {
	body := "namesrvAddr=10.0.0.1:9876;10.0.0.2:9876\r\n\n" +
		"brokerName=a=b\n  \nnoEqualsSign\n=orphan\nempty=\nlast=1"
	cfg, err := DecodeBrokerConfig([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "config", cfg, BrokerConfig{
		"namesrvAddr": "10.0.0.1:9876;10.0.0.2:9876", "brokerName": "a=b", "empty": "", "last": "1",
	})
	for _, bad := range []string{"", "\n\n", "no settings here\n"} {
		if _, err := DecodeBrokerConfig([]byte(bad)); err == nil {
			t.Errorf("DecodeBrokerConfig(%q) accepted", bad)
		}
	}
}

func TestDecodeQueueKeys(t *testing.T) {
	// Field order inside the key object depends on the producer (Java sorts,
	// the Go client does not); spacing is free.
	body := `{"offsetTable":{{"topic":"T","brokerName":"b","queueId":1}:{"maxOffset":5},` +
		`{ "queueId" : 2 , "topic" : "T" , "brokerName" : "b" }:{"maxOffset":6}},"topicPutTps":12.5}`
	ts, err := DecodeTopicStatsTable([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "offsetTable", ts.OffsetTable, []TopicQueueOffset{
		{mq("T", "b", 1), TopicOffset{MaxOffset: 5}}, {mq("T", "b", 2), TopicOffset{MaxOffset: 6}},
	})
	eq(t, "topicPutTps", ts.TopicPutTps, 12.5)

	// Standard JSON (already-quoted keys) decodes the same way.
	std := `{"offsetTable":{"{\"brokerName\":\"b\",\"queueId\":1,\"topic\":\"T\"}":{"brokerOffset":9}}}`
	cs, err := DecodeConsumeStats([]byte(std))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "offsetTable", cs.OffsetTable, []QueueOffsetWrapper{{mq("T", "b", 1), OffsetWrapper{BrokerOffset: 9}}})

	// A key object with a non-string key of its own takes the relaxed path.
	odd := `{"offsetTable":{{"topic":"T","brokerName":"b","queueId":3,"extra":{1:2}}:{"brokerOffset":4}}}`
	cs, err = DecodeConsumeStats([]byte(odd))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "offsetTable", cs.OffsetTable, []QueueOffsetWrapper{{mq("T", "b", 3), OffsetWrapper{BrokerOffset: 4}}})

	for _, bad := range []string{
		`{"offsetTable":{5:{"maxOffset":5}}}`,
		`{"offsetTable":{"x":{"maxOffset":5}}}`,
		`{"offsetTable":{null:{"maxOffset":5}}}`,
		`{"offsetTable":{[1]:{"maxOffset":5}}}`,
		`{"offsetTable":{{"queueId":"one"}:{"maxOffset":5}}}`,
	} {
		if _, err := DecodeTopicStatsTable([]byte(bad)); err == nil {
			t.Errorf("DecodeTopicStatsTable(%s) accepted", bad)
		}
	}
	if _, err := DecodeConsumeStatsList([]byte(`{"consumeStatsList":[{"G":[{"offsetTable":{7:{}}}]}]}`)); err == nil {
		t.Error("bad key inside 317 accepted")
	}
}

// Offset tables come out in queue order on both paths, whatever order the
// body lists them in; a key repeated in the body keeps its last value, and
// spellings of one queue that differ keep one value, the same on every run.
func TestQueueTablesInQueueOrder(t *testing.T) {
	q := func(topic, broker string, id int) string {
		return fmt.Sprintf(`{"brokerName":%q,"queueId":%d,"topic":%q}`, broker, id, topic)
	}
	unsorted := `{"offsetTable":{` + q("T", "b", 10) + `:{"maxOffset":1},` + q("T", "b", 2) + `:{"maxOffset":2},` +
		q("S", "c", 0) + `:{"maxOffset":3},` + q("T", "a", 7) + `:{"maxOffset":4},` + q("%RETRY%G", "b", 0) + `:{"maxOffset":5}}}`
	want := []TopicQueueOffset{
		{mq("%RETRY%G", "b", 0), TopicOffset{MaxOffset: 5}},
		{mq("S", "c", 0), TopicOffset{MaxOffset: 3}},
		{mq("T", "a", 7), TopicOffset{MaxOffset: 4}},
		{mq("T", "b", 2), TopicOffset{MaxOffset: 2}},
		{mq("T", "b", 10), TopicOffset{MaxOffset: 1}},
	}
	for name, dec := range map[string]func([]byte) (*TopicStatsTable, error){
		"fast": fastTopicStats, "generic": genericTopicStats, "public": DecodeTopicStatsTable,
	} {
		ts, err := dec([]byte(unsorted))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		eq(t, name, ts.OffsetTable, want)
	}
	ws := `{"offsetTable":{` + q("T", "b", 1) + `:{"brokerOffset":1},` + q("T", "b", 0) + `:{"brokerOffset":2}}}`
	for name, dec := range map[string]func([]byte) (*ConsumeStats, error){"fast": fastConsumeStats, "generic": genericConsumeStats} {
		cs, err := dec([]byte(ws))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		eq(t, name, cs.OffsetTable, []QueueOffsetWrapper{
			{mq("T", "b", 0), OffsetWrapper{BrokerOffset: 2}}, {mq("T", "b", 1), OffsetWrapper{BrokerOffset: 1}},
		})
	}
	l, err := fastConsumeStatsList([]byte(`{"consumeStatsList":[{"G":[` + ws[:len(ws)-1] + `}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "317", l.ConsumeStatsList[0].Stats[0].OffsetTable[0].MessageQueue, mq("T", "b", 0))

	for _, tc := range []struct {
		name, body string
		want       []TopicQueueOffset
	}{
		{"empty", `{"offsetTable":{}}`, nil},
		{"null", `{"offsetTable":null}`, nil},
		{"absent", `{}`, nil},
		// encoding/json keeps the last value of a repeated key.
		{"repeated key", `{"offsetTable":{` + q("T", "b", 1) + `:{"maxOffset":5},` + q("T", "b", 0) + `:{},` +
			q("T", "b", 1) + `:{"minOffset":6}}}`, []TopicQueueOffset{
			{mq("T", "b", 0), TopicOffset{}}, {mq("T", "b", 1), TopicOffset{MinOffset: 6}},
		}},
		// Of two spellings of one queue, the greatest in byte order: here
		// the one starting {"t, whichever comes last in the body.
		{"two spellings", `{"offsetTable":{{"topic":"T","brokerName":"b","queueId":1}:{"maxOffset":7},` +
			q("T", "b", 1) + `:{"maxOffset":8}}}`, []TopicQueueOffset{{mq("T", "b", 1), TopicOffset{MaxOffset: 7}}}},
		{"two spellings swapped", `{"offsetTable":{` + q("T", "b", 1) + `:{"maxOffset":8},` +
			`{"topic":"T","brokerName":"b","queueId":1}:{"maxOffset":7}}}`, []TopicQueueOffset{{mq("T", "b", 1), TopicOffset{MaxOffset: 7}}}},
		// A second table merges into the first; null empties it.
		{"merged tables", `{"offsetTable":{` + q("T", "b", 1) + `:{"maxOffset":1}},"offsetTable":{` + q("T", "b", 0) + `:{"maxOffset":2}}}`,
			[]TopicQueueOffset{{mq("T", "b", 0), TopicOffset{MaxOffset: 2}}, {mq("T", "b", 1), TopicOffset{MaxOffset: 1}}}},
		{"emptied table", `{"offsetTable":{` + q("T", "b", 1) + `:{"maxOffset":1}},"offsetTable":null}`, nil},
	} {
		// Several runs: the generic path goes through a Go map, whose order
		// changes from run to run.
		for range 20 {
			ts, err := DecodeTopicStatsTable([]byte(tc.body))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			eq(t, tc.name, ts.OffsetTable, tc.want)
		}
	}

	// With several bad keys, the error names the same one every time.
	bad := `{"offsetTable":{{"queueId":"a"}:{},{"queueId":"b"}:{},{"queueId":"c"}:{},{"queueId":"d"}:{}}}`
	_, first := DecodeTopicStatsTable([]byte(bad))
	if first == nil || !strings.Contains(first.Error(), `\"a\"`) {
		t.Fatalf("error %v, want the first key in byte order", first)
	}
	for range 20 {
		if _, err := DecodeTopicStatsTable([]byte(bad)); err == nil || err.Error() != first.Error() {
			t.Fatalf("error %v, then %v", first, err)
		}
	}
}

// checkQueueTables holds the offset tables of whatever decodes to the
// contract of the types: rows strictly in queue order (so no queue twice),
// and the same rows and error on a second decode.
func checkQueueTables(t *testing.T, b []byte) {
	t.Helper()
	ordered := func(what string, n int, at func(i int) *MessageQueue) {
		for i := 1; i < n; i++ {
			if CompareQueues(at(i-1), at(i)) >= 0 {
				t.Fatalf("%s on %q: row %d %+v does not follow row %d %+v", what, b, i, *at(i), i-1, *at(i - 1))
			}
		}
	}
	consume := func(what string, cs *ConsumeStats) {
		ordered(what, len(cs.OffsetTable), func(i int) *MessageQueue { return &cs.OffsetTable[i].MessageQueue })
	}
	same := func(what string, v1 any, e1 error, v2 any, e2 error) {
		if (e1 == nil) != (e2 == nil) || e1 != nil && e1.Error() != e2.Error() || !reflect.DeepEqual(v1, v2) {
			t.Fatalf("%s on %q decodes twice to\n%#v %v\n%#v %v", what, b, v1, e1, v2, e2)
		}
	}
	ts, err := DecodeTopicStatsTable(b)
	if err == nil {
		ordered("topic stats", len(ts.OffsetTable), func(i int) *MessageQueue { return &ts.OffsetTable[i].MessageQueue })
	}
	ts2, err2 := DecodeTopicStatsTable(b)
	same("topic stats", ts, err, ts2, err2)
	cs, err := DecodeConsumeStats(b)
	if err == nil {
		consume("consume stats", cs)
	}
	cs2, err2 := DecodeConsumeStats(b)
	same("consume stats", cs, err, cs2, err2)
	l, err := DecodeConsumeStatsList(b)
	if err == nil {
		for _, g := range l.ConsumeStatsList {
			for i := range g.Stats {
				consume("broker consume stats", &g.Stats[i])
			}
		}
	}
	l2, err2 := DecodeConsumeStatsList(b)
	same("broker consume stats", l, err, l2, err2)
}

func TestDecodeNullDoubles(t *testing.T) {
	cs, err := DecodeConsumeStats([]byte(`{"consumeTps":null,"offsetTable":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "consumeTps", cs.ConsumeTps, 0.0)
	sd, err := DecodeBrokerStatsData([]byte(`{"statsMinute":{"avgpt":null,"sum":3,"tps":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "minute", sd.StatsMinute, BrokerStatsItem{Sum: 3})
	ts, err := DecodeTopicStatsTable([]byte(`{"offsetTable":{},"topicPutTps":null}`))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "topicPutTps", ts.TopicPutTps, 0.0)
}

// The 5.1+ controller answers in another shape (PROTOCOL.md §2.5); no
// fixture exists, so the body is built from the documented field names.
func TestDecodeSyncStateData51(t *testing.T) {
	body := `{"replicasInfoTable":{"broker-a":{"masterAddress":"10.0.0.1:10911","masterBrokerId":1,"masterEpoch":3,` +
		`"syncStateSetEpoch":5,"inSyncReplicas":[{"alive":true,"brokerAddress":"10.0.0.1:10911","brokerId":1,"brokerName":"broker-a"},` +
		`{"alive":true,"brokerAddress":"10.0.0.2:10911","brokerId":2,"brokerName":"broker-a"}],` +
		`"notInSyncReplicas":[{"alive":false,"brokerAddress":"10.0.0.3:10911","brokerId":3,"brokerName":"broker-a"}]}}}`
	sd, err := DecodeSyncStateData([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "broker-a", sd["broker-a"], SyncStateInfo{
		MasterAddress: "10.0.0.1:10911", MasterBrokerID: 1, MasterEpoch: 3, SyncStateSetEpoch: 5,
		InSyncMembers:    []SyncStateMember{{Address: "10.0.0.1:10911", BrokerID: 1}, {Address: "10.0.0.2:10911", BrokerID: 2}},
		NotInSyncMembers: []SyncStateMember{{Address: "10.0.0.3:10911", BrokerID: 3}},
	})
	if _, err := DecodeSyncStateData([]byte(`{"other":{}}`)); err == nil {
		t.Error("body without a table accepted")
	}

	ri, err := DecodeReplicaInfo(map[string]string{"masterAddress": "10.0.0.1:10911", "masterBrokerId": "1", "masterEpoch": "3"},
		[]byte(`{"syncStateSet":[1,2],"syncStateSetEpoch":5}`))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "replica info", *ri, ReplicaInfo{
		MasterAddress: "10.0.0.1:10911", MasterBrokerID: 1, MasterEpoch: 3, SyncStateSetEpoch: 5, SyncStateSet: []string{"1", "2"},
	})
	for _, c := range []struct {
		ext  map[string]string
		body string
	}{
		{nil, `{}`},
		{map[string]string{"masterEpoch": "x"}, ``},
		{map[string]string{"masterBrokerId": "1.5"}, ``},
		{map[string]string{}, `{"syncStateSet":[{"a":1}]}`},
		{map[string]string{}, `{"syncStateSet":`},
	} {
		if _, err := DecodeReplicaInfo(c.ext, []byte(c.body)); err == nil {
			t.Errorf("DecodeReplicaInfo(%v, %s) accepted", c.ext, c.body)
		}
	}
}

func TestDecodeControllerMetadataErrors(t *testing.T) {
	if _, err := DecodeControllerMetadata(nil); err == nil {
		t.Error("nil extFields accepted")
	}
	if _, err := DecodeControllerMetadata(map[string]string{"isLeader": "maybe"}); err == nil {
		t.Error("bad isLeader accepted")
	}
}

// Every JSON decoder refuses an empty body and a body of the wrong type,
// naming what it was decoding.
func TestDecodeErrors(t *testing.T) {
	decoders := map[string]func([]byte) error{
		"cluster info":      func(b []byte) error { _, err := DecodeClusterInfo(b); return err },
		"topic list":        func(b []byte) error { _, err := DecodeTopicList(b); return err },
		"topic route":       func(b []byte) error { _, err := DecodeTopicRouteData(b); return err },
		"runtime info":      func(b []byte) error { _, err := DecodeRuntimeInfo(b); return err },
		"topic config":      func(b []byte) error { _, err := DecodeTopicConfigWrapper(b); return err },
		"subscription":      func(b []byte) error { _, err := DecodeSubscriptionGroupWrapper(b); return err },
		"topic stats":       func(b []byte) error { _, err := DecodeTopicStatsTable(b); return err },
		"consume stats":     func(b []byte) error { _, err := DecodeConsumeStats(b); return err },
		"consume stats 317": func(b []byte) error { _, err := DecodeConsumeStatsList(b); return err },
		"group list":        func(b []byte) error { _, err := DecodeGroupList(b); return err },
		"time span":         func(b []byte) error { _, err := DecodeConsumeTimeSpan(b); return err },
		"connection":        func(b []byte) error { _, err := DecodeConsumerConnection(b); return err },
		"broker stats":      func(b []byte) error { _, err := DecodeBrokerStatsData(b); return err },
		"dledger metadata":  func(b []byte) error { _, err := DecodeDLedgerMetadata(b); return err },
		"ha":                func(b []byte) error { _, err := DecodeHARuntimeInfo(b); return err },
		"sync state":        func(b []byte) error { _, err := DecodeSyncStateData(b); return err },
	}
	for name, dec := range decoders {
		for _, body := range []string{"", " \n", `[1,2]`, `{"a":`, `"text"`} {
			err := dec([]byte(body))
			if err == nil {
				t.Errorf("%s: body %q accepted", name, body)
			} else if !strings.HasPrefix(err.Error(), "rocketmq: decode ") {
				t.Errorf("%s: error %q does not say what was decoded", name, err)
			}
		}
	}
	if _, err := DecodeRuntimeInfo([]byte(`{"table":{"a":1}}`)); err == nil {
		t.Error("runtime info with a number value accepted")
	}
	if _, err := DecodeRuntimeInfo([]byte(`{"other":{}}`)); err == nil {
		t.Error("runtime info without table accepted")
	}
}

// FuzzDecoders feeds arbitrary bytes to every decoder: errors are fine,
// panics are not.
func FuzzDecoders(f *testing.F) {
	for _, body := range fixtureBodies(f) {
		f.Add(body)
	}
	f.Add([]byte(`{"offsetTable":{{"queueId":1}:{}}}`))
	f.Add([]byte(`{"replicasInfoTable":{"a":{"inSyncReplicas":[{}]}},"inSyncStateTable":{"b":{}}}`))
	f.Add([]byte(`{"syncStateSet":[1,"a",null,{}]}`))
	f.Add([]byte(`{"offsetTable":{{"topic":"T","queueId":1}:{"maxOffset":1},{"queueId":1,"topic":"T"}:{"maxOffset":2},{"queueId":0}:{}}}`))
	f.Add([]byte(`{"offsetTable":{{"queueId":"a"}:{},{"queueId":"b"}:{}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkQueueTables(t, b)
		_, _ = DecodeClusterInfo(b)
		_, _ = DecodeTopicList(b)
		_, _ = DecodeTopicRouteData(b)
		_, _ = DecodeRuntimeInfo(b)
		_, _ = DecodeBrokerConfig(b)
		_, _ = DecodeTopicConfigWrapper(b)
		_, _ = DecodeSubscriptionGroupWrapper(b)
		_, _ = DecodeTopicStatsTable(b)
		_, _ = DecodeConsumeStats(b)
		_, _ = DecodeConsumeStatsList(b)
		_, _ = DecodeGroupList(b)
		_, _ = DecodeConsumeTimeSpan(b)
		_, _ = DecodeConsumerConnection(b)
		_, _ = DecodeConsumerConnectionSummary(b)
		_, _ = DecodeBrokerStatsData(b)
		_, _ = DecodeDLedgerMetadata(b)
		_, _ = decodeDLedgerTerm(b)
		_, _ = DecodeHARuntimeInfo(b)
		_, _ = DecodeSyncStateData(b)
		ext := map[string]string{"masterAddress": string(b), "masterBrokerId": string(b), "masterEpoch": string(b)}
		_, _ = DecodeReplicaInfo(ext, b)
		_, _ = DecodeReplicaInfo(map[string]string{}, b)
		_, _ = DecodeControllerMetadata(map[string]string{"isLeader": string(b), "peers": string(b)})
	})
}
