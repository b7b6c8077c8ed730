package cipher

import (
	"container/heap"
	"fmt"
	"sync"
	"time"
)

// Defaults of the replay guard used by AEAD.
const (
	DefaultReplayWindow     = 2 * time.Minute
	DefaultReplayMaxEntries = 1 << 18
	// MaxReplayIDBytes bounds one remembered id (a nonce), so the cap on
	// entries also bounds memory.
	MaxReplayIDBytes = 256
)

// ReplayGuard rejects messages whose issue time is outside a window around
// now and messages whose id was already accepted. It remembers an id only
// until its message would be rejected as expired anyway, so memory is
// bounded by the window's traffic and capped at maxEntries. When the cap is
// reached it refuses new ids (ErrReplayCacheFull) instead of forgetting live
// ones, which would let a replay through. Safe for concurrent use.
type ReplayGuard struct {
	window     time.Duration
	maxEntries int

	mu      sync.Mutex
	seen    map[string]time.Time // id -> forget after
	byExpry expiryHeap
}

// NewReplayGuard accepts issue times within window of now (either way) and
// remembers at most maxEntries live ids. Non-positive arguments select the
// defaults (DefaultReplayWindow, DefaultReplayMaxEntries).
func NewReplayGuard(window time.Duration, maxEntries int) *ReplayGuard {
	if window <= 0 {
		window = DefaultReplayWindow
	}
	if maxEntries <= 0 {
		maxEntries = DefaultReplayMaxEntries
	}
	return &ReplayGuard{window: window, maxEntries: maxEntries, seen: make(map[string]time.Time)}
}

// Window is the accepted distance between issue time and now.
func (g *ReplayGuard) Window() time.Duration { return g.window }

// Check returns ErrExpired when issued is more than the window away from
// now, ErrReplay when id was accepted before and is still remembered,
// ErrReplayCacheFull when no room is left, ErrMalformed for an empty or
// over-long id; otherwise it records id and
// returns nil. Only call it for messages that are already authenticated, so
// forged ids cannot fill the cache.
func (g *ReplayGuard) Check(id string, issued time.Time, now time.Time) error {
	if id == "" || len(id) > MaxReplayIDBytes {
		return fmt.Errorf("%w: message id must be 1..%d bytes, got %d", ErrMalformed, MaxReplayIDBytes, len(id))
	}
	if d := now.Sub(issued); d > g.window || d < -g.window {
		return fmt.Errorf("%w: issued %s, now %s, window %s", ErrExpired,
			issued.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), g.window)
	}
	forgetAfter := issued.Add(g.window)

	g.mu.Lock()
	defer g.mu.Unlock()
	g.pruneLocked(now)
	if _, ok := g.seen[id]; ok {
		return fmt.Errorf("%w: message id already seen within %s", ErrReplay, g.window)
	}
	if len(g.seen) >= g.maxEntries {
		return fmt.Errorf("%w: %d live ids", ErrReplayCacheFull, len(g.seen))
	}
	g.seen[id] = forgetAfter
	heap.Push(&g.byExpry, expiryEntry{id: id, at: forgetAfter})
	return nil
}

// Len is the number of ids currently remembered.
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

// pruneLocked forgets ids whose messages can no longer pass the time check
// (issued + window is before now).
func (g *ReplayGuard) pruneLocked(now time.Time) {
	for g.byExpry.Len() > 0 && g.byExpry[0].at.Before(now) {
		e := heap.Pop(&g.byExpry).(expiryEntry)
		delete(g.seen, e.id)
	}
}

type expiryEntry struct {
	id string
	at time.Time
}

// expiryHeap is a min-heap of entries by expiry, so pruning is O(log n) per
// forgotten id.
type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
