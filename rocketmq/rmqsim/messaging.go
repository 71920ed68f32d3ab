package rmqsim

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// The producer and consumer side of the broker: what a real client
// (rocketmq-client-go, the exporter's canary) needs to publish to and
// consume from simulated topics. Messages sent over the wire are stored in
// the same model as Produce (offsets, store times, put statistics), so the
// collectors see the traffic; their bytes are kept so that PULL_MESSAGE
// answers them in the stored-message layout (PROTOCOL.md §2.4).

// Client request codes (RequestCode.java).
const (
	codeSendMessage            = 10
	codeUpdateConsumerOffset   = 15
	codeUnregisterClient       = 35
	codeGetConsumerListByGroup = 38
	codeSendMessageV2          = 310
)

// Client response codes (ResponseCode.java).
const (
	respMessageIllegal       = 13
	respServiceNotAvailable  = 14
	respNoPermission         = 16
	respPullNotFound         = 19
	respPullRetryImmediately = 20
	respPullOffsetMoved      = 21
	respSubscriptionNotExist = 24
)

// Stored-message layout and properties (MessageDecoder, MessageConst).
const (
	messageMagicCode = 0xDAA320A7 // MESSAGE_MAGIC_CODE, version 1
	propNameValueSep = "\x01"
	propSep          = "\x02"
	propUniqKey      = "UNIQ_KEY"
	propCluster      = "CLUSTER"
	propMsgRegion    = "MSG_REGION"
	propTraceSwitch  = "TRACE_ON"
	sysFlagCompress  = 0x1

	// maxMessageBody is the broker's default maxMessageSize (4 MiB).
	maxMessageBody = 4 << 20
	// maxPullMessages is maxTransferCountOnMessageInMemory: one pull never
	// returns more, whatever maxMsgNums asks.
	maxPullMessages = 32
	// keptPerQueue bounds the message bytes kept per queue. Older offsets are
	// still pullable; their messages come back synthesized (empty body), like
	// messages made by Produce.
	keptPerQueue = 4096
	// clientExpiry is how long a client stays registered after its last
	// HEART_BEAT (the broker's channelExpiredTimeout, 120 s).
	clientExpiry = 120 * time.Second
)

// Pull sysFlag bits (PullSysFlag.java).
const (
	pullFlagCommitOffset = 1 << 0
	pullFlagSuspend      = 1 << 1
	pullFlagSubscription = 1 << 2
)

const faqApplyTopic = "\nSee http://rocketmq.apache.org/docs/faq/ for further details."

// validTopic is TopicValidator's character set.
var validTopic = regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)

// messaging is the cluster's client-traffic state, guarded by the cluster
// lock. The zero value is ready; maps are made on first use.
type messaging struct {
	kept    map[queueKey]*keptQueue
	waiters map[queueKey]chan struct{}
	// clients: broker node → consumer group → client id → what its last
	// HEART_BEAT said. Like a real broker's ConsumerManager, each node has
	// its own registry, tied to the connections the heartbeats came on.
	clients map[*Node]map[string]map[string]*wireClient
	stall   map[string]bool // broker group → pulls find nothing
	drop    map[string]bool // broker group → sends acknowledged, not stored
}

type queueKey struct {
	group, topic string
	queue        int
}

// keptQueue holds the encoded messages of one queue by offset, oldest first.
type keptQueue struct {
	order []int64
	msgs  map[int64][]byte
}

func (k *keptQueue) put(off int64, b []byte) {
	if k.msgs == nil {
		k.msgs = make(map[int64][]byte)
	}
	k.msgs[off] = b
	k.order = append(k.order, off)
	if len(k.order) > keptPerQueue {
		delete(k.msgs, k.order[0])
		k.order = k.order[1:]
	}
}

type wireClient struct {
	lastSeen time.Time
	language string
	version  int
	conn     uint64
}

// notifyPut wakes the pulls parked on a queue; every store goes through it.
func (c *Cluster) notifyPut(g *group, topic string, q int) {
	k := queueKey{g.spec.Name, topic, q}
	if ch, ok := c.msg.waiters[k]; ok {
		close(ch)
		delete(c.msg.waiters, k)
	}
}

// waiter is closed at the next store on the queue (or when a stall ends).
func (c *Cluster) waiter(k queueKey) <-chan struct{} {
	if c.msg.waiters == nil {
		c.msg.waiters = make(map[queueKey]chan struct{})
	}
	ch, ok := c.msg.waiters[k]
	if !ok {
		ch = make(chan struct{})
		c.msg.waiters[k] = ch
	}
	return ch
}

// StallPulls makes PULL_MESSAGE on every node of a broker group find nothing
// new while stalled (parked pulls answer PULL_NOT_FOUND when their hold
// ends), as when a broker's dispatch to the consume queues is stuck: sends
// still succeed, consumers fall behind. Unstalling wakes the parked pulls.
func (c *Cluster) StallPulls(group string, stalled bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.group(group); err != nil {
		return err
	}
	if c.msg.stall == nil {
		c.msg.stall = make(map[string]bool)
	}
	c.msg.stall[group] = stalled
	if !stalled {
		for k, ch := range c.msg.waiters {
			if k.group == group {
				close(ch)
				delete(c.msg.waiters, k)
			}
		}
	}
	return nil
}

// DropSends makes a broker group acknowledge SEND_MESSAGE with SEND_OK and
// an offset but store nothing: messages lost after the acknowledgement.
func (c *Cluster) DropSends(group string, drop bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.group(group); err != nil {
		return err
	}
	if c.msg.drop == nil {
		c.msg.drop = make(map[string]bool)
	}
	c.msg.drop[group] = drop
	return nil
}

// ConsumerClients lists the client ids registered by HEART_BEAT for a
// consumer group on any node and not expired, sorted.
func (c *Cluster) ConsumerClients(group string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.liveClients(group)
}

// liveClients is the union over the nodes' registries.
func (c *Cluster) liveClients(group string) []string {
	seen := map[string]bool{}
	var out []string
	for n := range c.msg.clients {
		for _, id := range c.nodeClients(n, group) {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}

// nodeClients lists the live clients of a group registered on one node.
func (c *Cluster) nodeClients(n *Node, group string) []string {
	var out []string
	now := time.Now()
	for id, cl := range c.msg.clients[n][group] {
		if now.Sub(cl.lastSeen) <= clientExpiry {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// connClosed drops what a closed connection registered on the node, as the
// broker's ClientHousekeepingService does on a channel close.
func (n *Node) connClosed(conn uint64) {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msg.clients[n] {
		for id, cl := range m {
			if cl.conn == conn {
				delete(m, id)
			}
		}
	}
}

// onlineClients counts a consumer group's clients: those set with SetOnline
// plus those registered over the wire.
func (c *Cluster) onlineClients(cg *consumerGroup) int {
	return cg.online + len(c.liveClients(cg.name))
}

// wireConnections are the Connection entries of the clients registered over
// the wire. The handlers do not see the peer address, so clientAddr is a
// placeholder.
func (c *Cluster) wireConnections(group string) jarr {
	var out jarr
	for _, id := range c.liveClients(group) {
		var cl *wireClient
		for _, m := range c.msg.clients {
			if w := m[group][id]; w != nil && (cl == nil || w.lastSeen.After(cl.lastSeen)) {
				cl = w
			}
		}
		lang := cl.language
		if lang == "" {
			lang = "JAVA"
		}
		out = append(out, jbean{
			"clientAddr": jstr("127.0.0.1:0"), "clientId": jstr(id), "language": jstr(lang), "version": jint(cl.version),
		})
	}
	return out
}

// clientHandler returns the handler of a producer/consumer request, nil for
// the admin codes handle answers itself.
func (n *Node) clientHandler(conn uint64, code int) func(*rocketmq.Command) *rocketmq.Command {
	switch code {
	case codeSendMessage, codeSendMessageV2:
		return n.sendMessage
	case rocketmq.CodePullMessage:
		return n.pullMessage
	case codeUpdateConsumerOffset:
		return n.locked(n.updateConsumerOffset)
	case rocketmq.CodeHeartBeat:
		return n.locked(func(req *rocketmq.Command) *rocketmq.Command { return n.heartBeat(conn, req) })
	case codeUnregisterClient:
		return n.locked(n.unregisterClient)
	case codeGetConsumerListByGroup:
		return n.locked(n.consumerList)
	}
	return nil
}

// locked runs h under the cluster lock, like handle does for admin codes.
func (n *Node) locked(h func(*rocketmq.Command) *rocketmq.Command) func(*rocketmq.Command) *rocketmq.Command {
	return func(req *rocketmq.Command) *rocketmq.Command {
		c := n.c
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || !n.alive {
			return nil
		}
		return h(req)
	}
}

// configValue is the node's GET_BROKER_CONFIG value of key.
func (n *Node) configValue(key string) string {
	if v, ok := n.configOverride[key]; ok {
		return v
	}
	tpl := template497
	switch {
	case n.c.ver.v5:
		tpl = template500
	case n.g.spec.Mode == DLedger:
		tpl = template497DLedger
	}
	for _, kv := range tpl {
		if kv[0] == key {
			return kv[1]
		}
	}
	return ""
}

// missingField is the answer to a request without a required header field:
// the broker logs the decoding failure and fails on the null.
func missingField(req *rocketmq.Command, field string) *rocketmq.Command {
	return reply(req, rocketmq.ResponseSystemError, "the custom field <"+field+"> is null", nil)
}

// ---- SEND_MESSAGE (10) / SEND_MESSAGE_V2 (310) ----

// sendHeader is SendMessageRequestHeader; V2 carries the same fields under
// one-letter names (SendMessageRequestHeaderV2).
type sendHeader struct {
	producerGroup, topic, defaultTopic, properties string
	defaultQueueNums, queueID, sysFlag, flag       int
	reconsumeTimes                                 int
	bornTimestamp                                  int64
	batch                                          bool
}

var sendV2Names = map[string]string{
	"producerGroup": "a", "topic": "b", "defaultTopic": "c", "defaultTopicQueueNums": "d", "queueId": "e",
	"sysFlag": "f", "bornTimestamp": "g", "flag": "h", "properties": "i", "reconsumeTimes": "j", "batch": "m",
}

func parseSendHeader(req *rocketmq.Command) (sendHeader, string) {
	get := func(name string) (string, bool) {
		if req.Code == codeSendMessageV2 {
			name = sendV2Names[name]
		}
		v, ok := req.ExtFields[name]
		return v, ok
	}
	var h sendHeader
	var ok bool
	for _, f := range []struct {
		name string
		dst  *string
	}{{"producerGroup", &h.producerGroup}, {"topic", &h.topic}, {"defaultTopic", &h.defaultTopic}} {
		if *f.dst, ok = get(f.name); !ok {
			return h, f.name
		}
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"defaultTopicQueueNums", &h.defaultQueueNums}, {"queueId", &h.queueID}, {"sysFlag", &h.sysFlag}, {"flag", &h.flag}} {
		v, present := get(f.name)
		n, err := strconv.Atoi(v)
		if !present || err != nil {
			return h, f.name
		}
		*f.dst = n
	}
	v, present := get("bornTimestamp")
	var err error
	if h.bornTimestamp, err = strconv.ParseInt(v, 10, 64); !present || err != nil {
		return h, "bornTimestamp"
	}
	h.properties, _ = get("properties")
	if v, present := get("reconsumeTimes"); present {
		h.reconsumeTimes, _ = strconv.Atoi(v)
	}
	if v, present := get("batch"); present {
		h.batch = v == "true"
	}
	return h, ""
}

func (n *Node) sendMessage(req *rocketmq.Command) *rocketmq.Command {
	h, missing := parseSendHeader(req)
	if missing != "" {
		return missingField(req, missing)
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !n.alive {
		return nil
	}
	g := n.g
	switch {
	case h.topic == "" || len(h.topic) > 127 || !validTopic.MatchString(h.topic):
		return reply(req, respMessageIllegal, "the specified topic["+h.topic+"] is invalid", nil)
	case h.batch:
		return reply(req, respMessageIllegal, "rmqsim: batch messages are not simulated", nil)
	case len(req.Body) > maxMessageBody:
		return reply(req, respMessageIllegal, "the message body size over max value, MAX: "+strconv.Itoa(maxMessageBody), nil)
	}
	if !n.isMaster() {
		return reply(req, respServiceNotAvailable, "service not available now. It may be caused by one of the following reasons: "+
			"the broker's disk is full, messages are put to the slave, message store has been shut down, etc.", nil)
	}
	t := g.topics[h.topic]
	if t == nil {
		t = n.autoCreateTopic(h)
	}
	if t == nil {
		return reply(req, rocketmq.ResponseTopicNotExist, "topic["+h.topic+"] not exist, apply first please!"+faqApplyTopic, nil)
	}
	if t.perm&2 == 0 {
		return reply(req, respNoPermission, "the topic["+h.topic+"] sending message is forbidden", nil)
	}
	q := h.queueID
	if q < 0 {
		q = rand.IntN(len(t.queues))
	}
	if q >= len(t.queues) {
		return reply(req, rocketmq.ResponseSystemError, fmt.Sprintf("request queueId[%d] is illegal, %s Producer: %s",
			q, h.topic, h.producerGroup), nil)
	}

	props := h.properties
	uniq := propValue(props, propUniqKey)
	props = appendProp(props, propCluster, g.spec.Cluster)
	queue := t.queues[q]
	off, phys := queue.max, g.commitLog
	storeHost := hostBytes(n.srv.Addr())
	if !c.msg.drop[g.spec.Name] {
		now := c.nowMs()
		msg := encodeMessage(storedMessage{
			topic: h.topic, queueID: q, queueOffset: off, physOffset: phys, sysFlag: h.sysFlag, flag: h.flag,
			bornTimestamp: h.bornTimestamp, bornHost: hostBytes("127.0.0.1:0"), storeTimestamp: now, storeHost: storeHost,
			reconsumeTimes: h.reconsumeTimes, body: req.Body, properties: props,
		})
		c.store(g, h.topic, q, 1, now)
		c.keep(queueKey{g.spec.Name, h.topic, q}, off, msg)
	}
	r := reply(req, 0, "", nil)
	r.ExtFields = map[string]string{
		"msgId":         offsetMsgID(storeHost, phys),
		"queueId":       strconv.Itoa(q),
		"queueOffset":   strconv.FormatInt(off, 10),
		propMsgRegion:   "DefaultRegion",
		propTraceSwitch: "true",
	}
	if uniq != "" {
		r.ExtFields["transactionId"] = uniq
	}
	return r
}

// autoCreateTopic is the broker's createTopicInSendMessageMethod: with
// autoCreateTopicEnable a topic unknown here is created from the default
// topic (TBW102), whose queues bound the count the producer asks for.
func (n *Node) autoCreateTopic(h sendHeader) *topicConf {
	if n.configValue("autoCreateTopicEnable") != "true" {
		return nil
	}
	def := n.g.topics[h.defaultTopic]
	if def == nil || def.perm&1 == 0 { // PERM_INHERIT
		return nil
	}
	queues := min(h.defaultQueueNums, len(def.queues))
	if queues <= 0 {
		return nil
	}
	t := newTopic(h.topic, queues, def.perm&^1)
	n.g.addTopic(t, n.c.nowMs())
	return t
}

func (c *Cluster) keep(k queueKey, off int64, msg []byte) {
	if c.msg.kept == nil {
		c.msg.kept = make(map[queueKey]*keptQueue)
	}
	kq := c.msg.kept[k]
	if kq == nil {
		kq = &keptQueue{}
		c.msg.kept[k] = kq
	}
	kq.put(off, msg)
}

// ---- PULL_MESSAGE (11) ----

type pullHeader struct {
	group, topic                string
	queueID                     int
	offset, commitOffset        int64
	maxNums, sysFlag, suspendMs int64
}

func parsePullHeader(req *rocketmq.Command) (pullHeader, string) {
	var p pullHeader
	var ok bool
	if p.group, ok = req.ExtFields["consumerGroup"]; !ok {
		return p, "consumerGroup"
	}
	if p.topic, ok = req.ExtFields["topic"]; !ok {
		return p, "topic"
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{
		{"queueId", nil}, {"queueOffset", &p.offset}, {"maxMsgNums", &p.maxNums}, {"sysFlag", &p.sysFlag},
		{"commitOffset", &p.commitOffset}, {"suspendTimeoutMillis", &p.suspendMs},
	} {
		v, err := strconv.ParseInt(req.ExtFields[f.name], 10, 64)
		if err != nil {
			return p, f.name
		}
		if f.dst == nil {
			p.queueID = int(v)
			continue
		}
		*f.dst = v
	}
	return p, ""
}

// pullMessage answers at once when there is something to say; otherwise,
// with the suspend flag, it parks the request until a message lands on the
// queue or the hold ends (PullRequestHoldService), then answers
// PULL_NOT_FOUND.
func (n *Node) pullMessage(req *rocketmq.Command) *rocketmq.Command {
	p, missing := parsePullHeader(req)
	if missing != "" {
		return missingField(req, missing)
	}
	c := n.c
	var hold time.Duration
	if p.sysFlag&pullFlagSuspend != 0 && p.suspendMs > 0 {
		hold = time.Duration(p.suspendMs) * time.Millisecond
		if m := c.timing.LongPollMax; m > 0 && hold > m {
			hold = m
		}
	}
	first, holding := true, hold > 0
	var timer *time.Timer
	for {
		c.mu.Lock()
		if c.closed || !n.alive {
			c.mu.Unlock()
			return nil
		}
		resp, wait := n.pullOnce(req, p, first, holding)
		c.mu.Unlock()
		if resp != nil {
			return resp
		}
		if timer == nil {
			timer = time.NewTimer(hold)
			defer timer.Stop()
		}
		first = false
		select {
		case <-wait:
		case <-timer.C:
			holding = false
		case <-n.srv.stopping():
			return nil
		}
	}
}

// pullOnce runs one pass of PullMessageProcessor under the cluster lock. It
// returns the answer, or nil and the channel to wait on when the request is
// to be parked (allowed only while its hold lasts).
func (n *Node) pullOnce(req *rocketmq.Command, p pullHeader, first, mayPark bool) (*rocketmq.Command, <-chan struct{}) {
	c, g := n.c, n.g
	if !g.subs[p.group] {
		if n.configValue("autoCreateSubscriptionGroup") != "true" {
			return reply(req, rocketmq.ResponseSubscriptionGroupAbsent, "subscription group ["+p.group+"] does not exist"+faqApplyTopic, nil), nil
		}
		g.addSub(p.group, c.nowMs())
	}
	t := g.topics[p.topic]
	if t == nil {
		return reply(req, rocketmq.ResponseTopicNotExist, "topic["+p.topic+"] not exist, apply first please!"+faqApplyTopic, nil), nil
	}
	if t.perm&4 == 0 {
		return reply(req, respNoPermission, "the topic["+p.topic+"] pulling message is forbidden", nil), nil
	}
	if p.queueID < 0 || p.queueID >= len(t.queues) {
		return reply(req, rocketmq.ResponseSystemError, fmt.Sprintf("queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d] consumer:[%s]",
			p.queueID, p.topic, len(t.queues), "127.0.0.1"), nil), nil
	}
	if p.sysFlag&pullFlagSubscription == 0 {
		cg := c.cgroups[p.group]
		if len(c.nodeClients(n, p.group)) == 0 || cg == nil {
			return reply(req, respSubscriptionNotExist, "the consumer's group info not exist"+faqApplyTopic, nil), nil
		}
		if _, ok := cg.subTime[p.topic]; !ok && !(isRetry(p.topic) && !cg.broadcasting) {
			return reply(req, respSubscriptionNotExist, "the consumer's subscription not exist"+faqApplyTopic, nil), nil
		}
	}
	if first && p.sysFlag&pullFlagCommitOffset != 0 && n.isMaster() {
		if qs := g.ensureOffsets(p.group, p.topic); p.queueID < len(qs) {
			qs[p.queueID] = p.commitOffset
		}
	}

	q := t.queues[p.queueID]
	off := p.offset
	code, status, next := 0, "FOUND", off
	var count int64
	switch {
	case c.msg.stall[g.spec.Name]:
		code, status = respPullNotFound, "OFFSET_FOUND_NULL"
	case q.max == 0:
		status, next = "NO_MESSAGE_IN_QUEUE", 0
		code = respPullNotFound
		if off != 0 {
			code = respPullOffsetMoved
		}
	case off < q.min:
		code, status, next = respPullOffsetMoved, "OFFSET_TOO_SMALL", q.min
	case off == q.max:
		code, status = respPullNotFound, "OFFSET_OVERFLOW_ONE"
	case off > q.max:
		code, status, next = respPullOffsetMoved, "OFFSET_OVERFLOW_BADLY", q.max
		if q.min == 0 {
			next = 0
		}
	default:
		count = min(q.max-off, max(p.maxNums, 1), maxPullMessages)
		next = off + count
	}
	if code == respPullNotFound && mayPark {
		return nil, c.waiter(queueKey{g.spec.Name, p.topic, p.queueID})
	}
	if !n.isMaster() && code == 0 {
		// slaveReadEnable=false: a slave sends the consumer to the master.
		code, count = respPullRetryImmediately, 0
	}
	r := reply(req, code, status, nil)
	r.ExtFields = map[string]string{
		"nextBeginOffset":      strconv.FormatInt(next, 10),
		"minOffset":            strconv.FormatInt(q.min, 10),
		"maxOffset":            strconv.FormatInt(q.max, 10),
		"suggestWhichBrokerId": "0",
	}
	switch code {
	case 0:
		var body bytes.Buffer
		kq := c.msg.kept[queueKey{g.spec.Name, p.topic, p.queueID}]
		for o := off; o < off+count; o++ {
			if kq != nil {
				if b, ok := kq.msgs[o]; ok {
					body.Write(b)
					continue
				}
			}
			body.Write(n.synthesizeMessage(p.topic, p.queueID, o, q.storeTime(o)))
		}
		r.Body = body.Bytes()
		c.countGets(g, p.group, p.topic, count, c.nowMs())
	case respPullOffsetMoved:
		if n.isMaster() {
			n.offsetMovedEvent()
		}
	}
	return r, nil
}

// offsetMovedEvent stores the OffsetMovedEvent message a master writes when
// it corrects a consumer's offset.
func (n *Node) offsetMovedEvent() {
	const topic = "OFFSET_MOVED_EVENT"
	if t := n.g.topics[topic]; t != nil && len(t.queues) > 0 {
		n.c.store(n.g, topic, 0, 1, n.c.nowMs())
	}
}

// synthesizeMessage stands for a message whose bytes are not kept (made by
// Produce, or evicted): right topic, queue, offset and store time, empty
// body.
func (n *Node) synthesizeMessage(topic string, queue int, off, storeTime int64) []byte {
	host := hostBytes(n.srv.Addr())
	return encodeMessage(storedMessage{
		topic: topic, queueID: queue, queueOffset: off, physOffset: off * msgSize,
		bornTimestamp: storeTime, bornHost: host, storeTimestamp: storeTime, storeHost: host,
		properties: appendProp("", propCluster, n.g.spec.Cluster),
	})
}

// ---- offsets and clients ----

func (n *Node) updateConsumerOffset(req *rocketmq.Command) *rocketmq.Command {
	cg, topic := req.ExtFields["consumerGroup"], req.ExtFields["topic"]
	q, err := strconv.Atoi(req.ExtFields["queueId"])
	if err != nil {
		return missingField(req, "queueId")
	}
	off, err := strconv.ParseInt(req.ExtFields["commitOffset"], 10, 64)
	if err != nil {
		return missingField(req, "commitOffset")
	}
	if cg == "" || topic == "" {
		return missingField(req, "consumerGroup")
	}
	if qs := n.g.ensureOffsets(cg, topic); q >= 0 && q < len(qs) {
		qs[q] = off
	}
	return reply(req, 0, "", nil)
}

// heartbeatBody is HeartbeatData as clients send it (standard JSON).
type heartbeatBody struct {
	ClientID  string `json:"clientID"`
	Consumers []struct {
		GroupName     string `json:"groupName"`
		MessageModel  string `json:"messageModel"`
		Subscriptions []struct {
			Topic string `json:"topic"`
		} `json:"subscriptionDataSet"`
	} `json:"consumerDataSet"`
}

// heartBeat registers the client's consumer groups (ClientManageProcessor):
// the subscription group is created on this broker if missing, a
// clustering group gets its retry topic here, and the client counts as
// online until clientExpiry after its last heartbeat.
func (n *Node) heartBeat(conn uint64, req *rocketmq.Command) *rocketmq.Command {
	var hb heartbeatBody
	if err := json.Unmarshal(req.Body, &hb); err != nil {
		return reply(req, rocketmq.ResponseSystemError, "decode HeartbeatData: "+err.Error(), nil)
	}
	c, g := n.c, n.g
	now := c.nowMs()
	for _, cd := range hb.Consumers {
		if cd.GroupName == "" {
			continue
		}
		g.addSub(cd.GroupName, now)
		cg := c.consumerGroupLocked(cd.GroupName)
		cg.broadcasting = strings.EqualFold(cd.MessageModel, "BROADCASTING")
		for _, s := range cd.Subscriptions {
			if s.Topic == "" || isRetry(s.Topic) {
				continue
			}
			if _, ok := cg.subTime[s.Topic]; !ok {
				cg.topics = append(cg.topics, s.Topic)
				cg.subTime[s.Topic] = now
			}
		}
		if !cg.broadcasting {
			retry := retryPrefix + cd.GroupName
			if _, ok := cg.subTime[retry]; !ok {
				cg.subTime[retry] = now
			}
			g.addTopic(newTopic(retry, 1, 6), now)
		}
		if hb.ClientID == "" {
			continue
		}
		if c.msg.clients == nil {
			c.msg.clients = make(map[*Node]map[string]map[string]*wireClient)
		}
		groups := c.msg.clients[n]
		if groups == nil {
			groups = make(map[string]map[string]*wireClient)
			c.msg.clients[n] = groups
		}
		m := groups[cd.GroupName]
		if m == nil {
			m = make(map[string]*wireClient)
			groups[cd.GroupName] = m
		}
		m[hb.ClientID] = &wireClient{lastSeen: time.Now(), language: req.Language, version: req.Version, conn: conn}
	}
	return reply(req, 0, "", nil)
}

func (n *Node) unregisterClient(req *rocketmq.Command) *rocketmq.Command {
	id, cg := req.ExtFields["clientID"], req.ExtFields["consumerGroup"]
	if id == "" {
		return missingField(req, "clientID")
	}
	if m := n.c.msg.clients[n][cg]; m != nil {
		delete(m, id)
	}
	return reply(req, 0, "", nil)
}

func (n *Node) consumerList(req *rocketmq.Command) *rocketmq.Command {
	cg := req.ExtFields["consumerGroup"]
	ids := n.c.nodeClients(n, cg)
	if len(ids) == 0 {
		return reply(req, rocketmq.ResponseSystemError, "no consumer for this group, "+cg, nil)
	}
	list := make(jarr, len(ids))
	for i, id := range ids {
		list[i] = jstr(id)
	}
	return reply(req, 0, "", encodeJSON(jbean{"consumerIdList": list}))
}

// ---- stored-message layout ----

// storedMessage is one message as the commitlog holds it.
type storedMessage struct {
	topic                         string
	queueID, sysFlag, flag        int
	queueOffset, physOffset       int64
	bornTimestamp, storeTimestamp int64
	bornHost, storeHost           [8]byte
	reconsumeTimes                int
	body                          []byte
	properties                    string
}

// encodeMessage writes the version-1 stored layout (IPv4 hosts): totalSize,
// magic, bodyCRC, queueId, flag, queueOffset, physicalOffset, sysFlag,
// bornTimestamp, bornHost, storeTimestamp, storeHost, reconsumeTimes,
// preparedTransactionOffset, body, topic, properties.
func encodeMessage(m storedMessage) []byte {
	topic, props := m.topic, m.properties
	if len(topic) > 127 {
		topic = topic[:127]
	}
	if len(props) > 32767 {
		props = props[:32767]
	}
	total := 91 + len(m.body) + len(topic) + len(props)
	b := make([]byte, 0, total)
	be := binary.BigEndian
	b = be.AppendUint32(b, uint32(total))
	b = be.AppendUint32(b, messageMagicCode)
	b = be.AppendUint32(b, crc32.ChecksumIEEE(m.body)&0x7FFFFFFF)
	b = be.AppendUint32(b, uint32(m.queueID))
	b = be.AppendUint32(b, uint32(m.flag))
	b = be.AppendUint64(b, uint64(m.queueOffset))
	b = be.AppendUint64(b, uint64(m.physOffset))
	b = be.AppendUint32(b, uint32(m.sysFlag))
	b = be.AppendUint64(b, uint64(m.bornTimestamp))
	b = append(b, m.bornHost[:]...)
	b = be.AppendUint64(b, uint64(m.storeTimestamp))
	b = append(b, m.storeHost[:]...)
	b = be.AppendUint32(b, uint32(m.reconsumeTimes))
	b = be.AppendUint64(b, 0)
	b = be.AppendUint32(b, uint32(len(m.body)))
	b = append(b, m.body...)
	b = append(b, byte(len(topic)))
	b = append(b, topic...)
	b = be.AppendUint16(b, uint16(len(props)))
	b = append(b, props...)
	return b
}

// hostBytes is a socket address in the stored form: IPv4 then port.
func hostBytes(addr string) [8]byte {
	var out [8]byte
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return out
	}
	if ip := net.ParseIP(host).To4(); ip != nil {
		copy(out[:4], ip)
	}
	p, _ := strconv.Atoi(port)
	binary.BigEndian.PutUint32(out[4:], uint32(p))
	return out
}

// offsetMsgID is MessageDecoder.createMessageId: store host and commitlog
// offset in upper-case hex.
func offsetMsgID(storeHost [8]byte, phys int64) string {
	var b [16]byte
	copy(b[:8], storeHost[:])
	binary.BigEndian.PutUint64(b[8:], uint64(phys))
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func propValue(props, key string) string {
	for _, kv := range strings.Split(props, propSep) {
		if k, v, ok := strings.Cut(kv, propNameValueSep); ok && k == key {
			return v
		}
	}
	return ""
}

func appendProp(props, key, value string) string {
	if props != "" && !strings.HasSuffix(props, propSep) {
		props += propSep
	}
	return props + key + propNameValueSep + value + propSep
}
