package canary

import (
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

func queues(topic string, brokers ...string) []*primitive.MessageQueue {
	var out []*primitive.MessageQueue
	for _, b := range brokers {
		for q := 0; q < 2; q++ {
			out = append(out, &primitive.MessageQueue{Topic: topic, BrokerName: b, QueueId: q})
		}
	}
	return out
}

func TestSelectorRoundRobinsOverProbedQueues(t *testing.T) {
	l := newLedger("r", time.Second, 10)
	s := newSelector(target{local: map[string]bool{"b": true}}, l)
	mqs := queues("T", "a", "b", "c")
	var got []int
	for i := 0; i < 4; i++ {
		msg := primitive.NewMessage("T", nil)
		mq := s.Select(msg, mqs, "")
		if mq == nil || mq.BrokerName != "b" {
			t.Fatalf("pick %d: %+v", i, mq)
		}
		if s.pickedFor(msg) != "b" {
			t.Errorf("pick %d not remembered", i)
		}
		got = append(got, mq.QueueId)
	}
	if got[0] == got[1] || got[0] != got[2] {
		t.Errorf("queue ids %v do not alternate", got)
	}
	if len(s.picked) != 0 {
		t.Errorf("picks not forgotten: %v", s.picked)
	}
	if views := l.view(); len(views) != 1 || views[0].name != "b" {
		t.Errorf("brokers in route: %+v", views)
	}
	// No probed queue in the route: the send fails, counted against the
	// sidecar's broker group.
	msg := primitive.NewMessage("T", nil)
	if mq := s.Select(msg, queues("T", "a"), ""); mq != nil {
		t.Errorf("picked %+v outside the local broker", mq)
	}
	if b := s.pickedFor(msg); b != "b" {
		t.Errorf("broker of a failed pick = %q", b)
	}

	cluster := newSelector(target{}, l)
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		seen[cluster.Select(primitive.NewMessage("T", nil), mqs, "").BrokerName] = true
	}
	if len(seen) != 3 || cluster.defaultBroker() != "" {
		t.Errorf("cluster mode reached %v", seen)
	}
}

func TestAllocateTakesTheProbedQueuesOnly(t *testing.T) {
	all := append(queues("T", "a", "b"), queues("%RETRY%g", "a")...)
	got := target{local: map[string]bool{"a": true}}.allocate("T")("g", "me", all, []string{"me", "other"})
	if len(got) != 2 || got[0].BrokerName != "a" || got[1].BrokerName != "a" || got[0].Topic != "T" {
		t.Errorf("sidecar allocation: %v", got)
	}
	if got := (target{}).allocate("T")("g", "me", all, []string{"me", "other"}); len(got) != 4 {
		t.Errorf("cluster allocation ignores other members and the retry topic: %v", got)
	}
}
