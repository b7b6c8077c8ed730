package runs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// drive follows a run this tier owns to its end: it dispatches a new run
// (t != nil) or resumes one taken over, stores what arrives and records
// the end. It returns without recording an end when ctx ends (shutdown,
// lease lost): the run goes on and the next owner resumes it.
func (s *Service) drive(ctx context.Context, ar *activeRun, t *task.Task) {
	defer s.wg.Done()
	defer close(ar.done)
	defer s.forget(ar)
	ackCtx, stopAcks := context.WithCancel(ctx)
	ackDone := make(chan struct{})
	go func() { defer close(ackDone); s.acknowledge(ackCtx, ar) }()
	defer func() { stopAcks(); <-ackDone }()
	log := s.log.With().Str("run_id", ar.id).Logger()

	ended := false
	handle := func(ev task.Event) error {
		end, err := s.handle(ctx, ar, ev)
		if end {
			ended = true
		}
		return err
	}
	if t != nil {
		addr, err := s.master.Dispatch(ctx, *t, func(addr string) error {
			ar.mu.Lock()
			ar.master = addr
			ar.mu.Unlock()
			// The record names the master before the task can reach it, so
			// whoever follows the run later asks the right master.
			return s.retryStore(ctx, "record the run's master", func(c context.Context) error { return s.st.SetRunMaster(c, ar.id, addr) })
		}, handle)
		switch {
		case err == nil || ended:
			return
		case ctx.Err() != nil:
			log.Info().Err(context.Cause(ctx)).Msg("stopped following the run; it goes on on its master")
			return
		case errors.Is(err, task.ErrInterrupted):
			s.finish(ctx, ar, task.RunEnd{Status: task.RunInterrupted, Error: err.Error()})
			return
		case addr != "" && (errors.Is(err, task.ErrDuplicateRun) || apperr.Is(err, apperr.Unavailable) && !errors.Is(err, task.ErrMasterDown)):
			// The run may be on that master: follow it there.
			log.Warn().Err(err).Str("master", addr).Msg("lost the run's stream; resuming it on its master")
		default:
			// Refused before anything ran, or no master reachable.
			s.finish(ctx, ar, task.RunEnd{Status: task.RunFailed, Error: err.Error()})
			return
		}
	}
	s.follow(ctx, ar, handle, &ended)
}

// follow resumes the run on its master until its end is recorded, the
// master says it lost the run, or the master stays unreachable for
// MasterLostAfter.
func (s *Service) follow(ctx context.Context, ar *activeRun, handle func(task.Event) error, ended *bool) {
	log := s.log.With().Str("run_id", ar.id).Logger()
	backoff := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		ar.mu.Lock()
		addr, after := ar.master, ar.lastSeq
		ar.mu.Unlock()
		if addr == "" {
			s.finish(ctx, ar, task.RunEnd{Status: task.RunFailed, Error: "the web tier stopped before the run was sent to a master: nothing ran"})
			return
		}
		err := s.master.Resume(ctx, addr, ar.id, after, handle)
		switch {
		case err == nil || *ended:
			return
		case ctx.Err() != nil:
			log.Info().Err(context.Cause(ctx)).Msg("stopped following the run; it goes on on its master")
			return
		case errors.Is(err, task.ErrInterrupted):
			s.finish(ctx, ar, task.RunEnd{Status: task.RunInterrupted, Error: err.Error()})
			return
		case errors.Is(err, task.ErrEventsDropped):
			s.finish(ctx, ar, task.RunEnd{Status: task.RunInterrupted, Error: fmt.Sprintf(
				"master %s dropped this run's events after #%d before they were stored (its journal's size or age bound): the results shown are all there will be", addr, after)})
			return
		case errors.Is(err, task.ErrRunNotFound):
			if after > 0 {
				s.finish(ctx, ar, task.RunEnd{Status: task.RunInterrupted, Error: fmt.Sprintf("master %s no longer knows the run (its journal was reset or the run aged out): %v", addr, err)})
				return
			}
			// Sent, or about to be, when the previous owner stopped. Once
			// the master would refuse the task as stale, nothing ran.
			if s.now().Sub(ar.createdAt) > neverAcceptedAfter {
				s.finish(ctx, ar, task.RunEnd{Status: task.RunFailed, Error: fmt.Sprintf("the run never reached master %s (the web tier stopped while sending it): nothing ran", addr)})
				return
			}
		}
		ar.mu.Lock()
		silent := s.now().Sub(ar.progress)
		ar.mu.Unlock()
		if silent > s.cfg.MasterLostAfter {
			s.finish(ctx, ar, task.RunEnd{Status: task.RunInterrupted, Error: fmt.Sprintf(
				"master %s unreachable for %s: the run is lost to this web tier (hosts without a result may or may not have run it): %v", addr, silent.Round(time.Second), err)})
			return
		}
		if attempt == 0 || attempt%10 == 0 {
			log.Warn().Err(err).Str("master", addr).Uint64("after_seq", after).Msg("cannot follow the run on its master; retrying")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// handle is one event of the run's stream; it reports whether the run's
// end was recorded. A result is stored (with retries while the database is
// unavailable), then published and acknowledged; output is only published.
func (s *Service) handle(ctx context.Context, ar *activeRun, ev task.Event) (ended bool, err error) {
	ar.mu.Lock()
	ar.progress = s.now()
	dup := ev.Seq != 0 && ev.Seq <= ar.pubSeq
	ar.mu.Unlock()
	switch ev.Type {
	case task.EventOutput:
		if ev.Output == nil || !ar.hosts[ev.Output.Host.IP] || dup {
			return false, nil
		}
		ev.RunID = ar.id
		ar.broker.publish(ev)
		s.published(ar, ev.Seq)
	case task.EventBatch:
		if ev.Batch == nil || dup {
			return false, nil
		}
		ev.RunID = ar.id
		ar.broker.publish(ev)
		s.published(ar, ev.Seq)
		if b := ev.Batch; b.Paused && b.Confirm {
			s.log.Info().Str("run_id", ar.id).Int("next_batch", b.Index).Int("batches", b.Count).Msg("rollout paused: waits for an operator's continue")
			s.tell(Notice{Kind: NoticePaused, RunID: ar.id, Detail: fmt.Sprintf(
				"the canary batch is done; batch %d of %d (%d hosts) starts when an operator continues the run (until %s UTC, then the rest is skipped)",
				b.Index, b.Count, b.Hosts, b.Until.UTC().Format("2006-01-02 15:04"))})
		}
	case task.EventResult:
		if ev.Result == nil {
			return false, nil
		}
		return false, s.record(ctx, ar, ev)
	case task.EventDone:
		end := task.RunEnd{Status: task.RunDone}
		if ev.End != nil && ev.End.Status.Finished() {
			end = *ev.End
		}
		if end.Status == task.RunDone && ar.cancelled.Load() {
			// Cancelled here after the last host had finished: it is done.
			end.Error = "the cancel came after every host had finished"
		}
		if err := s.finishAt(ctx, ar, end, ev.Seq); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

func (s *Service) published(ar *activeRun, seq uint64) {
	ar.mu.Lock()
	if seq > ar.pubSeq {
		ar.pubSeq = seq
	}
	ar.mu.Unlock()
}

// record stores one host's result and acknowledges it. Results for hosts
// outside the run are dropped: a master must not add rows the run did not
// ask for.
func (s *Service) record(ctx context.Context, ar *activeRun, ev task.Event) error {
	r := *ev.Result
	if !ar.hosts[r.Host.IP] {
		s.log.Warn().Str("run_id", ar.id).Str("host", r.Host.IP).Msg("master reported a host that is not in the run; ignored")
		return nil
	}
	ar.mu.Lock()
	second := ar.seen[r.Host.IP]
	ar.mu.Unlock()
	if second {
		s.log.Warn().Str("run_id", ar.id).Str("host", r.Host.IP).Msg("second result for a host; ignored")
		return nil
	}
	r.RunID = ar.id
	if s.cfg.CheckResult != nil {
		// Vetted as the master sent it (its signature covers this form).
		if err := s.cfg.CheckResult(r); err != nil {
			s.log.Error().Err(err).Str("run_id", ar.id).Str("host", r.Host.IP).Msg("host result refused")
			ar.mu.Lock()
			ar.refused++
			ar.seen[r.Host.IP] = true
			ar.mu.Unlock()
			return nil
		}
	}
	if !r.Status.Valid() {
		r.Error = strings.TrimSpace(r.Error + fmt.Sprintf(" (master sent unknown status %q)", string(r.Status)))
		r.Status = task.StatusFailed
	}
	err := s.retryStore(ctx, "store a host's result", func(c context.Context) error { return s.st.RecordRunResult(c, ar.id, ev.Seq, r) })
	if err != nil && ctx.Err() != nil {
		return err // stopping: the next owner resumes after the last stored event
	}
	ar.mu.Lock()
	if err != nil {
		// Refused for good (not an outage): shown live, counted in the
		// run's error, never blocking the rest of the run.
		s.log.Error().Err(err).Str("run_id", ar.id).Str("host", r.Host.IP).Msg("host result refused by the database")
		ar.lost++
	}
	ar.seen[r.Host.IP] = true
	if ev.Seq > ar.lastSeq {
		ar.lastSeq = ev.Seq
	}
	ar.mu.Unlock()
	ev.RunID, ev.Result = ar.id, &r
	ar.broker.publish(ev)
	s.published(ar, ev.Seq)
	// Tell the acknowledger the newest stored event (it sends the latest).
	select {
	case <-ar.acks:
	default:
	}
	ar.acks <- ev.Seq
	return nil
}

// acknowledge sends the newest stored event's seq to the master, one call
// at a time, so a fast run costs fewer acks than results.
func (s *Service) acknowledge(ctx context.Context, ar *activeRun) {
	for {
		select {
		case <-ctx.Done():
			return
		case seq := <-ar.acks:
			ar.mu.Lock()
			addr := ar.master
			ar.mu.Unlock()
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := s.master.Ack(actx, addr, ar.id, seq); err != nil && ctx.Err() == nil {
				// Harmless: the master keeps the events a little longer.
				s.log.Debug().Err(err).Str("run_id", ar.id).Uint64("seq", seq).Msg("ack not delivered")
			}
			cancel()
		}
	}
}

// finishAt records the run's end carried by event seq, acknowledges it
// (the master may then drop the run's events) and tells the subscribers.
func (s *Service) finishAt(ctx context.Context, ar *activeRun, end task.RunEnd, seq uint64) error {
	end.Status = s.outcome(ctx, ar.id, end.Status)
	ar.mu.Lock()
	if ar.lost > 0 {
		end.Error = strings.TrimSpace(end.Error + fmt.Sprintf(" (%d host result(s) could not be recorded in the database; see the web tier's log)", ar.lost))
	}
	if ar.refused > 0 {
		end.Error = strings.TrimSpace(end.Error + fmt.Sprintf(" (%d host result(s) refused: the master's signature did not verify)", ar.refused))
	}
	addr := ar.master
	ar.mu.Unlock()
	err := s.retryStore(ctx, "record the run's end", func(c context.Context) error {
		return s.st.FinishRunAt(c, ar.id, end.Status, end.Error, seq)
	})
	recorded := err == nil
	switch {
	case errors.Is(err, store.ErrConflict):
		// Another tier recorded it (it took the run over meanwhile) and
		// tells its observers.
	case err != nil && ctx.Err() != nil:
		return err
	case err != nil:
		s.log.Error().Err(err).Str("run_id", ar.id).Msg("run end refused by the database")
	}
	if seq > 0 && addr != "" {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.master.Ack(actx, addr, ar.id, seq); err != nil {
			s.log.Debug().Err(err).Str("run_id", ar.id).Msg("final ack not delivered; the master drops the events at its age bound")
		}
		cancel()
	}
	ar.broker.finish(End{Status: end.Status, Error: end.Error})
	s.metrics.finished.WithLabelValues(string(end.Status)).Inc()
	ev := s.log.Info()
	if end.Status != task.RunOK {
		ev = s.log.Warn()
	}
	ev.Str("run_id", ar.id).Str("status", string(end.Status)).Str("error", end.Error).Msg("run finished")
	if recorded {
		s.tell(Notice{Kind: NoticeEnded, RunID: ar.id, Status: end.Status, Error: end.Error})
	}
	return nil
}

// finish records an end that no event carries (the master lost the run,
// or it never reached one). Nothing is recorded when ctx ended first (this
// tier stopped, or lost the lease): the next owner decides.
func (s *Service) finish(ctx context.Context, ar *activeRun, end task.RunEnd) {
	if ctx.Err() != nil {
		return
	}
	_ = s.finishAt(ctx, ar, end, 0)
}

// retryStore runs a database write until it succeeds, retrying with
// backoff while the database is unavailable (down, restarting, full,
// read-only) for as long as ctx lasts. Other errors are returned at once.
func (s *Service) retryStore(ctx context.Context, what string, write func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	var since time.Time
	for attempt := 1; ; attempt++ {
		wctx, cancel := context.WithTimeout(ctx, storeWriteTimeout)
		err := write(wctx)
		cancel()
		if err == nil {
			if attempt > 1 {
				s.log.Info().Str("write", what).Int("attempts", attempt).Dur("waited", time.Since(since)).Msg("database back: write done")
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		}
		if !apperr.Is(err, apperr.Unavailable) {
			return err
		}
		if attempt == 1 {
			since = time.Now()
		}
		s.metrics.retries.Inc()
		if attempt == 1 || attempt%20 == 0 {
			s.log.Warn().Err(err).Str("write", what).Int("attempt", attempt).Msg("database unavailable; retrying (nothing is acknowledged to the master meanwhile)")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// outcome turns a run that ended normally (the master's "done") into what
// its hosts say: ok, partial or failed (task.Outcome), from the counts
// stored on the run, which hold every result this or an earlier owner
// recorded. Any other end is kept; so is "done" when the database cannot
// tell (the counts stay readable on the run either way).
func (s *Service) outcome(ctx context.Context, id string, st task.RunStatus) task.RunStatus {
	if st != task.RunDone {
		return st
	}
	rctx, cancel := context.WithTimeout(ctx, storeWriteTimeout)
	defer cancel()
	run, err := s.st.GetRunInfo(rctx, id)
	if err != nil {
		s.log.Warn().Err(err).Str("run_id", id).Msg("run outcome: counts unreadable; recorded as done")
		return st
	}
	return task.Outcome(run.Summary, run.HostCount)
}
