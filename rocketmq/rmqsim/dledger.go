package rmqsim

import (
	"encoding/json"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// dledgerRequest is the RequestOrResponse base of every DLedger body.
// Pointers tell "absent" from "empty": absent members are not echoed.
type dledgerRequest struct {
	Group    *string `json:"group"`
	RemoteID *string `json:"remoteId"`
	LeaderID *string `json:"leaderId"`
	Term     *int64  `json:"term"`
}

// DLedger response codes (DLedgerResponseCode).
const (
	dlSuccess            = 200
	dlUnknownGroup       = 400
	dlUnknownMember      = 401
	dlUnexpectedMember   = 402
	dlExpiredTerm        = 403
	dlInconsistentLeader = 409
	dlTermNotReady       = 502
)

// handleDLedger answers the DLedger port: METADATA and the HEART_BEAT
// stale-term probe. The remoting code of a DLedger answer is the DLedger
// code (200 on success); other codes get the framework's code 3.
func (n *Node) handleDLedger(req *rocketmq.Command) *rocketmq.Command {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !n.alive {
		return nil
	}
	switch req.Code {
	case rocketmq.CodeDLedgerMetadata, rocketmq.CodeDLedgerHeartBeat:
	default:
		return notSupported(req)
	}
	var r dledgerRequest
	if len(req.Body) == 0 {
		// JSON.parseObject(null) → NPE in the handler → SYSTEM_ERROR.
		return reply(req, rocketmq.ResponseSystemError, "java.lang.NullPointerException", nil)
	}
	if err := json.Unmarshal(req.Body, &r); err != nil {
		return reply(req, rocketmq.ResponseSystemError, "com.alibaba.fastjson.JSONException: "+err.Error(), nil)
	}
	self := n.selfID()
	// PreConditions in DLedgerServer check the member first, then the group;
	// the answer then copies the request's base fields and names the leader.
	precondition := 0
	switch {
	case r.RemoteID == nil || *r.RemoteID != self:
		precondition = dlUnknownMember
	case r.Group == nil || *r.Group != n.g.spec.Name:
		precondition = dlUnknownGroup
	}
	body := jbean{"term": jint(-1)}
	if req.Code == rocketmq.CodeDLedgerMetadata {
		if precondition != 0 {
			body["code"] = jint(precondition)
			body["group"] = optStr(r.Group)
			body["remoteId"] = optStr(r.RemoteID)
		} else {
			peers := make(jmap, 0, len(n.g.nodes))
			for _, p := range n.g.nodes {
				peers = append(peers, jentry{jstr(p.selfID()), jstr(p.DLedgerAddr())})
			}
			body["code"] = jint(dlSuccess)
			body["group"] = jstr(n.g.spec.Name)
			body["peers"] = peers
		}
		if n.leaderView != "" {
			body["leaderId"] = jstr(n.leaderView)
		}
		return reply(req, dlSuccess, "", encodeJSON(body))
	}
	// HEART_BEAT: answer like DLedgerLeaderElector.handleHeartBeat without
	// ever changing state — the exporter only sends stale-term probes.
	if precondition != 0 {
		body["code"] = jint(precondition)
		body["group"] = optStr(r.Group)
		body["remoteId"] = optStr(r.RemoteID)
		body["leaderId"] = optStr(r.LeaderID)
		if r.Term != nil {
			body["term"] = jint(*r.Term)
		}
		return reply(req, dlSuccess, "", encodeJSON(body))
	}
	term := n.g.term
	code := dlSuccess
	switch {
	case r.LeaderID == nil || n.g.node(*r.LeaderID) == nil:
		code = dlUnknownMember
	case *r.LeaderID == self:
		code = dlUnexpectedMember
	case r.Term == nil || *r.Term < term:
		code = dlExpiredTerm
	case *r.Term > term:
		code = dlTermNotReady
	case n.leaderView != *r.LeaderID:
		code = dlInconsistentLeader
	}
	return reply(req, dlSuccess, "", encodeJSON(jbean{"code": jint(code), "term": jint(term)}))
}

func optStr(s *string) jv {
	if s == nil {
		return nil
	}
	return jstr(*s)
}
