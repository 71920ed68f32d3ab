package rocketmq

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Admin gives the buffer of every answer back to the Client's pool once it
// has decoded it, where the next answer overwrites it. The tests below hold
// the decoders to what makes that safe: nothing they return, errors
// included, refers to the body they were given.

// releaseCall is one Admin method, called with fixed arguments.
type releaseCall struct {
	name string
	call func(ctx context.Context, a *Admin) (any, error)
}

// releaseCalls are all the Admin methods, the ones that decode a body and
// the ones that read only the header alike.
var releaseCalls = []releaseCall{
	{"BrokerClusterInfo", func(ctx context.Context, a *Admin) (any, error) { return a.BrokerClusterInfo(ctx, "a:1") }},
	{"TopicList", func(ctx context.Context, a *Admin) (any, error) { return a.TopicList(ctx, "a:1") }},
	{"TopicRoute", func(ctx context.Context, a *Admin) (any, error) { return a.TopicRoute(ctx, "a:1", "T") }},
	{"BrokerRuntimeInfo", func(ctx context.Context, a *Admin) (any, error) { return a.BrokerRuntimeInfo(ctx, "a:1") }},
	{"BrokerConfig", func(ctx context.Context, a *Admin) (any, error) { return a.BrokerConfig(ctx, "a:1") }},
	{"AllTopicConfig", func(ctx context.Context, a *Admin) (any, error) { return a.AllTopicConfig(ctx, "a:1") }},
	{"TopicNames", func(ctx context.Context, a *Admin) (any, error) { return a.TopicNames(ctx, "a:1") }},
	{"AllSubscriptionGroupConfig", func(ctx context.Context, a *Admin) (any, error) {
		return a.AllSubscriptionGroupConfig(ctx, "a:1")
	}},
	{"TopicStats", func(ctx context.Context, a *Admin) (any, error) { return a.TopicStats(ctx, "a:1", "T") }},
	{"TopicStatsSummary", func(ctx context.Context, a *Admin) (any, error) { return a.TopicStatsSummary(ctx, "a:1", "T") }},
	{"ConsumeStats", func(ctx context.Context, a *Admin) (any, error) { return a.ConsumeStats(ctx, "a:1", "G", "") }},
	{"BrokerConsumeStats", func(ctx context.Context, a *Admin) (any, error) { return a.BrokerConsumeStats(ctx, "a:1") }},
	{"TopicConsumeByWho", func(ctx context.Context, a *Admin) (any, error) { return a.TopicConsumeByWho(ctx, "a:1", "T") }},
	{"ConsumeTimeSpan", func(ctx context.Context, a *Admin) (any, error) { return a.ConsumeTimeSpan(ctx, "a:1", "T", "G") }},
	{"ConsumerConnectionList", func(ctx context.Context, a *Admin) (any, error) {
		return a.ConsumerConnectionList(ctx, "a:1", "G")
	}},
	{"ConsumerConnectionSummary", func(ctx context.Context, a *Admin) (any, error) {
		return a.ConsumerConnectionSummary(ctx, "a:1", "G")
	}},
	{"BrokerHAStatus", func(ctx context.Context, a *Admin) (any, error) { return a.BrokerHAStatus(ctx, "a:1") }},
	{"BrokerStatsData", func(ctx context.Context, a *Admin) (any, error) {
		return a.BrokerStatsData(ctx, "a:1", "TOPIC_PUT_NUMS", "T")
	}},
	{"MaxOffset", func(ctx context.Context, a *Admin) (any, error) { return a.MaxOffset(ctx, "a:1", "T", 0) }},
	{"MinOffset", func(ctx context.Context, a *Admin) (any, error) { return a.MinOffset(ctx, "a:1", "T", 0) }},
	{"ConsumerOffset", func(ctx context.Context, a *Admin) (any, error) { return a.ConsumerOffset(ctx, "a:1", "G", "T", 0) }},
	{"DLedgerMetadata", func(ctx context.Context, a *Admin) (any, error) { return a.DLedgerMetadata(ctx, "a:1", "g", "n0") }},
	{"DLedgerTerm", func(ctx context.Context, a *Admin) (any, error) { return a.DLedgerTerm(ctx, "a:1", "g", "n0", "n1") }},
	{"ControllerMetadata", func(ctx context.Context, a *Admin) (any, error) { return a.ControllerMetadata(ctx, "a:1") }},
	{"ControllerSyncStateData", func(ctx context.Context, a *Admin) (any, error) {
		return a.ControllerSyncStateData(ctx, "a:1", []string{"b"})
	}},
	{"ControllerReplicaInfo", func(ctx context.Context, a *Admin) (any, error) {
		return a.ControllerReplicaInfo(ctx, "a:1", "b")
	}},
}

// Every Admin method is in releaseCalls: a method added later cannot skip
// the check.
func TestReleaseCallsCoverAdmin(t *testing.T) {
	listed := map[string]bool{}
	for _, c := range releaseCalls {
		listed[c.name] = true
	}
	at := reflect.TypeFor[*Admin]()
	for i := range at.NumMethod() {
		if name := at.Method(i).Name; !listed[name] {
			t.Errorf("Admin.%s is not in releaseCalls", name)
		}
	}
}

// scribbler is a framePool that overwrites every buffer given back, as the
// next answer read into it would, and counts them.
type scribbler struct {
	framePool
	mu   sync.Mutex
	puts int
}

func newScribbler() *scribbler {
	s := &scribbler{}
	s.onPut = func(b []byte) {
		for i := range b {
			b[i] = "{\"[0:,]}"[i%8] // JSON's own bytes: a decoder reading them does not stop at once
		}
		s.mu.Lock()
		s.puts++
		s.mu.Unlock()
	}
	return s
}

func (s *scribbler) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}

// frameInvoker answers every request with a successful answer carrying
// body (and the extFields the header-only reads need), read by readFrame
// into a buffer of pool, or into a fresh one when pool is nil.
type frameInvoker struct {
	body []byte
	pool *framePool
}

func (f *frameInvoker) Invoke(_ context.Context, _ string, req *Command) (*Command, error) {
	resp := &Command{
		Code: successCode(req.Code), Language: "JAVA", Version: DefaultVersion, Opaque: req.Opaque, Flag: FlagResponse,
		ExtFields: map[string]string{"offset": "7", "masterAddress": "m:1", "masterEpoch": "2", "isLeader": "true"},
		Body:      f.body,
	}
	frame, err := EncodeFrame(resp)
	if err != nil {
		return nil, err
	}
	return readFrame(bytes.NewReader(frame), 0, f.pool)
}

// checkReleased runs every Admin method on body twice: with the answer in
// a pooled buffer that is scribbled over when Admin gives it back, and with
// the answer in a buffer of its own. Results and errors must be the same,
// and every pooled buffer must have been given back.
func checkReleased(t *testing.T, body []byte) {
	t.Helper()
	ctx := context.Background()
	for _, c := range releaseCalls {
		pool := newScribbler()
		got, gotErr := c.call(ctx, NewAdmin(&frameInvoker{body: bytes.Clone(body), pool: &pool.framePool}))
		// Given back by Admin, or by readFrame when there is no body to keep.
		if n := pool.count(); n != 1 {
			t.Fatalf("%s on %q: %d buffers given back, want 1", c.name, body, n)
		}
		want, wantErr := c.call(ctx, NewAdmin(&frameInvoker{body: bytes.Clone(body)}))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s on %q: decoded from a released buffer\n%#v\nfrom its own\n%#v", c.name, body, got, want)
		}
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && (gotErr.Error() != wantErr.Error() || !reflect.DeepEqual(gotErr, wantErr)) {
			t.Fatalf("%s on %q: error from a released buffer %v, from its own %v", c.name, body, gotErr, wantErr)
		}
	}
}

// releaseBodies are the recorded answers, the fuzz corpora of the decoders
// and a few bodies whose errors quote the input.
func releaseBodies(tb testing.TB) map[string][]byte {
	tb.Helper()
	bodies := fixtureBodies(tb)
	for _, target := range []string{"FuzzDecoders", "FuzzFastDecoders"} {
		for name, b := range fuzzCorpus(tb, target) {
			bodies["fuzz/"+target+"/"+name] = b
		}
	}
	for i, b := range []string{
		`{"offsetTable":{{"queueId":"x"}:{}}}`, // key quoted in the error
		`{"offsetTable":{"not a queue":{}}}`,   // likewise
		`{"syncStateSet":[{"a":1}]}`,           // member quoted in the error
		`{"table":{"k":1}}`,                    // type error naming a field
		`{"connectionSet":[{"clientId":"\u00e9","clientAddr":"a"}],"subscriptionTable":{"T":{"tagsSet":["x"]}}}`,
		"k=v\nbrokerName=b\xff\n", // properties text repaired to UTF-8
		`{"brokerAddrTable":{"b":{"brokerAddrs":{0:"a:1"}}},"clusterAddrTable":{"c":["b"]}}`,
	} {
		bodies["extra/"+strconv.Itoa(i)] = []byte(b)
	}
	return bodies
}

// fuzzCorpus reads the []byte entries of testdata/fuzz/<target>.
func fuzzCorpus(tb testing.TB, target string) map[string][]byte {
	tb.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" {
			tb.Fatalf("%s: not a one-argument corpus entry", e.Name())
		}
		arg, ok := strings.CutPrefix(lines[1], "[]byte(")
		arg, ok2 := strings.CutSuffix(arg, ")")
		s, err := strconv.Unquote(arg)
		if !ok || !ok2 || err != nil {
			tb.Fatalf("%s: cannot read %q", e.Name(), lines[1])
		}
		out[e.Name()] = []byte(s)
	}
	if len(out) == 0 {
		tb.Fatalf("empty corpus %s", dir)
	}
	return out
}

// TestReleasedBodies: every Admin method decodes every recorded answer and
// every corpus body to the same result, error included, whether the
// answer's buffer is overwritten after the decode or not.
func TestReleasedBodies(t *testing.T) {
	bodies := releaseBodies(t)
	if len(bodies) < 400 {
		t.Fatalf("only %d bodies", len(bodies))
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) { checkReleased(t, body) })
	}
}

// FuzzReleasedBodies is TestReleasedBodies on any input.
func FuzzReleasedBodies(f *testing.F) {
	for _, b := range releaseBodies(f) {
		f.Add(b)
	}
	f.Fuzz(checkReleased)
}

// An error answer's buffer goes back too: the ResponseError keeps only the
// remark, which the header decoder copied.
func TestErrorAnswerReleased(t *testing.T) {
	pool := newScribbler()
	inv := invokerFunc(func(_ context.Context, _ string, req *Command) (*Command, error) {
		resp := &Command{Code: ResponseTopicNotExist, Remark: "topic T not exist", Flag: FlagResponse, Opaque: req.Opaque, Body: []byte("details")}
		frame, err := EncodeFrame(resp)
		if err != nil {
			return nil, err
		}
		return readFrame(bytes.NewReader(frame), 0, &pool.framePool)
	})
	_, err := NewAdmin(inv).TopicStats(context.Background(), "a:1", "T")
	if !IsCode(err, ResponseTopicNotExist) || !strings.Contains(err.Error(), "topic T not exist") {
		t.Errorf("err %v", err)
	}
	if n := pool.count(); n != 1 {
		t.Errorf("%d buffers given back, want 1", n)
	}
}

type invokerFunc func(ctx context.Context, addr string, req *Command) (*Command, error)

func (f invokerFunc) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	return f(ctx, addr, req)
}

func TestFrameClass(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{0, 0}, {4, 0}, {512, 0}, {513, 1}, {1024, 1}, {1025, 2}, {4096, 3},
		{frameChunk/2 + 1, frameClasses - 1}, {frameChunk, frameClasses - 1}, {frameChunk + 1, -1}, {DefaultMaxFrameSize, -1},
	} {
		if got := frameClass(tc.n); got != tc.class {
			t.Errorf("frameClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
		if tc.class >= 0 && tc.n > 1<<(tc.class+minFrameShift) {
			t.Errorf("class %d too small for %d bytes", tc.class, tc.n)
		}
	}
}

// readFrame keeps a pooled buffer only for a frame with a body, gives it
// back on every failure, refuses an oversized frame before taking one, and
// reads frames above the largest class into a buffer of their own.
func TestReadFramePooling(t *testing.T) {
	pool := newScribbler()
	frameOf := func(c *Command) []byte {
		b, err := EncodeFrame(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withBody := frameOf(&Command{Code: 1, Flag: FlagResponse, Remark: "r", ExtFields: map[string]string{"k": "v"}, Body: []byte("body")})
	c, err := readFrame(bytes.NewReader(withBody), 0, &pool.framePool)
	if err != nil || c.frame == nil || string(c.Body) != "body" || pool.count() != 0 {
		t.Fatalf("frame with body: %+v, %v, %d given back", c, err, pool.count())
	}
	c.release()
	if c.Body != nil || c.frame != nil || pool.count() != 1 {
		t.Fatalf("after release: body %q, frame %v, %d given back", c.Body, c.frame, pool.count())
	}
	if c.Remark != "r" || c.ExtFields["k"] != "v" {
		t.Errorf("header values changed by the release: %q %v", c.Remark, c.ExtFields)
	}
	c.release() // a second release does nothing
	if pool.count() != 1 {
		t.Errorf("second release gave back again")
	}

	headerOnly := frameOf(&Command{Code: 1, Flag: FlagResponse, Remark: "r"})
	if c, err := readFrame(bytes.NewReader(headerOnly), 0, &pool.framePool); err != nil || c.frame != nil || c.Remark != "r" || pool.count() != 2 {
		t.Errorf("header-only frame: %+v, %v, %d given back", c, err, pool.count())
	}
	if _, err := readFrame(bytes.NewReader(withBody[:len(withBody)-1]), 0, &pool.framePool); err != io.ErrUnexpectedEOF || pool.count() != 3 {
		t.Errorf("truncated frame: %v, %d given back", err, pool.count())
	}
	garbled := append([]byte(nil), withBody...)
	garbled[8] = '['
	if _, err := readFrame(bytes.NewReader(garbled), 0, &pool.framePool); !IsFrameError(err) || pool.count() != 4 {
		t.Errorf("garbled header: %v, %d given back", err, pool.count())
	}
	if _, err := readFrame(strings.NewReader("\x40\x00\x00\x00"), 1<<20, &pool.framePool); !IsFrameError(err) || pool.count() != 4 {
		t.Errorf("oversized frame: %v, %d given back", err, pool.count())
	}
	big := frameOf(&Command{Code: 1, Flag: FlagResponse, Body: bytes.Repeat([]byte("x"), frameChunk)})
	if c, err := readFrame(bytes.NewReader(big), 0, &pool.framePool); err != nil || c.frame != nil || len(c.Body) != frameChunk {
		t.Errorf("frame above the largest class: %v, pooled %v", err, c != nil && c.frame != nil)
	}
}

// Through a real connection: Admin gives every answer back, a buffer given
// back serves a later answer, and the answers of other Invoke callers,
// never given back, keep their bodies whatever is read after them.
func TestClientAnswersReleased(t *testing.T) {
	body := func(n int) []byte {
		return fmt.Appendf(nil, `{"offsetTable":{{"brokerName":"b","queueId":%d,"topic":"T"}:{"maxOffset":%d}}}`, n, n)
	}
	s := startFake(t, serve(func(req *Command) []*Command {
		n, _ := strconv.Atoi(req.ExtFields["topic"])
		resp := NewResponse(req, 0, "")
		resp.Body = body(n)
		return []*Command{resp}
	}))
	c := newTestClient(t, ClientOptions{})
	var (
		mu    sync.Mutex
		puts  int
		given = map[*byte]bool{}
	)
	c.frames.onPut = func(b []byte) {
		mu.Lock()
		puts++
		given[&b[0]] = true
		mu.Unlock()
		for i := range b {
			b[i] = 0
		}
	}
	ctx := ctxTimeout(t, 5*time.Second)
	var kept []*Command
	for i := range 20 {
		resp, err := c.Invoke(ctx, s.addr(), NewRequest(CodeGetTopicStatsInfo, map[string]string{"topic": strconv.Itoa(i)}, nil))
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, resp)
	}
	a := NewAdmin(c)
	for i := 100; i < 300; i++ {
		st, err := a.TopicStats(ctx, s.addr(), strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := DecodeTopicStatsTable(body(i))
		if !reflect.DeepEqual(st, want) {
			t.Fatalf("answer %d: %+v, want %+v", i, st, want)
		}
		mu.Lock()
		if puts != i-99 {
			t.Fatalf("%d buffers given back after %d Admin reads", puts, i-99)
		}
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	// Sequential reads need one buffer or two; the race detector's pools
	// drop a quarter of what they are given, hence the margin.
	if len(given) > 100 {
		t.Errorf("%d distinct buffers for 200 sequential answers: not reused", len(given))
	}
	for i, resp := range kept {
		if resp.frame == nil {
			t.Fatalf("answer %d was not read into a pooled buffer", i)
		}
		if !bytes.Equal(resp.Body, body(i)) {
			t.Errorf("kept answer %d changed: %q", i, resp.Body)
		}
		if given[&resp.frame.b[0]] {
			t.Errorf("kept answer %d: its buffer was given back", i)
		}
	}
}
