package rmqsim

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Cluster is a running simulated RocketMQ deployment: NameServers, broker
// nodes (with DLedger ports where configured) and, for 5.0 controller mode,
// a controller. Every exported method is safe for concurrent use.
type Cluster struct {
	ver    versionInfo
	timing Timing
	clock  func() time.Time
	log    *slog.Logger
	acl    map[string]Account
	host   string

	mu       sync.Mutex
	closed   bool
	groups   []*group
	byName   map[string]*group
	nodes    []*Node
	cgroups  map[string]*consumerGroup
	cgOrder  []string
	cursors  map[string]int64
	msg      messaging // producer/consumer traffic over the wire (messaging.go)
	namesrvs []*NameServer
	ctrl     *server
	ctrlF    faultBox
	sched    *scheduler

	bgStop    chan struct{}
	bg        sync.WaitGroup
	closeOnce sync.Once
}

// group is one broker group (one brokerName): its replicas and the state
// they share — topics, messages, consumer offsets — plus its failover state.
type group struct {
	spec  GroupSpec
	nodes []*Node

	topics     map[string]*topicConf
	topicOrder []string
	topicVer   dataVersion
	subs       map[string]bool
	subOrder   []string
	subVer     dataVersion
	offsets    map[string]map[string][]int64 // consumer group → topic → committed offset per queue (-1 = none)
	commitLog  int64
	schedule   map[int][2]int64

	// Master/slave: index of the master. DLedger/controller: the node
	// holding the master role (nil while there is none).
	leader *Node

	// DLedger.
	term           int64
	named          string // leader named by the latest election
	lastLeader     int    // index of the latest leader, for the next pick
	electPending   bool
	promotePending bool

	// 5.0 controller.
	masterEpoch int64
	syncEpoch   int64
	inSync      map[*Node]bool
	ctrlMaster  *Node // the master as the controller records it
}

// NameServer is one simulated NameServer.
type NameServer struct {
	c     *Cluster
	idx   int
	srv   *server
	fault faultBox
	life  sync.Mutex
	ready bool // guarded by c.mu; false after a restart until brokers re-register
}

// Start builds the cluster described by spec and starts every listener.
func Start(spec Spec) (*Cluster, error) {
	ver, err := lookupVersion(spec.Version)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		ver:     ver,
		timing:  spec.Timing.withDefaults(),
		clock:   spec.Clock,
		log:     spec.Logger,
		host:    "127.0.0.1",
		byName:  make(map[string]*group),
		cgroups: make(map[string]*consumerGroup),
		sched:   newScheduler(),
		bgStop:  make(chan struct{}),
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if spec.ACL != nil {
		c.acl = make(map[string]Account)
		for _, a := range spec.ACL.Accounts {
			c.acl[a.AccessKey] = a
		}
	}
	if err := c.build(spec); err != nil {
		return nil, err
	}
	if err := c.startAll(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) build(spec Spec) error {
	nns := spec.NameServers
	if len(spec.Ports.NameServers) > nns {
		nns = len(spec.Ports.NameServers)
	}
	if nns <= 0 {
		nns = 1
	}
	if len(spec.Groups) == 0 {
		return errors.New("rmqsim: spec has no broker groups")
	}
	for i := 0; i < nns; i++ {
		ns := &NameServer{c: c, idx: i, ready: true}
		addr := ""
		if i < len(spec.Ports.NameServers) {
			addr = spec.Ports.NameServers[i]
		}
		ns.srv = newServer("namesrv-"+strconv.Itoa(i), addr, c.log, &ns.fault, ns.handle)
		ns.srv.version = c.ver.code
		c.namesrvs = append(c.namesrvs, ns)
	}
	now := c.nowMs()
	dlIdx := 0
	for _, gs := range spec.Groups {
		if gs.Name == "" || gs.Cluster == "" {
			return errors.New("rmqsim: every group needs a Cluster and a Name")
		}
		if c.byName[gs.Name] != nil {
			return fmt.Errorf("rmqsim: duplicate group %q", gs.Name)
		}
		if gs.Replicas <= 0 {
			gs.Replicas = 1
			if gs.Mode != MasterSlave {
				gs.Replicas = 3
			}
		}
		if gs.Leader < 0 || gs.Leader >= gs.Replicas {
			return fmt.Errorf("rmqsim: group %q: leader index %d out of range", gs.Name, gs.Leader)
		}
		if gs.Mode == Controller && !c.ver.v5 {
			return fmt.Errorf("rmqsim: group %q: controller mode needs version %s", gs.Name, V5_0_0)
		}
		g := &group{
			spec:     gs,
			topics:   make(map[string]*topicConf),
			subs:     make(map[string]bool),
			offsets:  make(map[string]map[string][]int64),
			schedule: map[int][2]int64{},
			inSync:   make(map[*Node]bool),
		}
		c.groups = append(c.groups, g)
		c.byName[gs.Name] = g
		for i := 0; i < gs.Replicas; i++ {
			n := &Node{c: c, g: g, idx: i, globalIdx: len(c.nodes), alive: true}
			n.diskTotal, n.diskFree = defaultDiskTotal, defaultDiskFree
			addr := ""
			if spec.Ports.BrokerBase > 0 {
				addr = net.JoinHostPort(c.host, strconv.Itoa(spec.Ports.BrokerBase+10*n.globalIdx))
			}
			n.srv = newServer(fmt.Sprintf("broker-%s-n%d", gs.Name, i), addr, c.log, &n.fault, n.handle)
			n.srv.handleConn, n.srv.connClosed = n.handleConn, n.connClosed
			n.srv.version = c.ver.code
			if gs.Mode == DLedger {
				dlAddr := ""
				if spec.Ports.DLedgerBase > 0 {
					dlAddr = net.JoinHostPort(c.host, strconv.Itoa(spec.Ports.DLedgerBase+dlIdx))
				}
				dlIdx++
				n.dl = newServer(fmt.Sprintf("dledger-%s-n%d", gs.Name, i), dlAddr, c.log, &n.fault, n.handleDLedger)
				n.dl.version = c.ver.code
			}
			n.boot(now)
			g.nodes = append(g.nodes, n)
			c.nodes = append(c.nodes, n)
		}
		c.initSystemMetadata(g, now)
	}
	for _, g := range c.groups {
		if g.spec.Mode == Controller {
			c.ctrl = newServer("controller", spec.Ports.Controller, c.log, &c.ctrlF, c.handleController)
			c.ctrl.version = 0
			break
		}
	}
	return nil
}

// initRoles puts every group in its steady state: elected, registered,
// in sync.
func (c *Cluster) initRoles() {
	for _, g := range c.groups {
		lead := g.nodes[g.spec.Leader]
		g.leader = lead
		g.lastLeader = lead.idx
		switch g.spec.Mode {
		case MasterSlave:
			id := int64(1)
			for _, n := range g.nodes {
				if n == lead {
					n.brokerID, n.role = 0, roleAsyncMaster
				} else {
					n.brokerID, n.role = id, roleSlave
					id++
				}
				n.staticID, n.staticRole = n.brokerID, n.role
				n.register(n.brokerID)
			}
		case DLedger:
			g.term = 1
			g.named = lead.selfID()
			for _, n := range g.nodes {
				n.leaderView = g.named
				if n == lead {
					n.brokerID, n.role = 0, roleSyncMaster
				} else {
					n.brokerID, n.role = int64(n.idx)+1, roleSlave
				}
				n.register(n.brokerID)
			}
		case Controller:
			g.masterEpoch, g.syncEpoch = 1, 1
			lead.ctrlID = 1
			id := int64(2)
			for _, n := range g.nodes {
				if n != lead {
					n.ctrlID = id
					id++
				}
				n.brokerID = -1
				g.ctrlMaster = lead
				n.haConnected = n != lead
				g.inSync[n] = true
				if n == lead {
					n.role = roleSyncMaster
					n.register(0)
				} else {
					n.role = roleSlave
					n.register(n.ctrlID)
				}
			}
		}
	}
}

func (c *Cluster) startAll() error {
	c.mu.Lock()
	c.initRoles()
	c.mu.Unlock()
	for _, ns := range c.namesrvs {
		if err := ns.srv.start(); err != nil {
			return err
		}
	}
	if c.ctrl != nil {
		if err := c.ctrl.start(); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		if err := n.srv.start(); err != nil {
			return err
		}
		if n.dl != nil {
			if err := n.dl.start(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close stops every listener, timer and background goroutine and waits for
// all of them.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		close(c.bgStop)
		c.bg.Wait()
		c.sched.close()
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		for _, ns := range c.namesrvs {
			ns.srv.stop()
		}
		if c.ctrl != nil {
			c.ctrl.stop()
		}
		for _, n := range c.nodes {
			n.srv.stop()
			if n.dl != nil {
				n.dl.stop()
			}
		}
	})
}

func (c *Cluster) nowMs() int64 { return c.clock().UnixMilli() }

// after schedules an automatic timeline step unless Timing.Manual is set.
func (c *Cluster) after(d time.Duration, f func()) {
	if c.timing.Manual {
		return
	}
	c.sched.after(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed {
			return
		}
		f()
	})
}

// Version is the imitated release ("4.9.7" or "5.0.0").
func (c *Cluster) Version() string { return c.ver.name }

// NameServerAddrs lists the NameServer addresses.
func (c *Cluster) NameServerAddrs() []string {
	out := make([]string, len(c.namesrvs))
	for i, ns := range c.namesrvs {
		out[i] = ns.srv.Addr()
	}
	return out
}

// NameServers lists the NameServers.
func (c *Cluster) NameServers() []*NameServer { return append([]*NameServer(nil), c.namesrvs...) }

// Nodes lists every broker node in spec order.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Group lists the nodes of one broker group in index order (nil if unknown).
func (c *Cluster) Group(name string) []*Node {
	g := c.byName[name]
	if g == nil {
		return nil
	}
	return append([]*Node(nil), g.nodes...)
}

// Node finds a node by its remoting address.
func (c *Cluster) Node(addr string) *Node {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// ControllerAddr is the 5.0 controller address ("" without controller mode).
func (c *Cluster) ControllerAddr() string {
	if c.ctrl == nil {
		return ""
	}
	return c.ctrl.Addr()
}

// SetControllerFault injects a fault into the controller port.
func (c *Cluster) SetControllerFault(f Fault) { c.ctrlF.set(f) }

func (c *Cluster) namesrvList() string {
	s := ""
	for i, a := range c.NameServerAddrs() {
		if i > 0 {
			s += ";"
		}
		s += a
	}
	return s
}

// Addr is the NameServer's address.
func (ns *NameServer) Addr() string { return ns.srv.Addr() }

// Alive reports whether the NameServer is running.
func (ns *NameServer) Alive() bool { return ns.srv.running() }

// SetFault injects a fault.
func (ns *NameServer) SetFault(f Fault) { ns.fault.set(f) }

// ClearFault removes the fault.
func (ns *NameServer) ClearFault() { ns.fault.set(Fault{}) }

// Kill stops the NameServer (connections refused).
func (ns *NameServer) Kill() {
	ns.life.Lock()
	defer ns.life.Unlock()
	ns.srv.stop()
}

// Restart starts a killed NameServer on the same address. Like a real one it
// knows no broker until they register again (after Timing.RegisterDelay).
func (ns *NameServer) Restart() error {
	ns.life.Lock()
	defer ns.life.Unlock()
	if ns.srv.running() {
		return nil
	}
	c := ns.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("rmqsim: cluster closed")
	}
	ns.ready = c.timing.Manual
	c.after(c.timing.RegisterDelay, func() { ns.ready = true })
	c.mu.Unlock()
	return ns.srv.start()
}
