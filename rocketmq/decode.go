package rocketmq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decoders of response bodies, one per request (PROTOCOL.md §2). Each one
// accepts fastjson output (non-string keys) as well as standard JSON, ignores
// fields it does not know and never panics on malformed input.

var errEmptyBody = errors.New("empty body")

// decodeJSON runs the relaxed decoder and names the body in errors.
func decodeJSON(what string, body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("rocketmq: decode %s: %w", what, errEmptyBody)
	}
	if err := Unmarshal(body, v); err != nil {
		return fmt.Errorf("rocketmq: decode %s: %w", what, err)
	}
	return nil
}

// DecodeClusterInfo decodes GET_BROKER_CLUSTER_INFO (106). The NameServer
// keys brokerAddrs by bare integers in every version.
func DecodeClusterInfo(body []byte) (*ClusterInfo, error) {
	return decodeInto[ClusterInfo]("cluster info", body)
}

// DecodeTopicList decodes GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206) and
// GET_TOPICS_BY_CLUSTER (224).
func DecodeTopicList(body []byte) (*TopicList, error) {
	return decodeInto[TopicList]("topic list", body)
}

// DecodeTopicRouteData decodes GET_ROUTEINFO_BY_TOPIC (105) in both the
// fastjson form and the standard form (acceptStandardJsonOnly).
func DecodeTopicRouteData(body []byte) (*TopicRouteData, error) {
	return decodeInto[TopicRouteData]("topic route", body)
}

// DecodeRuntimeInfo decodes the KVTable of GET_BROKER_RUNTIME_INFO (28).
// Values stay strings: several are composite and their parsing belongs to
// whoever knows what each key means.
func DecodeRuntimeInfo(body []byte) (RuntimeInfo, error) {
	var kv struct {
		Table map[string]string `json:"table"`
	}
	if err := decodeJSON("runtime info", body, &kv); err != nil {
		return nil, err
	}
	if kv.Table == nil {
		return nil, errors.New("rocketmq: decode runtime info: no table")
	}
	return RuntimeInfo(kv.Table), nil
}

// DecodeBrokerConfig decodes GET_BROKER_CONFIG (26), which is not JSON but
// Java properties text: one key=value per line, split at the first '=' (values
// such as namesrvAddr lists may contain more). Blank lines and lines without
// '=' carry no setting and are skipped.
func DecodeBrokerConfig(body []byte) (BrokerConfig, error) {
	cfg := BrokerConfig{}
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		k, v, ok := bytes.Cut(line, []byte{'='})
		if !ok {
			continue
		}
		if k = bytes.TrimSpace(k); len(k) == 0 {
			continue
		}
		// Unlike JSON bodies, which encoding/json repairs, this text reaches
		// label values (brokerName, brokerClusterName, brokerIP1) as sent, and
		// a label value that is not UTF-8 makes MustNewConstMetric panic.
		cfg[validUTF8(k)] = validUTF8(v)
	}
	if len(cfg) == 0 {
		return nil, errors.New("rocketmq: decode broker config: no key=value line")
	}
	return cfg, nil
}

// validUTF8 is b as a string with every invalid sequence replaced by U+FFFD,
// as encoding/json does.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}

// DecodeTopicConfigWrapper decodes GET_ALL_TOPIC_CONFIG (21), 4.9 and 5.x
// (whose static-topic mapping tables have integer keys).
func DecodeTopicConfigWrapper(body []byte) (*TopicConfigWrapper, error) {
	if w, err := fastTopicConfigWrapper(body); err == nil {
		return w, nil
	}
	return genericTopicConfigWrapper(body)
}

// DecodeTopicNames decodes GET_ALL_TOPIC_CONFIG (21) into the sorted names
// of its topicConfigTable: the keys DecodeTopicConfigWrapper's map would
// have, without the map and its configs.
func DecodeTopicNames(body []byte) ([]string, error) {
	return summarise(body, fastTopicNames, genericTopicConfigWrapper, (*TopicConfigWrapper).Names)
}

// summarise decodes the part of body that a summary keeps: on fast's path,
// or else with full and then sum, so that a body fast hands over gets what
// (and fails how) the full decode does.
func summarise[S, T any](body []byte, fast func([]byte) (S, error), full func([]byte) (T, error), sum func(T) S) (S, error) {
	if s, err := fast(body); err == nil {
		return s, nil
	}
	t, err := full(body)
	if err != nil {
		var zero S
		return zero, err
	}
	return sum(t), nil
}

// genericTopicConfigWrapper is the encoding/json path of DecodeTopicConfigWrapper.
func genericTopicConfigWrapper(body []byte) (*TopicConfigWrapper, error) {
	return decodeInto[TopicConfigWrapper]("topic config", body)
}

// DecodeSubscriptionGroupWrapper decodes GET_ALL_SUBSCRIPTIONGROUP_CONFIG
// (201) in its 4.9 (SubscriptionGroupManager) and 5.x (wrapper with
// forbiddenTable) shapes.
func DecodeSubscriptionGroupWrapper(body []byte) (*SubscriptionGroupWrapper, error) {
	return decodeInto[SubscriptionGroupWrapper]("subscription group config", body)
}

// parseQueueKey decodes a MessageQueue map key: the raw JSON text of the
// object fastjson wrote as key, in whatever field order the producer used.
func parseQueueKey(key string) (MessageQueue, error) {
	var mq MessageQueue
	if t := bytes.TrimSpace([]byte(key)); len(t) == 0 || t[0] != '{' {
		return mq, fmt.Errorf("message queue key %q is not an object", key)
	}
	// Keys are plain JSON objects in practice; the relaxed path is only
	// needed should one ever hold a non-string key itself.
	if json.Unmarshal([]byte(key), &mq) == nil {
		return mq, nil
	}
	mq = MessageQueue{}
	if err := Unmarshal([]byte(key), &mq); err != nil {
		return mq, fmt.Errorf("message queue key %q: %w", key, err)
	}
	return mq, nil
}

// queueRows turns a table decoded by encoding/json, keyed by the raw text
// of MessageQueue objects, into rows in queue order (CompareQueues); an
// empty table gives nil. encoding/json already kept the last value of a key
// text repeated in the body. Two different texts can still name one queue
// (other field order or spacing, which no broker writes): the text greatest
// in byte order wins, so that neither the rows nor, with several bad keys,
// the error depend on the map's order.
func queueRows[V, R any](raw map[string]V, row func(MessageQueue, V) R) ([]R, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	type keyed struct {
		mq  MessageQueue
		key string
	}
	keys := make([]keyed, 0, len(raw))
	for k := range raw {
		keys = append(keys, keyed{key: k})
	}
	slices.SortFunc(keys, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	for i := range keys {
		mq, err := parseQueueKey(keys[i].key)
		if err != nil {
			return nil, err
		}
		keys[i].mq = mq
	}
	// Stable: of the texts of one queue, the greatest ends its run.
	slices.SortStableFunc(keys, func(a, b keyed) int { return CompareQueues(&a.mq, &b.mq) })
	out := make([]R, 0, len(keys))
	for i, k := range keys {
		if i+1 < len(keys) && keys[i+1].mq == k.mq {
			continue
		}
		out = append(out, row(k.mq, raw[k.key]))
	}
	return slices.Clip(out), nil
}

func topicQueueOffset(mq MessageQueue, v TopicOffset) TopicQueueOffset {
	return TopicQueueOffset{mq, v}
}

func queueOffsetWrapper(mq MessageQueue, v OffsetWrapper) QueueOffsetWrapper {
	return QueueOffsetWrapper{mq, v}
}

// DecodeTopicStatsTable decodes GET_TOPIC_STATS_INFO (202).
func DecodeTopicStatsTable(body []byte) (*TopicStatsTable, error) {
	if t, err := fastTopicStats(body); err == nil {
		return t, nil
	}
	return genericTopicStats(body)
}

// DecodeTopicStatsSummary decodes GET_TOPIC_STATS_INFO (202) into its sums
// over the queues: DecodeTopicStatsTable(body).Summary() without the table.
func DecodeTopicStatsSummary(body []byte) (TopicStatsSummary, error) {
	return summarise(body, fastTopicStatsSummary, genericTopicStats, (*TopicStatsTable).Summary)
}

// genericTopicStats is the encoding/json path of DecodeTopicStatsTable.
func genericTopicStats(body []byte) (*TopicStatsTable, error) {
	var w struct {
		OffsetTable map[string]TopicOffset `json:"offsetTable"`
		TopicPutTps float64                `json:"topicPutTps"`
	}
	if err := decodeJSON("topic stats", body, &w); err != nil {
		return nil, err
	}
	table, err := queueRows(w.OffsetTable, topicQueueOffset)
	if err != nil {
		return nil, fmt.Errorf("rocketmq: decode topic stats: %w", err)
	}
	return &TopicStatsTable{OffsetTable: table, TopicPutTps: w.TopicPutTps}, nil
}

// wireConsumeStats is ConsumeStats as sent, before its keys are parsed.
type wireConsumeStats struct {
	ConsumeTps  float64                  `json:"consumeTps"`
	OffsetTable map[string]OffsetWrapper `json:"offsetTable"`
}

func (w *wireConsumeStats) convert() (ConsumeStats, error) {
	table, err := queueRows(w.OffsetTable, queueOffsetWrapper)
	if err != nil {
		return ConsumeStats{}, err
	}
	return ConsumeStats{ConsumeTps: w.ConsumeTps, OffsetTable: table}, nil
}

// DecodeConsumeStats decodes GET_CONSUME_STATS (208).
func DecodeConsumeStats(body []byte) (*ConsumeStats, error) {
	if cs, err := fastConsumeStats(body); err == nil {
		return cs, nil
	}
	return genericConsumeStats(body)
}

// genericConsumeStats is the encoding/json path of DecodeConsumeStats.
func genericConsumeStats(body []byte) (*ConsumeStats, error) {
	var w wireConsumeStats
	if err := decodeJSON("consume stats", body, &w); err != nil {
		return nil, err
	}
	cs, err := w.convert()
	if err != nil {
		return nil, fmt.Errorf("rocketmq: decode consume stats: %w", err)
	}
	return &cs, nil
}

// DecodeConsumeStatsList decodes GET_BROKER_CONSUME_STATS (317). The list
// holds one single-entry map {group: [ConsumeStats per topic]} per
// subscription group; groups without offsets (empty lists) are kept, in the
// broker's order.
func DecodeConsumeStatsList(body []byte) (*ConsumeStatsList, error) {
	if l, err := fastConsumeStatsList(body); err == nil {
		return l, nil
	}
	return genericConsumeStatsList(body)
}

// genericConsumeStatsList is the encoding/json path of DecodeConsumeStatsList.
func genericConsumeStatsList(body []byte) (*ConsumeStatsList, error) {
	var w struct {
		BrokerAddr        string                          `json:"brokerAddr"`
		TotalDiff         int64                           `json:"totalDiff"`
		TotalInflightDiff int64                           `json:"totalInflightDiff"`
		ConsumeStatsList  []map[string][]wireConsumeStats `json:"consumeStatsList"`
	}
	if err := decodeJSON("broker consume stats", body, &w); err != nil {
		return nil, err
	}
	out := &ConsumeStatsList{
		BrokerAddr:        w.BrokerAddr,
		TotalDiff:         w.TotalDiff,
		TotalInflightDiff: w.TotalInflightDiff,
		ConsumeStatsList:  make([]GroupConsumeStats, 0, len(w.ConsumeStatsList)),
	}
	for _, entry := range w.ConsumeStatsList {
		// Java sends one group per entry; should an entry hold more, take
		// them in name order so the result does not depend on map order.
		groups := make([]string, 0, len(entry))
		for g := range entry {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		for _, g := range groups {
			gcs := GroupConsumeStats{Group: g, Stats: make([]ConsumeStats, 0, len(entry[g]))}
			for i := range entry[g] {
				cs, err := entry[g][i].convert()
				if err != nil {
					return nil, fmt.Errorf("rocketmq: decode broker consume stats: group %s: %w", g, err)
				}
				gcs.Stats = append(gcs.Stats, cs)
			}
			out.ConsumeStatsList = append(out.ConsumeStatsList, gcs)
		}
	}
	return out, nil
}

// DecodeGroupList decodes QUERY_TOPIC_CONSUME_BY_WHO (300).
func DecodeGroupList(body []byte) (*GroupList, error) {
	return decodeInto[GroupList]("group list", body)
}

// DecodeConsumeTimeSpan decodes QUERY_CONSUME_TIME_SPAN (303). The derived
// *Str fields are formatted in the broker's time zone and are ignored.
func DecodeConsumeTimeSpan(body []byte) ([]QueueTimeSpan, error) {
	if s, err := fastConsumeTimeSpan(body); err == nil {
		return s, nil
	}
	return genericConsumeTimeSpan(body)
}

// genericConsumeTimeSpan is the encoding/json path of DecodeConsumeTimeSpan.
func genericConsumeTimeSpan(body []byte) ([]QueueTimeSpan, error) {
	var w struct {
		ConsumeTimeSpanSet []QueueTimeSpan `json:"consumeTimeSpanSet"`
	}
	if err := decodeJSON("consume time span", body, &w); err != nil {
		return nil, err
	}
	if w.ConsumeTimeSpanSet == nil {
		return []QueueTimeSpan{}, nil
	}
	return w.ConsumeTimeSpanSet, nil
}

// DecodeConsumerConnection decodes GET_CONSUMER_CONNECTION_LIST (203).
func DecodeConsumerConnection(body []byte) (*ConsumerConnection, error) {
	if cc, err := fastConsumerConnection(body); err == nil {
		return cc, nil
	}
	return genericConsumerConnection(body)
}

// genericConsumerConnection is the encoding/json path of DecodeConsumerConnection.
func genericConsumerConnection(body []byte) (*ConsumerConnection, error) {
	return decodeInto[ConsumerConnection]("consumer connection", body)
}

// DecodeConsumerConnectionSummary decodes the summary of
// GET_CONSUMER_CONNECTION_LIST (203): the summary of what
// DecodeConsumerConnection decodes, errors included, without allocating the
// parts a summary leaves out.
func DecodeConsumerConnectionSummary(body []byte) (ConsumerConnectionSummary, error) {
	return summarise(body, fastConnectionSummary, DecodeConsumerConnection, (*ConsumerConnection).Summary)
}

// DecodeBrokerStatsData decodes VIEW_BROKER_STATS_DATA (315).
func DecodeBrokerStatsData(body []byte) (*BrokerStatsData, error) {
	return decodeInto[BrokerStatsData]("broker stats", body)
}

// DecodeDLedgerMetadata decodes a DLedger METADATA (50000) answer. The body's
// own code is kept as sent: 400/401 answers (wrong group or remoteId) still
// name the leader.
func DecodeDLedgerMetadata(body []byte) (*DLedgerMetadata, error) {
	// RequestOrResponse defaults: code 200 and term -1 when not sent.
	md := DLedgerMetadata{Code: DLedgerSuccess, Term: -1}
	if err := decodeJSON("DLedger metadata", body, &md); err != nil {
		return nil, err
	}
	return &md, nil
}

// dledgerTermAnswer is the part of a DLedger HEART_BEAT answer the term
// probe reads.
type dledgerTermAnswer struct {
	Code int   `json:"code"`
	Term int64 `json:"term"`
}

// decodeDLedgerTerm decodes the answer to the stale-term HEART_BEAT probe
// (PROTOCOL.md §2.6), e.g. {"code":403,"term":3}.
func decodeDLedgerTerm(body []byte) (*dledgerTermAnswer, error) {
	a := dledgerTermAnswer{Code: DLedgerSuccess, Term: -1}
	if err := decodeJSON("DLedger heartbeat answer", body, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// DecodeHARuntimeInfo decodes GET_BROKER_HA_STATUS (907, 5.x).
func DecodeHARuntimeInfo(body []byte) (*HARuntimeInfo, error) {
	return decodeInto[HARuntimeInfo]("HA runtime info", body)
}

// wireReplica is one replica of the 5.1+ BrokerReplicasInfo.
type wireReplica struct {
	BrokerAddress string `json:"brokerAddress"`
	BrokerID      int64  `json:"brokerId"`
}

func (r wireReplica) member() SyncStateMember {
	return SyncStateMember{Address: r.BrokerAddress, BrokerID: r.BrokerID}
}

// DecodeSyncStateData decodes CONTROLLER_GET_SYNC_STATE_DATA (1006): the 5.0
// inSyncStateTable (members with addresses) and the 5.1+ replicasInfoTable
// (replicas with ids, master id, out-of-sync replicas).
func DecodeSyncStateData(body []byte) (SyncStateData, error) {
	var w struct {
		InSyncStateTable map[string]struct {
			InSyncMembers     []SyncStateMember `json:"inSyncMembers"`
			MasterAddress     string            `json:"masterAddress"`
			MasterEpoch       int64             `json:"masterEpoch"`
			SyncStateSetEpoch int64             `json:"syncStateSetEpoch"`
		} `json:"inSyncStateTable"`
		ReplicasInfoTable map[string]struct {
			MasterAddress     string        `json:"masterAddress"`
			MasterBrokerID    *int64        `json:"masterBrokerId"`
			MasterEpoch       int64         `json:"masterEpoch"`
			SyncStateSetEpoch int64         `json:"syncStateSetEpoch"`
			InSyncReplicas    []wireReplica `json:"inSyncReplicas"`
			NotInSyncReplicas []wireReplica `json:"notInSyncReplicas"`
		} `json:"replicasInfoTable"`
	}
	if err := decodeJSON("sync state data", body, &w); err != nil {
		return nil, err
	}
	if w.InSyncStateTable == nil && w.ReplicasInfoTable == nil {
		return nil, errors.New("rocketmq: decode sync state data: neither inSyncStateTable nor replicasInfoTable")
	}
	out := make(SyncStateData, len(w.InSyncStateTable)+len(w.ReplicasInfoTable))
	for name, s := range w.InSyncStateTable {
		out[name] = SyncStateInfo{
			MasterAddress:     s.MasterAddress,
			MasterBrokerID:    -1,
			MasterEpoch:       s.MasterEpoch,
			SyncStateSetEpoch: s.SyncStateSetEpoch,
			InSyncMembers:     s.InSyncMembers,
		}
	}
	for name, r := range w.ReplicasInfoTable {
		info := SyncStateInfo{
			MasterAddress:     r.MasterAddress,
			MasterBrokerID:    -1,
			MasterEpoch:       r.MasterEpoch,
			SyncStateSetEpoch: r.SyncStateSetEpoch,
		}
		if r.MasterBrokerID != nil {
			info.MasterBrokerID = *r.MasterBrokerID
		}
		for _, m := range r.InSyncReplicas {
			info.InSyncMembers = append(info.InSyncMembers, m.member())
		}
		for _, m := range r.NotInSyncReplicas {
			info.NotInSyncMembers = append(info.NotInSyncMembers, m.member())
		}
		out[name] = info
	}
	return out, nil
}

// extInt64 parses an integer extField; absent gives def.
func extInt64(ext map[string]string, key string, def int64) (int64, error) {
	s, ok := ext[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("extField %s: %w", key, err)
	}
	return n, nil
}

// DecodeReplicaInfo decodes CONTROLLER_GET_REPLICA_INFO (1004): the master is
// described in the response extFields (masterAddress, masterEpoch, and from
// 5.1 masterBrokerId; the 5.0 "brokerId" field is the caller's own id, not
// the master's, and is ignored), the sync-state set in the body, as
// addresses (5.0) or ids (5.1+).
func DecodeReplicaInfo(ext map[string]string, body []byte) (*ReplicaInfo, error) {
	if ext == nil {
		return nil, errors.New("rocketmq: decode replica info: no extFields")
	}
	ri := &ReplicaInfo{MasterAddress: ext["masterAddress"]}
	var err error
	if ri.MasterBrokerID, err = extInt64(ext, "masterBrokerId", -1); err != nil {
		return nil, fmt.Errorf("rocketmq: decode replica info: %w", err)
	}
	if ri.MasterEpoch, err = extInt64(ext, "masterEpoch", 0); err != nil {
		return nil, fmt.Errorf("rocketmq: decode replica info: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return ri, nil
	}
	var w struct {
		SyncStateSet      []json.RawMessage `json:"syncStateSet"`
		SyncStateSetEpoch int64             `json:"syncStateSetEpoch"`
	}
	if err := decodeJSON("replica info", body, &w); err != nil {
		return nil, err
	}
	ri.SyncStateSetEpoch = w.SyncStateSetEpoch
	for _, raw := range w.SyncStateSet {
		if string(raw) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			ri.SyncStateSet = append(ri.SyncStateSet, s)
			continue
		}
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("rocketmq: decode replica info: sync state set member %s is neither address nor id", raw)
		}
		ri.SyncStateSet = append(ri.SyncStateSet, n.String())
	}
	return ri, nil
}

// DecodeControllerMetadata decodes CONTROLLER_GET_METADATA_INFO (1005), whose
// whole answer is in the response extFields.
func DecodeControllerMetadata(ext map[string]string) (*ControllerMetadata, error) {
	if ext == nil {
		return nil, errors.New("rocketmq: decode controller metadata: no extFields")
	}
	md := &ControllerMetadata{
		Group:                   ext["group"],
		ControllerLeaderID:      ext["controllerLeaderId"],
		ControllerLeaderAddress: ext["controllerLeaderAddress"],
		Peers:                   ext["peers"],
	}
	if s, ok := ext["isLeader"]; ok {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("rocketmq: decode controller metadata: isLeader: %w", err)
		}
		md.IsLeader = b
	}
	return md, nil
}

// Fast paths of the hot decoders (see jreader in relaxed.go). Each returns
// errFallback, or any error, to have the generic decoder run instead; they
// never report an error themselves.

// object walks the members of an object with plain string keys, calling
// member with the reader positioned on each value. null is an object with
// no members.
func (r *jreader) object(member func(key []byte) error) error {
	if r.null() {
		return nil
	}
	if err := r.enter('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		ok, err := r.more('}', first)
		if err != nil || !ok {
			return err
		}
		k, err := r.key()
		if err != nil {
			return err
		}
		if err := member(k); err != nil {
			return err
		}
	}
}

// array walks the elements of an array; null is no array at all (isNull).
func (r *jreader) array(elem func() error) (isNull bool, err error) {
	if r.null() {
		return true, nil
	}
	if err := r.enter('['); err != nil {
		return false, err
	}
	for first := true; ; first = false {
		ok, err := r.more(']', first)
		if err != nil || !ok {
			return false, err
		}
		if err := elem(); err != nil {
			return false, err
		}
	}
}

// once makes a repeated key give up: encoding/json decodes the second value
// into what the first left (reusing a slice's elements, merging into a map,
// or clearing either on null), which the fast paths do not imitate.
func once(seen *bool) error {
	if *seen {
		return errFallback
	}
	*seen = true
	return nil
}

// messageQueue reads a MessageQueue key. Topic and broker name reuse the
// strings of the previous key when their bytes repeat.
func (r *jreader) messageQueue(mq *MessageQueue) error {
	if r.peek() != '{' {
		return errFallback // null or not an object: let the generic path judge
	}
	return r.object(func(k []byte) error {
		switch string(k) {
		case "topic":
			return r.strReuse(&mq.Topic, &r.topic)
		case "brokerName":
			return r.strReuse(&mq.BrokerName, &r.broker)
		case "queueId":
			return r.goInt(&mq.QueueID)
		}
		return r.unknown(k, "topic", "brokerName", "queueId")
	})
}

// queueEntry is one member of a queue table, held until the table is read
// to its end.
type queueEntry[V any] struct {
	mq MessageQueue
	v  V
}

// queueTable reads a map keyed by MessageQueue objects into rows in queue
// order (CompareQueues); null and an empty object give nil, as the generic
// path does. The entries gather in scratch first so that the rows are made
// once at their final size, rather than outgrowing a guess; the grown scratch
// is returned for the next table.
func queueTable[V, R any](r *jreader, scratch []queueEntry[V], value func() (V, error), row func(MessageQueue, V) R) ([]R, []queueEntry[V], error) {
	entries, err := queueEntries(r, scratch, value)
	if err != nil || len(entries) == 0 {
		return nil, entries, err
	}
	rows := make([]R, len(entries))
	for i, e := range entries {
		rows[i] = row(e.mq, e.v)
	}
	return rows, entries, nil
}

// queueEntries reads a map keyed by MessageQueue objects into scratch, in
// queue order. A queue listed twice gives up: the generic path decides
// which value is kept.
func queueEntries[V any](r *jreader, scratch []queueEntry[V], value func() (V, error)) ([]queueEntry[V], error) {
	scratch = scratch[:0]
	if r.null() {
		return scratch, nil
	}
	if err := r.enter('{'); err != nil {
		return scratch, err
	}
	for first := true; ; first = false {
		ok, err := r.more('}', first)
		if err != nil {
			return scratch, err
		}
		if !ok {
			break
		}
		var e queueEntry[V]
		if err := r.messageQueue(&e.mq); err != nil {
			return scratch, err
		}
		if err := r.expect(':'); err != nil {
			return scratch, err
		}
		if e.v, err = value(); err != nil {
			return scratch, err
		}
		scratch = append(scratch, e)
	}
	// Brokers send their hash map's order; the sort also brings a
	// repeated queue next to its twin.
	slices.SortFunc(scratch, func(a, b queueEntry[V]) int { return CompareQueues(&a.mq, &b.mq) })
	for i := 1; i < len(scratch); i++ {
		if scratch[i].mq == scratch[i-1].mq {
			return scratch, errFallback
		}
	}
	return scratch, nil
}

// queueScratch is how many queue entries the single-table decoders gather
// on the stack; larger tables move the scratch to the heap.
const queueScratch = 16

func (r *jreader) topicOffset() (TopicOffset, error) {
	var v TopicOffset
	err := r.object(func(k []byte) error {
		switch string(k) {
		case "minOffset":
			return r.int(&v.MinOffset, 64)
		case "maxOffset":
			return r.int(&v.MaxOffset, 64)
		case "lastUpdateTimestamp":
			return r.int(&v.LastUpdateTimestamp, 64)
		}
		return r.unknown(k, "minOffset", "maxOffset", "lastUpdateTimestamp")
	})
	return v, err
}

func fastTopicStats(body []byte) (*TopicStatsTable, error) {
	r := &jreader{b: body}
	if r.peek() != '{' {
		return nil, errFallback
	}
	var (
		buf  [queueScratch]queueEntry[TopicOffset]
		seen bool
	)
	t := &TopicStatsTable{}
	err := r.object(func(k []byte) error {
		switch string(k) {
		case "offsetTable":
			// A second table would merge into the first, or empty it if
			// null, in the generic path.
			if err := once(&seen); err != nil {
				return err
			}
			var err error
			t.OffsetTable, _, err = queueTable(r, buf[:0], r.topicOffset, topicQueueOffset)
			return err
		case "topicPutTps":
			return r.float(&t.TopicPutTps)
		}
		return r.unknown(k, "offsetTable", "topicPutTps")
	})
	if err != nil {
		return nil, err
	}
	return t, r.end()
}

// fastTopicStatsSummary is fastTopicStats without the rows: the queues are
// read into scratch on the stack and summed.
func fastTopicStatsSummary(body []byte) (TopicStatsSummary, error) {
	r := jreader{b: body}
	if r.peek() != '{' {
		return TopicStatsSummary{}, errFallback
	}
	var (
		buf  [queueScratch]queueEntry[TopicOffset]
		sum  TopicStatsSummary
		seen bool
	)
	err := r.object(func(k []byte) error {
		switch string(k) {
		case "offsetTable":
			if err := once(&seen); err != nil {
				return err
			}
			entries, err := queueEntries(&r, buf[:0], r.topicOffset)
			if err != nil {
				return err
			}
			for _, e := range entries {
				sum.add(e.v)
			}
			return nil
		case "topicPutTps":
			return r.float(&sum.TopicPutTps)
		}
		return r.unknown(k, "offsetTable", "topicPutTps")
	})
	if err != nil {
		return TopicStatsSummary{}, err
	}
	return sum, r.end()
}

func (r *jreader) offsetWrapper() (OffsetWrapper, error) {
	var v OffsetWrapper
	err := r.object(func(k []byte) error {
		switch string(k) {
		case "brokerOffset":
			return r.int(&v.BrokerOffset, 64)
		case "consumerOffset":
			return r.int(&v.ConsumerOffset, 64)
		case "pullOffset":
			return r.int(&v.PullOffset, 64)
		case "lastTimestamp":
			return r.int(&v.LastTimestamp, 64)
		}
		return r.unknown(k, "brokerOffset", "consumerOffset", "pullOffset", "lastTimestamp")
	})
	return v, err
}

// consumeStats reads one ConsumeStats; null gives an empty one, like the
// generic path. scratch is queueTable's, returned for the next table.
func (r *jreader) consumeStats(scratch []queueEntry[OffsetWrapper]) (ConsumeStats, []queueEntry[OffsetWrapper], error) {
	var (
		cs   ConsumeStats
		seen bool
	)
	err := r.object(func(k []byte) error {
		switch string(k) {
		case "consumeTps":
			return r.float(&cs.ConsumeTps)
		case "offsetTable":
			if err := once(&seen); err != nil {
				return err
			}
			var err error
			cs.OffsetTable, scratch, err = queueTable(r, scratch, r.offsetWrapper, queueOffsetWrapper)
			return err
		}
		return r.unknown(k, "consumeTps", "offsetTable")
	})
	return cs, scratch, err
}

func fastConsumeStats(body []byte) (*ConsumeStats, error) {
	r := &jreader{b: body}
	if r.peek() != '{' {
		return nil, errFallback
	}
	var buf [queueScratch]queueEntry[OffsetWrapper]
	cs, _, err := r.consumeStats(buf[:0])
	if err != nil {
		return nil, err
	}
	return &cs, r.end()
}

func fastConsumeStatsList(body []byte) (*ConsumeStatsList, error) {
	r := &jreader{b: body}
	if r.peek() != '{' {
		return nil, errFallback
	}
	var (
		seen    bool
		buf     [queueScratch]queueEntry[OffsetWrapper]
		scratch = buf[:0] // queueTable's, shared by all tables
		// stats is the room the groups' Stats are cut from: most groups
		// have one or two ConsumeStats, and a slice of their own for each
		// was a good part of the allocations of a body with thousands of
		// groups.
		stats []ConsumeStats
	)
	out := &ConsumeStatsList{ConsumeStatsList: []GroupConsumeStats{}}
	// group reads one {group: [ConsumeStats…]} entry. Entries with more
	// than one group give up (the generic path orders them by name).
	group := func() error {
		n := 0
		return r.object(func(k []byte) error {
			if n++; n > 1 {
				return errFallback
			}
			start := len(stats)
			_, err := r.array(func() error {
				var (
					cs  ConsumeStats
					err error
				)
				if cs, scratch, err = r.consumeStats(scratch); err != nil {
					return err
				}
				if len(stats) == cap(stats) {
					// A group's Stats must be contiguous: move what it
					// has so far to the new chunk.
					have := stats[start:]
					size := max(min(2*cap(stats), statsChunk), 4, 2*len(have))
					stats = append(make([]ConsumeStats, 0, size), have...)
					start = 0
				}
				stats = append(stats, cs)
				return nil
			})
			if err != nil {
				return err
			}
			g := GroupConsumeStats{Group: string(k), Stats: []ConsumeStats{}}
			if end := len(stats); end > start {
				// The capacity ends with the group: appending to one
				// group's Stats must not overwrite the next group's.
				g.Stats = stats[start:end:end]
			}
			out.ConsumeStatsList = append(out.ConsumeStatsList, g)
			return nil
		})
	}
	err := r.object(func(k []byte) error {
		switch string(k) {
		case "brokerAddr":
			return r.str(&out.BrokerAddr)
		case "totalDiff":
			return r.int(&out.TotalDiff, 64)
		case "totalInflightDiff":
			return r.int(&out.TotalInflightDiff, 64)
		case "consumeStatsList":
			if err := once(&seen); err != nil {
				return err
			}
			_, err := r.array(group)
			return err
		}
		return r.unknown(k, "brokerAddr", "totalDiff", "totalInflightDiff", "consumeStatsList")
	})
	if err != nil {
		return nil, err
	}
	return out, r.end()
}

// statsChunk bounds the ConsumeStats one chunk of a GET_BROKER_CONSUME_STATS
// decode holds; chunks double up to it from a few.
const statsChunk = 256

// connection reads one connection, except that its clientId and clientAddr
// are left in names as views into the body (nil when absent or null) for
// connectionNames.
func (r *jreader) connection(c *Connection, names *[2][]byte) error {
	return r.object(func(k []byte) error {
		switch string(k) {
		case "clientId":
			return r.view(&names[0])
		case "clientAddr":
			return r.view(&names[1])
		case "language":
			return r.enum(&c.Language)
		case "version":
			return r.goInt(&c.Version)
		}
		return r.unknown(k, "clientId", "clientAddr", "language", "version")
	})
}

// subscriptionData reads one subscription; its topic shares the string of
// the table key when they are equal, as they are in every body.
func (r *jreader) subscriptionData(s *SubscriptionData, key string) error {
	var seenTags bool
	return r.object(func(k []byte) error {
		switch string(k) {
		case "topic":
			return r.strReuse(&s.Topic, &key)
		case "subString":
			return r.enum(&s.SubString)
		case "expressionType":
			return r.enum(&s.ExpressionType)
		case "subVersion":
			return r.int(&s.SubVersion, 64)
		case "tagsSet":
			if err := once(&seenTags); err != nil {
				return err
			}
			tags := []string{}
			isNull, err := r.array(func() error {
				var t string
				if err := r.str(&t); err != nil {
					return err
				}
				tags = append(tags, t)
				return nil
			})
			if !isNull {
				s.TagsSet = tags
			}
			return err
		}
		return r.unknown(k, "topic", "subString", "expressionType", "subVersion", "tagsSet")
	})
}

// connectionNames sets the clientId and clientAddr of each connection from
// its views, all cut from one string: a body lists a group's clients, whose
// names are read, kept and dropped together, and one allocation per name
// was most of the body's count.
func connectionNames(conns []Connection, names [][2][]byte) {
	n := 0
	for _, v := range names {
		n += len(v[0]) + len(v[1])
	}
	var b strings.Builder
	b.Grow(n)
	for _, v := range names {
		b.Write(v[0])
		b.Write(v[1])
	}
	all, off := b.String(), 0
	for i, v := range names {
		for j, dst := range [2]*string{&conns[i].ClientID, &conns[i].ClientAddr} {
			if v[j] != nil {
				*dst = all[off : off+len(v[j])]
			}
			off += len(v[j])
		}
	}
}

func fastConsumerConnection(body []byte) (*ConsumerConnection, error) {
	r := &jreader{b: body}
	if r.peek() != '{' {
		return nil, errFallback
	}
	cc := &ConsumerConnection{}
	var seenConns bool
	err := r.object(func(k []byte) error {
		switch string(k) {
		case "connectionSet":
			if err := once(&seenConns); err != nil {
				return err
			}
			var (
				conns = []Connection{}
				buf   [8][2][]byte
				names = buf[:0]
			)
			isNull, err := r.array(func() error {
				var (
					c Connection
					n [2][]byte
				)
				if err := r.connection(&c, &n); err != nil {
					return err
				}
				conns = append(conns, c)
				names = append(names, n)
				return nil
			})
			if err != nil {
				return err
			}
			connectionNames(conns, names)
			if !isNull {
				cc.ConnectionSet = conns
			}
			return nil
		case "consumeType":
			return r.enum(&cc.ConsumeType)
		case "messageModel":
			return r.enum(&cc.MessageModel)
		case "consumeFromWhere":
			return r.enum(&cc.ConsumeFromWhere)
		case "subscriptionTable":
			if r.null() {
				cc.SubscriptionTable = nil
				return nil
			}
			if cc.SubscriptionTable == nil {
				cc.SubscriptionTable = map[string]SubscriptionData{}
			}
			return r.object(func(topic []byte) error {
				var s SubscriptionData
				key := string(topic)
				if err := r.subscriptionData(&s, key); err != nil {
					return err
				}
				cc.SubscriptionTable[key] = s
				return nil
			})
		}
		return r.unknown(k, "connectionSet", "consumeType", "messageModel", "consumeFromWhere", "subscriptionTable")
	})
	if err != nil {
		return nil, err
	}
	return cc, r.end()
}

// fastConnectionSummary walks a body as fastConsumerConnection does, with
// the same checks and the same hand-overs, so that it succeeds exactly when
// fastConsumerConnection does (FuzzFastDecoders holds it to that), but keeps
// only the summary: the connections are read into a scratch value and the
// subscription table is checked by checkSubscriptionData, neither kept.
func fastConnectionSummary(body []byte) (ConsumerConnectionSummary, error) {
	var s ConsumerConnectionSummary
	r := &jreader{b: body}
	if r.peek() != '{' {
		return s, errFallback
	}
	var seenConns bool
	err := r.object(func(k []byte) error {
		switch string(k) {
		case "connectionSet":
			if err := once(&seenConns); err != nil {
				return err
			}
			n := 0
			_, err := r.array(func() error {
				var (
					c     Connection
					names [2][]byte
				)
				n++
				return r.connection(&c, &names)
			})
			s.Connections = n // null counts none, as a nil ConnectionSet does
			return err
		case "consumeType":
			return r.enum(&s.ConsumeType)
		case "messageModel":
			return r.enum(&s.MessageModel)
		case "consumeFromWhere":
			var v []byte
			return r.view(&v)
		case "subscriptionTable":
			return r.object(func([]byte) error { return r.checkSubscriptionData() })
		}
		return r.unknown(k, "connectionSet", "consumeType", "messageModel", "consumeFromWhere", "subscriptionTable")
	})
	if err != nil {
		return ConsumerConnectionSummary{}, err
	}
	return s, r.end()
}

// checkSubscriptionData accepts what subscriptionData accepts, keeping
// nothing: view checks a string exactly as str, strReuse and enum do.
func (r *jreader) checkSubscriptionData() error {
	var (
		seenTags bool
		v        []byte
		n        int64
	)
	return r.object(func(k []byte) error {
		switch string(k) {
		case "topic", "subString", "expressionType":
			return r.view(&v)
		case "subVersion":
			return r.int(&n, 64)
		case "tagsSet":
			if err := once(&seenTags); err != nil {
				return err
			}
			_, err := r.array(func() error { return r.view(&v) })
			return err
		}
		return r.unknown(k, "topic", "subString", "expressionType", "subVersion", "tagsSet")
	})
}

func (r *jreader) topicConfig(tc *TopicConfig) error {
	return r.object(func(k []byte) error {
		switch string(k) {
		case "topicName":
			return r.str(&tc.TopicName)
		case "readQueueNums":
			return r.goInt(&tc.ReadQueueNums)
		case "writeQueueNums":
			return r.goInt(&tc.WriteQueueNums)
		case "perm":
			return r.goInt(&tc.Perm)
		case "topicFilterType":
			return r.enum(&tc.TopicFilterType)
		case "topicSysFlag":
			return r.goInt(&tc.TopicSysFlag)
		case "order":
			return r.bool(&tc.Order)
		}
		return r.unknown(k, "topicName", "readQueueNums", "writeQueueNums", "perm", "topicFilterType", "topicSysFlag", "order")
	})
}

func (r *jreader) dataVersion(dv *DataVersion) error {
	return r.object(func(k []byte) error {
		switch string(k) {
		case "counter":
			return r.int(&dv.Counter, 64)
		case "timestamp":
			return r.int(&dv.Timestamp, 64)
		}
		return r.unknown(k, "counter", "timestamp")
	})
}

// topicConfigHint estimates the number of topics in a GET_ALL_TOPIC_CONFIG
// body by counting its "topicName" members, one per topic. The bound keeps
// a body made of little else from reserving much more than its own size:
// real entries are well over 100 bytes each.
func topicConfigHint(body []byte) int {
	return min(bytes.Count(body, []byte(`"topicName":`)), len(body)/96)
}

func fastTopicConfigWrapper(body []byte) (*TopicConfigWrapper, error) {
	w := &TopicConfigWrapper{}
	err := walkTopicConfigs(body, &w.DataVersion, topicTable{
		open: func() {
			if w.TopicConfigTable == nil {
				// Ten thousand topics outgrow a map many times over.
				w.TopicConfigTable = make(map[string]TopicConfig, topicConfigHint(body))
			}
		},
		add:   func(name string, tc TopicConfig) { w.TopicConfigTable[name] = tc },
		empty: func() { w.TopicConfigTable = nil },
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// fastTopicNames is fastTopicConfigWrapper keeping only the table's keys.
// Each config is still read, so that a body the generic path refuses is
// refused here too.
func fastTopicNames(body []byte) ([]string, error) {
	var (
		names []string
		dv    DataVersion
		table bool // a table was read: a later null one empties it
	)
	err := walkTopicConfigs(body, &dv, topicTable{
		open: func() {
			if !table {
				names = make([]string, 0, topicConfigHint(body))
				table = true
			}
		},
		add:   func(name string, _ TopicConfig) { names = append(names, name) },
		empty: func() { names, table = nil, false },
	})
	if err != nil || len(names) == 0 {
		return nil, err
	}
	slices.Sort(names)
	// A name listed twice is one map key in the generic path.
	return slices.Compact(names), nil
}

// topicTable is what walkTopicConfigs does with a topicConfigTable: open
// where a table starts, add for each entry, empty where a null table
// stands (in the generic path a table merges into the one before, a null
// one empties it).
type topicTable struct {
	open  func()
	add   func(name string, tc TopicConfig)
	empty func()
}

// walkTopicConfigs reads a GET_ALL_TOPIC_CONFIG body. An entry's name is
// its map key, which shares the config's own topicName string when they
// are equal (always, in practice).
func walkTopicConfigs(body []byte, dv *DataVersion, t topicTable) error {
	r := &jreader{b: body}
	if r.peek() != '{' {
		return errFallback
	}
	err := r.object(func(k []byte) error {
		switch string(k) {
		case "topicConfigTable":
			if r.null() {
				t.empty()
				return nil
			}
			t.open()
			return r.object(func(name []byte) error {
				var tc TopicConfig
				if err := r.topicConfig(&tc); err != nil {
					return err
				}
				key := tc.TopicName
				if key != string(name) {
					key = string(name)
				}
				t.add(key, tc)
				return nil
			})
		case "dataVersion":
			return r.dataVersion(dv)
		}
		return r.unknown(k, "topicConfigTable", "dataVersion")
	})
	if err != nil {
		return err
	}
	return r.end()
}

func (r *jreader) queueTimeSpan(s *QueueTimeSpan) error {
	return r.object(func(k []byte) error {
		switch string(k) {
		case "messageQueue":
			if r.null() {
				return nil
			}
			return r.messageQueue(&s.MessageQueue)
		case "minTimeStamp":
			return r.int(&s.MinTimeStamp, 64)
		case "maxTimeStamp":
			return r.int(&s.MaxTimeStamp, 64)
		case "consumeTimeStamp":
			return r.int(&s.ConsumeTimeStamp, 64)
		case "delayTime":
			return r.int(&s.DelayTime, 64)
		}
		return r.unknown(k, "messageQueue", "minTimeStamp", "maxTimeStamp", "consumeTimeStamp", "delayTime")
	})
}

func fastConsumeTimeSpan(body []byte) ([]QueueTimeSpan, error) {
	r := &jreader{b: body}
	if r.peek() != '{' {
		return nil, errFallback
	}
	out := []QueueTimeSpan{}
	var seen bool
	err := r.object(func(k []byte) error {
		if string(k) != "consumeTimeSpanSet" {
			return r.unknown(k, "consumeTimeSpanSet")
		}
		if err := once(&seen); err != nil {
			return err
		}
		_, err := r.array(func() error {
			var s QueueTimeSpan
			if err := r.queueTimeSpan(&s); err != nil {
				return err
			}
			out = append(out, s)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, r.end()
}

// decodeInto decodes a relaxed-JSON body into a new T; what names the body in
// errors.
func decodeInto[T any](what string, body []byte) (*T, error) {
	var v T
	if err := decodeJSON(what, body, &v); err != nil {
		return nil, err
	}
	return &v, nil
}
