package runs

import (
	"sync"

	"github.com/omserver/omserver-go/internal/task"
)

// SubscriberBuffer bounds how many events a subscriber may fall behind
// before it is cut loose. A cut-loose subscriber resynchronises from the
// database, so a slow browser never blocks a run and never loses a result.
const SubscriberBuffer = 256

// End is the final state of a run, as its subscribers are told.
type End struct {
	Status task.RunStatus `json:"status"`
	Error  string         `json:"error,omitempty"`
}

// Subscription is one listener on one run. C delivers the run's output and
// result events and is closed when the run ends (End then holds the final
// state) or when the subscriber fell behind (Lagged is then true and it must
// resynchronise from the stored results).
type Subscription struct {
	C      <-chan task.Event
	c      chan task.Event
	lagged bool
	ended  bool
	end    End
}

// Lagged reports, after C is closed, whether the subscription was dropped
// because the reader was too slow.
func (s *Subscription) Lagged() bool { return s.lagged }

// End reports, after C is closed, whether the run ended and how.
func (s *Subscription) End() (End, bool) { return s.end, s.ended }

// broker fans one run's events out to its live subscribers.
type broker struct {
	mu    sync.Mutex
	subs  map[*Subscription]struct{}
	batch *task.Event // the last rollout batch event: where the rollout stands
	ended bool
	end   End
}

func newBroker() *broker {
	return &broker{subs: make(map[*Subscription]struct{})}
}

// subscribe registers a listener. If the run already ended, the returned
// subscription's channel is already closed with End set. A rollout's
// latest batch event comes first, so a late subscriber sees where the
// rollout stands (paused, say) without waiting for the next batch.
func (b *broker) subscribe() *Subscription {
	c := make(chan task.Event, SubscriberBuffer)
	s := &Subscription{C: c, c: c}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		s.ended, s.end = true, b.end
		close(s.c)
		return s
	}
	if b.batch != nil {
		s.c <- *b.batch
	}
	b.subs[s] = struct{}{}
	return s
}

// unsubscribe removes a listener that stops reading early.
func (b *broker) unsubscribe(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.c)
	}
}

// publish delivers ev to every subscriber without ever blocking: a
// subscriber whose buffer is full is marked lagged and dropped.
func (b *broker) publish(ev task.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	if ev.Type == task.EventBatch {
		b.batch = &ev
	}
	for s := range b.subs {
		select {
		case s.c <- ev:
		default:
			s.lagged = true
			delete(b.subs, s)
			close(s.c)
		}
	}
}

// finish closes every subscription with the run's final state; later
// subscribers get it at once.
func (b *broker) finish(end End) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	b.ended, b.end = true, end
	for s := range b.subs {
		s.ended, s.end = true, end
		delete(b.subs, s)
		close(s.c)
	}
}

// subscribers is how many listeners the broker has now.
func (b *broker) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
