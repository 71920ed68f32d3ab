package rmqsim

import (
	"fmt"
)

// The failover timelines follow the recorded ones (fixtures
// rocketmq-4.9.7/dledger-failover and rocketmq-5.0.0/controller-failover),
// with the durations of Timing. Every function here runs under c.mu.

func (c *Cluster) onNodeDown(n *Node) {
	g := n.g
	switch g.spec.Mode {
	case MasterSlave:
		// No automatic failover: the group simply has no master.
	case DLedger:
		if g.leader == n {
			g.leader = nil
			c.scheduleElection(g)
		} else if g.leader != nil && c.liveCount(g) < majority(g) {
			// The leader cannot reach a quorum any more and steps down.
			c.after(c.timing.StaleLeaderWindow, func() { c.stepDown(g) })
		}
	case Controller:
		// The dead node stays in the in-sync set until the controller
		// notices: the election resets the set, a slave is dropped after
		// the HA housekeeping delay.
		n.haConnected = false
		if g.leader == n {
			g.leader = nil
			c.after(c.timing.ControllerElection, func() { c.controllerElect(g) })
		} else {
			c.after(c.timing.HAReconnectDelay, func() {
				if !n.alive && g.inSync[n] && g.leader != nil {
					delete(g.inSync, n)
					g.syncEpoch++
				}
			})
		}
	}
}

func (c *Cluster) onNodeUp(n *Node) {
	g := n.g
	switch g.spec.Mode {
	case MasterSlave:
		n.brokerID, n.role = n.staticID, n.staticRole
		c.after(c.timing.RegisterDelay, func() { c.registerNow(n) })
	case DLedger:
		// 4.9 BrokerStartup sets brokerId -1 in DLedger mode and the role
		// comes from the config file (ASYNC_MASTER by default) until the
		// node learns its DLedger role.
		n.brokerID, n.role = -1, roleAsyncMaster
		n.leaderView = ""
		c.after(c.timing.RegisterDelay, func() { c.registerNow(n) })
	case Controller:
		n.brokerID, n.role = -1, roleSlave
		n.haConnected = false
		c.after(c.timing.RegisterDelay, func() { c.registerNow(n) })
	}
}

func majority(g *group) int { return len(g.nodes)/2 + 1 }

func (c *Cluster) liveCount(g *group) int {
	k := 0
	for _, n := range g.nodes {
		if n.alive {
			k++
		}
	}
	return k
}

func (c *Cluster) scheduleElection(g *group) {
	if g.electPending {
		return
	}
	g.electPending = true
	c.after(c.timing.StaleLeaderWindow, func() {
		g.electPending = false
		c.autoElect(g)
	})
}

// autoElect picks the next live node after the last leader (ring order) if a
// majority is alive; otherwise every live node becomes a candidate.
func (c *Cluster) autoElect(g *group) {
	if g.leader != nil && g.leader.alive {
		return
	}
	if c.liveCount(g) < majority(g) {
		for _, n := range g.nodes {
			if n.alive {
				n.leaderView = ""
			}
		}
		return
	}
	var cand *Node
	for k := 1; k <= len(g.nodes); k++ {
		n := g.nodes[(g.lastLeader+k)%len(g.nodes)]
		if n.alive {
			cand = n
			break
		}
	}
	c.elect(g, cand)
	g.promotePending = true
	c.after(c.timing.RoleChangeDelay, func() {
		g.promotePending = false
		_ = c.promote(g)
	})
}

func (c *Cluster) elect(g *group, n *Node) {
	g.term++
	g.named = n.selfID()
	g.lastLeader = n.idx
	for _, m := range g.nodes {
		if m.alive {
			m.leaderView = g.named
		}
	}
	c.log.Info("dledger election", "group", g.spec.Name, "leader", g.named, "term", g.term)
}

// promote applies the roles of the latest election: the leader's broker
// becomes brokerId 0 / SYNC_MASTER, the followers SLAVE with selfId+1, and
// each re-registers.
func (c *Cluster) promote(g *group) error {
	g.promotePending = false
	var lead *Node
	for _, n := range g.nodes {
		if n.selfID() == g.named {
			lead = n
		}
	}
	if lead == nil || !lead.alive {
		return fmt.Errorf("rmqsim: group %s: elected node %q is not alive", g.spec.Name, g.named)
	}
	if g.leader != nil && g.leader != lead && g.leader.alive {
		old := g.leader
		old.brokerID, old.role = int64(old.idx)+1, roleSlave
		old.register(old.brokerID)
	}
	g.leader = lead
	lead.brokerID, lead.role = 0, roleSyncMaster
	lead.register(0)
	for _, n := range g.nodes {
		if n != lead && n.alive && n.leaderView == g.named {
			n.brokerID, n.role = int64(n.idx)+1, roleSlave
			n.register(n.brokerID)
		}
	}
	return nil
}

func (c *Cluster) stepDown(g *group) {
	if c.liveCount(g) >= majority(g) {
		return
	}
	if old := g.leader; old != nil && old.alive {
		old.brokerID, old.role = int64(old.idx)+1, roleSlave
		old.register(old.brokerID)
	}
	g.leader = nil
	for _, n := range g.nodes {
		if n.alive {
			n.leaderView = ""
		}
	}
}

// registerNow is the (re)start registration: a master/slave node registers
// with its configured id; a DLedger node first learns the leader (or takes
// part in an election); a controller-mode node registers as a slave and
// connects its HA client.
func (c *Cluster) registerNow(n *Node) {
	if !n.alive {
		return
	}
	g := n.g
	switch g.spec.Mode {
	case MasterSlave:
		n.register(n.brokerID)
	case DLedger:
		if g.leader != nil && g.leader.alive {
			n.leaderView = g.leader.selfID()
			n.brokerID, n.role = int64(n.idx)+1, roleSlave
			n.register(n.brokerID)
			return
		}
		if g.named != "" && g.promotePending {
			n.leaderView = g.named
			return
		}
		if !g.electPending && !c.timing.Manual {
			c.autoElect(g)
		}
		if !n.registered && n.leaderView == "" {
			// The periodic registration goes out with whatever id is
			// current: -1 while the node knows no leader (PROTOCOL.md §2.6).
			n.register(n.brokerID)
		}
	case Controller:
		if n.registered {
			return
		}
		if g.leader == nil && g.inSync[n] {
			c.setControllerMaster(g, n)
			return
		}
		n.role = roleSlave
		n.register(n.ctrlID)
		c.after(c.timing.HAReconnectDelay, func() { c.haConnect(n) })
	}
}

// controllerElect elects the first live member of the in-sync set.
func (c *Cluster) controllerElect(g *group) {
	if g.leader != nil && g.leader.alive {
		return
	}
	for _, n := range g.nodes {
		if n.alive && g.inSync[n] {
			c.setControllerMaster(g, n)
			return
		}
	}
}

func (c *Cluster) setControllerMaster(g *group, m *Node) {
	g.masterEpoch++
	g.syncEpoch++
	g.inSync = map[*Node]bool{m: true}
	g.leader = m
	g.ctrlMaster = m
	m.role = roleSyncMaster
	m.haConnected = false
	m.register(0)
	for _, n := range g.nodes {
		if n == m || !n.alive {
			continue
		}
		n.haConnected = false
		n.role = roleSlave
		if n.registered {
			n.register(n.ctrlID)
			c.after(c.timing.HAReconnectDelay, func() { c.haConnect(n) })
		}
	}
	c.log.Info("controller elected master", "group", g.spec.Name, "node", m.selfID(), "masterEpoch", g.masterEpoch)
}

func (c *Cluster) haConnect(n *Node) {
	g := n.g
	if !n.alive || !n.registered || g.leader == nil || !g.leader.alive || g.leader == n {
		return
	}
	n.haConnected = true
	if !g.inSync[n] {
		g.inSync[n] = true
		g.syncEpoch++
	}
}

// ---- exported controls ----

func (c *Cluster) group(name string) (*group, error) {
	g := c.byName[name]
	if g == nil {
		return nil, fmt.Errorf("rmqsim: unknown broker group %q", name)
	}
	return g, nil
}

func (g *group) node(selfID string) *Node {
	for _, n := range g.nodes {
		if n.selfID() == selfID {
			return n
		}
	}
	return nil
}

// Leader is the node holding the master/leader role (nil while none does).
func (c *Cluster) Leader(group string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.byName[group]
	if g == nil || g.leader == nil || !g.leader.alive {
		return nil
	}
	return g.leader
}

// Term is the DLedger term of a group (+1 per election).
func (c *Cluster) Term(group string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.byName[group]; g != nil {
		return g.term
	}
	return 0
}

// MasterEpoch is the 5.0 controller masterEpoch of a group.
func (c *Cluster) MasterEpoch(group string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.byName[group]; g != nil {
		return g.masterEpoch
	}
	return 0
}

// SyncStateSetEpoch is the 5.0 controller syncStateSetEpoch of a group.
func (c *Cluster) SyncStateSetEpoch(group string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.byName[group]; g != nil {
		return g.syncEpoch
	}
	return 0
}

// KillLeader kills the current master/leader of a group and returns it.
func (c *Cluster) KillLeader(group string) (*Node, error) {
	n := c.Leader(group)
	if n == nil {
		return nil, fmt.Errorf("rmqsim: group %q has no live leader", group)
	}
	n.Kill()
	return n, nil
}

// Elect runs phase one of a DLedger election now: the term grows by one and
// every live peer names selfID. For a controller-mode group it makes selfID
// the master at once (masterEpoch + 1).
func (c *Cluster) Elect(group, selfID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(group)
	if err != nil {
		return err
	}
	n := g.node(selfID)
	if n == nil || !n.alive {
		return fmt.Errorf("rmqsim: group %s: node %q is not alive", group, selfID)
	}
	switch g.spec.Mode {
	case DLedger:
		c.elect(g, n)
	case Controller:
		if g.leader == n {
			return nil
		}
		if old := g.leader; old != nil && old.alive {
			old.role = roleSlave
			old.register(old.ctrlID)
			c.after(c.timing.HAReconnectDelay, func() { c.haConnect(old) })
		}
		c.setControllerMaster(g, n)
	default:
		return fmt.Errorf("rmqsim: group %s has no elections", group)
	}
	return nil
}

// Promote runs phase two of a DLedger election now: the elected node's broker
// turns into brokerId 0 / SYNC_MASTER, the others into SLAVE, and all
// re-register.
func (c *Cluster) Promote(group string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(group)
	if err != nil {
		return err
	}
	if g.spec.Mode != DLedger {
		return fmt.Errorf("rmqsim: group %s is not a DLedger group", group)
	}
	return c.promote(g)
}

// ForceLeader is Elect followed by Promote.
func (c *Cluster) ForceLeader(group, selfID string) error {
	if err := c.Elect(group, selfID); err != nil {
		return err
	}
	c.mu.Lock()
	g := c.byName[group]
	mode := g.spec.Mode
	c.mu.Unlock()
	if mode == DLedger {
		return c.Promote(group)
	}
	return nil
}

// RegisterNow performs a restarted node's registration step at once (Manual
// mode, or to skip the wait).
func (c *Cluster) RegisterNow(n *Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.registerNow(n)
}

// SyncNow connects every live controller-mode slave of the group to its
// master and puts it back into the in-sync set (Manual mode).
func (c *Cluster) SyncNow(group string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.group(group)
	if err != nil {
		return err
	}
	for _, n := range g.nodes {
		c.haConnect(n)
	}
	for n := range g.inSync {
		if !n.alive && g.leader != nil {
			delete(g.inSync, n)
			g.syncEpoch++
		}
	}
	return nil
}
