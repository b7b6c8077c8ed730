package master

import (
	"context"
	"sync"
)

// hostLocks is the per-host lock of a master: two runs never work on the
// same host at once unless both modules are read-only. A master owns the
// hosts of its zone, so every run that can touch a host passes through its
// master's locks.
type hostLocks struct {
	mu   sync.Mutex
	held map[string]*hostLock
}

type hostLock struct {
	writer  string         // run id holding the host exclusively
	readers map[string]int // run ids of read-only runs sharing it
	changed chan struct{}  // closed when the lock is released
}

func newHostLocks() *hostLocks { return &hostLocks{held: map[string]*hostLock{}} }

// holder names a run holding key against a request (read-only or not);
// "" when the request can take it now.
func (l *hostLock) holder(readOnly bool) string {
	if l.writer != "" {
		return l.writer
	}
	if !readOnly {
		for id := range l.readers {
			return id
		}
	}
	return ""
}

// tryAcquire takes key for runID now if it can; otherwise it returns the
// holding run and a channel closed on the next release.
func (h *hostLocks) tryAcquire(key, runID string, readOnly bool) (holder string, changed <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.held[key]
	if l == nil {
		l = &hostLock{readers: map[string]int{}, changed: make(chan struct{})}
		h.held[key] = l
	}
	if who := l.holder(readOnly); who != "" {
		return who, l.changed
	}
	if readOnly {
		l.readers[runID]++
	} else {
		l.writer = runID
	}
	return "", nil
}

// release gives key back and wakes its waiters.
func (h *hostLocks) release(key, runID string, readOnly bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.held[key]
	if l == nil {
		return
	}
	if readOnly {
		if l.readers[runID]--; l.readers[runID] <= 0 {
			delete(l.readers, runID)
		}
	} else if l.writer == runID {
		l.writer = ""
	}
	close(l.changed)
	l.changed = make(chan struct{})
	if l.writer == "" && len(l.readers) == 0 {
		delete(h.held, key)
	}
}

// acquire waits until runID holds key or ctx ends; onWait is told once
// which run it waits for.
func (h *hostLocks) acquire(ctx context.Context, key, runID string, readOnly bool, onWait func(holder string)) error {
	told := ""
	for {
		who, changed := h.tryAcquire(key, runID, readOnly)
		if who == "" {
			return nil
		}
		if who != told && onWait != nil {
			onWait(who)
			told = who
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-changed:
		}
	}
}
