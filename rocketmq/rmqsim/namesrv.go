package rmqsim

import (
	"sort"
	"strconv"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// reply builds an answer to req. Successful answers use the request's
// serialize type (the normal path of NettyRemotingAbstract); error answers
// built by the framework stay JSON.
func reply(req *rocketmq.Command, code int, remark string, body []byte) *rocketmq.Command {
	r := rocketmq.NewResponse(req, code, remark)
	r.Body = body
	if code == 0 {
		r.SerializeType = req.SerializeType
	}
	return r
}

func notSupported(req *rocketmq.Command) *rocketmq.Command {
	return reply(req, rocketmq.ResponseRequestCodeNotSupported, " request type "+strconv.Itoa(req.Code)+" not supported", nil)
}

func (ns *NameServer) handle(req *rocketmq.Command) *rocketmq.Command {
	c := ns.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	switch req.Code {
	case rocketmq.CodeGetBrokerClusterInfo:
		return reply(req, 0, "", encodeJSON(c.clusterInfo(ns)))
	case rocketmq.CodeGetAllTopicListFromNameServer:
		return reply(req, 0, "", encodeJSON(jbean{"topicList": c.topicList(ns, "")}))
	case rocketmq.CodeGetTopicsByCluster:
		return reply(req, 0, "", encodeJSON(jbean{"topicList": c.topicList(ns, req.ExtFields["cluster"])}))
	case rocketmq.CodeGetRouteInfoByTopic:
		return c.route(ns, req)
	}
	if c.ver.v5 {
		return notSupported(req)
	}
	// A 4.9 NameServer's DefaultRequestProcessor returns null for unknown
	// codes: no answer at all.
	return nil
}

// registeredGroups lists, per group, its registered live nodes by id.
func (c *Cluster) registered(ns *NameServer, g *group) []*Node {
	if !ns.ready {
		return nil
	}
	var out []*Node
	for _, n := range g.nodes {
		if n.alive && n.registered {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].regID < out[j].regID })
	return out
}

func (c *Cluster) brokerData(ns *NameServer, g *group) jv {
	nodes := c.registered(ns, g)
	if len(nodes) == 0 {
		return nil
	}
	addrs := make(jmap, 0, len(nodes))
	for _, n := range nodes {
		addrs = append(addrs, jentry{jint(n.regID), jstr(n.srv.Addr())})
	}
	b := jbean{"brokerAddrs": addrs, "brokerName": jstr(g.spec.Name), "cluster": jstr(g.spec.Cluster)}
	if c.ver.v5 {
		b["enableActingMaster"] = jbool(false)
	}
	return b
}

func (c *Cluster) clusterInfo(ns *NameServer) jv {
	table := jmap{}
	clusters := jmap{}
	members := map[string]jarr{}
	var order []string
	for _, g := range c.groups {
		bd := c.brokerData(ns, g)
		if bd == nil {
			continue
		}
		table = append(table, jentry{jstr(g.spec.Name), bd})
		if _, ok := members[g.spec.Cluster]; !ok {
			order = append(order, g.spec.Cluster)
		}
		members[g.spec.Cluster] = append(members[g.spec.Cluster], jstr(g.spec.Name))
	}
	for _, cl := range order {
		clusters = append(clusters, jentry{jstr(cl), members[cl]})
	}
	return jbean{"brokerAddrTable": table, "clusterAddrTable": clusters}
}

func (c *Cluster) topicList(ns *NameServer, cluster string) jarr {
	seen := map[string]bool{}
	out := jarr{}
	for _, g := range c.groups {
		if cluster != "" && g.spec.Cluster != cluster {
			continue
		}
		if len(c.registered(ns, g)) == 0 {
			continue
		}
		for _, t := range g.topicOrder {
			if !seen[t] {
				seen[t] = true
				out = append(out, jstr(t))
			}
		}
	}
	return out
}

func (c *Cluster) route(ns *NameServer, req *rocketmq.Command) *rocketmq.Command {
	topic := req.ExtFields["topic"]
	var brokers, queues jarr
	for _, g := range c.groups {
		t := g.topics[topic]
		if t == nil {
			continue
		}
		bd := c.brokerData(ns, g)
		if bd == nil {
			continue
		}
		brokers = append(brokers, bd)
		queues = append(queues, jbean{
			"brokerName": jstr(g.spec.Name), "perm": jint(t.perm), "readQueueNums": jint(len(t.queues)),
			"topicSysFlag": jint(t.sysFlag), "writeQueueNums": jint(len(t.queues)),
		})
	}
	if len(brokers) == 0 {
		return reply(req, rocketmq.ResponseTopicNotExist,
			"No topic route info in name server for the topic: "+topic+"\nSee http://rocketmq.apache.org/docs/faq/ for further details.", nil)
	}
	body := jbean{"brokerDatas": brokers, "filterServerTable": jmap{}, "queueDatas": queues}
	// 4.9.4+ answers standard JSON to new clients (PROTOCOL.md §3.2).
	if req.Version >= 401 || req.ExtFields["acceptStandardJsonOnly"] == "true" {
		return reply(req, 0, "", encodeStdJSON(body))
	}
	return reply(req, 0, "", encodeJSON(body))
}
