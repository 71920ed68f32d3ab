package rmqsim

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// decodedMessage is a stored message read back by offsets, independently of
// encodeMessage: the layout of PROTOCOL.md §2.4.
type decodedMessage struct {
	total, magic, queueID     uint32
	queueOffset, physOffset   int64
	bornTs, storeTs           int64
	storeHost                 [8]byte
	body                      []byte
	topic                     string
	properties                map[string]string
	storeTimestampAtOffset56  int64
	reconsumeTimes, bodyCRC32 uint32
}

func decodeMessages(t *testing.T, b []byte) []decodedMessage {
	t.Helper()
	var out []decodedMessage
	be := binary.BigEndian
	for len(b) > 0 {
		if len(b) < 91 {
			t.Fatalf("truncated message: %d bytes left", len(b))
		}
		total := be.Uint32(b)
		if int(total) > len(b) {
			t.Fatalf("totalSize %d beyond the %d bytes left", total, len(b))
		}
		m := b[:total]
		b = b[total:]
		d := decodedMessage{
			total: total, magic: be.Uint32(m[4:]), bodyCRC32: be.Uint32(m[8:]), queueID: be.Uint32(m[12:]),
			queueOffset: int64(be.Uint64(m[20:])), physOffset: int64(be.Uint64(m[28:])),
			bornTs: int64(be.Uint64(m[40:])), storeTimestampAtOffset56: int64(be.Uint64(m[56:])),
		}
		d.storeTs = d.storeTimestampAtOffset56
		copy(d.storeHost[:], m[64:72])
		d.reconsumeTimes = be.Uint32(m[72:])
		bodyLen := int(be.Uint32(m[84:]))
		p := 88
		d.body = m[p : p+bodyLen]
		p += bodyLen
		tl := int(m[p])
		d.topic = string(m[p+1 : p+1+tl])
		p += 1 + tl
		pl := int(be.Uint16(m[p:]))
		p += 2
		d.properties = map[string]string{}
		for _, kv := range strings.Split(string(m[p:p+pl]), "\x02") {
			if k, v, ok := strings.Cut(kv, "\x01"); ok {
				d.properties[k] = v
			}
		}
		if p+pl != int(total) {
			t.Fatalf("message fields end at %d, totalSize says %d", p+pl, total)
		}
		out = append(out, d)
	}
	return out
}

// messagingCluster is one master/slave group hosting topic T (2 queues).
func messagingCluster(t *testing.T, timing Timing) (*Cluster, *rocketmq.Client) {
	t.Helper()
	c := start(t, Spec{Groups: []GroupSpec{{Cluster: "C", Name: "b", Replicas: 2}}, Timing: timing})
	must(t, c.CreateTopic("b", "T", 2))
	// No client-side in-flight bound: the tests park more long-polling pulls
	// on one node than it allows, to test the node's own limits.
	cl := rocketmq.NewClient(rocketmq.ClientOptions{RequestTimeout: 5 * time.Second, MaxInFlightPerAddr: -1})
	t.Cleanup(func() { _ = cl.Close() })
	return c, cl
}

func invoke(t *testing.T, cl *rocketmq.Client, addr string, req *rocketmq.Command) *rocketmq.Command {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Invoke(c, addr, req)
	if err != nil {
		t.Fatalf("request %d: %v", req.Code, err)
	}
	return resp
}

func sendReq(topic string, queue int, body, uniq string) *rocketmq.Command {
	return rocketmq.NewRequest(codeSendMessage, map[string]string{
		"producerGroup": "P", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": strconv.Itoa(queue), "sysFlag": "0", "bornTimestamp": "1700000000000", "flag": "0",
		"properties": "UNIQ_KEY\x01" + uniq + "\x02TAGS\x01canary\x02", "reconsumeTimes": "0", "unitMode": "false",
		"batch": "false",
	}, []byte(body))
}

func pullReq(group, topic string, queue int, offset int64, sysFlag, suspendMs int) *rocketmq.Command {
	return rocketmq.NewRequest(rocketmq.CodePullMessage, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queue), "queueOffset": strconv.FormatInt(offset, 10),
		"maxMsgNums": "32", "sysFlag": strconv.Itoa(sysFlag), "commitOffset": "0",
		"suspendTimeoutMillis": strconv.Itoa(suspendMs), "subscription": "*", "subVersion": "0", "expressionType": "TAG",
	}, nil)
}

func heartbeatReq(clientID, group string, topics ...string) *rocketmq.Command {
	var subs []string
	for _, t := range topics {
		subs = append(subs, fmt.Sprintf(`{"topic":%q,"subString":"*","tagsSet":[],"codeSet":[],"subVersion":1,"expressionType":"TAG","classFilterMode":false}`, t))
	}
	body := fmt.Sprintf(`{"clientID":%q,"producerDataSet":[{"groupName":"P"}],"consumerDataSet":[{"groupName":%q,`+
		`"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",`+
		`"subscriptionDataSet":[%s],"unitMode":false}]}`, clientID, group, strings.Join(subs, ","))
	return rocketmq.NewRequest(rocketmq.CodeHeartBeat, nil, []byte(body))
}

const subscribeFlags = pullFlagSubscription

func TestSendStoresInTheModelAndPullAnswersTheStoredLayout(t *testing.T) {
	c, cl := messagingCluster(t, Timing{})
	master := c.Group("b")[0]
	before := time.Now().UnixMilli()
	for i := 0; i < 3; i++ {
		resp := invoke(t, cl, master.Addr(), sendReq("T", 1, "body-"+strconv.Itoa(i), "U"+strconv.Itoa(i)))
		if resp.Code != 0 {
			t.Fatalf("send %d: code %d %q", i, resp.Code, resp.Remark)
		}
		ext := resp.ExtFields
		if ext["queueOffset"] != strconv.Itoa(i) || ext["queueId"] != "1" || len(ext["msgId"]) != 32 ||
			ext["MSG_REGION"] != "DefaultRegion" || ext["TRACE_ON"] != "true" || ext["transactionId"] != "U"+strconv.Itoa(i) {
			t.Errorf("send %d answer: %v", i, ext)
		}
	}
	if got := c.MaxOffset("b", "T", 1); got != 3 {
		t.Fatalf("max offset after 3 sends = %d", got)
	}
	// The collectors see the traffic: topic stats of the admin read.
	stats, err := newAdmin(t, nil).TopicStats(ctx(t), master.Addr(), "T")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range stats.OffsetTable {
		if o.QueueID == 1 && (o.MaxOffset != 3 || o.LastUpdateTimestamp < before) {
			t.Errorf("topic stats of queue 1: %+v", o)
		}
	}

	resp := invoke(t, cl, master.Addr(), pullReq("G", "T", 1, 1, subscribeFlags, 0))
	if resp.Code != 0 || resp.Remark != "FOUND" {
		t.Fatalf("pull: code %d %q", resp.Code, resp.Remark)
	}
	if resp.ExtFields["nextBeginOffset"] != "3" || resp.ExtFields["maxOffset"] != "3" || resp.ExtFields["minOffset"] != "0" ||
		resp.ExtFields["suggestWhichBrokerId"] != "0" {
		t.Errorf("pull ext fields: %v", resp.ExtFields)
	}
	msgs := decodeMessages(t, resp.Body)
	if len(msgs) != 2 {
		t.Fatalf("pulled %d messages, want offsets 1 and 2", len(msgs))
	}
	for i, m := range msgs {
		want := int64(i + 1)
		if m.magic != messageMagicCode || m.queueID != 1 || m.queueOffset != want || m.topic != "T" ||
			string(m.body) != "body-"+strconv.Itoa(i+1) || m.bornTs != 1700000000000 || m.storeTs < before ||
			m.properties["UNIQ_KEY"] != "U"+strconv.Itoa(i+1) || m.properties["TAGS"] != "canary" || m.properties["CLUSTER"] != "C" {
			t.Errorf("message %d: %+v", i, m)
		}
		if m.storeHost != hostBytes(master.Addr()) {
			t.Errorf("message %d store host %v, want %s", i, m.storeHost, master.Addr())
		}
	}
	if msgs[0].physOffset >= msgs[1].physOffset {
		t.Errorf("physical offsets not increasing: %d, %d", msgs[0].physOffset, msgs[1].physOffset)
	}
}

func TestSendV2AndAutoCreatedTopic(t *testing.T) {
	c, cl := messagingCluster(t, Timing{})
	master := c.Group("b")[0]
	v2 := rocketmq.NewRequest(codeSendMessageV2, map[string]string{
		"a": "P", "b": "Fresh", "c": "TBW102", "d": "8", "e": "3", "f": "0", "g": "1700000000000", "h": "0",
		"i": "UNIQ_KEY\x01X\x02", "j": "0", "k": "false", "m": "false",
	}, []byte("x"))
	resp := invoke(t, cl, master.Addr(), v2)
	if resp.Code != 0 || resp.ExtFields["queueId"] != "3" {
		t.Fatalf("V2 send to an auto-created topic: code %d %q %v", resp.Code, resp.Remark, resp.ExtFields)
	}
	// TBW102 has 4 queues: the producer's 8 is capped.
	cfg, err := newAdmin(t, nil).AllTopicConfig(ctx(t), master.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if tc := cfg.TopicConfigTable["Fresh"]; tc.WriteQueueNums != 4 || tc.Perm != 6 {
		t.Errorf("auto-created topic config %+v", tc)
	}
	master.SetConfigValue("autoCreateTopicEnable", "false")
	resp = invoke(t, cl, master.Addr(), sendReq("Other", 0, "x", "Y"))
	if resp.Code != rocketmq.ResponseTopicNotExist || !strings.HasPrefix(resp.Remark, "topic[Other] not exist") {
		t.Errorf("send without auto-creation: code %d %q", resp.Code, resp.Remark)
	}
	if resp := invoke(t, cl, master.Addr(), sendReq("T", 2, "x", "Z")); resp.Code != rocketmq.ResponseSystemError {
		t.Errorf("send to queue 2 of a 2-queue topic: code %d", resp.Code)
	}
	bad := sendReq("T", 0, "x", "Z")
	delete(bad.ExtFields, "bornTimestamp")
	if resp := invoke(t, cl, master.Addr(), bad); resp.Code != rocketmq.ResponseSystemError || !strings.Contains(resp.Remark, "bornTimestamp") {
		t.Errorf("send without bornTimestamp: code %d %q", resp.Code, resp.Remark)
	}
}

func TestSlaveRefusesSendsAndRedirectsPulls(t *testing.T) {
	c, cl := messagingCluster(t, Timing{})
	master, slave := c.Group("b")[0], c.Group("b")[1]
	invoke(t, cl, master.Addr(), sendReq("T", 0, "x", "A"))
	if resp := invoke(t, cl, slave.Addr(), sendReq("T", 0, "x", "B")); resp.Code != respServiceNotAvailable {
		t.Errorf("send to the slave: code %d %q", resp.Code, resp.Remark)
	}
	if resp := invoke(t, cl, slave.Addr(), pullReq("G", "T", 0, 0, subscribeFlags, 0)); resp.Code != respPullRetryImmediately ||
		resp.ExtFields["suggestWhichBrokerId"] != "0" {
		t.Errorf("pull from the slave: code %d %v", resp.Code, resp.ExtFields)
	}
}

func TestPullOffsetsOutOfRange(t *testing.T) {
	c, cl := messagingCluster(t, Timing{})
	addr := c.Group("b")[0].Addr()
	mustN(t)(c.Produce("T", 20)) // 10 per queue, synthesized on pull
	for _, tc := range []struct {
		offset   int64
		code     int
		status   string
		next     string
		expireTo int64
	}{
		{offset: 11, code: respPullOffsetMoved, status: "OFFSET_OVERFLOW_BADLY", next: "0"},
		{offset: 10, code: respPullNotFound, status: "OFFSET_OVERFLOW_ONE", next: "10"},
		{offset: 2, code: respPullOffsetMoved, status: "OFFSET_TOO_SMALL", next: "4", expireTo: 4},
		{offset: 11, code: respPullOffsetMoved, status: "OFFSET_OVERFLOW_BADLY", next: "10"},
	} {
		if tc.expireTo > 0 {
			must(t, c.Expire("b", "T", 0, tc.expireTo))
		}
		resp := invoke(t, cl, addr, pullReq("G", "T", 0, tc.offset, subscribeFlags, 0))
		if resp.Code != tc.code || resp.Remark != tc.status || resp.ExtFields["nextBeginOffset"] != tc.next {
			t.Errorf("pull at %d: code %d %q next %s, want %d %q %s", tc.offset, resp.Code, resp.Remark,
				resp.ExtFields["nextBeginOffset"], tc.code, tc.status, tc.next)
		}
	}
	resp := invoke(t, cl, addr, pullReq("G", "T", 1, 7, subscribeFlags, 0))
	msgs := decodeMessages(t, resp.Body)
	if resp.Code != 0 || len(msgs) != 3 || msgs[0].queueOffset != 7 || len(msgs[0].body) != 0 || msgs[2].storeTs <= 0 {
		t.Errorf("pull of Produce-made messages: code %d, %+v", resp.Code, msgs)
	}
	if resp := invoke(t, cl, addr, pullReq("G", "Nope", 0, 0, subscribeFlags, 0)); resp.Code != rocketmq.ResponseTopicNotExist {
		t.Errorf("pull of an unknown topic: code %d", resp.Code)
	}
}

func TestHeartbeatRegistersTheConsumer(t *testing.T) {
	c, cl := messagingCluster(t, Timing{})
	addr := c.Group("b")[0].Addr()
	list := rocketmq.NewRequest(codeGetConsumerListByGroup, map[string]string{"consumerGroup": "G"}, nil)
	if resp := invoke(t, cl, addr, list); resp.Code != rocketmq.ResponseSystemError || resp.Remark != "no consumer for this group, G" {
		t.Errorf("consumer list before any heartbeat: code %d %q", resp.Code, resp.Remark)
	}
	// Without the subscription flag the broker needs the group's heartbeat.
	if resp := invoke(t, cl, addr, pullReq("G", "T", 0, 0, 0, 0)); resp.Code != respSubscriptionNotExist {
		t.Errorf("pull before the heartbeat: code %d %q", resp.Code, resp.Remark)
	}
	for _, id := range []string{"10.0.0.2@b", "10.0.0.1@a"} {
		if resp := invoke(t, cl, addr, heartbeatReq(id, "G", "T", "%RETRY%G")); resp.Code != 0 {
			t.Fatalf("heartbeat: code %d %q", resp.Code, resp.Remark)
		}
	}
	resp := invoke(t, cl, addr, list)
	if resp.Code != 0 || string(resp.Body) != `{"consumerIdList":["10.0.0.1@a","10.0.0.2@b"]}` {
		t.Errorf("consumer list: code %d %s", resp.Code, resp.Body)
	}
	if resp := invoke(t, cl, addr, pullReq("G", "T", 0, 0, 0, 0)); resp.Code != respPullNotFound {
		t.Errorf("pull after the heartbeat: code %d %q", resp.Code, resp.Remark)
	}
	// The admin reads see the group online with its subscription and retry topic.
	admin := newAdmin(t, nil)
	conn, err := admin.ConsumerConnectionList(ctx(t), addr, "G")
	if err != nil {
		t.Fatal(err)
	}
	if len(conn.ConnectionSet) != 2 || conn.ConnectionSet[0].Language != "GO" {
		t.Errorf("connections: %+v", conn.ConnectionSet)
	}
	if _, ok := conn.SubscriptionTable["%RETRY%G"]; !ok || len(conn.SubscriptionTable) != 2 {
		t.Errorf("subscriptions: %v", conn.SubscriptionTable)
	}
	who, err := admin.TopicConsumeByWho(ctx(t), addr, "T")
	if err != nil || len(who.GroupList) != 1 || who.GroupList[0] != "G" {
		t.Errorf("consume by who: %v %v", who, err)
	}
	if cfg, err := admin.AllTopicConfig(ctx(t), addr); err != nil || cfg.TopicConfigTable["%RETRY%G"].ReadQueueNums != 1 {
		t.Errorf("retry topic not created by the heartbeat: %v", err)
	}

	unreg := rocketmq.NewRequest(codeUnregisterClient, map[string]string{"clientID": "10.0.0.1@a", "consumerGroup": "G"}, nil)
	if resp := invoke(t, cl, addr, unreg); resp.Code != 0 {
		t.Errorf("unregister: code %d", resp.Code)
	}
	if got := c.ConsumerClients("G"); len(got) != 1 || got[0] != "10.0.0.2@b" {
		t.Errorf("clients after unregister: %v", got)
	}
}

func TestConsumerOffsetsFromTheWire(t *testing.T) {
	c, cl := messagingCluster(t, Timing{})
	addr := c.Group("b")[0].Addr()
	invoke(t, cl, addr, sendReq("T", 0, "x", "A"))
	upd := rocketmq.NewRequest(codeUpdateConsumerOffset, map[string]string{"consumerGroup": "G", "topic": "T", "queueId": "0", "commitOffset": "1"}, nil)
	if resp := invoke(t, cl, addr, upd); resp.Code != 0 {
		t.Fatalf("update offset: code %d", resp.Code)
	}
	if got := c.ConsumerOffset("b", "G", "T", 0); got != 1 {
		t.Errorf("offset after UPDATE_CONSUMER_OFFSET = %d", got)
	}
	q := rocketmq.NewRequest(rocketmq.CodeQueryConsumerOffset, map[string]string{"consumerGroup": "G", "topic": "T", "queueId": "0"}, nil)
	if resp := invoke(t, cl, addr, q); resp.Code != 0 || resp.ExtFields["offset"] != "1" {
		t.Errorf("query offset: code %d %v", resp.Code, resp.ExtFields)
	}
	// A pull with the commit flag stores its commitOffset.
	p := pullReq("G", "T", 1, 0, subscribeFlags|pullFlagCommitOffset, 0)
	p.ExtFields["commitOffset"] = "0"
	invoke(t, cl, addr, p)
	if got := c.ConsumerOffset("b", "G", "T", 1); got != 0 {
		t.Errorf("offset after a committing pull = %d", got)
	}
	// Oneway, as rocketmq-client-go sends it: no answer, offset stored.
	ow := rocketmq.NewRequest(codeUpdateConsumerOffset, map[string]string{"consumerGroup": "G", "topic": "T", "queueId": "0", "commitOffset": "0"}, nil)
	ow.Flag |= rocketmq.FlagOneway
	ow.Opaque = 99
	if _, err := rawCall(addr, ow, 200*time.Millisecond); !isTimeout(err) {
		t.Errorf("oneway update answered: %v", err)
	}
	eventually(t, "oneway offset update", time.Second, func() bool { return c.ConsumerOffset("b", "G", "T", 0) == 0 })
}

func TestLongPollingPull(t *testing.T) {
	c, cl := messagingCluster(t, Timing{LongPollMax: 150 * time.Millisecond})
	addr := c.Group("b")[0].Addr()

	t.Run("hold ends without a message", func(t *testing.T) {
		begin := time.Now()
		resp := invoke(t, cl, addr, pullReq("G", "T", 0, 0, subscribeFlags|pullFlagSuspend, 20000))
		if el := time.Since(begin); resp.Code != respPullNotFound || el < 150*time.Millisecond || el > 5*time.Second {
			t.Errorf("parked pull: code %d %q after %v", resp.Code, resp.Remark, el)
		}
	})
	t.Run("a message wakes the parked pull", func(t *testing.T) {
		c2, cl2 := messagingCluster(t, Timing{})
		addr2 := c2.Group("b")[0].Addr()
		got := make(chan *rocketmq.Command, 1)
		begin := time.Now()
		go func() {
			cx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := cl2.Invoke(cx, addr2, pullReq("G", "T", 1, 0, subscribeFlags|pullFlagSuspend, 8000))
			if err != nil {
				resp = nil
			}
			got <- resp
		}()
		time.Sleep(100 * time.Millisecond)
		invoke(t, cl2, addr2, sendReq("T", 1, "wake", "W"))
		resp := <-got
		if resp == nil || resp.Code != 0 {
			t.Fatalf("woken pull: %+v", resp)
		}
		if msgs := decodeMessages(t, resp.Body); len(msgs) != 1 || string(msgs[0].body) != "wake" || time.Since(begin) > 4*time.Second {
			t.Errorf("woken pull returned %+v after %v", msgs, time.Since(begin))
		}
	})
	t.Run("parked pulls do not starve other requests", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := 0; i < 2*maxInflightPerConn; i++ {
			wg.Go(func() {
				cx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, _ = cl.Invoke(cx, addr, pullReq("G", "T", i%2, 0, subscribeFlags|pullFlagSuspend, 20000))
			})
		}
		time.Sleep(50 * time.Millisecond)
		begin := time.Now()
		if resp := invoke(t, cl, addr, rocketmq.NewRequest(rocketmq.CodeGetBrokerConfig, nil, nil)); resp.Code != 0 {
			t.Errorf("config read behind parked pulls: code %d", resp.Code)
		}
		// Behind the parked pulls it would wait their 20 s suspension; the
		// bound leaves a loaded -race CI machine room and still tells.
		if el := time.Since(begin); el > 5*time.Second {
			t.Errorf("config read waited %v behind parked pulls", el)
		}
		wg.Wait()
	})
}

func TestKillReleasesParkedPulls(t *testing.T) {
	c, _ := messagingCluster(t, Timing{})
	master := c.Group("b")[0]
	done := make(chan error, 1)
	go func() {
		_, err := rawCall(master.Addr(), pullReq("G", "T", 0, 0, subscribeFlags|pullFlagSuspend, 30000), 20*time.Second)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	begin := time.Now()
	master.Kill()
	if el := time.Since(begin); el > 2*time.Second {
		t.Errorf("Kill took %v with a parked pull", el)
	}
	if err := <-done; err == nil || isTimeout(err) {
		t.Errorf("parked pull of a killed node: %v, want the connection closed", err)
	}
}

func TestMessagingFaultHooks(t *testing.T) {
	c, cl := messagingCluster(t, Timing{LongPollMax: 200 * time.Millisecond})
	master := c.Group("b")[0]
	addr := master.Addr()

	must(t, c.DropSends("b", true))
	resp := invoke(t, cl, addr, sendReq("T", 0, "lost", "L"))
	if resp.Code != 0 || c.MaxOffset("b", "T", 0) != 0 {
		t.Errorf("dropped send: code %d, max offset %d", resp.Code, c.MaxOffset("b", "T", 0))
	}
	must(t, c.DropSends("b", false))

	invoke(t, cl, addr, sendReq("T", 0, "kept", "K"))
	must(t, c.StallPulls("b", true))
	if resp := invoke(t, cl, addr, pullReq("G", "T", 0, 0, subscribeFlags|pullFlagSuspend, 20000)); resp.Code != respPullNotFound {
		t.Errorf("stalled pull: code %d", resp.Code)
	}
	must(t, c.StallPulls("b", false))
	if resp := invoke(t, cl, addr, pullReq("G", "T", 0, 0, subscribeFlags, 0)); resp.Code != 0 || len(decodeMessages(t, resp.Body)) != 1 {
		t.Errorf("pull after the stall: code %d", resp.Code)
	}
	if err := c.StallPulls("nope", true); err == nil {
		t.Error("StallPulls accepted an unknown group")
	}

	// Send failures come from the generic faults, limited to SEND_MESSAGE.
	master.SetFault(ErrorCode(respServiceNotAvailable, "service not available now").For(codeSendMessage))
	if resp := invoke(t, cl, addr, sendReq("T", 0, "x", "F")); resp.Code != respServiceNotAvailable {
		t.Errorf("faulty send: code %d", resp.Code)
	}
	master.ClearFault()
}

func TestSignedClientRequestsUnderACL(t *testing.T) {
	acct := Account{AccessKey: "canary", SecretKey: "canary-secret"}
	c := start(t, Spec{Groups: []GroupSpec{{Cluster: "C", Name: "b"}}, ACL: &ACL{Accounts: []Account{acct}}})
	must(t, c.CreateTopic("b", "T", 1))
	addr := c.Group("b")[0].Addr()
	signed := rocketmq.NewClient(rocketmq.ClientOptions{RequestTimeout: 3 * time.Second,
		Credentials: &rocketmq.Credentials{AccessKey: acct.AccessKey, SecretKey: acct.SecretKey}})
	defer signed.Close()
	if resp := invoke(t, signed, addr, sendReq("T", 0, "x", "S")); resp.Code != 0 {
		t.Errorf("signed send: code %d %q", resp.Code, resp.Remark)
	}
	if resp := mustCall(t, addr, sendReq("T", 0, "x", "U")); resp.Code != rocketmq.ResponseSystemError || !strings.Contains(resp.Remark, "AclException") {
		t.Errorf("unsigned send: code %d %q", resp.Code, resp.Remark)
	}
}

func TestEncodeMessageLayout(t *testing.T) {
	m := encodeMessage(storedMessage{topic: "T", queueID: 2, queueOffset: 5, storeTimestamp: 1234, body: []byte("abc"), properties: "a\x01b\x02"})
	if len(m) != 91+3+1+4 {
		t.Fatalf("length %d", len(m))
	}
	d := decodeMessages(t, m)[0]
	if d.storeTimestampAtOffset56 != 1234 || d.queueID != 2 || d.queueOffset != 5 || string(d.body) != "abc" || d.properties["a"] != "b" {
		t.Errorf("decoded %+v", d)
	}
	if id := offsetMsgID(hostBytes("127.0.0.1:10911"), 0x10); id != "7F00000100002A9F0000000000000010" {
		t.Errorf("msg id %s", id)
	}
}

func TestClientRegistrationEndsWithItsConnection(t *testing.T) {
	c, cl := messagingCluster(t, Timing{})
	master, slave := c.Group("b")[0], c.Group("b")[1]
	// rawCall closes its connection after the answer.
	if resp := mustCall(t, master.Addr(), heartbeatReq("10.0.0.9@gone", "G", "T")); resp.Code != 0 {
		t.Fatalf("heartbeat: code %d", resp.Code)
	}
	eventually(t, "the registration of a closed connection to go", time.Second, func() bool {
		return len(c.ConsumerClients("G")) == 0
	})
	// A pooled connection keeps it; each node has its own registry.
	invoke(t, cl, master.Addr(), heartbeatReq("10.0.0.1@a", "G", "T"))
	invoke(t, cl, slave.Addr(), heartbeatReq("10.0.0.1@a", "G", "T"))
	list := rocketmq.NewRequest(codeGetConsumerListByGroup, map[string]string{"consumerGroup": "G"}, nil)
	slave.Kill()
	if got := c.ConsumerClients("G"); len(got) != 1 {
		t.Errorf("clients after the slave died: %v", got)
	}
	if resp := invoke(t, cl, master.Addr(), list); resp.Code != 0 {
		t.Errorf("master's consumer list after the slave died: code %d", resp.Code)
	}
	must(t, slave.Restart())
	c.RegisterNow(slave)
	if resp := invoke(t, cl, slave.Addr(), list); resp.Code != rocketmq.ResponseSystemError {
		t.Errorf("restarted slave remembers clients: code %d %s", resp.Code, resp.Body)
	}
}
