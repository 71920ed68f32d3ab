package rocketmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// Admin performs the typed admin reads of the exporter (PROTOCOL.md §2) over
// an Invoker: it builds each request as the servers expect it, maps a
// non-success answer to a *ResponseError and decodes the body. It keeps no
// state and is safe for concurrent use when its Invoker is.
//
// Admin gives the buffer of each answer back to the Client that read it
// once the answer is decoded, so an Invoker between the two must hand every
// answer to one caller only.
type Admin struct {
	inv Invoker
	// reqs recycles requests with their extFields maps (*pooledRequest): a
	// large cluster's scrape sends tens of thousands, and a fresh Command
	// and map each were ~15 % of the bytes it allocated. An Invoker does
	// not use a request after Invoke returns.
	reqs sync.Pool
}

// pooledRequest is a request and the map its extFields are set in.
type pooledRequest struct {
	cmd Command
	ext map[string]string
}

// extArgs are a request's extFields as name/value pairs, so that a call
// builds no map of its own. Four pairs are the most any request sends.
type extArgs struct {
	n  int
	kv [8]string
}

// ext returns the extFields name1, value1, name2, value2, …; none gives a
// header-less request.
func ext(kv ...string) extArgs {
	var a extArgs
	if len(kv)%2 != 0 || len(kv) > len(a.kv) {
		panic("rocketmq: ext needs at most four name/value pairs")
	}
	a.n = copy(a.kv[:], kv)
	return a
}

// NewAdmin returns an Admin sending its requests through inv.
func NewAdmin(inv Invoker) *Admin { return &Admin{inv: inv} }

// successCode is the code of a successful answer: DLedger ports answer with
// their own SUCCESS (200) as the remoting code, every other port with 0.
func successCode(requestCode int) int {
	if requestCode >= CodeDLedgerMetadata && requestCode < CodeDLedgerMetadata+10000 {
		return DLedgerSuccess
	}
	return ResponseSuccess
}

// call sends one request and returns the answer when its code is success.
// Header-less requests pass extArgs{} and go out without extFields: an
// empty extFields object makes brokers log a decoding failure for every
// field.
func (a *Admin) call(ctx context.Context, addr string, code int, args extArgs, body []byte) (*Command, error) {
	pr, _ := a.reqs.Get().(*pooledRequest)
	if pr == nil {
		pr = &pooledRequest{ext: make(map[string]string, 4)}
	}
	pr.cmd = Command{Code: code, Language: LanguageGo, Version: DefaultVersion, Body: body}
	if args.n > 0 {
		for i := 0; i < args.n; i += 2 {
			pr.ext[args.kv[i]] = args.kv[i+1]
		}
		pr.cmd.ExtFields = pr.ext
	}
	resp, err := a.inv.Invoke(ctx, addr, &pr.cmd)
	clear(pr.ext)
	pr.cmd = Command{}
	a.reqs.Put(pr)
	if err != nil {
		return nil, fmt.Errorf("rocketmq: request %d: %w", code, err)
	}
	if resp == nil {
		return nil, fmt.Errorf("rocketmq: request %d to %s: no answer", code, addr)
	}
	if resp.Code != successCode(code) {
		resp.release()
		return nil, &ResponseError{RequestCode: code, Code: resp.Code, Remark: resp.Remark}
	}
	return resp, nil
}

// decodeAnswer sends one request and decodes the body of its successful
// answer, whose buffer then goes back to the Client: decoders copy what
// they keep.
func decodeAnswer[T any](ctx context.Context, a *Admin, addr string, code int, args extArgs, body []byte, decode func([]byte) (T, error)) (T, error) {
	resp, err := a.call(ctx, addr, code, args, body)
	if err != nil {
		var zero T
		return zero, err
	}
	defer resp.release()
	return decode(resp.Body)
}

// extOffset reads the "offset" extField of GET_MAX_OFFSET, GET_MIN_OFFSET and
// QUERY_CONSUMER_OFFSET answers, which have no body.
func extOffset(code int, resp *Command) (int64, error) {
	s, ok := resp.ExtFields["offset"]
	if !ok {
		return 0, fmt.Errorf("rocketmq: request %d: answer has no offset", code)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("rocketmq: request %d: offset: %w", code, err)
	}
	return n, nil
}

// BrokerClusterInfo asks a NameServer for GET_BROKER_CLUSTER_INFO (106).
func (a *Admin) BrokerClusterInfo(ctx context.Context, namesrv string) (*ClusterInfo, error) {
	return decodeAnswer(ctx, a, namesrv, CodeGetBrokerClusterInfo, extArgs{}, nil, DecodeClusterInfo)
}

// TopicList asks a NameServer for GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206).
func (a *Admin) TopicList(ctx context.Context, namesrv string) (*TopicList, error) {
	return decodeAnswer(ctx, a, namesrv, CodeGetAllTopicListFromNameServer, extArgs{}, nil, DecodeTopicList)
}

// TopicRoute asks a NameServer for GET_ROUTEINFO_BY_TOPIC (105), requesting
// the standard JSON form that 4.9.4+ can send; older NameServers ignore the
// flag and the decoder takes either form.
func (a *Admin) TopicRoute(ctx context.Context, namesrv, topic string) (*TopicRouteData, error) {
	args := ext("topic", topic, "acceptStandardJsonOnly", "true")
	return decodeAnswer(ctx, a, namesrv, CodeGetRouteInfoByTopic, args, nil, DecodeTopicRouteData)
}

// BrokerRuntimeInfo reads GET_BROKER_RUNTIME_INFO (28). In the first seconds
// after start brokers answer SYSTEM_ERROR with a NoSuchElementException
// remark (no TPS samples yet); that is returned as a *ResponseError.
func (a *Admin) BrokerRuntimeInfo(ctx context.Context, addr string) (RuntimeInfo, error) {
	return decodeAnswer(ctx, a, addr, CodeGetBrokerRuntimeInfo, extArgs{}, nil, DecodeRuntimeInfo)
}

// BrokerConfig reads the live broker configuration, GET_BROKER_CONFIG (26).
func (a *Admin) BrokerConfig(ctx context.Context, addr string) (BrokerConfig, error) {
	return decodeAnswer(ctx, a, addr, CodeGetBrokerConfig, extArgs{}, nil, DecodeBrokerConfig)
}

// AllTopicConfig reads GET_ALL_TOPIC_CONFIG (21). None of the optional paging
// fields is sent, so every broker version returns the whole table.
func (a *Admin) AllTopicConfig(ctx context.Context, addr string) (*TopicConfigWrapper, error) {
	return decodeAnswer(ctx, a, addr, CodeGetAllTopicConfig, extArgs{}, nil, DecodeTopicConfigWrapper)
}

// TopicNames reads GET_ALL_TOPIC_CONFIG (21) like AllTopicConfig, keeping
// only the names of the topics, sorted.
func (a *Admin) TopicNames(ctx context.Context, addr string) ([]string, error) {
	return decodeAnswer(ctx, a, addr, CodeGetAllTopicConfig, extArgs{}, nil, DecodeTopicNames)
}

// AllSubscriptionGroupConfig reads GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).
func (a *Admin) AllSubscriptionGroupConfig(ctx context.Context, addr string) (*SubscriptionGroupWrapper, error) {
	return decodeAnswer(ctx, a, addr, CodeGetAllSubscriptionGroupConfig, extArgs{}, nil, DecodeSubscriptionGroupWrapper)
}

// TopicStats reads GET_TOPIC_STATS_INFO (202); a topic the broker does not
// hold gives a *ResponseError with code ResponseTopicNotExist.
func (a *Admin) TopicStats(ctx context.Context, addr, topic string) (*TopicStatsTable, error) {
	return decodeAnswer(ctx, a, addr, CodeGetTopicStatsInfo, ext("topic", topic), nil, DecodeTopicStatsTable)
}

// TopicStatsSummary reads GET_TOPIC_STATS_INFO (202) like TopicStats,
// keeping only the sums over the queues.
func (a *Admin) TopicStatsSummary(ctx context.Context, addr, topic string) (TopicStatsSummary, error) {
	return decodeAnswer(ctx, a, addr, CodeGetTopicStatsInfo, ext("topic", topic), nil, DecodeTopicStatsSummary)
}

// ConsumeStats reads GET_CONSUME_STATS (208) for one group; an empty topic
// asks for every topic the group has offsets for.
func (a *Admin) ConsumeStats(ctx context.Context, addr, group, topic string) (*ConsumeStats, error) {
	args := ext("consumerGroup", group)
	if topic != "" {
		args = ext("consumerGroup", group, "topic", topic)
	}
	return decodeAnswer(ctx, a, addr, CodeGetConsumeStats, args, nil, DecodeConsumeStats)
}

// BrokerConsumeStats reads GET_BROKER_CONSUME_STATS (317), the offsets of
// every group on the broker in one round trip. isOrder=false asks for all
// topics, not only ordered ones.
func (a *Admin) BrokerConsumeStats(ctx context.Context, addr string) (*ConsumeStatsList, error) {
	return decodeAnswer(ctx, a, addr, CodeGetBrokerConsumeStats, ext("isOrder", "false"), nil, DecodeConsumeStatsList)
}

// TopicConsumeByWho reads QUERY_TOPIC_CONSUME_BY_WHO (300): online groups and
// groups with offsets for the topic on this broker.
func (a *Admin) TopicConsumeByWho(ctx context.Context, addr, topic string) (*GroupList, error) {
	return decodeAnswer(ctx, a, addr, CodeQueryTopicConsumeByWho, ext("topic", topic), nil, DecodeGroupList)
}

// ConsumeTimeSpan reads QUERY_CONSUME_TIME_SPAN (303) for one topic and group.
func (a *Admin) ConsumeTimeSpan(ctx context.Context, addr, topic, group string) ([]QueueTimeSpan, error) {
	return decodeAnswer(ctx, a, addr, CodeQueryConsumeTimeSpan, ext("topic", topic, "group", group), nil, DecodeConsumeTimeSpan)
}

// ConsumerConnectionList reads GET_CONSUMER_CONNECTION_LIST (203); a group
// with no online consumer gives a *ResponseError with code
// ResponseConsumerNotOnline.
func (a *Admin) ConsumerConnectionList(ctx context.Context, addr, group string) (*ConsumerConnection, error) {
	return decodeAnswer(ctx, a, addr, CodeGetConsumerConnectionList, ext("consumerGroup", group), nil, DecodeConsumerConnection)
}

// ConsumerConnectionSummary reads GET_CONSUMER_CONNECTION_LIST (203) like
// ConsumerConnectionList, keeping only its summary: the clients' details and
// the subscription table are checked but not kept.
func (a *Admin) ConsumerConnectionSummary(ctx context.Context, addr, group string) (ConsumerConnectionSummary, error) {
	return decodeAnswer(ctx, a, addr, CodeGetConsumerConnectionList, ext("consumerGroup", group), nil, DecodeConsumerConnectionSummary)
}

// BrokerHAStatus reads GET_BROKER_HA_STATUS (907). 4.9 brokers do not know
// the request: check IsNotSupported.
func (a *Admin) BrokerHAStatus(ctx context.Context, addr string) (*HARuntimeInfo, error) {
	return decodeAnswer(ctx, a, addr, CodeGetBrokerHAStatus, extArgs{}, nil, DecodeHARuntimeInfo)
}

// BrokerStatsData reads VIEW_BROKER_STATS_DATA (315). A stats item that has
// seen no traffic yet gives SYSTEM_ERROR "The stats <name> <key> not exist".
func (a *Admin) BrokerStatsData(ctx context.Context, addr, statsName, statsKey string) (*BrokerStatsData, error) {
	args := ext("statsName", statsName, "statsKey", statsKey)
	return decodeAnswer(ctx, a, addr, CodeViewBrokerStatsData, args, nil, DecodeBrokerStatsData)
}

// MaxOffset reads GET_MAX_OFFSET (30) of one queue.
func (a *Admin) MaxOffset(ctx context.Context, addr, topic string, queueID int) (int64, error) {
	args := ext("topic", topic, "queueId", strconv.Itoa(queueID))
	resp, err := a.call(ctx, addr, CodeGetMaxOffset, args, nil)
	if err != nil {
		return 0, err
	}
	defer resp.release()
	return extOffset(CodeGetMaxOffset, resp)
}

// MinOffset reads GET_MIN_OFFSET (31) of one queue.
func (a *Admin) MinOffset(ctx context.Context, addr, topic string, queueID int) (int64, error) {
	args := ext("topic", topic, "queueId", strconv.Itoa(queueID))
	resp, err := a.call(ctx, addr, CodeGetMinOffset, args, nil)
	if err != nil {
		return 0, err
	}
	defer resp.release()
	return extOffset(CodeGetMinOffset, resp)
}

// ConsumerOffset reads QUERY_CONSUMER_OFFSET (14): the committed offset of a
// group on one queue. No stored offset gives a *ResponseError with code
// ResponseQueryNotFound.
func (a *Admin) ConsumerOffset(ctx context.Context, addr, group, topic string, queueID int) (int64, error) {
	args := ext("consumerGroup", group, "topic", topic, "queueId", strconv.Itoa(queueID))
	resp, err := a.call(ctx, addr, CodeQueryConsumerOffset, args, nil)
	if err != nil {
		return 0, err
	}
	defer resp.release()
	return extOffset(CodeQueryConsumerOffset, resp)
}

// dledgerCodeNames names DLedgerResponseCode values for error remarks.
var dledgerCodeNames = map[int]string{
	300: "TIMEOUT", 301: "METADATA_ERROR", 302: "NETWORK_ERROR", 303: "UNSUPPORTED",
	400: "UNKNOWN_GROUP", 401: "UNKNOWN_MEMBER", 402: "UNEXPECTED_MEMBER", 403: "EXPIRED_TERM",
	404: "NOT_LEADER", 405: "NOT_FOLLOWER", 500: "INTERNAL_ERROR", 501: "TERM_CHANGED",
	505: "LEADER_NOT_READY", 506: "LEADER_TRANSFERRING",
}

func dledgerError(requestCode, code int) *ResponseError {
	name := dledgerCodeNames[code]
	if name == "" {
		name = "unknown"
	}
	return &ResponseError{RequestCode: requestCode, Code: code, Remark: "DLedger answer code " + strconv.Itoa(code) + " (" + name + ")"}
}

// DLedgerMetadata asks a DLedger port for METADATA (50000). group is the
// dLegerGroup and selfID the dLegerSelfId of the node at addr; empty values
// are left out of the request, which still reveals the leader id.
//
// The node answers with remoting code 200 even when group or selfID is
// wrong; it then sets its own code (400 unknown group, 401 unknown member).
// Such an answer is returned together with a *ResponseError carrying that
// code, because its LeaderID is still valid while its Peers are missing.
func (a *Admin) DLedgerMetadata(ctx context.Context, addr, group, selfID string) (*DLedgerMetadata, error) {
	body, err := json.Marshal(struct {
		Group    string `json:"group,omitempty"`
		RemoteID string `json:"remoteId,omitempty"`
	}{group, selfID})
	if err != nil {
		return nil, err
	}
	resp, err := a.call(ctx, addr, CodeDLedgerMetadata, extArgs{}, body)
	if err != nil {
		return nil, err
	}
	md, err := DecodeDLedgerMetadata(resp.Body)
	resp.release()
	if err != nil {
		return nil, err
	}
	if md.Code != DLedgerSuccess {
		return md, dledgerError(CodeDLedgerMetadata, md.Code)
	}
	return md, nil
}

// DLedgerTerm learns the current Raft term of the node at addr with the
// stale-term HEART_BEAT probe (PROTOCOL.md §2.6): a heartbeat claiming term
// -1 from otherPeerID, which the node refuses with EXPIRED_TERM (403) and its
// current term, without changing state. otherPeerID must be another member
// of the group: naming the node itself or an unknown peer makes it log a
// warning on every probe. Any answer other than 403 is a *ResponseError.
func (a *Admin) DLedgerTerm(ctx context.Context, addr, group, selfID, otherPeerID string) (int64, error) {
	if group == "" || selfID == "" || otherPeerID == "" || otherPeerID == selfID {
		return 0, errors.New("rocketmq: DLedger term probe needs the group, the node's id and another peer's id")
	}
	body, err := json.Marshal(struct {
		Group    string `json:"group"`
		RemoteID string `json:"remoteId"`
		LeaderID string `json:"leaderId"`
		Term     int64  `json:"term"`
	}{group, selfID, otherPeerID, -1})
	if err != nil {
		return 0, err
	}
	resp, err := a.call(ctx, addr, CodeDLedgerHeartBeat, extArgs{}, body)
	if err != nil {
		return 0, err
	}
	ans, err := decodeDLedgerTerm(resp.Body)
	resp.release()
	if err != nil {
		return 0, err
	}
	if ans.Code != DLedgerExpiredTerm {
		return 0, dledgerError(CodeDLedgerHeartBeat, ans.Code)
	}
	return ans.Term, nil
}

// ControllerMetadata asks a 5.x controller for CONTROLLER_GET_METADATA_INFO
// (1005); any controller node answers, naming the leader.
func (a *Admin) ControllerMetadata(ctx context.Context, addr string) (*ControllerMetadata, error) {
	resp, err := a.call(ctx, addr, CodeControllerGetMetadataInfo, extArgs{}, nil)
	if err != nil {
		return nil, err
	}
	defer resp.release()
	return DecodeControllerMetadata(resp.ExtFields)
}

// ControllerSyncStateData asks the controller leader for
// CONTROLLER_GET_SYNC_STATE_DATA (1006) of the named broker groups. Other
// controller nodes answer ControllerNotLeader.
func (a *Admin) ControllerSyncStateData(ctx context.Context, addr string, brokerNames []string) (SyncStateData, error) {
	if brokerNames == nil {
		brokerNames = []string{}
	}
	body, err := json.Marshal(brokerNames)
	if err != nil {
		return nil, err
	}
	return decodeAnswer(ctx, a, addr, CodeControllerGetSyncStateData, extArgs{}, body, DecodeSyncStateData)
}

// ControllerReplicaInfo asks the controller leader for
// CONTROLLER_GET_REPLICA_INFO (1004) of one broker group.
func (a *Admin) ControllerReplicaInfo(ctx context.Context, addr, brokerName string) (*ReplicaInfo, error) {
	resp, err := a.call(ctx, addr, CodeControllerGetReplicaInfo, ext("brokerName", brokerName), nil)
	if err != nil {
		return nil, err
	}
	defer resp.release()
	return DecodeReplicaInfo(resp.ExtFields, resp.Body)
}
