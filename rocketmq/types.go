package rocketmq

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// Typed responses of the requests the exporter uses. Field names follow the
// Java classes; every JSON body is fastjson output and goes through the
// relaxed decoder (relaxed.go) first. Numbers that are offsets or timestamps
// are int64, never float64.

// MessageQueue identifies one queue. It is the (object) key of several maps
// on the wire.
type MessageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
}

// CompareQueues orders queues by topic, then broker name, then queue id (as
// strings.Compare and cmp.Compare do). The offset tables of TopicStatsTable
// and ConsumeStats are sorted in this order, whatever order the broker's
// hash map sent them in, so that a table decodes to the same rows every time
// and on every path.
func CompareQueues(a, b *MessageQueue) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	if c := strings.Compare(a.BrokerName, b.BrokerName); c != 0 {
		return c
	}
	return cmp.Compare(a.QueueID, b.QueueID)
}

// DataVersion is the broker's metadata version stamp.
type DataVersion struct {
	Counter   int64 `json:"counter"`
	Timestamp int64 `json:"timestamp"`
}

// ClusterInfo is the body of GET_BROKER_CLUSTER_INFO (106).
type ClusterInfo struct {
	// BrokerAddrTable is keyed by broker name (the group).
	BrokerAddrTable map[string]BrokerData `json:"brokerAddrTable"`
	// ClusterAddrTable maps a cluster name to its broker names.
	ClusterAddrTable map[string][]string `json:"clusterAddrTable"`
}

// BrokerData is one broker group as the NameServer knows it. Key 0 of
// BrokerAddrs is the master (or the DLedger leader).
type BrokerData struct {
	Cluster            string           `json:"cluster"`
	BrokerName         string           `json:"brokerName"`
	BrokerAddrs        map[int64]string `json:"brokerAddrs"`
	EnableActingMaster bool             `json:"enableActingMaster"`
	ZoneName           string           `json:"zoneName"`
}

// TopicList is the body of GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206).
type TopicList struct {
	TopicList []string `json:"topicList"`
}

// QueueData describes a topic's queues on one broker group.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSysFlag   int    `json:"topicSysFlag"`
}

// TopicRouteData is the body of GET_ROUTEINFO_BY_TOPIC (105).
type TopicRouteData struct {
	OrderTopicConf string       `json:"orderTopicConf"`
	QueueDatas     []QueueData  `json:"queueDatas"`
	BrokerDatas    []BrokerData `json:"brokerDatas"`
}

// RuntimeInfo is the KVTable of GET_BROKER_RUNTIME_INFO (28): every value is a
// string, some of them composite (see PROTOCOL.md §2.2).
type RuntimeInfo map[string]string

// BrokerConfig is the key=value body of GET_BROKER_CONFIG (26).
type BrokerConfig map[string]string

// TopicConfig is one entry of GET_ALL_TOPIC_CONFIG (21).
type TopicConfig struct {
	TopicName       string `json:"topicName"`
	ReadQueueNums   int    `json:"readQueueNums"`
	WriteQueueNums  int    `json:"writeQueueNums"`
	Perm            int    `json:"perm"`
	TopicFilterType string `json:"topicFilterType"`
	TopicSysFlag    int    `json:"topicSysFlag"`
	Order           bool   `json:"order"`
}

// TopicConfigWrapper is the body of GET_ALL_TOPIC_CONFIG (21).
type TopicConfigWrapper struct {
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
	DataVersion      DataVersion            `json:"dataVersion"`
}

// Names returns the names of the table's topics, sorted; nil when none.
func (w *TopicConfigWrapper) Names() []string {
	if len(w.TopicConfigTable) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(w.TopicConfigTable))
}

// SubscriptionGroupConfig is one entry of GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).
type SubscriptionGroupConfig struct {
	GroupName                      string `json:"groupName"`
	ConsumeEnable                  bool   `json:"consumeEnable"`
	ConsumeFromMinEnable           bool   `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool   `json:"consumeBroadcastEnable"`
	ConsumeMessageOrderly          bool   `json:"consumeMessageOrderly"`
	RetryQueueNums                 int    `json:"retryQueueNums"`
	RetryMaxTimes                  int    `json:"retryMaxTimes"`
	BrokerID                       int64  `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int64  `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIdsChangedEnable bool   `json:"notifyConsumerIdsChangedEnable"`
	GroupSysFlag                   int    `json:"groupSysFlag"`
}

// SubscriptionGroupWrapper is the body of GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).
type SubscriptionGroupWrapper struct {
	SubscriptionGroupTable map[string]SubscriptionGroupConfig `json:"subscriptionGroupTable"`
	DataVersion            DataVersion                        `json:"dataVersion"`
}

// TopicOffset is one queue of GET_TOPIC_STATS_INFO (202).
type TopicOffset struct {
	MinOffset           int64 `json:"minOffset"`
	MaxOffset           int64 `json:"maxOffset"`
	LastUpdateTimestamp int64 `json:"lastUpdateTimestamp"`
}

// TopicQueueOffset is one queue of a TopicStatsTable and its offsets.
type TopicQueueOffset struct {
	MessageQueue
	TopicOffset
}

// TopicStatsSummary is GET_TOPIC_STATS_INFO (202) summed over the queues,
// all that a reader needs unless it reports queues one by one.
type TopicStatsSummary struct {
	Queues       int
	SumMaxOffset int64
	SumMinOffset int64
	// Retained is the sum of max(0, maxOffset - minOffset): the messages
	// the queues still hold.
	Retained int64
	// LastUpdateTimestamp is the latest of the queues' (ms since the epoch).
	LastUpdateTimestamp int64
	TopicPutTps         float64
}

func (s *TopicStatsSummary) add(o TopicOffset) {
	s.Queues++
	s.SumMaxOffset += o.MaxOffset
	s.SumMinOffset += o.MinOffset
	s.Retained += max(0, o.MaxOffset-o.MinOffset)
	s.LastUpdateTimestamp = max(s.LastUpdateTimestamp, o.LastUpdateTimestamp)
}

// Summary sums the table over its queues.
func (t *TopicStatsTable) Summary() TopicStatsSummary {
	s := TopicStatsSummary{TopicPutTps: t.TopicPutTps}
	for _, q := range t.OffsetTable {
		s.add(q.TopicOffset)
	}
	return s
}

// TopicStatsTable is the body of GET_TOPIC_STATS_INFO (202).
type TopicStatsTable struct {
	// OffsetTable holds one row per queue in queue order (see
	// CompareQueues), nil when the table is empty or null. The wire form is
	// a map; a slice costs a fraction of a map's room on tables of a few
	// queues, and every reader walks the table whole.
	OffsetTable []TopicQueueOffset
	// TopicPutTps is only sent by recent 5.x brokers.
	TopicPutTps float64
}

// OffsetWrapper is one queue of a ConsumeStats.
type OffsetWrapper struct {
	BrokerOffset   int64 `json:"brokerOffset"`
	ConsumerOffset int64 `json:"consumerOffset"`
	// PullOffset is 5.x only (0 when absent).
	PullOffset int64 `json:"pullOffset"`
	// LastTimestamp is the store time of the last consumed message (ms), 0 if unknown.
	LastTimestamp int64 `json:"lastTimestamp"`
}

// QueueOffsetWrapper is one queue of a ConsumeStats and its offsets.
type QueueOffsetWrapper struct {
	MessageQueue
	OffsetWrapper
}

// ConsumeStats is the body of GET_CONSUME_STATS (208) and one element of 317.
type ConsumeStats struct {
	ConsumeTps float64
	// OffsetTable holds one row per queue in queue order (see
	// CompareQueues), nil when the table is empty or null, as
	// TopicStatsTable.OffsetTable.
	OffsetTable []QueueOffsetWrapper
}

// GroupConsumeStats is one group's entry of GET_BROKER_CONSUME_STATS (317): one
// ConsumeStats per topic the group has offsets for (empty for groups that
// never consumed).
type GroupConsumeStats struct {
	Group string
	Stats []ConsumeStats
}

// ConsumeStatsList is the body of GET_BROKER_CONSUME_STATS (317).
type ConsumeStatsList struct {
	BrokerAddr        string
	TotalDiff         int64
	TotalInflightDiff int64
	ConsumeStatsList  []GroupConsumeStats
}

// GroupList is the body of QUERY_TOPIC_CONSUME_BY_WHO (300).
type GroupList struct {
	GroupList []string `json:"groupList"`
}

// QueueTimeSpan is one queue of QUERY_CONSUME_TIME_SPAN (303).
type QueueTimeSpan struct {
	MessageQueue     MessageQueue `json:"messageQueue"`
	MinTimeStamp     int64        `json:"minTimeStamp"`
	MaxTimeStamp     int64        `json:"maxTimeStamp"`
	ConsumeTimeStamp int64        `json:"consumeTimeStamp"`
	// DelayTime is now − store time of the message at the consumer offset,
	// computed by the broker (ms); ≈ now when the offset is missing (see
	// PROTOCOL.md §2.4).
	DelayTime int64 `json:"delayTime"`
}

// Connection is one client connection.
type Connection struct {
	ClientID   string `json:"clientId"`
	ClientAddr string `json:"clientAddr"`
	Language   string `json:"language"`
	Version    int    `json:"version"`
}

// SubscriptionData is one subscription of a consumer group.
type SubscriptionData struct {
	Topic          string   `json:"topic"`
	SubString      string   `json:"subString"`
	ExpressionType string   `json:"expressionType"`
	SubVersion     int64    `json:"subVersion"`
	TagsSet        []string `json:"tagsSet"`
}

// ConsumerConnection is the body of GET_CONSUMER_CONNECTION_LIST (203).
type ConsumerConnection struct {
	ConnectionSet     []Connection                `json:"connectionSet"`
	ConsumeType       string                      `json:"consumeType"`
	MessageModel      string                      `json:"messageModel"`
	ConsumeFromWhere  string                      `json:"consumeFromWhere"`
	SubscriptionTable map[string]SubscriptionData `json:"subscriptionTable"`
}

// ConsumerConnectionSummary is the part of GET_CONSUMER_CONNECTION_LIST (203)
// a scrape reads: how many clients are connected and how the group consumes.
type ConsumerConnectionSummary struct {
	Connections  int // len(ConnectionSet)
	ConsumeType  string
	MessageModel string
}

// Summary returns the summary of cc; a nil cc has none.
func (cc *ConsumerConnection) Summary() ConsumerConnectionSummary {
	if cc == nil {
		return ConsumerConnectionSummary{}
	}
	return ConsumerConnectionSummary{Connections: len(cc.ConnectionSet), ConsumeType: cc.ConsumeType, MessageModel: cc.MessageModel}
}

// BrokerStatsItem is one window of VIEW_BROKER_STATS_DATA (315).
type BrokerStatsItem struct {
	Sum   int64   `json:"sum"`
	Tps   float64 `json:"tps"`
	Avgpt float64 `json:"avgpt"`
}

// BrokerStatsData is the body of VIEW_BROKER_STATS_DATA (315).
type BrokerStatsData struct {
	StatsMinute BrokerStatsItem `json:"statsMinute"`
	StatsHour   BrokerStatsItem `json:"statsHour"`
	StatsDay    BrokerStatsItem `json:"statsDay"`
}

// DLedgerMetadata is the body of the DLedger METADATA (50000) answer. Term is
// always -1 on the versions we know (PROTOCOL.md §2.6); LeaderID is empty
// while an election is in progress.
type DLedgerMetadata struct {
	Code     int               `json:"code"`
	Group    string            `json:"group"`
	LeaderID string            `json:"leaderId"`
	Peers    map[string]string `json:"peers"`
	Term     int64             `json:"term"`
}

// HAConnectionInfo is one slave connection on a 5.x master (907).
type HAConnectionInfo struct {
	Addr                    string `json:"addr"`
	SlaveAckOffset          int64  `json:"slaveAckOffset"`
	Diff                    int64  `json:"diff"`
	InSync                  bool   `json:"inSync"`
	TransferredByteInSecond int64  `json:"transferredByteInSecond"`
	TransferFromWhere       int64  `json:"transferFromWhere"`
}

// HAClientRuntimeInfo is a 5.x slave's view of its master (907).
type HAClientRuntimeInfo struct {
	MasterAddr              string `json:"masterAddr"`
	TransferredByteInSecond int64  `json:"transferredByteInSecond"`
	MaxOffset               int64  `json:"maxOffset"`
	LastReadTimestamp       int64  `json:"lastReadTimestamp"`
	LastWriteTimestamp      int64  `json:"lastWriteTimestamp"`
	MasterFlushOffset       int64  `json:"masterFlushOffset"`
}

// HARuntimeInfo is the body of GET_BROKER_HA_STATUS (907, 5.x only).
type HARuntimeInfo struct {
	Master                   bool                 `json:"master"`
	MasterCommitLogMaxOffset int64                `json:"masterCommitLogMaxOffset"`
	InSyncSlaveNums          int                  `json:"inSyncSlaveNums"`
	HAConnectionInfo         []HAConnectionInfo   `json:"haConnectionInfo"`
	HAClientRuntimeInfo      *HAClientRuntimeInfo `json:"haClientRuntimeInfo"`
}

// ControllerMetadata is the extFields answer of CONTROLLER_GET_METADATA_INFO (1005).
type ControllerMetadata struct {
	Group                   string
	ControllerLeaderID      string
	ControllerLeaderAddress string
	IsLeader                bool
	// Peers is "n0:host:port;n1:host:port;" as sent.
	Peers string
}

// SyncStateMember is one in-sync replica (5.0 form).
type SyncStateMember struct {
	Address  string `json:"address"`
	BrokerID int64  `json:"brokerId"`
}

// SyncStateInfo is one broker group's sync state as the controller sees it.
// 5.0 sends inSyncMembers; 5.1+ sends inSyncReplicas/notInSyncReplicas with
// ids; both are mapped here.
type SyncStateInfo struct {
	MasterAddress     string
	MasterBrokerID    int64 // -1 when the version does not say
	MasterEpoch       int64
	SyncStateSetEpoch int64
	InSyncMembers     []SyncStateMember
	NotInSyncMembers  []SyncStateMember
}

// SyncStateData is the body of CONTROLLER_GET_SYNC_STATE_DATA (1006), keyed
// by broker name.
type SyncStateData map[string]SyncStateInfo

// ReplicaInfo is the answer of CONTROLLER_GET_REPLICA_INFO (1004).
type ReplicaInfo struct {
	MasterAddress     string
	MasterBrokerID    int64
	MasterEpoch       int64
	SyncStateSetEpoch int64
	// SyncStateSet holds addresses (5.0) or ids rendered as strings (5.1+).
	SyncStateSet []string
}
