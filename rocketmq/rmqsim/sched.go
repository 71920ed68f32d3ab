package rmqsim

import (
	"sync"
	"time"
)

// scheduler runs the delayed steps of the failover timelines. Close stops
// pending steps and waits for running ones, so nothing outlives the cluster.
type scheduler struct {
	mu     sync.Mutex
	closed bool
	timers map[*timerHandle]struct{}
	wg     sync.WaitGroup
}

type timerHandle struct{ t *time.Timer }

func newScheduler() *scheduler {
	return &scheduler{timers: make(map[*timerHandle]struct{})}
}

func (s *scheduler) after(d time.Duration, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	h := &timerHandle{}
	s.wg.Add(1)
	// The callback takes s.mu first, so it always sees h.t assigned.
	h.t = time.AfterFunc(d, func() {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			s.wg.Done()
			return
		}
		delete(s.timers, h)
		s.mu.Unlock()
		defer s.wg.Done()
		f()
	})
	s.timers[h] = struct{}{}
}

func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	for h := range s.timers {
		if h.t.Stop() {
			s.wg.Done()
		}
	}
	s.timers = nil
	s.mu.Unlock()
	s.wg.Wait()
}
