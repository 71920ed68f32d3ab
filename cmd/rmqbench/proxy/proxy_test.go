package proxy

import (
	"bufio"
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rocketmq-exporter/rocketmq_exporter/cmd/rmqbench/scenario"
	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

func TestProxyRewritesCountsAndFreezes(t *testing.T) {
	defer goleak.VerifyNone(t)
	spec := scenario.Spec{Topics: 4, Queues: 2, Groups: 3, BrokerGroups: 2}
	sim, err := scenario.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	p, err := Start(scenario.Endpoints(sim), Options{Freeze: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client := rocketmq.NewClient(rocketmq.ClientOptions{})
	defer client.Close()
	admin := rocketmq.NewAdmin(client)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ns := p.Addr(sim.NameServerAddrs()[0])
	ci, err := admin.BrokerClusterInfo(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	leader := sim.Leader(scenario.BrokerGroup(1))
	if got, want := ci.BrokerAddrTable[scenario.BrokerGroup(1)].BrokerAddrs[0], p.Addr(leader.Addr()); got != want {
		t.Fatalf("master of %s listed as %s, want the proxy's %s", scenario.BrokerGroup(1), got, want)
	}
	cfg, err := admin.BrokerConfig(ctx, p.Addr(sim.Leader(scenario.BrokerGroup(0)).Addr()))
	if err != nil {
		t.Fatal(err)
	}
	self := sim.Leader(scenario.BrokerGroup(0))
	if want := self.SelfID() + "-" + p.Addr(self.DLedgerAddr()); !strings.Contains(cfg["dLegerPeers"], want) {
		t.Errorf("dLegerPeers %q does not name the proxy's DLedger port %s", cfg["dLegerPeers"], want)
	}

	topic := scenario.Topic(1) // on broker group 1
	direct, err := admin.TopicStats(ctx, leader.Addr(), topic)
	if err != nil {
		t.Fatal(err)
	}
	p.Take()
	for range 2 {
		via, err := admin.TopicStats(ctx, p.Addr(leader.Addr()), topic)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(direct, via) {
			t.Fatalf("through the proxy %+v, direct %+v", via, direct)
		}
	}
	if _, err := sim.Produce(topic, 10); err != nil {
		t.Fatal(err)
	}
	frozen, err := admin.TopicStats(ctx, p.Addr(leader.Addr()), topic)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(direct, frozen) {
		t.Error("a frozen proxy asked upstream again")
	}
	if got := p.Take(); !reflect.DeepEqual(got, map[int]int{rocketmq.CodeGetTopicStatsInfo: 3}) {
		t.Errorf("counts %v, want three topic stats", got)
	}
}

// A replayed answer is written piece by piece; it must be the frame
// frame() builds, for any opaque.
func TestAnswerWriteToMatchesFrame(t *testing.T) {
	resp := rocketmq.NewRequest(0, map[string]string{"k": "v"}, []byte(`{"offsetTable":{}}`))
	resp.Flag |= rocketmq.FlagResponse
	resp.Remark = "ok"
	a, err := newAnswer(resp)
	if err != nil {
		t.Fatal(err)
	}
	for _, opaque := range []int32{0, 7, -1, 1 << 30, -1 << 31} {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := a.writeTo(w, opaque); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if want := a.frame(opaque); !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("opaque %d: writeTo %q, frame %q", opaque, buf.Bytes(), want)
		}
		cmd, err := rocketmq.DecodeFrame(buf.Bytes()[4:])
		if err != nil || cmd.Opaque != opaque || string(cmd.Body) != `{"offsetTable":{}}` {
			t.Errorf("opaque %d: decoded %+v, %v", opaque, cmd, err)
		}
	}
}

// rawKey ignores the opaque only: the same request under two opaques has
// one key, any other difference (ext fields, an ext field named opaque,
// body, upstream) another one.
func TestRawKey(t *testing.T) {
	frame := func(opaque int32, ext map[string]string, body string) []byte {
		req := rocketmq.NewRequest(rocketmq.CodeGetTopicStatsInfo, ext, []byte(body))
		req.Opaque = opaque
		f, err := rocketmq.EncodeFrame(req)
		if err != nil {
			t.Fatal(err)
		}
		return f[4:]
	}
	k1, o1, ok1 := rawKey("a", frame(7, map[string]string{"topic": "T"}, ""))
	k2, o2, ok2 := rawKey("a", frame(-123456, map[string]string{"topic": "T"}, ""))
	if !ok1 || !ok2 || o1 != 7 || o2 != -123456 || k1 != k2 {
		t.Fatalf("same request: keys %q %q, opaques %d %d, ok %v %v", k1, k2, o1, o2, ok1, ok2)
	}
	for name, other := range map[string][]byte{
		"ext value":        frame(7, map[string]string{"topic": "U"}, ""),
		"ext named opaque": frame(7, map[string]string{"topic": "T", "opaque": "5"}, ""),
		"body":             frame(7, map[string]string{"topic": "T"}, "x"),
	} {
		k, o, ok := rawKey("a", other)
		if !ok || o != 7 || k == k1 {
			t.Errorf("%s: key %q (same: %v), opaque %d, ok %v", name, k, k == k1, o, ok)
		}
	}
	if k, _, _ := rawKey("b", frame(7, map[string]string{"topic": "T"}, "")); k == k1 {
		t.Error("two upstreams share a key")
	}
	bin := rocketmq.NewRequest(rocketmq.CodeGetTopicStatsInfo, nil, nil)
	bin.SerializeType = rocketmq.SerializeRocketMQ
	f, err := rocketmq.EncodeFrame(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := rawKey("a", f[4:]); ok {
		t.Error("binary header keyed")
	}
}
