package runs

import (
	"context"
	"errors"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// heartbeat renews this tier's run leases every third of the lease time,
// stops following runs whose lease another tier took, and takes over runs
// whose lease expired (or that this tier owned before a restart). It runs
// a first pass at once, so a restarted tier resumes its runs right away.
func (s *Service) heartbeat() {
	defer s.wg.Done()
	every := s.cfg.LeaseTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.beat()
		select {
		case <-s.base.Done():
			return
		case <-t.C:
		}
	}
}

// beat is one heartbeat.
func (s *Service) beat() {
	ctx, cancel := context.WithTimeout(s.base, s.cfg.LeaseTTL/3)
	defer cancel()
	now := s.now().UTC()
	held, err := s.st.RenewLeases(ctx, s.cfg.TierID, now.Add(s.cfg.LeaseTTL))
	if err != nil {
		if s.base.Err() == nil {
			s.log.Warn().Err(err).Msg("cannot renew run leases (the runs go on; another tier may take them over if this lasts)")
		}
		return
	}
	mine := make(map[string]bool, len(held))
	for _, id := range held {
		mine[id] = true
	}
	s.mu.Lock()
	var lost []*activeRun
	for id, ar := range s.active {
		// Only runs whose lease existed before this renewal: a run being
		// submitted right now may not have its lease row yet.
		if at := ar.leasedAt.Load(); !mine[id] && at != nil && at.Before(now) {
			lost = append(lost, ar)
		}
	}
	s.mu.Unlock()
	for _, ar := range lost {
		// The lease row is gone (the run ended) or another tier took it
		// over while this tier could not renew: stop, record nothing.
		select {
		case <-ar.done:
		default:
			s.log.Warn().Str("run_id", ar.id).Msg("run lease lost to another tier; no longer following the run here")
			ar.cancel(errLeaseLost)
		}
	}
	s.claim(ctx, now)
}

// claim takes over the runs this tier may claim.
func (s *Service) claim(ctx context.Context, now time.Time) {
	ids, err := s.st.ClaimableRuns(ctx, s.cfg.TierID, now, maxClaimsPerPass)
	if err != nil {
		if s.base.Err() == nil {
			s.log.Warn().Err(err).Msg("cannot look for runs to take over")
		}
		return
	}
	for _, id := range ids {
		if s.get(id) != nil {
			continue
		}
		ok, err := s.st.ClaimRun(ctx, id, s.cfg.TierID, now, now.Add(s.cfg.LeaseTTL))
		if err != nil {
			s.log.Warn().Err(err).Str("run_id", id).Msg("cannot claim a run")
			continue
		}
		if !ok {
			continue
		}
		if err := s.adopt(ctx, id); err != nil && !errors.Is(err, errShuttingDown) {
			s.log.Warn().Err(err).Str("run_id", id).Msg("claimed a run but cannot follow it; its lease will expire and be claimed again")
		}
	}
}

// adopt starts following a run this tier just claimed, from its last
// stored event.
func (s *Service) adopt(ctx context.Context, id string) error {
	run, err := s.st.GetRunRecord(ctx, id)
	if err != nil {
		return err
	}
	if run.Status != task.RunRunning {
		return nil
	}
	hosts := make(map[string]bool, len(run.Hosts))
	for _, h := range run.Hosts {
		hosts[h.IP] = true
	}
	ar, runCtx, err := s.register(id, hosts, run.CreatedAt)
	if err != nil {
		if errors.Is(err, task.ErrDuplicateRun) {
			return nil
		}
		return err
	}
	ar.master, ar.lastSeq, ar.pubSeq = run.Master, run.AckedSeq, run.AckedSeq
	leased := s.now().UTC()
	ar.leasedAt.Store(&leased)
	s.metrics.takeovers.Inc()
	s.log.Info().Str("run_id", id).Str("master", run.Master).Uint64("after_seq", run.AckedSeq).Msg("took the run over; resuming it from its master's journal")
	go s.drive(runCtx, ar, nil)
	return nil
}
