package rmqsim

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// Controller constants of the simulated single-node controller (the 5.0
// recording ran one controller, DLedger group "ctrlgroup", self id "n0").
const (
	controllerGroup  = "ctrlgroup"
	controllerSelfID = "n0"
	// controllerBrokerMetadataNotExist is CONTROLLER_BROKER_METADATA_NOT_EXIST.
	controllerBrokerMetadataNotExist = 2008
)

// handleController answers the 5.0 controller port.
func (c *Cluster) handleController(req *rocketmq.Command) *rocketmq.Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	addr := c.ctrl.Addr()
	switch req.Code {
	case rocketmq.CodeControllerGetMetadataInfo:
		// GetMetaDataResponseHeader: everything in extFields, no body.
		r := reply(req, 0, "", nil)
		r.ExtFields = map[string]string{
			"controllerLeaderId": controllerSelfID, "controllerLeaderAddress": addr, "isLeader": "true",
			"peers": controllerSelfID + ":" + addr + ";", "group": controllerGroup,
		}
		return r
	case rocketmq.CodeControllerGetReplicaInfo:
		g := c.byName[req.ExtFields["brokerName"]]
		if g == nil || g.spec.Mode != Controller {
			return reply(req, controllerBrokerMetadataNotExist, "Broker metadata is not existed", nil)
		}
		members := c.inSyncMembers(g)
		set := make(jarr, len(members))
		for i, m := range members {
			set[i] = jstr(m.Addr())
		}
		r := reply(req, 0, "", encodeJSON(jbean{"syncStateSet": set, "syncStateSetEpoch": jint(g.syncEpoch)}))
		r.ExtFields = map[string]string{
			"masterAddress": c.masterAddr(g), "brokerId": "-1", "masterEpoch": strconv.FormatInt(g.masterEpoch, 10),
		}
		return r
	case rocketmq.CodeControllerGetSyncStateData:
		var names []string
		if len(req.Body) == 0 || json.Unmarshal(req.Body, &names) != nil {
			// The handler bails out before setting a code.
			return reply(req, rocketmq.ResponseSystemError, "not set any response code", nil)
		}
		table := jmap{}
		for _, name := range names {
			g := c.byName[name]
			if g == nil || g.spec.Mode != Controller {
				continue
			}
			members := jarr{}
			for _, m := range c.inSyncMembers(g) {
				id := m.ctrlID
				if g.ctrlMaster == m {
					id = 0
				}
				members = append(members, jbean{"address": jstr(m.Addr()), "brokerId": jint(id)})
			}
			table = append(table, jentry{jstr(name), jbean{
				"inSyncMembers": members, "masterAddress": jstr(c.masterAddr(g)),
				"masterEpoch": jint(g.masterEpoch), "syncStateSetEpoch": jint(g.syncEpoch),
			}})
		}
		return reply(req, 0, "", encodeJSON(jbean{"inSyncStateTable": table}))
	}
	return notSupported(req)
}

// inSyncMembers lists the in-sync set, master first.
func (c *Cluster) inSyncMembers(g *group) []*Node {
	var out []*Node
	for n := range g.inSync {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i] == g.ctrlMaster) != (out[j] == g.ctrlMaster) {
			return out[i] == g.ctrlMaster
		}
		return out[i].idx < out[j].idx
	})
	return out
}

// masterAddr is the master the controller believes in: a dead master stays
// until the election replaces it.
func (c *Cluster) masterAddr(g *group) string {
	if g.ctrlMaster == nil {
		return ""
	}
	return g.ctrlMaster.Addr()
}
