package collector

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// fakeClient is a Client with canned answers for the tests of this package.
//
// Answers live in maps keyed by the dialed address, or by fakeKey(addr, more…)
// for requests that take more arguments (the argument order of the Client
// method). A request with no canned answer fails like a broker that does not
// know the thing asked for: a *rocketmq.ResponseError with code SYSTEM_ERROR.
// Failures are injected with down (every request to an address), errs (one
// request, keyed by fakeKey(method, addr, more…)) or block (wait until the
// context is done, like a peer that never answers). Every method returns
// ctx.Err() first when the context is already done.
//
// Build one with newFakeClient; fill it with addBroker/addNameServer or the
// maps directly. It is safe for concurrent use as long as the maps are not
// changed while a scrape runs.
type fakeClient struct {
	// down fails every request to the address with the error.
	down map[string]error
	// errs fails one request: key fakeKey("BrokerRuntimeInfo", addr) etc.
	errs map[string]error
	// block makes every request to the address wait for ctx.Done().
	block map[string]bool
	// before, when set, runs on every request after it is recorded and
	// before the injected failures; a non-nil error is returned as the
	// request's. Use it to count requests in flight or add latency.
	before func(ctx context.Context, key string) error

	clusterInfo        map[string]*rocketmq.ClusterInfo              // namesrv
	topicList          map[string]*rocketmq.TopicList                // namesrv
	runtime            map[string]rocketmq.RuntimeInfo               // addr
	config             map[string]rocketmq.BrokerConfig              // addr
	topicConfig        map[string]*rocketmq.TopicConfigWrapper       // addr
	subscriptionGroups map[string]*rocketmq.SubscriptionGroupWrapper // addr
	topicStats         map[string]*rocketmq.TopicStatsTable          // fakeKey(addr, topic)
	consumeStats       map[string]*rocketmq.ConsumeStats             // fakeKey(addr, group, topic)
	brokerConsumeStats map[string]*rocketmq.ConsumeStatsList         // addr
	consumeByWho       map[string]*rocketmq.GroupList                // fakeKey(addr, topic)
	timeSpan           map[string][]rocketmq.QueueTimeSpan           // fakeKey(addr, topic, group)
	connections        map[string]*rocketmq.ConsumerConnection       // fakeKey(addr, group)
	haStatus           map[string]*rocketmq.HARuntimeInfo            // addr
	dledger            map[string]*rocketmq.DLedgerMetadata          // fakeKey(addr, group, selfID)
	dledgerTerms       map[string]int64                              // fakeKey(addr, group, selfID, otherPeerID)
	controller         map[string]*rocketmq.ControllerMetadata       // addr
	syncState          map[string]rocketmq.SyncStateData             // addr (brokerNames not part of the key)

	// derivedNS are NameServers whose cluster info is built from config at
	// request time (addNameServer), so brokers added later are listed too.
	derivedNS map[string]bool

	mu    sync.Mutex
	calls []string
}

var _ Client = (*fakeClient)(nil)

func newFakeClient() *fakeClient {
	return &fakeClient{
		down:               map[string]error{},
		errs:               map[string]error{},
		block:              map[string]bool{},
		clusterInfo:        map[string]*rocketmq.ClusterInfo{},
		topicList:          map[string]*rocketmq.TopicList{},
		runtime:            map[string]rocketmq.RuntimeInfo{},
		config:             map[string]rocketmq.BrokerConfig{},
		topicConfig:        map[string]*rocketmq.TopicConfigWrapper{},
		subscriptionGroups: map[string]*rocketmq.SubscriptionGroupWrapper{},
		topicStats:         map[string]*rocketmq.TopicStatsTable{},
		consumeStats:       map[string]*rocketmq.ConsumeStats{},
		brokerConsumeStats: map[string]*rocketmq.ConsumeStatsList{},
		consumeByWho:       map[string]*rocketmq.GroupList{},
		timeSpan:           map[string][]rocketmq.QueueTimeSpan{},
		connections:        map[string]*rocketmq.ConsumerConnection{},
		haStatus:           map[string]*rocketmq.HARuntimeInfo{},
		dledger:            map[string]*rocketmq.DLedgerMetadata{},
		dledgerTerms:       map[string]int64{},
		controller:         map[string]*rocketmq.ControllerMetadata{},
		syncState:          map[string]rocketmq.SyncStateData{},
		derivedNS:          map[string]bool{},
	}
}

// fakeKey joins the parts of a compound map key.
func fakeKey(parts ...string) string { return strings.Join(parts, "|") }

// fakeBrokerConfig is a minimal GET_BROKER_CONFIG answer for a node
// advertising addr (brokerIP1:listenPort).
func fakeBrokerConfig(cluster, name string, id int64, role, addr string) rocketmq.BrokerConfig {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	return rocketmq.BrokerConfig{
		"brokerClusterName": cluster,
		"brokerName":        name,
		"brokerId":          strconv.FormatInt(id, 10),
		"brokerRole":        role,
		"brokerIP1":         host,
		"listenPort":        port,
	}
}

// addBroker gives addr a GET_BROKER_CONFIG answer (see fakeBrokerConfig) and
// returns it for further keys.
func (f *fakeClient) addBroker(addr, cluster, name string, id int64, role string) rocketmq.BrokerConfig {
	cfg := fakeBrokerConfig(cluster, name, id, role, addr)
	f.config[addr] = cfg
	return cfg
}

// addNameServer makes ns answer GET_BROKER_CLUSTER_INFO with every broker in
// config, each listed under its own cluster, group and brokerId, as a
// NameServer would after all of them registered.
func (f *fakeClient) addNameServer(ns string) { f.derivedNS[ns] = true }

func (f *fakeClient) deriveClusterInfo() *rocketmq.ClusterInfo {
	info := &rocketmq.ClusterInfo{
		BrokerAddrTable:  map[string]rocketmq.BrokerData{},
		ClusterAddrTable: map[string][]string{},
	}
	for addr, cfg := range f.config {
		cluster, name := cfg["brokerClusterName"], cfg["brokerName"]
		id, err := strconv.ParseInt(cfg["brokerId"], 10, 64)
		if err != nil {
			continue
		}
		bd, ok := info.BrokerAddrTable[name]
		if !ok {
			bd = rocketmq.BrokerData{Cluster: cluster, BrokerName: name, BrokerAddrs: map[int64]string{}}
			if !slices.Contains(info.ClusterAddrTable[cluster], name) {
				info.ClusterAddrTable[cluster] = append(info.ClusterAddrTable[cluster], name)
			}
		}
		bd.BrokerAddrs[id] = addr
		info.BrokerAddrTable[name] = bd
	}
	return info
}

// calledWith returns the recorded calls, "Method|addr|more…" in call order.
func (f *fakeClient) calledWith() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// callCount counts recorded calls of method to addr (any other arguments).
func (f *fakeClient) callCount(method, addr string) int {
	n := 0
	prefix := fakeKey(method, addr)
	for _, c := range f.calledWith() {
		if c == prefix || strings.HasPrefix(c, prefix+"|") {
			n++
		}
	}
	return n
}

// begin records the call and applies the injected failures.
func (f *fakeClient) begin(ctx context.Context, method, addr string, more ...string) error {
	k := fakeKey(append([]string{method, addr}, more...)...)
	f.mu.Lock()
	f.calls = append(f.calls, k)
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.before != nil {
		if err := f.before(ctx, k); err != nil {
			return err
		}
	}
	if f.block[addr] {
		<-ctx.Done()
		return ctx.Err()
	}
	if err := f.down[addr]; err != nil {
		return err
	}
	return f.errs[k]
}

func fakeMissing(code int, k string) error {
	return &rocketmq.ResponseError{RequestCode: code, Code: rocketmq.ResponseSystemError, Remark: "fake: no canned answer for " + k}
}

func fakeGet[V any](m map[string]V, code int, k string) (V, error) {
	v, ok := m[k]
	if !ok {
		var zero V
		return zero, fakeMissing(code, k)
	}
	return v, nil
}

func (f *fakeClient) BrokerClusterInfo(ctx context.Context, namesrv string) (*rocketmq.ClusterInfo, error) {
	if err := f.begin(ctx, "BrokerClusterInfo", namesrv); err != nil {
		return nil, err
	}
	if f.derivedNS[namesrv] {
		return f.deriveClusterInfo(), nil
	}
	return fakeGet(f.clusterInfo, rocketmq.CodeGetBrokerClusterInfo, namesrv)
}

func (f *fakeClient) TopicList(ctx context.Context, namesrv string) (*rocketmq.TopicList, error) {
	if err := f.begin(ctx, "TopicList", namesrv); err != nil {
		return nil, err
	}
	return fakeGet(f.topicList, rocketmq.CodeGetAllTopicListFromNameServer, namesrv)
}

func (f *fakeClient) BrokerRuntimeInfo(ctx context.Context, addr string) (rocketmq.RuntimeInfo, error) {
	if err := f.begin(ctx, "BrokerRuntimeInfo", addr); err != nil {
		return nil, err
	}
	return fakeGet(f.runtime, rocketmq.CodeGetBrokerRuntimeInfo, addr)
}

func (f *fakeClient) BrokerConfig(ctx context.Context, addr string) (rocketmq.BrokerConfig, error) {
	if err := f.begin(ctx, "BrokerConfig", addr); err != nil {
		return nil, err
	}
	return fakeGet(f.config, rocketmq.CodeGetBrokerConfig, addr)
}

func (f *fakeClient) TopicNames(ctx context.Context, addr string) ([]string, error) {
	if err := f.begin(ctx, "TopicNames", addr); err != nil {
		return nil, err
	}
	tc, err := fakeGet(f.topicConfig, rocketmq.CodeGetAllTopicConfig, addr)
	if err != nil || tc == nil {
		return nil, err
	}
	return tc.Names(), nil
}

func (f *fakeClient) AllSubscriptionGroupConfig(ctx context.Context, addr string) (*rocketmq.SubscriptionGroupWrapper, error) {
	if err := f.begin(ctx, "AllSubscriptionGroupConfig", addr); err != nil {
		return nil, err
	}
	return fakeGet(f.subscriptionGroups, rocketmq.CodeGetAllSubscriptionGroupConfig, addr)
}

func (f *fakeClient) TopicStats(ctx context.Context, addr, topic string) (*rocketmq.TopicStatsTable, error) {
	if err := f.begin(ctx, "TopicStats", addr, topic); err != nil {
		return nil, err
	}
	return fakeGet(f.topicStats, rocketmq.CodeGetTopicStatsInfo, fakeKey(addr, topic))
}

// TopicStatsSummary is TopicStats summed: one request, counted and failed
// as TopicStats.
func (f *fakeClient) TopicStatsSummary(ctx context.Context, addr, topic string) (rocketmq.TopicStatsSummary, error) {
	st, err := f.TopicStats(ctx, addr, topic)
	if err != nil {
		return rocketmq.TopicStatsSummary{}, err
	}
	if st == nil {
		// Like the collector's summarise(nil): nothing to report.
		return rocketmq.TopicStatsSummary{}, fmt.Errorf("fake: nil topic stats for %s %s", addr, topic)
	}
	return st.Summary(), nil
}

func (f *fakeClient) ConsumeStats(ctx context.Context, addr, group, topic string) (*rocketmq.ConsumeStats, error) {
	if err := f.begin(ctx, "ConsumeStats", addr, group, topic); err != nil {
		return nil, err
	}
	return fakeGet(f.consumeStats, rocketmq.CodeGetConsumeStats, fakeKey(addr, group, topic))
}

func (f *fakeClient) BrokerConsumeStats(ctx context.Context, addr string) (*rocketmq.ConsumeStatsList, error) {
	if err := f.begin(ctx, "BrokerConsumeStats", addr); err != nil {
		return nil, err
	}
	return fakeGet(f.brokerConsumeStats, rocketmq.CodeGetBrokerConsumeStats, addr)
}

func (f *fakeClient) TopicConsumeByWho(ctx context.Context, addr, topic string) (*rocketmq.GroupList, error) {
	if err := f.begin(ctx, "TopicConsumeByWho", addr, topic); err != nil {
		return nil, err
	}
	return fakeGet(f.consumeByWho, rocketmq.CodeQueryTopicConsumeByWho, fakeKey(addr, topic))
}

func (f *fakeClient) ConsumeTimeSpan(ctx context.Context, addr, topic, group string) ([]rocketmq.QueueTimeSpan, error) {
	if err := f.begin(ctx, "ConsumeTimeSpan", addr, topic, group); err != nil {
		return nil, err
	}
	return fakeGet(f.timeSpan, rocketmq.CodeQueryConsumeTimeSpan, fakeKey(addr, topic, group))
}

// ConsumerConnectionSummary answers from connections, the whole lists the
// tests fill in, and records the call under the name of the request the
// tests count, "ConsumerConnectionList" (GET_CONSUMER_CONNECTION_LIST).
func (f *fakeClient) ConsumerConnectionSummary(ctx context.Context, addr, group string) (rocketmq.ConsumerConnectionSummary, error) {
	if err := f.begin(ctx, "ConsumerConnectionList", addr, group); err != nil {
		return rocketmq.ConsumerConnectionSummary{}, err
	}
	cc, err := fakeGet(f.connections, rocketmq.CodeGetConsumerConnectionList, fakeKey(addr, group))
	if err != nil {
		return rocketmq.ConsumerConnectionSummary{}, err
	}
	return cc.Summary(), nil
}

func (f *fakeClient) BrokerHAStatus(ctx context.Context, addr string) (*rocketmq.HARuntimeInfo, error) {
	if err := f.begin(ctx, "BrokerHAStatus", addr); err != nil {
		return nil, err
	}
	return fakeGet(f.haStatus, rocketmq.CodeGetBrokerHAStatus, addr)
}

func (f *fakeClient) DLedgerMetadata(ctx context.Context, addr, group, selfID string) (*rocketmq.DLedgerMetadata, error) {
	if err := f.begin(ctx, "DLedgerMetadata", addr, group, selfID); err != nil {
		return nil, err
	}
	return fakeGet(f.dledger, rocketmq.CodeDLedgerMetadata, fakeKey(addr, group, selfID))
}

func (f *fakeClient) DLedgerTerm(ctx context.Context, addr, group, selfID, otherPeerID string) (int64, error) {
	if err := f.begin(ctx, "DLedgerTerm", addr, group, selfID, otherPeerID); err != nil {
		return 0, err
	}
	return fakeGet(f.dledgerTerms, rocketmq.CodeDLedgerHeartBeat, fakeKey(addr, group, selfID, otherPeerID))
}

func (f *fakeClient) ControllerMetadata(ctx context.Context, addr string) (*rocketmq.ControllerMetadata, error) {
	if err := f.begin(ctx, "ControllerMetadata", addr); err != nil {
		return nil, err
	}
	return fakeGet(f.controller, rocketmq.CodeControllerGetMetadataInfo, addr)
}

func (f *fakeClient) ControllerSyncStateData(ctx context.Context, addr string, brokerNames []string) (rocketmq.SyncStateData, error) {
	if err := f.begin(ctx, "ControllerSyncStateData", addr); err != nil {
		return nil, err
	}
	return fakeGet(f.syncState, rocketmq.CodeControllerGetSyncStateData, addr)
}

// fakeDown is the error a dead peer gives.
func fakeDown(addr string) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect %s: connection refused", addr)}
}
