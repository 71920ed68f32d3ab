package canary

import (
	"sort"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// selector is the producer's queue selector: round robin over the queues
// of the probed broker groups (all of the topic's in cluster mode, the local
// ones in sidecar mode). It remembers its pick per message, so a failed
// send is still counted against the broker group it was meant for.
type selector struct {
	target target
	ledger *ledger

	mu     sync.Mutex
	next   int
	picked map[*primitive.Message]string
}

func newSelector(t target, l *ledger) *selector {
	return &selector{target: t, ledger: l, picked: make(map[*primitive.Message]string)}
}

// Select implements producer.QueueSelector. Returning nil makes the send
// fail with "route info not found", which is what a probe of a broker group
// absent from the route should report.
func (s *selector) Select(msg *primitive.Message, mqs []*primitive.MessageQueue, _ string) *primitive.MessageQueue {
	var ok []*primitive.MessageQueue
	seen := map[string]bool{}
	var brokers []string
	for _, mq := range mqs {
		if !s.target.allows(mq.BrokerName) {
			continue
		}
		ok = append(ok, mq)
		if !seen[mq.BrokerName] {
			seen[mq.BrokerName] = true
			brokers = append(brokers, mq.BrokerName)
		}
	}
	s.ledger.inRoute(brokers, time.Now())
	if len(ok) == 0 {
		return nil
	}
	sort.Slice(ok, func(i, j int) bool {
		if ok[i].BrokerName != ok[j].BrokerName {
			return ok[i].BrokerName < ok[j].BrokerName
		}
		return ok[i].QueueId < ok[j].QueueId
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	mq := ok[s.next%len(ok)]
	s.next++
	s.picked[msg] = mq.BrokerName
	return mq
}

// pickedFor returns and forgets the broker group chosen for msg; without a
// pick it falls back to defaultBroker.
func (s *selector) pickedFor(msg *primitive.Message) string {
	s.mu.Lock()
	b, ok := s.picked[msg]
	delete(s.picked, msg)
	s.mu.Unlock()
	if ok {
		return b
	}
	return s.defaultBroker()
}

// defaultBroker names the probed broker group when there is exactly one
// (a sidecar's), else "".
func (s *selector) defaultBroker() string {
	if len(s.target.local) != 1 {
		return ""
	}
	for b := range s.target.local {
		return b
	}
	return ""
}

// allocate is the consumer's queue allocation: the probed queues of the
// probe topic, whatever other members of the group exist. The group's retry
// topic is left alone: the canary never fails a message.
func (t target) allocate(topic string) consumer.AllocateStrategy {
	return func(_, _ string, mqAll []*primitive.MessageQueue, _ []string) []*primitive.MessageQueue {
		var out []*primitive.MessageQueue
		for _, mq := range mqAll {
			if mq.Topic == topic && t.allows(mq.BrokerName) {
				out = append(out, mq)
			}
		}
		return out
	}
}
