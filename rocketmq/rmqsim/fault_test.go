package rmqsim

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

func TestFaultsObservableFromARawClient(t *testing.T) {
	c := start(t, Spec{Groups: []GroupSpec{{Cluster: "C", Name: "b"}, {Cluster: "R", Name: "raft", Mode: DLedger}}})
	n := c.Group("b")[0]
	addr := n.Addr()
	runtime := func() *rocketmq.Command { return rocketmq.NewRequest(rocketmq.CodeGetBrokerRuntimeInfo, nil, nil) }

	t.Run("slow", func(t *testing.T) {
		n.SetFault(Slow(250 * time.Millisecond))
		defer n.ClearFault()
		begin := time.Now()
		resp := mustCall(t, addr, runtime())
		if el := time.Since(begin); resp.Code != 0 || el < 250*time.Millisecond {
			t.Errorf("slow answer after %v code %d", el, resp.Code)
		}
	})
	t.Run("no answer, one request code only", func(t *testing.T) {
		n.SetFault(NoAnswer().For(rocketmq.CodeGetBrokerRuntimeInfo))
		defer n.ClearFault()
		if _, err := rawCall(addr, runtime(), 300*time.Millisecond); !isTimeout(err) {
			t.Errorf("want a timeout, got %v", err)
		}
		if resp := mustCall(t, addr, rocketmq.NewRequest(rocketmq.CodeGetBrokerConfig, nil, nil)); resp.Code != 0 {
			t.Errorf("other codes unaffected: %d", resp.Code)
		}
	})
	t.Run("reset mid frame", func(t *testing.T) {
		n.SetFault(ResetMidFrame())
		defer n.ClearFault()
		_, err := rawCall(addr, runtime(), 2*time.Second)
		if err == nil || isTimeout(err) {
			t.Fatalf("want a broken read, got %v", err)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("unexpected error kind: %v", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		n.SetFault(Garbage())
		defer n.ClearFault()
		_, err := rawCall(addr, runtime(), 2*time.Second)
		if !rocketmq.IsFrameError(err) {
			t.Errorf("want a frame error, got %v", err)
		}
	})
	t.Run("oversized length", func(t *testing.T) {
		n.SetFault(OversizedLength())
		defer n.ClearFault()
		_, err := rawCall(addr, runtime(), 2*time.Second)
		if !rocketmq.IsFrameError(err) || !strings.Contains(err.Error(), "exceeds the maximum frame size") {
			t.Errorf("want a refused length, got %v", err)
		}
	})
	t.Run("error code", func(t *testing.T) {
		n.SetFault(NoSuchElement())
		defer n.ClearFault()
		resp := mustCall(t, addr, runtime())
		if resp.Code != 1 || resp.Remark != NoSuchElementRemark || resp.Version != 407 {
			t.Errorf("got %d %q version %d", resp.Code, resp.Remark, resp.Version)
		}
	})
	t.Run("close", func(t *testing.T) {
		n.SetFault(CloseConn())
		defer n.ClearFault()
		if _, err := rawCall(addr, runtime(), 2*time.Second); !errors.Is(err, io.EOF) {
			t.Errorf("want EOF, got %v", err)
		}
	})
	t.Run("cleared", func(t *testing.T) {
		if resp := mustCall(t, addr, runtime()); resp.Code != 0 {
			t.Errorf("after ClearFault: %d", resp.Code)
		}
	})
	t.Run("dledger port and namesrv", func(t *testing.T) {
		r := c.Group("raft")[0]
		r.SetFault(ErrorCode(2, "[OVERLOAD]").For(rocketmq.CodeDLedgerMetadata))
		defer r.ClearFault()
		resp := mustCall(t, r.DLedgerAddr(), rocketmq.NewRequest(rocketmq.CodeDLedgerMetadata, nil, []byte(`{}`)))
		if resp.Code != 2 || resp.Remark != "[OVERLOAD]" {
			t.Errorf("DLedger fault: %d %q", resp.Code, resp.Remark)
		}
		ns := c.NameServers()[0]
		ns.SetFault(NoAnswer())
		defer ns.ClearFault()
		if _, err := rawCall(ns.Addr(), rocketmq.NewRequest(rocketmq.CodeGetBrokerClusterInfo, nil, nil), 300*time.Millisecond); !isTimeout(err) {
			t.Errorf("NameServer fault: %v", err)
		}
	})
	t.Run("killed node refuses connections", func(t *testing.T) {
		r := c.Group("raft")[2]
		r.Kill()
		for _, a := range []string{r.Addr(), r.DLedgerAddr()} {
			if _, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				t.Errorf("%s still accepts", a)
			}
		}
	})
}

// A slow request must not hold up others on the same connection: answers
// are matched by opaque, as with a real broker's thread pools.
func TestAnswersAreMultiplexed(t *testing.T) {
	c := start(t, Spec{Groups: []GroupSpec{{Cluster: "C", Name: "b"}}})
	n := c.Group("b")[0]
	n.SetFault(Slow(400 * time.Millisecond).For(rocketmq.CodeGetBrokerRuntimeInfo))
	conn, err := net.Dial("tcp", n.Addr())
	must(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	slow := rocketmq.NewRequest(rocketmq.CodeGetBrokerRuntimeInfo, nil, nil)
	slow.Opaque = 1
	fast := rocketmq.NewRequest(rocketmq.CodeGetBrokerConfig, nil, nil)
	fast.Opaque = 2
	for _, r := range []*rocketmq.Command{slow, fast} {
		f, err := rocketmq.EncodeFrame(r)
		must(t, err)
		_, err = conn.Write(f)
		must(t, err)
	}
	first, err := rocketmq.ReadFrame(conn, 0)
	must(t, err)
	second, err := rocketmq.ReadFrame(conn, 0)
	must(t, err)
	if first.Opaque != 2 || second.Opaque != 1 {
		t.Errorf("answer order %d, %d; want the fast one first", first.Opaque, second.Opaque)
	}
}

func TestCloseWithRequestsInFlight(t *testing.T) {
	c, err := Start(Spec{Groups: []GroupSpec{{Cluster: "C", Name: "b"}}})
	must(t, err)
	n := c.Group("b")[0]
	n.SetFault(Slow(time.Hour))
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = rawCall(n.Addr(), rocketmq.NewRequest(rocketmq.CodeGetBrokerRuntimeInfo, nil, nil), 5*time.Second)
		}()
	}
	time.Sleep(100 * time.Millisecond)
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close blocked by in-flight requests")
	}
	wg.Wait()
}

func TestACL(t *testing.T) {
	c := start(t, Spec{
		Groups: []GroupSpec{{Cluster: "AclCluster", Name: "broker-acl"}, {Cluster: "R", Name: "raft", Mode: DLedger}},
		ACL:    &ACL{Accounts: []Account{{AccessKey: "rocketmq2", SecretKey: "12345678", Admin: true}, {AccessKey: "RocketMQ", SecretKey: "12345678"}}},
	})
	addr := c.Group("broker-acl")[0].Addr()
	for _, cr := range []rocketmq.Credentials{{AccessKey: "rocketmq2", SecretKey: "12345678"}, {AccessKey: "RocketMQ", SecretKey: "12345678"}} {
		adm := newAdmin(t, &cr)
		if _, err := adm.BrokerRuntimeInfo(ctx(t), addr); err != nil {
			t.Errorf("%s: %v", cr.AccessKey, err)
		}
		// Signed requests with extFields and a body too.
		if _, err := adm.ConsumeStats(ctx(t), addr, "G", "TBW102"); err != nil {
			t.Errorf("%s consume stats: %v", cr.AccessKey, err)
		}
		cfg, err := adm.BrokerConfig(ctx(t), addr)
		if err != nil || cfg["aclEnable"] != "true" {
			t.Errorf("%s config: %v aclEnable=%q", cr.AccessKey, err, cfg["aclEnable"])
		}
	}
	for name, tc := range map[string]struct {
		creds  *rocketmq.Credentials
		remark string
	}{
		"unsigned":    {nil, aclNoAccessKey},
		"bad secret":  {&rocketmq.Credentials{AccessKey: "rocketmq2", SecretKey: "wrong"}, "org.apache.rocketmq.acl.common.AclException: Check signature failed for accessKey=rocketmq2, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:683)"},
		"unknown key": {&rocketmq.Credentials{AccessKey: "nobody", SecretKey: "x"}, "org.apache.rocketmq.acl.common.AclException: No acl config for nobody, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:667)"},
	} {
		_, err := newAdmin(t, tc.creds).BrokerRuntimeInfo(ctx(t), addr)
		var re *rocketmq.ResponseError
		if !errors.As(err, &re) || re.Code != 1 || re.Remark != tc.remark {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A tampered request (signature of other content) is refused.
	req := rocketmq.NewRequest(rocketmq.CodeGetTopicStatsInfo, map[string]string{"topic": "TBW102", "AccessKey": "rocketmq2"}, nil)
	req.ExtFields["Signature"] = rocketmq.Sign("12345678", req.ExtFields, nil)
	req.ExtFields["topic"] = "SELF_TEST_TOPIC"
	if resp := mustCall(t, addr, req); resp.Code != 1 {
		t.Errorf("tampered request accepted: %d", resp.Code)
	}
	// NameServers and DLedger ports do not check.
	adm := newAdmin(t, nil)
	if _, err := adm.BrokerClusterInfo(ctx(t), c.NameServerAddrs()[0]); err != nil {
		t.Errorf("NameServer: %v", err)
	}
	r := c.Group("raft")[0]
	if _, err := adm.DLedgerMetadata(ctx(t), r.DLedgerAddr(), "raft", "n0"); err != nil {
		t.Errorf("DLedger port: %v", err)
	}
}
