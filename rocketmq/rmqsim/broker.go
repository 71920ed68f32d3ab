package rmqsim

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// handle answers the broker's remoting port (AdminBrokerProcessor and
// friends). The ACL hook runs before the processors, like the RPC hook the
// broker registers when aclEnable=true.
func (n *Node) handle(req *rocketmq.Command) *rocketmq.Command { return n.handleConn(0, req) }

// handleConn is handle knowing the connection (0: unknown), which client
// registrations are tied to.
func (n *Node) handleConn(conn uint64, req *rocketmq.Command) *rocketmq.Command {
	c := n.c
	if c.acl != nil {
		if remark := c.checkACL(req); remark != "" {
			return reply(req, rocketmq.ResponseSystemError, remark, nil)
		}
	}
	// Producer and consumer requests (messaging.go) lock for themselves: a
	// parked pull must wait without the cluster lock.
	if h := n.clientHandler(conn, req.Code); h != nil {
		return h(req)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !n.alive {
		return nil
	}
	switch req.Code {
	case rocketmq.CodeGetBrokerRuntimeInfo:
		if w := c.timing.StartupWindow; w > 0 && time.Since(n.bootWall) < w {
			return reply(req, rocketmq.ResponseSystemError, NoSuchElementRemark, nil)
		}
		return reply(req, 0, "", encodeJSON(jbean{"table": n.runtimeTable()}))
	case rocketmq.CodeGetBrokerConfig:
		r := reply(req, 0, "", n.configText())
		r.ExtFields = map[string]string{"version": string(encodeJSON(dataVersion{0, n.bootMs}.jv(c.ver.v5)))}
		return r
	case rocketmq.CodeGetAllTopicConfig:
		return n.allTopicConfig(req)
	case rocketmq.CodeGetAllSubscriptionGroupConfig:
		return n.allSubscriptionGroups(req)
	case rocketmq.CodeGetTopicStatsInfo:
		return n.topicStats(req)
	case rocketmq.CodeGetConsumeStats:
		return n.consumeStats(req)
	case rocketmq.CodeGetBrokerConsumeStats:
		return n.brokerConsumeStats(req)
	case rocketmq.CodeQueryTopicConsumeByWho:
		return n.consumeByWho(req)
	case rocketmq.CodeQueryConsumeTimeSpan:
		return n.consumeTimeSpan(req)
	case rocketmq.CodeGetConsumerConnectionList:
		return n.consumerConnections(req)
	case rocketmq.CodeViewBrokerStatsData:
		return n.viewStats(req)
	case rocketmq.CodeGetMaxOffset, rocketmq.CodeGetMinOffset:
		return n.queueOffset(req)
	case rocketmq.CodeQueryConsumerOffset:
		return n.queryConsumerOffset(req)
	case rocketmq.CodeGetBrokerHAStatus:
		if !c.ver.v5 {
			return notSupported(req)
		}
		return n.haStatus(req)
	}
	return notSupported(req)
}

func intExt(req *rocketmq.Command, key string) int {
	v, err := strconv.Atoi(req.ExtFields[key])
	if err != nil {
		return -1
	}
	return v
}

func mqKey(broker, topic string, q int) jv {
	return jbean{"brokerName": jstr(broker), "queueId": jint(q), "topic": jstr(topic)}
}

func (n *Node) allTopicConfig(req *rocketmq.Command) *rocketmq.Command {
	g, v5 := n.g, n.c.ver.v5
	if len(g.topicOrder) == 0 {
		return reply(req, rocketmq.ResponseSystemError, "No topic in this broker", nil)
	}
	table := make(jmap, 0, len(g.topicOrder))
	for _, name := range g.topicOrder {
		t := g.topics[name]
		tc := jbean{
			"order": jbool(t.order), "perm": jint(t.perm), "readQueueNums": jint(len(t.queues)),
			"topicFilterType": jstr("SINGLE_TAG"), "topicName": jstr(name), "topicSysFlag": jint(t.sysFlag),
			"writeQueueNums": jint(len(t.queues)),
		}
		if v5 {
			tc["attributes"] = jmap{}
		}
		table = append(table, jentry{jstr(name), tc})
	}
	body := jbean{"dataVersion": g.topicVer.jv(v5), "topicConfigTable": table}
	if v5 {
		body["mappingDataVersion"] = dataVersion{0, n.bootMs}.jv(true)
		body["topicQueueMappingDetailMap"] = jmap{}
		body["topicQueueMappingInfoMap"] = jmap{}
	}
	return reply(req, 0, "", encodeJSON(body))
}

func (n *Node) allSubscriptionGroups(req *rocketmq.Command) *rocketmq.Command {
	g, v5 := n.g, n.c.ver.v5
	table := make(jmap, 0, len(g.subOrder))
	for _, name := range g.subOrder {
		sc := jbean{
			"brokerId": jint(0), "consumeBroadcastEnable": jbool(true), "consumeEnable": jbool(true),
			"consumeFromMinEnable": jbool(true), "groupName": jstr(name), "notifyConsumerIdsChangedEnable": jbool(true),
			"retryMaxTimes": jint(16), "retryQueueNums": jint(1), "whichBrokerWhenConsumeSlowly": jint(1),
		}
		if v5 {
			sc["consumeMessageOrderly"] = jbool(false)
			sc["consumeTimeoutMinute"] = jint(15)
			sc["groupRetryPolicy"] = jbean{"type": jstr("CUSTOMIZED")}
			sc["groupSysFlag"] = jint(0)
		}
		table = append(table, jentry{jstr(name), sc})
	}
	body := jbean{"dataVersion": g.subVer.jv(v5), "subscriptionGroupTable": table}
	if v5 {
		body["forbiddenTable"] = jmap{}
	}
	return reply(req, 0, "", encodeJSON(body))
}

func topicNotExist(req *rocketmq.Command, topic string) *rocketmq.Command {
	return reply(req, rocketmq.ResponseTopicNotExist, "topic["+topic+"] not exist", nil)
}

func (n *Node) topicStats(req *rocketmq.Command) *rocketmq.Command {
	topic := req.ExtFields["topic"]
	t := n.g.topics[topic]
	if t == nil {
		return topicNotExist(req, topic)
	}
	table := make(jmap, 0, len(t.queues))
	for i, q := range t.queues {
		var last int64
		if q.max > 0 {
			last = q.storeTime(q.max - 1)
		}
		table = append(table, jentry{mqKey(n.g.spec.Name, topic, i), jbean{
			"lastUpdateTimestamp": jint(last), "maxOffset": jint(q.max), "minOffset": jint(q.min),
		}})
	}
	return reply(req, 0, "", encodeJSON(jbean{"offsetTable": table}))
}

// groupTps is the consumeTps of one (group, topic): GROUP_GET_NUMS over the
// last minute, or the value fixed with SetConsumeTps.
func (n *Node) groupTps(cg, topic string, now int64) float64 {
	if g := n.c.cgroups[cg]; g != nil && g.tpsSet {
		if isRetry(topic) {
			return 0
		}
		return g.tps
	}
	it := n.stats.lookup("GROUP_GET_NUMS", topic+"@"+cg)
	if it == nil {
		return 0
	}
	sum, _ := it.sum(now, 60_000)
	return float64(sum) / 60
}

// subscribedElsewhere reports an online group that subscribes to other
// topics but not this one; ABP skips such topics in consume stats.
func (c *Cluster) subscribedElsewhere(cg, topic string) bool {
	g := c.cgroups[cg]
	if g == nil || c.onlineClients(g) == 0 || len(g.subTime) == 0 {
		return false
	}
	_, ok := g.subTime[topic]
	return !ok
}

// consumeStatsOf builds one ConsumeStats of a (group, topic) on this broker;
// nil when the topic does not exist here.
func (n *Node) consumeStatsOf(cg, topic string, now int64) (jbean, int64) {
	g := n.g
	t := g.topics[topic]
	if t == nil {
		return nil, 0
	}
	table := make(jmap, 0, len(t.queues))
	var diff int64
	for i, q := range t.queues {
		off := g.offset(cg, topic, i)
		if off < 0 {
			off = 0
		}
		var last int64
		if off > 0 {
			if ts := q.storeTime(off - 1); ts > 0 {
				last = ts
			}
		}
		diff += q.max - off
		table = append(table, jentry{mqKey(g.spec.Name, topic, i), jbean{
			"brokerOffset": jint(q.max), "consumerOffset": jint(off), "lastTimestamp": jint(last),
		}})
	}
	return jbean{"consumeTps": jdouble(n.groupTps(cg, topic, now)), "offsetTable": table}, diff
}

func (n *Node) consumeStats(req *rocketmq.Command) *rocketmq.Command {
	cg := req.ExtFields["consumerGroup"]
	topics := []string{req.ExtFields["topic"]}
	if topics[0] == "" {
		topics = n.g.offsetTopics(cg)
	}
	now := n.c.nowMs()
	table := jmap{}
	var tps float64
	for _, topic := range topics {
		if n.c.subscribedElsewhere(cg, topic) {
			continue
		}
		cs, _ := n.consumeStatsOf(cg, topic, now)
		if cs == nil {
			continue
		}
		table = append(table, cs["offsetTable"].(jmap)...)
		tps += float64(cs["consumeTps"].(jdouble))
	}
	return reply(req, 0, "", encodeJSON(jbean{"consumeTps": jdouble(tps), "offsetTable": table}))
}

func (n *Node) brokerConsumeStats(req *rocketmq.Command) *rocketmq.Command {
	onlyOrder := req.ExtFields["isOrder"] == "true"
	now := n.c.nowMs()
	list := make(jarr, 0, len(n.g.subOrder))
	var total int64
	for _, cg := range n.g.subOrder {
		stats := jarr{}
		for _, topic := range n.g.offsetTopics(cg) {
			t := n.g.topics[topic]
			if t == nil || (onlyOrder && !t.order) || n.c.subscribedElsewhere(cg, topic) {
				continue
			}
			cs, diff := n.consumeStatsOf(cg, topic, now)
			stats = append(stats, cs)
			total += diff
		}
		list = append(list, jmap{{jstr(cg), stats}})
	}
	body := jbean{"brokerAddr": jstr(n.srv.Addr()), "consumeStatsList": list, "totalDiff": jint(total)}
	return reply(req, 0, "", encodeJSON(body))
}

func (n *Node) consumeByWho(req *rocketmq.Command) *rocketmq.Command {
	topic := req.ExtFields["topic"]
	seen := map[string]bool{}
	var groups []string
	for _, name := range n.c.cgOrder {
		cg := n.c.cgroups[name]
		if _, ok := cg.subTime[topic]; ok && n.c.onlineClients(cg) > 0 {
			seen[name] = true
			groups = append(groups, name)
		}
	}
	for _, cg := range n.g.subOrder {
		if _, ok := n.g.offsets[cg][topic]; ok && !seen[cg] {
			seen[cg] = true
			groups = append(groups, cg)
		}
	}
	sort.Strings(groups)
	list := make(jarr, len(groups))
	for i, g := range groups {
		list[i] = jstr(g)
	}
	return reply(req, 0, "", encodeJSON(jbean{"groupList": list}))
}

// humanTime renders a store time like the broker's QueueTimeSpan string
// getters (yyyy-MM-dd#HH:mm:ss:SSS in the broker's zone).
func humanTime(ms int64) string {
	t := time.UnixMilli(ms)
	return t.Format("2006-01-02#15:04:05") + fmt.Sprintf(":%03d", t.Nanosecond()/1e6)
}

func (n *Node) consumeTimeSpan(req *rocketmq.Command) *rocketmq.Command {
	topic, cg := req.ExtFields["topic"], req.ExtFields["group"]
	t := n.g.topics[topic]
	if t == nil {
		return topicNotExist(req, topic)
	}
	now := n.c.nowMs()
	set := make(jarr, 0, len(t.queues))
	for i, q := range t.queues {
		minTime := q.storeTime(q.min)
		maxTime := q.storeTime(q.max - 1)
		off := n.g.offset(cg, topic, i)
		consumeTime := minTime
		if off > 0 {
			consumeTime = q.storeTime(off - 1)
		}
		var delay int64
		if off < q.max {
			// With no offset (-1) or an expired one the store lookup gives
			// -1 and the broker reports now+1: the recorded quirk.
			delay = now - q.storeTime(off)
		}
		set = append(set, jbean{
			"consumeTimeStamp": jint(consumeTime), "consumeTimeStampStr": jstr(humanTime(consumeTime)),
			"delayTime": jint(delay), "maxTimeStamp": jint(maxTime), "maxTimeStampStr": jstr(humanTime(maxTime)),
			"messageQueue": mqKey(n.g.spec.Name, topic, i), "minTimeStamp": jint(minTime),
			"minTimeStampStr": jstr(humanTime(minTime)),
		})
	}
	return reply(req, 0, "", encodeJSON(jbean{"consumeTimeSpanSet": set}))
}

func (n *Node) consumerConnections(req *rocketmq.Command) *rocketmq.Command {
	name := req.ExtFields["consumerGroup"]
	cg := n.c.cgroups[name]
	if cg == nil || n.c.onlineClients(cg) == 0 {
		return reply(req, rocketmq.ResponseConsumerNotOnline, "the consumer group["+name+"] not online", nil)
	}
	conns := make(jarr, cg.online, n.c.onlineClients(cg))
	for i := range conns {
		conns[i] = jbean{
			"clientAddr": jstr(fmt.Sprintf("127.0.0.1:%d", 53000+(cg.clientBase+i)%10000)),
			"clientId":   jstr(fmt.Sprintf("192.0.2.%d@%d#%d", 2+i%250, 31000+i, int64(cg.clientBase)*1000+int64(i))),
			"language":   jstr("JAVA"), "version": jint(n.c.ver.code),
		}
	}
	conns = append(conns, n.c.wireConnections(name)...)
	subs := jmap{}
	topics := append([]string(nil), cg.topics...)
	if !cg.broadcasting {
		topics = append(topics, retryPrefix+name)
	}
	sort.Strings(topics)
	for _, t := range topics {
		subs = append(subs, jentry{jstr(t), jbean{
			"classFilterMode": jbool(false), "codeSet": jarr{}, "expressionType": jstr("TAG"), "subString": jstr("*"),
			"subVersion": jint(cg.subTime[t]), "tagsSet": jarr{}, "topic": jstr(t),
		}})
	}
	model := "CLUSTERING"
	if cg.broadcasting {
		model = "BROADCASTING"
	}
	body := jbean{
		"connectionSet": conns, "consumeFromWhere": jstr("CONSUME_FROM_FIRST_OFFSET"),
		"consumeType": jstr("CONSUME_PASSIVELY"), "messageModel": jstr(model), "subscriptionTable": subs,
	}
	return reply(req, 0, "", encodeJSON(body))
}

func (n *Node) viewStats(req *rocketmq.Command) *rocketmq.Command {
	name, key := req.ExtFields["statsName"], req.ExtFields["statsKey"]
	it := n.stats.lookup(name, key)
	if it == nil {
		return reply(req, rocketmq.ResponseSystemError, "The stats <"+name+"> <"+key+"> not exist", nil)
	}
	now := n.c.nowMs()
	up := now - n.bootMs
	window := func(w, minUptime int64) jv {
		if up < minUptime {
			return jbean{"avgpt": jdouble(0), "sum": jint(0), "tps": jdouble(0)}
		}
		sum, times := it.sum(now, w)
		avg := 0.0
		if times > 0 {
			avg = float64(sum) / float64(times)
		}
		return jbean{"avgpt": jdouble(avg), "sum": jint(sum), "tps": jdouble(float64(sum) * 1000 / float64(w))}
	}
	body := jbean{
		"statsMinute": window(60_000, 0),
		// The hour and day windows are sampled every 10 min / 1 h; they stay
		// zero until the first two samples exist.
		"statsHour": window(3_600_000, 600_000),
		"statsDay":  window(86_400_000, 3_600_000),
	}
	return reply(req, 0, "", encodeJSON(body))
}

func (n *Node) queueOffset(req *rocketmq.Command) *rocketmq.Command {
	var off int64
	if t := n.g.topics[req.ExtFields["topic"]]; t != nil {
		if q := intExt(req, "queueId"); q >= 0 && q < len(t.queues) {
			off = t.queues[q].max
			if req.Code == rocketmq.CodeGetMinOffset {
				off = t.queues[q].min
			}
		}
	}
	r := reply(req, 0, "", nil)
	r.ExtFields = map[string]string{"offset": strconv.FormatInt(off, 10)}
	return r
}

func (n *Node) queryConsumerOffset(req *rocketmq.Command) *rocketmq.Command {
	topic, q := req.ExtFields["topic"], intExt(req, "queueId")
	off := n.g.offset(req.ExtFields["consumerGroup"], topic, q)
	if off < 0 {
		var minOff int64
		if t := n.g.topics[topic]; t != nil && q >= 0 && q < len(t.queues) {
			minOff = t.queues[q].min
		}
		if minOff > 0 {
			return reply(req, rocketmq.ResponseQueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first", nil)
		}
		off = 0
	}
	r := reply(req, 0, "", nil)
	r.ExtFields = map[string]string{"offset": strconv.FormatInt(off, 10)}
	return r
}

// haStatus is the 5.x GET_BROKER_HA_STATUS (HARuntimeInfo).
func (n *Node) haStatus(req *rocketmq.Command) *rocketmq.Command {
	g := n.g
	if g.spec.Mode == DLedger {
		return reply(req, rocketmq.ResponseSystemError, "Can not get HARuntimeInfo, may be duplicationEnable is true", nil)
	}
	now := n.c.nowMs()
	if n.isMaster() {
		conns := jarr{}
		inSync := 0
		max := n.commitLogMax()
		for _, s := range g.nodes {
			if s == n || !s.alive || !n.c.haLinked(s) {
				continue
			}
			ack := s.commitLogMax()
			ok := max-ack <= haMaxGapNotInSync
			if g.spec.Mode == Controller {
				ok = g.inSync[s]
			}
			if ok {
				inSync++
			}
			conns = append(conns, jbean{
				"addr": jstr(fmt.Sprintf("127.0.0.1:%d", 39000+97*s.globalIdx+s.restarts)), "diff": jint(max - ack),
				"inSync": jbool(ok), "slaveAckOffset": jint(ack), "transferFromWhere": jint(ack),
				"transferredByteInSecond": jint(0),
			})
		}
		body := jbean{
			"haClientRuntimeInfo": jbean{"lastReadTimestamp": jint(0), "lastWriteTimestamp": jint(0),
				"masterFlushOffset": jint(0), "maxOffset": jint(0), "transferredByteInSecond": jint(0)},
			"haConnectionInfo": conns, "inSyncSlaveNums": jint(inSync), "master": jbool(true),
			"masterCommitLogMaxOffset": jint(max),
		}
		return reply(req, 0, "", encodeJSON(body))
	}
	client := jbean{"lastReadTimestamp": jint(0), "lastWriteTimestamp": jint(0), "masterFlushOffset": jint(0),
		"maxOffset": jint(n.commitLogMax()), "transferredByteInSecond": jint(0)}
	if n.c.haLinked(n) {
		client["masterAddr"] = jstr(g.leader.HAAddr())
		client["lastReadTimestamp"] = jint(now)
		client["lastWriteTimestamp"] = jint(now)
	}
	body := jbean{"haClientRuntimeInfo": client, "haConnectionInfo": jarr{}, "inSyncSlaveNums": jint(0),
		"master": jbool(false), "masterCommitLogMaxOffset": jint(0)}
	return reply(req, 0, "", encodeJSON(body))
}

// haMaxGapNotInSync is the 5.x default gap beyond which a slave is not in sync.
const haMaxGapNotInSync = 256 << 20

// haLinked reports whether a slave's HA client is connected to a live master.
func (c *Cluster) haLinked(s *Node) bool {
	g := s.g
	if !s.alive || g.leader == nil || !g.leader.alive || g.leader == s {
		return false
	}
	if g.spec.Mode == Controller {
		return s.haConnected
	}
	return true
}
