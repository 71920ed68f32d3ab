package rocketmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// adminClient mirrors collector.Client (which this package cannot import)
// plus the extra reads of Admin, so a change of either side fails to build.
type adminClient interface {
	BrokerClusterInfo(ctx context.Context, namesrv string) (*ClusterInfo, error)
	TopicList(ctx context.Context, namesrv string) (*TopicList, error)
	BrokerRuntimeInfo(ctx context.Context, addr string) (RuntimeInfo, error)
	BrokerConfig(ctx context.Context, addr string) (BrokerConfig, error)
	TopicNames(ctx context.Context, addr string) ([]string, error)
	AllSubscriptionGroupConfig(ctx context.Context, addr string) (*SubscriptionGroupWrapper, error)
	TopicStats(ctx context.Context, addr, topic string) (*TopicStatsTable, error)
	TopicStatsSummary(ctx context.Context, addr, topic string) (TopicStatsSummary, error)
	ConsumeStats(ctx context.Context, addr, group, topic string) (*ConsumeStats, error)
	BrokerConsumeStats(ctx context.Context, addr string) (*ConsumeStatsList, error)
	TopicConsumeByWho(ctx context.Context, addr, topic string) (*GroupList, error)
	ConsumeTimeSpan(ctx context.Context, addr, topic, group string) ([]QueueTimeSpan, error)
	ConsumerConnectionSummary(ctx context.Context, addr, group string) (ConsumerConnectionSummary, error)
	BrokerHAStatus(ctx context.Context, addr string) (*HARuntimeInfo, error)
	DLedgerMetadata(ctx context.Context, addr, group, selfID string) (*DLedgerMetadata, error)
	DLedgerTerm(ctx context.Context, addr, group, selfID, otherPeerID string) (int64, error)
	ControllerMetadata(ctx context.Context, addr string) (*ControllerMetadata, error)
	ControllerSyncStateData(ctx context.Context, addr string, brokerNames []string) (SyncStateData, error)

	TopicRoute(ctx context.Context, namesrv, topic string) (*TopicRouteData, error)
	BrokerStatsData(ctx context.Context, addr, statsName, statsKey string) (*BrokerStatsData, error)
	MaxOffset(ctx context.Context, addr, topic string, queueID int) (int64, error)
	MinOffset(ctx context.Context, addr, topic string, queueID int) (int64, error)
	ConsumerOffset(ctx context.Context, addr, group, topic string, queueID int) (int64, error)
	ControllerReplicaInfo(ctx context.Context, addr, brokerName string) (*ReplicaInfo, error)
	ConsumerConnectionList(ctx context.Context, addr, group string) (*ConsumerConnection, error)
	AllTopicConfig(ctx context.Context, addr string) (*TopicConfigWrapper, error)
}

var _ adminClient = (*Admin)(nil)

// recordedRequest is a fixture's .request.json.
type recordedRequest struct {
	Addr string            `json:"addr"`
	Code int               `json:"code"`
	Ext  map[string]string `json:"ext"`
	Body json.RawMessage   `json:"body"`
}

func (r recordedRequest) hasBody() bool { return len(r.Body) > 0 && string(r.Body) != "null" }

// replayInvoker answers one request with a recorded answer after checking
// that the request is the recorded one.
type replayInvoker struct {
	t    *testing.T
	want recordedRequest
	// extraExt are extFields we send on purpose although the recording
	// lacks them.
	extraExt map[string]string
	resp     *Command
	calls    int
}

func (r *replayInvoker) Invoke(_ context.Context, addr string, req *Command) (*Command, error) {
	r.t.Helper()
	r.calls++
	if addr != r.want.Addr {
		r.t.Errorf("addr %s, want %s", addr, r.want.Addr)
	}
	if req.Code != r.want.Code {
		r.t.Errorf("code %d, want %d", req.Code, r.want.Code)
	}
	wantExt := map[string]string{}
	for k, v := range r.want.Ext {
		if k != "AccessKey" && k != "Signature" {
			wantExt[k] = v
		}
	}
	for k, v := range r.extraExt {
		wantExt[k] = v
	}
	if len(wantExt) == 0 {
		if req.ExtFields != nil {
			t := r.t
			t.Errorf("extFields %v sent on a header-less request", req.ExtFields)
		}
	} else if !reflect.DeepEqual(req.ExtFields, wantExt) {
		r.t.Errorf("extFields %v, want %v", req.ExtFields, wantExt)
	}
	if !r.want.hasBody() {
		if len(req.Body) != 0 {
			r.t.Errorf("body %q sent, want none", req.Body)
		}
	} else {
		var got, want any
		if err := json.Unmarshal(req.Body, &got); err != nil {
			r.t.Errorf("body %q is not JSON: %v", req.Body, err)
		}
		_ = json.Unmarshal(r.want.Body, &want)
		if !reflect.DeepEqual(got, want) {
			r.t.Errorf("body %s, want %s", req.Body, r.want.Body)
		}
	}
	if req.Language != LanguageGo || req.Version < 401 || req.IsResponse() || req.IsOneway() {
		r.t.Errorf("request header language %q version %d flag %d", req.Language, req.Version, req.Flag)
	}
	return r.resp, nil
}

// adminCall invokes the Admin method a recorded request corresponds to,
// with the arguments the recording carries.
type adminCall func(ctx context.Context, a *Admin, req recordedRequest) (any, error)

var adminCalls = []struct {
	request  string // as in the fixture name
	extraExt map[string]string
	call     adminCall
}{
	{".get_broker_cluster_info.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.BrokerClusterInfo(ctx, r.Addr)
	}},
	{".get_all_topic_list.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.TopicList(ctx, r.Addr)
	}},
	// The fastjson-form recordings were made without the flag we always send.
	{".get_routeinfo_by_topic.", map[string]string{"acceptStandardJsonOnly": "true"},
		func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
			return a.TopicRoute(ctx, r.Addr, r.Ext["topic"])
		}},
	{".get_broker_runtime_info.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.BrokerRuntimeInfo(ctx, r.Addr)
	}},
	{".get_broker_config.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.BrokerConfig(ctx, r.Addr)
	}},
	{".get_all_topic_config.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.AllTopicConfig(ctx, r.Addr)
	}},
	{".get_all_subscriptiongroup_config.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.AllSubscriptionGroupConfig(ctx, r.Addr)
	}},
	{".get_topic_stats_info.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.TopicStats(ctx, r.Addr, r.Ext["topic"])
	}},
	{".get_consume_stats.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.ConsumeStats(ctx, r.Addr, r.Ext["consumerGroup"], r.Ext["topic"])
	}},
	{".get_broker_consume_stats.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.BrokerConsumeStats(ctx, r.Addr)
	}},
	{".query_topic_consume_by_who.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.TopicConsumeByWho(ctx, r.Addr, r.Ext["topic"])
	}},
	{".query_consume_time_span.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.ConsumeTimeSpan(ctx, r.Addr, r.Ext["topic"], r.Ext["group"])
	}},
	{".get_consumer_connection_list.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.ConsumerConnectionList(ctx, r.Addr, r.Ext["consumerGroup"])
	}},
	{".get_broker_ha_status.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.BrokerHAStatus(ctx, r.Addr)
	}},
	{".view_broker_stats.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.BrokerStatsData(ctx, r.Addr, r.Ext["statsName"], r.Ext["statsKey"])
	}},
	{".get_max_offset.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.MaxOffset(ctx, r.Addr, r.Ext["topic"], atoi(r.Ext["queueId"]))
	}},
	{".get_min_offset.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.MinOffset(ctx, r.Addr, r.Ext["topic"], atoi(r.Ext["queueId"]))
	}},
	{".query_consumer_offset.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.ConsumerOffset(ctx, r.Addr, r.Ext["consumerGroup"], r.Ext["topic"], atoi(r.Ext["queueId"]))
	}},
	{".dledger.metadata.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		b := dledgerBody(r)
		return a.DLedgerMetadata(ctx, r.Addr, b.Group, b.RemoteID)
	}},
	{".dledger.heartbeat_term_probe.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		b := dledgerBody(r)
		if b.Term != -1 {
			return nil, errors.New("recorded probe does not claim term -1")
		}
		return a.DLedgerTerm(ctx, r.Addr, b.Group, b.RemoteID, b.LeaderID)
	}},
	{".get_metadata_info.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.ControllerMetadata(ctx, r.Addr)
	}},
	{".get_sync_state_data.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		var names []string
		if err := json.Unmarshal(r.Body, &names); err != nil {
			return nil, err
		}
		return a.ControllerSyncStateData(ctx, r.Addr, names)
	}},
	{".get_replica_info.", nil, func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
		return a.ControllerReplicaInfo(ctx, r.Addr, r.Ext["brokerName"])
	}},
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

type recordedDLedgerBody struct {
	Group    string `json:"group"`
	RemoteID string `json:"remoteId"`
	LeaderID string `json:"leaderId"`
	Term     int64  `json:"term"`
}

func dledgerBody(r recordedRequest) recordedDLedgerBody {
	var b recordedDLedgerBody
	_ = json.Unmarshal(r.Body, &b)
	return b
}

// recorded is one request/answer pair of the fixtures.
type recorded struct {
	name string
	req  recordedRequest
	resp *Command
}

// loadRecorded reads testdata/fixtures/<name>.request.json and its answer.
func loadRecorded(tb testing.TB, name string) recorded {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtureRoot, filepath.FromSlash(name)) + ".request.json")
	if err != nil {
		tb.Fatal(err)
	}
	rec := recorded{name: name}
	if err := json.Unmarshal(raw, &rec.req); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	f := loadFixture(tb, name)
	rec.resp = &Command{
		Code: f.header.Code, Remark: f.header.Remark, ExtFields: f.header.ExtFields, Body: f.body,
		Flag: FlagResponse, Language: "JAVA",
	}
	return rec
}

// recordedNames lists every fixture that has both a request and an answer.
func recordedNames(tb testing.TB) []string {
	tb.Helper()
	var names []string
	err := filepath.WalkDir(fixtureRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".request.json") {
			return err
		}
		base := strings.TrimSuffix(path, ".request.json")
		if _, err := os.Stat(base + ".response.header.json"); err != nil {
			return nil
		}
		rel, _ := filepath.Rel(fixtureRoot, base)
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return names
}

// replay runs the Admin method for a recording against a fake peer that
// checks the request and answers with the recorded answer.
func replay(t *testing.T, rec recorded) (any, error) {
	t.Helper()
	for _, c := range adminCalls {
		if !strings.Contains(rec.name+".", c.request) {
			continue
		}
		inv := &replayInvoker{t: t, want: rec.req, extraExt: c.extraExt, resp: rec.resp}
		v, err := c.call(context.Background(), NewAdmin(inv), rec.req)
		if inv.calls != 1 {
			t.Errorf("%d requests sent, want 1", inv.calls)
		}
		return v, err
	}
	t.Fatalf("no Admin method for %s", rec.name)
	return nil, nil
}

// TestAdminReplay replays every recorded request through its Admin method:
// the request must be the recorded one, and the answer must come back
// decoded, or as the *ResponseError its codes call for.
func TestAdminReplay(t *testing.T) {
	names := recordedNames(t)
	if len(names) < 400 {
		t.Fatalf("only %d recordings", len(names))
	}
	covered := map[string]int{}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			rec := loadRecorded(t, name)
			v, err := replay(t, rec)
			for _, c := range adminCalls {
				if strings.Contains(name+".", c.request) {
					covered[c.request]++
				}
			}

			var want *ResponseError
			switch {
			case rec.resp.Code != successCode(rec.req.Code):
				want = &ResponseError{RequestCode: rec.req.Code, Code: rec.resp.Code, Remark: rec.resp.Remark}
			case rec.req.Code == CodeDLedgerMetadata:
				md, derr := DecodeDLedgerMetadata(rec.resp.Body)
				if derr != nil {
					t.Fatal(derr)
				}
				if md.Code != DLedgerSuccess {
					want = dledgerError(CodeDLedgerMetadata, md.Code)
				}
			}
			if want != nil {
				var got *ResponseError
				if !errors.As(err, &got) || !reflect.DeepEqual(got, want) {
					t.Fatalf("error %v, want %+v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if rv := reflect.ValueOf(v); !rv.IsValid() || rv.IsZero() && rv.Kind() == reflect.Pointer {
				t.Fatalf("no result: %#v", v)
			}
		})
	}
	for _, c := range adminCalls {
		if covered[c.request] == 0 {
			t.Errorf("no recording exercises %s", c.request)
		}
	}
}

// TestAdminValues checks decoded results of single replays.
func TestAdminValues(t *testing.T) {
	run := func(t *testing.T, name string) any {
		t.Helper()
		v, err := replay(t, loadRecorded(t, name))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	t.Run("offsets from extFields", func(t *testing.T) {
		eq(t, "max", run(t, v4+"steady/broker_a.get_max_offset"), any(int64(303)))
		eq(t, "min", run(t, v4+"steady/broker_a.get_min_offset"), any(int64(0)))
		eq(t, "consumer", run(t, v4+"steady/broker_a.query_consumer_offset"), any(int64(80)))
		eq(t, "5.x max", run(t, v5+"steady/ctrl_n0.get_max_offset"), any(int64(500)))
	})
	t.Run("DLedger term probe", func(t *testing.T) {
		for _, n := range []string{"raft_n0", "raft_n1", "raft_n2"} {
			eq(t, n, run(t, v4+"dledger-term-probe/"+n+".dledger.heartbeat_term_probe"), any(int64(3)))
		}
	})
	t.Run("DLedger metadata", func(t *testing.T) {
		md := run(t, v4+"steady/raft_n1.dledger.metadata").(*DLedgerMetadata)
		eq(t, "leader", md.LeaderID, "n1")
		eq(t, "peers", len(md.Peers), 3)
		eq(t, "term", md.Term, int64(-1))
	})
	t.Run("controller", func(t *testing.T) {
		md := run(t, v5+"steady/controller.get_metadata_info").(*ControllerMetadata)
		eq(t, "leader", md.ControllerLeaderAddress, "127.0.0.1:19878")
		eq(t, "isLeader", md.IsLeader, true)
		sd := run(t, v5+"controller-failover/t01/controller.get_sync_state_data").(SyncStateData)
		eq(t, "masterEpoch", sd["broker-c"].MasterEpoch, int64(6))
		ri := run(t, v5+"steady/controller.get_replica_info").(*ReplicaInfo)
		eq(t, "syncStateSet", len(ri.SyncStateSet), 3)
	})
	t.Run("317", func(t *testing.T) {
		l := run(t, v4+"steady/broker_a.get_broker_consume_stats").(*ConsumeStatsList)
		eq(t, "totalDiff", l.TotalDiff, int64(2089))
	})
}

// TestAdminErrors checks how recorded failures reach the caller.
func TestAdminErrors(t *testing.T) {
	tests := []struct {
		name  string
		check func(t *testing.T, err error)
	}{
		{v4 + "startup-window/broker_acl.get_broker_runtime_info.first_seconds", func(t *testing.T, err error) {
			if !IsCode(err, ResponseSystemError) || !strings.Contains(err.Error(), "java.util.NoSuchElementException") {
				t.Errorf("startup window: %v", err)
			}
		}},
		{v4 + "steady/broker_a.get_broker_ha_status", func(t *testing.T, err error) {
			if !IsNotSupported(err) || !strings.Contains(err.Error(), "request type 907 not supported") {
				t.Errorf("907 on 4.9: %v", err)
			}
		}},
		{v4 + "steady/broker_a.view_broker_stats.missing", func(t *testing.T, err error) {
			if !IsCode(err, ResponseSystemError) || !strings.Contains(err.Error(), "The stats <TOPIC_PUT_NUMS> <NoSuchTopic> not exist") {
				t.Errorf("missing stats: %v", err)
			}
		}},
		{v4 + "steady/broker_a.get_consumer_connection_list.offline", func(t *testing.T, err error) {
			if !IsCode(err, ResponseConsumerNotOnline) {
				t.Errorf("offline group: %v", err)
			}
		}},
		{v4 + "steady/broker_a.get_topic_stats_info.missing", func(t *testing.T, err error) {
			if !IsCode(err, ResponseTopicNotExist) {
				t.Errorf("missing topic: %v", err)
			}
		}},
		{v4 + "steady/namesrv.get_routeinfo_by_topic.missing", func(t *testing.T, err error) {
			if !IsCode(err, ResponseTopicNotExist) {
				t.Errorf("missing route: %v", err)
			}
		}},
		{v4 + "acl/broker_acl.get_broker_runtime_info.bad_secret", func(t *testing.T, err error) {
			if !IsCode(err, ResponseSystemError) || !strings.Contains(err.Error(), "Check signature failed") {
				t.Errorf("ACL refusal: %v", err)
			}
		}},
		{v4 + "steady/raft_n0.dledger.metadata.wrong_group", func(t *testing.T, err error) {
			if !IsCode(err, DLedgerUnknownGroup) {
				t.Errorf("wrong group: %v", err)
			}
		}},
		{v4 + "steady/raft_n0.dledger.metadata.empty_body", func(t *testing.T, err error) {
			if !IsCode(err, DLedgerUnknownPeer) {
				t.Errorf("empty body: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := replay(t, loadRecorded(t, tt.name))
			tt.check(t, err)
			var re *ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("%T is not a *ResponseError", err)
			}
			if md, ok := v.(*DLedgerMetadata); ok {
				// Wrong group or remoteId still names the leader.
				eq(t, "leader", md.LeaderID, "n1")
			} else if rv := reflect.ValueOf(v); rv.IsValid() && !rv.IsZero() {
				t.Errorf("result %#v returned with an error", v)
			}
		})
	}
}

// fakeInvoker records the request and answers with a fixed result.
type fakeInvoker struct {
	req  *Command
	resp *Command
	err  error
}

// Invoke keeps a copy of req: the Admin reuses the request once Invoke
// returns (see Invoker).
func (f *fakeInvoker) Invoke(_ context.Context, _ string, req *Command) (*Command, error) {
	c := *req
	c.ExtFields = maps.Clone(req.ExtFields)
	c.Body = slices.Clone(req.Body)
	f.req = &c
	return f.resp, f.err
}

func TestAdminRequests(t *testing.T) {
	ctx := context.Background()
	ok := func(ext map[string]string, body string) *Command {
		return &Command{Code: 0, Flag: FlagResponse, ExtFields: ext, Body: []byte(body)}
	}

	t.Run("transport error is wrapped", func(t *testing.T) {
		cause := errors.New("connection refused")
		_, err := NewAdmin(&fakeInvoker{err: cause}).BrokerRuntimeInfo(ctx, "a:1")
		if !errors.Is(err, cause) || !strings.Contains(err.Error(), "request 28") {
			t.Errorf("err = %v", err)
		}
		var re *ResponseError
		if errors.As(err, &re) {
			t.Error("transport error reported as a response error")
		}
	})
	t.Run("no answer", func(t *testing.T) {
		if _, err := NewAdmin(&fakeInvoker{}).TopicList(ctx, "a:1"); err == nil {
			t.Error("nil answer accepted")
		}
	})
	t.Run("offset missing or garbled", func(t *testing.T) {
		for _, ext := range []map[string]string{nil, {"offset": "x"}, {"offset": ""}} {
			if n, err := NewAdmin(&fakeInvoker{resp: ok(ext, "")}).MaxOffset(ctx, "a:1", "T", 0); err == nil {
				t.Errorf("ext %v gave %d", ext, n)
			}
		}
	})
	t.Run("undecodable success body", func(t *testing.T) {
		if _, err := NewAdmin(&fakeInvoker{resp: ok(nil, `{"offsetTable":`)}).TopicStats(ctx, "a:1", "T"); err == nil {
			t.Error("truncated body accepted")
		}
		if _, err := NewAdmin(&fakeInvoker{resp: ok(nil, "")}).BrokerClusterInfo(ctx, "a:1"); err == nil {
			t.Error("empty body accepted")
		}
	})
	t.Run("DLedger success is 200", func(t *testing.T) {
		inv := &fakeInvoker{resp: ok(nil, `{"code":200,"leaderId":"n0","term":-1}`)}
		_, err := NewAdmin(inv).DLedgerMetadata(ctx, "a:1", "G", "n0")
		if !IsCode(err, 0) {
			t.Errorf("header code 0 on the DLedger port: %v", err)
		}
		inv.resp.Code = DLedgerSuccess
		md, err := NewAdmin(inv).DLedgerMetadata(ctx, "a:1", "G", "n0")
		if err != nil || md.LeaderID != "n0" {
			t.Errorf("metadata %+v, %v", md, err)
		}
	})
	t.Run("DLedger term probe answers other than 403", func(t *testing.T) {
		inv := &fakeInvoker{resp: &Command{Code: DLedgerSuccess, Body: []byte(`{"code":401,"term":-1}`)}}
		if term, err := NewAdmin(inv).DLedgerTerm(ctx, "a:1", "G", "n0", "n1"); !IsCode(err, DLedgerUnknownPeer) {
			t.Errorf("term %d, err %v", term, err)
		}
	})
	t.Run("DLedger term probe refuses to name the node itself", func(t *testing.T) {
		for _, args := range [][3]string{{"G", "n0", "n0"}, {"G", "n0", ""}, {"", "n0", "n1"}, {"G", "", "n1"}} {
			inv := &fakeInvoker{}
			if _, err := NewAdmin(inv).DLedgerTerm(ctx, "a:1", args[0], args[1], args[2]); err == nil || inv.req != nil {
				t.Errorf("%v: err %v, sent %v", args, err, inv.req)
			}
		}
	})
	t.Run("DLedger metadata leaves out empty fields", func(t *testing.T) {
		inv := &fakeInvoker{resp: &Command{Code: DLedgerSuccess, Body: []byte(`{"code":401,"leaderId":"n1"}`)}}
		md, err := NewAdmin(inv).DLedgerMetadata(ctx, "a:1", "", "")
		eq(t, "body", string(inv.req.Body), "{}")
		if md == nil || md.LeaderID != "n1" || !IsCode(err, DLedgerUnknownPeer) {
			t.Errorf("metadata %+v, err %v", md, err)
		}
	})
	t.Run("sync state of no broker sends an empty list", func(t *testing.T) {
		inv := &fakeInvoker{resp: ok(nil, `{"inSyncStateTable":{}}`)}
		sd, err := NewAdmin(inv).ControllerSyncStateData(ctx, "a:1", nil)
		eq(t, "body", string(inv.req.Body), "[]")
		if err != nil || len(sd) != 0 {
			t.Errorf("%v, %v", sd, err)
		}
		if inv.req.ExtFields != nil {
			t.Errorf("extFields %v", inv.req.ExtFields)
		}
	})
	t.Run("controller not leader", func(t *testing.T) {
		inv := &fakeInvoker{resp: &Command{Code: ControllerNotLeader, Remark: "not leader"}}
		if _, err := NewAdmin(inv).ControllerSyncStateData(ctx, "a:1", []string{"b"}); !IsCode(err, ControllerNotLeader) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("consume stats of all topics omits topic", func(t *testing.T) {
		inv := &fakeInvoker{resp: ok(nil, `{"offsetTable":{}}`)}
		if _, err := NewAdmin(inv).ConsumeStats(ctx, "a:1", "G", ""); err != nil {
			t.Fatal(err)
		}
		eq(t, "extFields", inv.req.ExtFields, map[string]string{"consumerGroup": "G"})
	})
}

// The Admin reuses its requests and their extFields maps: concurrent calls
// with different fields each send exactly their own, never a field left
// over from an earlier request, and a header-less request none at all.
func TestAdminReusedRequests(t *testing.T) {
	inv := invokerFunc(func(_ context.Context, _ string, req *Command) (*Command, error) {
		want := 3 // consumerGroup, topic, queueId
		switch req.Code {
		case CodeGetMaxOffset:
			want = 2
		case CodeGetBrokerRuntimeInfo:
			if req.ExtFields != nil || req.Body != nil {
				return nil, fmt.Errorf("header-less request sent extFields %v, body %q", req.ExtFields, req.Body)
			}
			return &Command{Code: ResponseSuccess, Flag: FlagResponse, Body: []byte(`{"table":{}}`)}, nil
		}
		if len(req.ExtFields) != want {
			return nil, fmt.Errorf("code %d sent extFields %v", req.Code, req.ExtFields)
		}
		off := req.ExtFields["queueId"] + req.ExtFields["consumerGroup"]
		return &Command{Code: ResponseSuccess, Flag: FlagResponse, ExtFields: map[string]string{"offset": off}}, nil
	})
	a := NewAdmin(inv)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				q := g*1000 + i
				var (
					n   int64
					err error
				)
				if i%2 == 0 {
					n, err = a.MaxOffset(context.Background(), "a:1", "T", q)
				} else {
					n, err = a.ConsumerOffset(context.Background(), "a:1", "7", "T", q)
					q = q*10 + 7
				}
				if err != nil || n != int64(q) {
					t.Errorf("queue %d: %d, %v", q, n, err)
					return
				}
				if _, err := a.BrokerRuntimeInfo(context.Background(), "a:1"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The summary reads send the recorded request of their full read and
// answer what the full read's answer sums to, errors included.
func TestAdminSummariesReplay(t *testing.T) {
	type pair struct {
		request       string
		summary, full adminCall
	}
	pairs := []pair{
		{".get_topic_stats_info.",
			func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
				return a.TopicStatsSummary(ctx, r.Addr, r.Ext["topic"])
			},
			func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
				st, err := a.TopicStats(ctx, r.Addr, r.Ext["topic"])
				if err != nil {
					return TopicStatsSummary{}, err
				}
				return st.Summary(), nil
			}},
		{".get_all_topic_config.",
			func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
				return a.TopicNames(ctx, r.Addr)
			},
			func(ctx context.Context, a *Admin, r recordedRequest) (any, error) {
				w, err := a.AllTopicConfig(ctx, r.Addr)
				if err != nil {
					return []string(nil), err
				}
				return w.Names(), nil
			}},
	}
	for _, p := range pairs {
		n, sums := 0, 0
		for _, name := range recordedNames(t) {
			if !strings.Contains(name+".", p.request) {
				continue
			}
			n++
			rec := loadRecorded(t, name)
			run := func(call adminCall) (any, error) {
				inv := &replayInvoker{t: t, want: rec.req, resp: rec.resp}
				v, err := call(context.Background(), NewAdmin(inv), rec.req)
				if inv.calls != 1 {
					t.Errorf("%s: %d requests sent, want 1", name, inv.calls)
				}
				return v, err
			}
			got, gerr := run(p.summary)
			want, werr := run(p.full)
			if !reflect.DeepEqual(got, want) || fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Errorf("%s: summary %#v, %v; full %#v, %v", name, got, gerr, want, werr)
			}
			if gerr == nil && !reflect.ValueOf(got).IsZero() {
				sums++
			}
		}
		if n == 0 || sums == 0 {
			t.Errorf("%s: %d recordings, %d with something to sum", p.request, n, sums)
		}
	}
}
