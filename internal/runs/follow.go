package runs

import (
	"context"
	"errors"
	"time"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// follower shows one subscriber a run that another tier owns: it reads
// the run's stream from its master, read-only (it stores and acknowledges
// nothing), or, while the master cannot be followed, what the owner
// stored in the database.
type follower struct {
	broker *broker
	cancel context.CancelFunc
}

// errNoSubscriber ends a follower whose subscriber is gone.
var errNoSubscriber = errors.New("no subscriber left")

// Subscribe returns a live subscription to a running run, whichever tier
// owns it, or false when the run is not running (finished, or unknown).
// Events published before the call are not replayed: a subscriber reads
// the stored results after subscribing (results are stored, then
// published, and a follower starts after the last stored event, so none
// falls between) and skips hosts it has seen.
func (s *Service) Subscribe(id string) (*Subscription, bool) {
	if ar := s.get(id); ar != nil {
		return ar.broker.subscribe(), true
	}
	ctx, cancel := context.WithTimeout(s.base, 5*time.Second)
	run, err := s.st.GetRunRecord(ctx, id)
	cancel()
	if err != nil || run.Status != task.RunRunning {
		return nil, false
	}
	if ar := s.get(id); ar != nil { // taken over meanwhile
		return ar.broker.subscribe(), true
	}
	b := newBroker()
	sub := b.subscribe()
	fctx, fcancel := context.WithCancel(s.base)
	f := &follower{broker: b, cancel: fcancel}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		fcancel()
		return nil, false
	}
	if s.followers == nil {
		s.followers = make(map[*Subscription]*follower)
	}
	s.followers[sub] = f
	s.wg.Add(1)
	s.mu.Unlock()
	go s.followReadOnly(fctx, f, sub, run)
	return sub, true
}

// Unsubscribe ends a subscription its reader no longer reads.
func (s *Service) Unsubscribe(id string, sub *Subscription) {
	s.mu.Lock()
	f := s.followers[sub]
	delete(s.followers, sub)
	s.mu.Unlock()
	if f != nil {
		f.cancel()
		f.broker.unsubscribe(sub)
		return
	}
	if ar := s.get(id); ar != nil {
		ar.broker.unsubscribe(sub)
	}
	// Otherwise the run ended meanwhile: its broker closed every subscription.
}

// followReadOnly feeds one subscriber until the run ends or the
// subscriber goes away.
func (s *Service) followReadOnly(ctx context.Context, f *follower, sub *Subscription, run store.Run) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		if s.followers[sub] == f {
			delete(s.followers, sub)
		}
		s.mu.Unlock()
		f.cancel()
	}()
	hosts := make(map[string]bool, len(run.Hosts))
	for _, h := range run.Hosts {
		hosts[h.IP] = true
	}
	after := run.AckedSeq
	shown := make(map[string]bool) // hosts whose result was published
	handle := func(ev task.Event) error {
		after = ev.Seq
		switch ev.Type {
		case task.EventOutput:
			if ev.Output != nil && hosts[ev.Output.Host.IP] {
				f.broker.publish(ev)
			}
		case task.EventBatch:
			if ev.Batch != nil {
				f.broker.publish(ev)
			}
		case task.EventResult:
			if ev.Result != nil && hosts[ev.Result.Host.IP] {
				shown[ev.Result.Host.IP] = true
				f.broker.publish(ev)
			}
		case task.EventDone:
			end := End{Status: task.RunDone}
			if ev.End != nil && ev.End.Status.Finished() {
				end = End{Status: ev.End.Status, Error: ev.End.Error}
			}
			end.Status = s.outcome(ctx, run.ID, end.Status)
			f.broker.finish(end)
			return nil
		}
		if f.broker.subscribers() == 0 {
			return errNoSubscriber
		}
		return nil
	}
	backoff := 500 * time.Millisecond
	masterUsable := run.Master != ""
	for {
		if masterUsable {
			err := s.master.Resume(ctx, run.Master, run.ID, after, handle)
			if err == nil || ctx.Err() != nil || errors.Is(err, errNoSubscriber) {
				return
			}
			// Lost, dropped or unknown there: only the database can tell the
			// rest (its owner records it). Unreachable: look at the database
			// meanwhile, then try the master again.
			masterUsable = apperr.Is(err, apperr.Unavailable)
		}
		if s.showStored(ctx, f, run.ID, hosts, shown) {
			return
		}
		wait := followerPoll
		if masterUsable {
			wait = backoff
			backoff = min(backoff*2, maxBackoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if f.broker.subscribers() == 0 {
			return
		}
	}
}

// showStored publishes the stored results not shown yet and, when the run
// has ended, its end. It reports whether the run has ended.
func (s *Service) showStored(ctx context.Context, f *follower, id string, hosts, shown map[string]bool) bool {
	rctx, cancel := context.WithTimeout(ctx, storeWriteTimeout)
	defer cancel()
	run, results, err := s.st.GetRun(rctx, id)
	if err != nil {
		return false
	}
	for i := range results {
		r := results[i]
		if !hosts[r.Host.IP] || shown[r.Host.IP] {
			continue
		}
		shown[r.Host.IP] = true
		f.broker.publish(task.Event{RunID: id, Type: task.EventResult, Result: &r})
	}
	if run.Status.Finished() {
		f.broker.finish(End{Status: run.Status, Error: run.Error})
		return true
	}
	return false
}
