package backend

import (
	"context"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/task"
)

func TestHostRunStopped(t *testing.T) {
	t.Run("running", func(t *testing.T) {
		h := NewHostRun(context.Background(), time.Hour)
		defer h.Close()
		if st, ok := h.Stopped(); ok {
			t.Fatalf("a fresh run reports stopped: %s", st)
		}
	})
	t.Run("no timeout means no bound", func(t *testing.T) {
		h := NewHostRun(context.Background(), 0)
		defer h.Close()
		if _, ok := h.Ctx.Deadline(); ok {
			t.Fatal("zero timeout set a deadline")
		}
	})
	t.Run("caller cancelled", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		h := NewHostRun(parent, time.Hour)
		defer h.Close()
		cancel()
		if st, ok := h.Stopped(); !ok || st != task.StatusCancelled {
			t.Fatalf("Stopped = %s, %v; want cancelled", st, ok)
		}
	})
	t.Run("timeout expired", func(t *testing.T) {
		h := NewHostRun(context.Background(), time.Nanosecond)
		defer h.Close()
		<-h.Ctx.Done()
		if st, ok := h.Stopped(); !ok || st != task.StatusTimeout {
			t.Fatalf("Stopped = %s, %v; want timeout", st, ok)
		}
	})
}

func TestConnectTimeoutOr(t *testing.T) {
	if got := (Options{}).ConnectTimeoutOr(7 * time.Second); got != 7*time.Second {
		t.Errorf("default not used: %v", got)
	}
	if got := (Options{ConnectTimeout: time.Second}).ConnectTimeoutOr(7 * time.Second); got != time.Second {
		t.Errorf("override not used: %v", got)
	}
}
