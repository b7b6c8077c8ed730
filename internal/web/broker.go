package web

import (
	"sync"

	"github.com/omserver/omserver-go/internal/task"
)

// subscriberBuffer bounds how many events a subscriber may fall behind before
// it is cut loose. A cut-loose subscriber resynchronises from the database, so
// a slow browser never blocks a run and never loses a result.
const subscriberBuffer = 64

// runEnd is the final state of a run, sent to subscribers as the "done" event.
type runEnd struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// subscription is one listener on one run's broker. C delivers results and is
// closed when the run ends (End then holds the final state) or when the
// subscriber fell behind (Lagged is then true and it must resynchronise).
type subscription struct {
	C      chan task.HostResult
	lagged bool
	ended  bool
	end    runEnd
}

// Lagged reports, after C is closed, whether the subscription was dropped
// because the reader was too slow. Only valid after C is closed.
func (s *subscription) Lagged() bool { return s.lagged }

// End reports, after C is closed, whether the run ended and how.
func (s *subscription) End() (runEnd, bool) { return s.end, s.ended }

// broker fans one run's results out to its live subscribers.
type broker struct {
	mu    sync.Mutex
	subs  map[*subscription]struct{}
	ended bool
	end   runEnd
}

func newBroker() *broker {
	return &broker{subs: make(map[*subscription]struct{})}
}

// subscribe registers a listener. If the run already ended, the returned
// subscription's channel is already closed with End set.
func (b *broker) subscribe() *subscription {
	s := &subscription{C: make(chan task.HostResult, subscriberBuffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		s.ended, s.end = true, b.end
		close(s.C)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// unsubscribe removes a listener that stops reading early.
func (b *broker) unsubscribe(s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.C)
	}
}

// publish delivers r to every subscriber without ever blocking: a subscriber
// whose buffer is full is marked lagged and dropped.
func (b *broker) publish(r task.HostResult) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	for s := range b.subs {
		select {
		case s.C <- r:
		default:
			s.lagged = true
			delete(b.subs, s)
			close(s.C)
		}
	}
}

// finish closes every subscription with the run's final state; later
// subscribers get it at once.
func (b *broker) finish(end runEnd) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	b.ended, b.end = true, end
	for s := range b.subs {
		s.ended, s.end = true, end
		delete(b.subs, s)
		close(s.C)
	}
}
