package rmqsim

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// Replays the recorded failover phases against the simulator at the same
// phase, comparing shapes and the values that make the phase: who is listed
// under which brokerId, who names which leader, live brokerId/brokerRole,
// the controller's in-sync set and the HA view.

func member(n *jnode, key string) *jnode {
	if n == nil || n.kind != 'o' {
		return nil
	}
	for i, k := range n.keys {
		if k.kind == 's' && k.str == key {
			return n.vals[i]
		}
	}
	return nil
}

func scalar(n *jnode) string {
	if n == nil {
		return "<absent>"
	}
	return n.str
}

// phaseValues extracts the phase-defining values of one answer, with
// addresses replaced by logical node names.
func phaseValues(t *testing.T, code int, resp *rocketmq.Command, names func(addr string) string) string {
	t.Helper()
	if code == rocketmq.CodeGetBrokerConfig {
		var id, role string
		for _, line := range strings.Split(string(resp.Body), "\n") {
			if v, ok := strings.CutPrefix(line, "brokerId="); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(line, "brokerRole="); ok {
				role = v
			}
		}
		return id + "/" + role
	}
	if len(resp.Body) == 0 {
		return ""
	}
	root, err := parseRelaxed(resp.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var parts []string
	switch code {
	case rocketmq.CodeGetBrokerClusterInfo:
		table := member(root, "brokerAddrTable")
		for i, k := range table.keys {
			addrs := member(table.vals[i], "brokerAddrs")
			var ids []string
			for j, id := range addrs.keys {
				ids = append(ids, id.str+"="+names(addrs.vals[j].str))
			}
			sort.Strings(ids)
			parts = append(parts, k.str+"{"+strings.Join(ids, ",")+"}")
		}
	case rocketmq.CodeDLedgerMetadata:
		parts = append(parts, "leader="+scalar(member(root, "leaderId")))
	case rocketmq.CodeControllerGetSyncStateData:
		table := member(root, "inSyncStateTable")
		for i, k := range table.keys {
			st := table.vals[i]
			var ms []string
			for _, m := range member(st, "inSyncMembers").elems {
				ms = append(ms, names(scalar(member(m, "address")))+"="+scalar(member(m, "brokerId")))
			}
			sort.Strings(ms)
			parts = append(parts, fmt.Sprintf("%s master=%s isr=[%s]", k.str, names(scalar(member(st, "masterAddress"))), strings.Join(ms, " ")))
		}
	case rocketmq.CodeControllerGetReplicaInfo:
		var set []string
		for _, a := range member(root, "syncStateSet").elems {
			set = append(set, names(a.str))
		}
		sort.Strings(set)
		parts = append(parts, "master="+names(resp.ExtFields["masterAddress"]), "set="+strings.Join(set, ","))
	case rocketmq.CodeGetBrokerHAStatus:
		client := member(root, "haClientRuntimeInfo")
		master := "<absent>"
		if a := member(client, "masterAddr"); a != nil {
			master = names(portPlus(a.str, -1)) // the HA port is the remoting port + 1
		}
		parts = append(parts, "master="+scalar(member(root, "master")), "inSync="+scalar(member(root, "inSyncSlaveNums")),
			fmt.Sprintf("conns=%d", len(member(root, "haConnectionInfo").elems)), "haMaster="+master)
	default:
		return ""
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func phaseCheck(recordedNames, simNames func(string) string) valueCheck {
	return func(t *testing.T, name string, code int, recorded, simulated *rocketmq.Command) {
		t.Helper()
		if got, want := phaseValues(t, code, simulated, simNames), phaseValues(t, code, recorded, recordedNames); got != want {
			t.Errorf("phase values differ:\n  simulator %s\n  recording %s", got, want)
		}
	}
}

func namer(m map[string]string) func(string) string {
	return func(addr string) string {
		if n, ok := m[addr]; ok {
			return n
		}
		return addr
	}
}

func TestFailoverFixturesDLedger(t *testing.T) {
	c := fixture497(t, Timing{Manual: true})
	r := c.Group("RaftNode00")
	recorded := namer(map[string]string{"127.0.0.1:30911": "n0", "127.0.0.1:31911": "n1", "127.0.0.1:32911": "n2",
		"127.0.0.1:10911": "a", "127.0.0.1:11911": "b0", "127.0.0.1:12911": "b1"})
	sim := namer(map[string]string{r[0].Addr(): "n0", r[1].Addr(): "n1", r[2].Addr(): "n2",
		c.Group("broker-a")[0].Addr(): "a", c.Group("broker-b")[0].Addr(): "b0", c.Group("broker-b")[1].Addr(): "b1"})
	target := func(name string, code int) string {
		switch {
		case strings.HasPrefix(name, "namesrv."):
			return c.NameServerAddrs()[0]
		case strings.HasPrefix(name, "raft_n"):
			n := r[nodeIndex(name, "raft_n")]
			if code >= rocketmq.CodeDLedgerMetadata {
				return n.DLedgerAddr()
			}
			return n.Addr()
		}
		t.Fatalf("no node for %s", name)
		return ""
	}
	check := phaseCheck(recorded, sim)
	dir := "testdata/fixtures/rocketmq-4.9.7/dledger-failover/"
	steps := []struct {
		phase string
		do    func()
	}{
		{"t00-before", func() {}},
		{"t04", func() {
			if _, err := c.KillLeader("RaftNode00"); err != nil {
				t.Fatal(err)
			}
			must(t, c.Elect("RaftNode00", "n2"))
		}},
		{"t05", func() { must(t, c.Promote("RaftNode00")) }},
		{"t15-rejoin", func() { must(t, r[1].Restart()); c.RegisterNow(r[1]) }},
	}
	for _, s := range steps {
		s.do()
		t.Run(s.phase, func(t *testing.T) {
			if n := replayDirCheck(t, dir+s.phase, target, check); n < 10 {
				t.Errorf("only %d requests replayed", n)
			}
		})
	}
}

func TestFailoverFixturesController(t *testing.T) {
	c := fixture500(t, Timing{Manual: true})
	g, d := c.Group("broker-c"), c.Group("broker-d")
	recorded := namer(map[string]string{"127.0.0.1:20911": "n0", "127.0.0.1:21911": "n1", "127.0.0.1:22911": "n2",
		"127.0.0.1:23911": "d0", "127.0.0.1:24911": "d1"})
	sim := namer(map[string]string{g[0].Addr(): "n0", g[1].Addr(): "n1", g[2].Addr(): "n2", d[0].Addr(): "d0", d[1].Addr(): "d1"})
	target := func(name string, code int) string {
		switch {
		case strings.HasPrefix(name, "namesrv."):
			return c.NameServerAddrs()[0]
		case strings.HasPrefix(name, "controller."):
			return c.ControllerAddr()
		case strings.HasPrefix(name, "ctrl_n"):
			return g[nodeIndex(name, "ctrl_n")].Addr()
		}
		t.Fatalf("no node for %s", name)
		return ""
	}
	check := phaseCheck(recorded, sim)
	dir := "testdata/fixtures/rocketmq-5.0.0/controller-failover/"
	steps := []struct {
		phase string
		do    func()
	}{
		{"t00-before", func() {}},
		{"t01", func() {
			g[2].Kill()
			must(t, c.Elect("broker-c", "n0"))
		}},
		{"t30-rejoin", func() {
			must(t, g[2].Restart())
			c.RegisterNow(g[2])
			must(t, c.SyncNow("broker-c"))
		}},
	}
	for _, s := range steps {
		s.do()
		t.Run(s.phase, func(t *testing.T) {
			if n := replayDirCheck(t, dir+s.phase, target, check); n < 8 {
				t.Errorf("only %d requests replayed", n)
			}
		})
	}
}
