package runs

import (
	"context"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

// Milestones an Observer is told about.
const (
	// NoticeEnded: the run's end is recorded (any final status).
	NoticeEnded = "ended"
	// NoticePaused: the run waits for an operator's decision (a rollout's
	// canary batch is done and the next batch needs a "continue").
	NoticePaused = "paused"
)

// Notice is a milestone of a run.
type Notice struct {
	Kind   string // NoticeEnded or NoticePaused
	RunID  string
	Status task.RunStatus // the final status, for NoticeEnded
	Error  string
	Detail string // what the run waits for, for NoticePaused
}

// Observer is told about the milestones of the runs this process
// dispatches, after each is recorded (notifications, schedules). It is
// called from the run's own goroutine: it must return promptly, and its
// failures are its own (logged by it), never the run's.
type Observer interface {
	Observe(ctx context.Context, n Notice)
}

// observeTimeout bounds what observers may take of a run's goroutine.
const observeTimeout = 10 * time.Second

// tell passes n to every configured observer.
func (s *Service) tell(n Notice) {
	if len(s.cfg.Observers) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), observeTimeout)
	defer cancel()
	for _, o := range s.cfg.Observers {
		o.Observe(ctx, n)
	}
}
