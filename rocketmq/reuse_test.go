package rocketmq

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestAppendFrameOverwritesBuffer checks that a frame encoded into a used
// buffer is EncodeFrame's, byte for byte, whatever the buffer held.
func TestAppendFrameOverwritesBuffer(t *testing.T) {
	cmds := []*Command{
		NewRequest(CodeGetTopicStatsInfo, map[string]string{"topic": "TopicTest"}, nil),
		NewRequest(CodeGetConsumeStats, map[string]string{"consumerGroup": "g", "topic": "t\u2028<&>"}, nil),
		NewRequest(CodeGetBrokerRuntimeInfo, nil, nil),
		NewRequest(CodeControllerGetSyncStateData, nil, []byte(`["broker-a"]`)),
		NewRequest(CodeDLedgerMetadata, nil, bytes.Repeat([]byte("x"), 5000)),
		{Code: CodeGetMaxOffset, Language: "JAVA", Version: 401, Opaque: -7, Flag: FlagOneway, Remark: "r", ExtFields: map[string]string{"queueId": "3", "topic": "t"}},
		{Code: CodeGetMaxOffset, SerializeType: SerializeRocketMQ, Language: LanguageGo, ExtFields: map[string]string{"queueId": "3"}, Body: []byte("b")},
	}
	dirty := [][]byte{nil, {}, bytes.Repeat([]byte{0xff}, 3), bytes.Repeat([]byte{0xff}, 300), bytes.Repeat([]byte{0xff}, 9000)}
	for _, c := range cmds {
		want, err := EncodeFrame(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirty {
			got, err := appendFrame(slices.Clone(d), c)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("appendFrame(%d dirty bytes, code %d) = %q, %v; want %q", len(d), c.Code, got, err, want)
			}
		}
	}
}

// recordingInvoker keeps a copy of every request on its way to the Client.
type recordingInvoker struct {
	inv  Invoker
	mu   sync.Mutex
	reqs []Command
}

func (r *recordingInvoker) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	c := *req
	c.ExtFields = maps.Clone(req.ExtFields)
	c.Body = slices.Clone(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, c)
	r.mu.Unlock()
	return r.inv.Invoke(ctx, addr, req)
}

// rawRecorder answers every request with SUCCESS and keeps the bytes of
// every frame it received.
type rawRecorder struct {
	mu     sync.Mutex
	frames [][]byte
}

func (r *rawRecorder) handle(nc net.Conn, _ int) {
	for {
		var l [4]byte
		if _, err := io.ReadFull(nc, l[:]); err != nil {
			return
		}
		frame := make([]byte, 4+binary.BigEndian.Uint32(l[:]))
		copy(frame, l[:])
		if _, err := io.ReadFull(nc, frame[4:]); err != nil {
			return
		}
		r.mu.Lock()
		r.frames = append(r.frames, frame)
		r.mu.Unlock()
		req, err := DecodeFrame(frame[4:])
		if err != nil {
			return
		}
		if req.IsOneway() {
			continue
		}
		if writeCmd(nc, NewResponse(req, ResponseSuccess, "")) != nil {
			return
		}
	}
}

// TestReusedRequestFramesOnTheWire calls every Admin method, in turn and
// then concurrently, through a Client that reuses its request calls and
// frames, and checks that each frame the peer received is EncodeFrame of the
// request Admin built, as sent before frames were reused.
func TestReusedRequestFramesOnTheWire(t *testing.T) {
	rec := &rawRecorder{}
	srv := startFake(t, rec.handle)
	client := newTestClient(t, ClientOptions{})
	inv := &recordingInvoker{inv: client}
	a := NewAdmin(inv)
	addr := srv.addr()
	long := strings.Repeat("t", 6000) // beyond maxPooledRequest
	methods := func(ctx context.Context, i int) {
		topic, group := fmt.Sprintf("topic_%d", i), fmt.Sprintf("GID_%d", i)
		if i%7 == 0 {
			topic = long
		}
		// Errors do not matter: only the requests are checked.
		a.BrokerClusterInfo(ctx, addr)
		a.TopicList(ctx, addr)
		a.TopicRoute(ctx, addr, topic)
		a.BrokerRuntimeInfo(ctx, addr)
		a.BrokerConfig(ctx, addr)
		a.AllTopicConfig(ctx, addr)
		a.TopicNames(ctx, addr)
		a.AllSubscriptionGroupConfig(ctx, addr)
		a.TopicStats(ctx, addr, topic)
		a.TopicStatsSummary(ctx, addr, topic)
		a.ConsumeStats(ctx, addr, group, topic)
		a.ConsumeStats(ctx, addr, group, "")
		a.BrokerConsumeStats(ctx, addr)
		a.TopicConsumeByWho(ctx, addr, topic)
		a.ConsumeTimeSpan(ctx, addr, topic, group)
		a.ConsumerConnectionList(ctx, addr, group)
		a.ConsumerConnectionSummary(ctx, addr, group)
		a.BrokerHAStatus(ctx, addr)
		a.BrokerStatsData(ctx, addr, "TOPIC_PUT_NUMS", topic)
		a.MaxOffset(ctx, addr, topic, i)
		a.MinOffset(ctx, addr, topic, i)
		a.ConsumerOffset(ctx, addr, group, topic, i)
		a.DLedgerMetadata(ctx, addr, "g", fmt.Sprint("n", i))
		a.DLedgerTerm(ctx, addr, "g", "n0", fmt.Sprint("n", i+1))
		a.ControllerMetadata(ctx, addr)
		a.ControllerSyncStateData(ctx, addr, []string{topic})
		a.ControllerReplicaInfo(ctx, addr, topic)
		oneway := NewRequest(CodeGetBrokerConfig, map[string]string{"topic": topic}, nil)
		oneway.Flag = FlagOneway
		inv.Invoke(ctx, addr, oneway)
	}
	ctx := ctxTimeout(t, 20e9)
	for i := range 3 {
		methods(ctx, i)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5 {
				methods(ctx, 10*g+i+3)
			}
		})
	}
	wg.Wait()
	waitFor(t, "every frame received", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.frames) == len(inv.reqs)
	})

	// Pair frames with requests by opaque: the Client numbers requests in
	// the order they reach it, which the concurrent part does not fix.
	byOpaque := map[int32][]byte{}
	for _, f := range rec.frames {
		c, err := DecodeFrame(f[4:])
		if err != nil {
			t.Fatal(err)
		}
		byOpaque[c.Opaque] = f
	}
	seen := map[string]bool{}
	for _, req := range inv.reqs {
		var got []byte
		for op, f := range byOpaque {
			want := req
			want.Opaque = op
			wb, err := EncodeFrame(&want)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(wb, f) {
				got = f
				delete(byOpaque, op)
				break
			}
		}
		if got == nil {
			t.Fatalf("no frame on the wire is EncodeFrame of request %d %v (body %q)", req.Code, req.ExtFields, req.Body)
		}
		seen[fmt.Sprint(req.Code)] = true
	}
	if len(seen) < 20 {
		t.Fatalf("only %d request codes exercised", len(seen))
	}
}
