package rmqsim

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"time"
)

const (
	roleAsyncMaster = "ASYNC_MASTER"
	roleSyncMaster  = "SYNC_MASTER"
	roleSlave       = "SLAVE"
)

// Default disk: 252 GiB with 14% used, like the recorded hosts.
const (
	defaultDiskTotal = 252 << 30
	defaultDiskFree  = defaultDiskTotal - defaultDiskTotal*14/100
)

// Node is one broker process of a group. All state is guarded by the
// cluster lock; the servers have their own.
type Node struct {
	c         *Cluster
	g         *group
	idx       int
	globalIdx int
	srv       *server
	dl        *server
	fault     faultBox
	life      sync.Mutex // serializes Kill and Restart

	alive    bool
	bootMs   int64     // Clock time of the last (re)start
	bootWall time.Time // wall time of the last (re)start (startup window)
	restarts int

	brokerID   int64  // live brokerId of its own config
	role       string // live brokerRole
	staticID   int64  // master/slave: the configured id and role
	staticRole string
	registered bool
	regID      int64

	leaderView  string // DLedger: the leader this node names ("" = candidate)
	ctrlID      int64  // 5.0 controller: the id the controller assigned
	haConnected bool   // 5.0 controller: HA client connected to the master

	lag             int64
	stats           *nodeStats
	runtimeOverride map[string]string
	runtimeRemoved  map[string]bool
	configOverride  map[string]string
	diskTotal       int64
	diskFree        int64
}

func (n *Node) boot(now int64) {
	n.bootMs = now
	n.bootWall = time.Now()
	n.stats = newNodeStats()
}

// Addr is the remoting address (the one registered at the NameServers).
func (n *Node) Addr() string { return n.srv.Addr() }

// HAAddr is the HA listen address (remoting port + 1); nothing listens on
// it, it only appears in 5.0 HA bodies.
func (n *Node) HAAddr() string { return portPlus(n.Addr(), 1) }

// DLedgerAddr is the DLedger port address, "" unless the group is DLedger.
func (n *Node) DLedgerAddr() string {
	if n.dl == nil {
		return ""
	}
	return n.dl.Addr()
}

// SelfID is the node's id inside its group: "n0", "n1", …
func (n *Node) SelfID() string { return n.selfID() }

// selfID needs no lock: the id never changes.
func (n *Node) selfID() string { return "n" + strconv.Itoa(n.idx) }

// Index is the node's position in its group.
func (n *Node) Index() int { return n.idx }

// BrokerName is the group's brokerName.
func (n *Node) BrokerName() string { return n.g.spec.Name }

// Cluster is the brokerClusterName.
func (n *Node) Cluster() string { return n.g.spec.Cluster }

// Mode is the group's replication mode.
func (n *Node) Mode() Mode { return n.g.spec.Mode }

// ID is the live brokerId of the node's own config.
func (n *Node) ID() int64 {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.brokerID
}

// RegisteredID is the id the NameServers list for this node.
func (n *Node) RegisteredID() (int64, bool) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.regID, n.registered && n.alive
}

// Role is the live brokerRole.
func (n *Node) Role() string {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.role
}

// LeaderView is the DLedger leader this node names ("" while it names none).
func (n *Node) LeaderView() string {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.leaderView
}

// IsMaster reports whether the node is alive and holds the master role.
func (n *Node) IsMaster() bool {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.isMaster()
}

func (n *Node) isMaster() bool { return n.alive && n.g.leader == n }

// Alive reports whether the node is running.
func (n *Node) Alive() bool {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.alive
}

// SetFault injects a fault into every port of the node.
func (n *Node) SetFault(f Fault) { n.fault.set(f) }

// ClearFault removes the node's fault.
func (n *Node) ClearFault() { n.fault.set(Fault{}) }

// SetReplicationLag makes a slave or follower trail the master's commitlog
// by the given number of bytes.
func (n *Node) SetReplicationLag(bytes int64) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if bytes < 0 {
		bytes = 0
	}
	n.lag = bytes
}

// SetRuntimeValue overrides or adds a GET_BROKER_RUNTIME_INFO key.
func (n *Node) SetRuntimeValue(key, value string) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if n.runtimeOverride == nil {
		n.runtimeOverride = make(map[string]string)
	}
	n.runtimeOverride[key] = value
	delete(n.runtimeRemoved, key)
}

// RemoveRuntimeKey drops a key from GET_BROKER_RUNTIME_INFO.
func (n *Node) RemoveRuntimeKey(key string) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if n.runtimeRemoved == nil {
		n.runtimeRemoved = make(map[string]bool)
	}
	n.runtimeRemoved[key] = true
	delete(n.runtimeOverride, key)
}

// SetConfigValue overrides or adds a GET_BROKER_CONFIG key.
func (n *Node) SetConfigValue(key, value string) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if n.configOverride == nil {
		n.configOverride = make(map[string]string)
	}
	n.configOverride[key] = value
}

// SetDisk sets the commitlog disk size and free space.
func (n *Node) SetDisk(totalBytes, freeBytes int64) {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	n.diskTotal, n.diskFree = totalBytes, freeBytes
}

// commitLogMax is this node's view of the commitlog end: the master's, less
// the replication lag for everybody else.
func (n *Node) commitLogMax() int64 {
	if n.isMaster() {
		return n.g.commitLog
	}
	v := n.g.commitLog - n.lag
	if v < 0 {
		v = 0
	}
	return v
}

func (n *Node) register(id int64) {
	n.registered = true
	n.regID = id
}

// Kill stops the node at once: its ports refuse connections, the NameServers
// drop it (the channel closes) and failover starts where the mode has one.
func (n *Node) Kill() {
	n.life.Lock()
	defer n.life.Unlock()
	c := n.c
	c.mu.Lock()
	if !n.alive || c.closed {
		c.mu.Unlock()
		return
	}
	n.alive = false
	n.registered = false
	c.log.Info("node killed", "broker", n.g.spec.Name, "node", n.selfID(), "addr", n.srv.Addr())
	c.onNodeDown(n)
	c.mu.Unlock()
	n.srv.stop()
	if n.dl != nil {
		n.dl.stop()
	}
}

// Restart starts a killed node on the same ports with a new boot time. It
// serves at once but registers only after Timing.RegisterDelay (DLedger: once
// it has learned the leader; controller mode: as a slave), or at RegisterNow
// in Manual mode.
func (n *Node) Restart() error {
	n.life.Lock()
	defer n.life.Unlock()
	c := n.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("rmqsim: cluster closed")
	}
	if n.alive {
		c.mu.Unlock()
		return nil
	}
	n.alive = true
	n.restarts++
	n.boot(c.nowMs())
	c.onNodeUp(n)
	c.mu.Unlock()
	err := n.srv.start()
	if err == nil && n.dl != nil {
		err = n.dl.start()
	}
	if err != nil {
		c.mu.Lock()
		n.alive = false
		n.registered = false
		c.mu.Unlock()
		n.srv.stop()
		if n.dl != nil {
			n.dl.stop()
		}
		return err
	}
	c.log.Info("node restarted", "broker", n.g.spec.Name, "node", n.selfID(), "addr", n.srv.Addr())
	return nil
}

func portPlus(addr string, d int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(p+d))
}
