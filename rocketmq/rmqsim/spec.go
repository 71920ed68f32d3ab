package rmqsim

import (
	"fmt"
	"log/slog"
	"time"
)

// Mode is how a broker group replicates.
type Mode int

const (
	// MasterSlave is the classic 4.x/5.x layout: one master (brokerId 0) and
	// slaves with fixed ids; no automatic failover.
	MasterSlave Mode = iota
	// DLedger is the Raft commitlog: every node has a DLedger port and the
	// elected leader becomes brokerId 0.
	DLedger
	// Controller is 5.x controller mode: a controller elects the master and
	// tracks the in-sync set and masterEpoch.
	Controller
)

func (m Mode) String() string {
	switch m {
	case MasterSlave:
		return "MasterSlave"
	case DLedger:
		return "DLedger"
	case Controller:
		return "Controller"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Versions the simulator can imitate.
const (
	V4_9_7 = "4.9.7"
	V5_0_0 = "5.0.0"
)

// GroupSpec describes one broker group (one brokerName).
type GroupSpec struct {
	Cluster string
	Name    string
	Mode    Mode
	// Replicas is the number of nodes; default 1 for MasterSlave, 3 otherwise.
	Replicas int
	// Leader is the index of the initial master or leader.
	Leader int
}

// Account is one ACL 1.0 account (plain_acl.yml accessKey/secretKey).
type Account struct {
	AccessKey string
	SecretKey string
	Admin     bool
}

// ACL switches signature checking on for every broker port.
type ACL struct {
	Accounts []Account
}

// Timing holds the durations of the simulated failover timelines. They are
// real (wall-clock) durations, independent of Spec.Clock, and much shorter
// than in a real cluster so that tests stay fast. Zero means the default.
type Timing struct {
	// RegisterDelay: from a restart to the node's (re)registration at the
	// NameServers, i.e. the periodic registration. Default 300ms (real: up
	// to 30 s; a DLedger node also waits to learn the leader).
	RegisterDelay time.Duration
	// StaleLeaderWindow: from a DLedger leader's death to the election.
	// Meanwhile the survivors still name the dead leader. Default 300ms
	// (real ≈ 4 s, see fixtures dledger-failover t01–t03).
	StaleLeaderWindow time.Duration
	// RoleChangeDelay: from the election to the new leader's config turning
	// into brokerId 0 / SYNC_MASTER and its registration as brokerId 0.
	// Default 150ms (real ≈ 1 s, t04 → t05).
	RoleChangeDelay time.Duration
	// ControllerElection: from a 5.0 controller-mode master's death to the
	// new master. Default 150ms (real < 1 s).
	ControllerElection time.Duration
	// HAReconnectDelay: 5.0 controller mode, from a master change or a
	// (re)start to the slave's HA connection and its return to the in-sync
	// set. Default 300ms.
	HAReconnectDelay time.Duration
	// StartupWindow: after each (re)start GET_BROKER_RUNTIME_INFO answers
	// code 1 with the NoSuchElementException remark for this long, like a
	// real broker without TPS samples. Default 0 (off).
	StartupWindow time.Duration
	// LongPollMax caps how long a PULL_MESSAGE with the suspend flag is
	// held when its queue has nothing new. Default 0: the request's
	// suspendTimeoutMillis, like a broker with longPollingEnable=true (a
	// broker with it off holds shortPollingTimeMills, 1 s).
	LongPollMax time.Duration
	// Manual turns off every automatic step (elections, promotions,
	// registrations after restart, in-sync changes); tests then drive the
	// timeline with Elect, Promote, RegisterNow and SyncNow.
	Manual bool
}

func (t Timing) withDefaults() Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.RegisterDelay, 300*time.Millisecond)
	def(&t.StaleLeaderWindow, 300*time.Millisecond)
	def(&t.RoleChangeDelay, 150*time.Millisecond)
	def(&t.ControllerElection, 150*time.Millisecond)
	def(&t.HAReconnectDelay, 300*time.Millisecond)
	return t
}

// Ports fixes listen addresses. Everything left empty binds 127.0.0.1:0.
type Ports struct {
	// NameServers are listen addresses, one per NameServer.
	NameServers []string
	// BrokerBase: node i (in spec order over all groups) listens on
	// BrokerBase + 10*i.
	BrokerBase int
	// DLedgerBase: the i-th DLedger node listens on DLedgerBase + i.
	DLedgerBase int
	// Controller is the 5.0 controller's listen address.
	Controller string
}

// Spec describes a simulated cluster.
type Spec struct {
	// NameServers defaults to 1.
	NameServers int
	Groups      []GroupSpec
	// ACL, when set, makes every broker port require a valid signature.
	ACL *ACL
	// Version is V4_9_7 (default) or V5_0_0.
	Version string
	// Clock gives store timestamps, boot times and TPS windows. Default
	// time.Now.
	Clock  func() time.Time
	Timing Timing
	Ports  Ports
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
}

// versionInfo is what a release looks like on the wire.
type versionInfo struct {
	name string
	code int    // MQVersion ordinal in response headers
	desc string // brokerVersionDesc
	v5   bool
}

func lookupVersion(v string) (versionInfo, error) {
	switch v {
	case "", V4_9_7:
		return versionInfo{name: V4_9_7, code: 407, desc: "V4_9_7"}, nil
	case V5_0_0:
		return versionInfo{name: V5_0_0, code: 413, desc: "V5_0_0", v5: true}, nil
	}
	return versionInfo{}, fmt.Errorf("rmqsim: unsupported version %q (want %q or %q)", v, V4_9_7, V5_0_0)
}
