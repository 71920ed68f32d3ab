package collector

import (
	"context"
	"sync"
	"testing"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// The real client must satisfy the interface the collectors use.
var _ Client = (*rocketmq.Admin)(nil)

func TestScrapeMemoReadsOncePerBroker(t *testing.T) {
	f := newFakeClient()
	f.addBroker("10.0.0.1:10911", "C", "b", 0, "ASYNC_MASTER")
	f.runtime["10.0.0.1:10911"] = rocketmq.RuntimeInfo{"commitLogMaxOffset": "42"}
	f.topicConfig["10.0.0.1:10911"] = &rocketmq.TopicConfigWrapper{}
	s := Resolve(context.Background(), f, Targets{Brokers: []string{"10.0.0.1:10911"}}, nil)
	b := s.Brokers[0]

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ri, err := s.RuntimeInfo(context.Background(), b)
			if err != nil || ri["commitLogMaxOffset"] != "42" {
				t.Errorf("RuntimeInfo = %v, %v", ri, err)
			}
			if _, err := s.TopicConfig(context.Background(), b); err != nil {
				t.Errorf("TopicConfig: %v", err)
			}
		})
	}
	wg.Wait()
	if n := f.callCount("BrokerRuntimeInfo", b.Addr); n != 1 {
		t.Errorf("BrokerRuntimeInfo asked %d times in one scrape, want 1", n)
	}
	if n := f.callCount("AllTopicConfig", b.Addr); n != 1 {
		t.Errorf("AllTopicConfig asked %d times in one scrape, want 1", n)
	}

	// A new scrape asks again: nothing is cached across scrapes.
	s2 := Resolve(context.Background(), f, Targets{Brokers: []string{"10.0.0.1:10911"}}, nil)
	if _, err := s2.RuntimeInfo(context.Background(), s2.Brokers[0]); err != nil {
		t.Fatal(err)
	}
	if n := f.callCount("BrokerRuntimeInfo", b.Addr); n != 2 {
		t.Errorf("BrokerRuntimeInfo asked %d times over two scrapes, want 2", n)
	}
}

func TestScrapeMemoSharesErrors(t *testing.T) {
	f := newFakeClient()
	f.addBroker("10.0.0.1:10911", "C", "b", 0, "ASYNC_MASTER")
	s := Resolve(context.Background(), f, Targets{Brokers: []string{"10.0.0.1:10911"}}, nil)
	for range 3 {
		if _, err := s.RuntimeInfo(context.Background(), s.Brokers[0]); err == nil {
			t.Fatal("RuntimeInfo without an answer: want error")
		}
	}
	if n := f.callCount("BrokerRuntimeInfo", "10.0.0.1:10911"); n != 1 {
		t.Errorf("failing BrokerRuntimeInfo asked %d times, want 1", n)
	}
}
