package canary

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeProducer stands for the library's producer: it picks a queue through
// the canary's selector like the library does and delivers acknowledged
// probes to the consumer callback from other goroutines — every 5th send
// refused, every 7th delivered twice, every 11th never.
type fakeProducer struct {
	sel     *selector
	mqs     []*primitive.MessageQueue
	deliver func(*primitive.MessageExt)
	block   chan struct{} // when set, sends wait for it

	n          atomic.Int64
	inside     atomic.Int32
	maxInside  atomic.Int32
	deliveries sync.WaitGroup
}

func (f *fakeProducer) Start() error    { return nil }
func (f *fakeProducer) Shutdown() error { return nil }

func (f *fakeProducer) SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error) {
	in := f.inside.Add(1)
	defer f.inside.Add(-1)
	for {
		m := f.maxInside.Load()
		if in <= m || f.maxInside.CompareAndSwap(m, in) {
			break
		}
	}
	if f.block != nil {
		<-f.block
	}
	msg := msgs[0]
	mq := f.sel.Select(msg, f.mqs, "")
	n := f.n.Add(1)
	if n%5 == 0 {
		return nil, errors.New("CODE: 14, DESC: service not available now")
	}
	ext := &primitive.MessageExt{Message: primitive.Message{Topic: msg.Topic, Body: msg.Body, Queue: mq}}
	if n%11 != 0 {
		f.deliveries.Go(func() {
			time.Sleep(time.Duration(n%3) * time.Millisecond)
			f.deliver(ext)
			if n%7 == 0 {
				f.deliver(ext)
			}
		})
	}
	return &primitive.SendResult{Status: primitive.SendOK, MessageQueue: mq}, ctx.Err()
}

func fakeCanary(t *testing.T, interval, sendTimeout time.Duration, block chan struct{}) (*Canary, *fakeProducer, *session) {
	t.Helper()
	c, err := New(Config{
		NameServers: []string{"127.0.0.1:9876"}, Admin: &fakeAdmin{},
		Interval: interval, SLA: 10 * time.Millisecond, LostAfter: 40 * time.Millisecond, SendTimeout: sendTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	tg := target{}
	s := &session{target: tg, sel: newSelector(tg, c.ledger)}
	f := &fakeProducer{sel: s.sel, mqs: queues(DefaultTopic, "a", "b"), block: block}
	cb := c.onMessages(tg)
	f.deliver = func(m *primitive.MessageExt) { _, _ = cb(context.Background(), m) }
	s.producer = f
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.up.Store(true)
		c.probe(s)
		c.up.Store(false)
	}()
	return c, f, s
}

// TestConcurrentProbing drives the prober, the consumer callback and
// scrapes at once against a fake client: run with -race it checks the
// canary's own synchronisation, which the library's races hide.
func TestConcurrentProbing(t *testing.T) {
	c, f, _ := fakeCanary(t, time.Millisecond, time.Second, nil)
	var scrapes sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 2; i++ {
		scrapes.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					gather(t, c)
				}
			}
		})
	}
	waitFor(t, "probes of every kind", 10*time.Second, func() bool {
		return testutil.ToFloat64(c.m.lost.WithLabelValues("a"))+testutil.ToFloat64(c.m.lost.WithLabelValues("b")) >= 2 &&
			testutil.ToFloat64(c.m.duplicates.WithLabelValues("a"))+testutil.ToFloat64(c.m.duplicates.WithLabelValues("b")) >= 2
	})
	close(stop)
	scrapes.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.deliveries.Wait()

	var produced, failed, acked float64
	for _, b := range []string{"a", "b"} {
		produced += testutil.ToFloat64(c.m.produced.WithLabelValues(b))
		failed += testutil.ToFloat64(c.m.produceFailed.WithLabelValues(b))
	}
	for _, mf := range gather(t, c) {
		if mf.GetName() == "rocketmq_canary_produce_latency_seconds" {
			for _, m := range mf.GetMetric() {
				acked += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	if produced == 0 || produced != failed+acked {
		t.Errorf("produced %v = failed %v + acknowledged %v does not hold", produced, failed, acked)
	}
	if f.maxInside.Load() != 1 {
		t.Errorf("%d sends inside the client at once", f.maxInside.Load())
	}
	if g := ourGoroutines(); len(g) > 0 {
		t.Errorf("goroutines left: %v", g)
	}
}

// TestHungClientCountsFailures: a send that never returns must neither
// block the prober nor pile up goroutines; later probes count as failures.
func TestHungClientCountsFailures(t *testing.T) {
	block := make(chan struct{})
	c, f, _ := fakeCanary(t, 5*time.Millisecond, 20*time.Millisecond, block)
	waitFor(t, "failures while the client hangs", 10*time.Second, func() bool {
		return testutil.ToFloat64(c.m.produceFailed.WithLabelValues("")) >= 5
	})
	if in := f.inside.Load(); in != 1 {
		t.Errorf("%d sends inside the hung client", in)
	}
	// Scrapes are not held up by the hung client.
	begin := time.Now()
	gather(t, c)
	if el := time.Since(begin); el > time.Second {
		t.Errorf("scrape took %v", el)
	}
	close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.deliveries.Wait()
}
