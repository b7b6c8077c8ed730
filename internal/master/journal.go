package master

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/omserver/omserver-go/internal/task"
)

// The journal is the master's memory of runs on its own disk (a bbolt
// file): which run ids it accepted (so a run id is accepted once, also
// after a restart) and every event of every run, numbered, until the web
// tier acknowledges that it stored them. Web tiers read a run's events
// from here, live or after reconnecting, so a run goes on when its web
// tier restarts, loses the network or waits for its database.
//
// Layout:
//
//	runs   run id -> runRecord (JSON)
//	order  accepted time (8 bytes, big endian ns) + run id -> nothing;
//	       the runs in acceptance order, for the age and size bounds
//	events run id -> bucket of seq (8 bytes, big endian) -> task.Event (JSON)
var (
	bucketRuns   = []byte("runs")
	bucketOrder  = []byte("order")
	bucketEvents = []byte("events")
)

// Defaults of the journal's bounds.
const (
	// DefaultJournalMaxBytes bounds the event bytes kept for runs whose
	// events were not acknowledged; beyond it the oldest finished runs'
	// events are dropped (running runs' never are).
	DefaultJournalMaxBytes = 1 << 30
	// DefaultJournalMaxAge is how long a run is remembered: its id (for
	// idempotency) and, when never acknowledged, its events.
	DefaultJournalMaxAge = 7 * 24 * time.Hour
)

// Tuning of the journal's writer.
const (
	journalQueue     = 4096            // events waiting for the writer before Append blocks
	journalBatch     = 512             // events per write transaction at most
	journalPruneTick = 5 * time.Minute // how often the bounds are enforced
	followBatch      = 256             // events read per read transaction
)

// JournalConfig bounds the journal. Zero values mean the defaults.
type JournalConfig struct {
	MaxBytes int64
	MaxAge   time.Duration
}

// Run states in the journal.
const (
	stateRunning  = "running"
	stateFinished = "finished" // its done event is in the journal
	stateLost     = "lost"     // the master stopped (crash, kill) while it ran
)

// runRecord is one accepted run.
type runRecord struct {
	State    string    `json:"state"`
	Accepted time.Time `json:"accepted"`
	Ended    time.Time `json:"ended,omitzero"`
	LastSeq  uint64    `json:"last_seq"`  // of the last event written
	AckedSeq uint64    `json:"acked_seq"` // the web tier stored everything up to here
	Bytes    int64     `json:"bytes"`     // size of the events kept
	Dropped  bool      `json:"dropped,omitempty"`
	Module   int       `json:"module"`
	Hosts    int       `json:"hosts"`
	User     string    `json:"user,omitempty"`
}

// Journal is safe for concurrent use.
type Journal struct {
	db  *bolt.DB
	cfg JournalConfig
	log zerolog.Logger
	now func() time.Time

	queue chan appendReq
	stop  chan struct{} // closed by Close: writer drains and ends
	done  chan struct{} // closed when the writer ended

	mu     sync.Mutex
	notify map[string]chan struct{} // run id -> closed at the next commit touching it
	bytes  int64                    // event bytes kept, all runs
	closed bool
	failed error // the last write error, nil once a write succeeds
}

type appendReq struct {
	runID string
	seq   uint64
	done  bool
	data  []byte
}

// OpenJournal opens (or creates) the journal file. Runs it remembers as
// running were in progress when the previous master process ended without
// finishing them (kill -9, crash, power loss): they are marked lost, and a
// web tier following one learns that the master lost it.
func OpenJournal(path string, cfg JournalConfig, log zerolog.Logger) (*Journal, error) {
	if path == "" {
		return nil, errors.New("master: journal: no path configured")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultJournalMaxBytes
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultJournalMaxAge
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("master: journal directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("master: journal %s is in use by another process (is another master running on this file?)", path)
		}
		return nil, fmt.Errorf("master: opening journal %s: %w", path, err)
	}
	j := &Journal{
		db: db, cfg: cfg, log: log.With().Str("component", "journal").Logger(), now: time.Now,
		queue: make(chan appendReq, journalQueue), stop: make(chan struct{}), done: make(chan struct{}),
		notify: make(map[string]chan struct{}),
	}
	lost, err := j.recover()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("master: journal %s: %w", path, err)
	}
	if lost > 0 {
		j.log.Warn().Int("runs", lost).Msg("runs in progress when the master last stopped are marked lost")
	}
	j.prune()
	go j.writer()
	j.log.Info().Str("path", path).Int64("event_bytes", j.bytes).Msg("journal open")
	return j, nil
}

// recover creates the buckets, marks running runs lost and totals the
// event bytes kept.
func (j *Journal) recover() (lost int, err error) {
	err = j.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRuns, bucketOrder, bucketEvents} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		runs := tx.Bucket(bucketRuns)
		var total int64
		var stale [][]byte
		var recs []runRecord
		err := runs.ForEach(func(k, v []byte) error {
			var rec runRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("run %q: %w", k, err)
			}
			total += rec.Bytes
			if rec.State == stateRunning {
				stale = append(stale, append([]byte(nil), k...))
				recs = append(recs, rec)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, k := range stale {
			recs[i].State, recs[i].Ended = stateLost, j.now().UTC()
			if err := putRecord(runs, string(k), recs[i]); err != nil {
				return err
			}
		}
		j.bytes, lost = total, len(stale)
		return nil
	})
	return lost, err
}

func putRecord(runs *bolt.Bucket, id string, rec runRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return runs.Put([]byte(id), v)
}

func getRecord(runs *bolt.Bucket, id string) (runRecord, bool, error) {
	v := runs.Get([]byte(id))
	if v == nil {
		return runRecord{}, false, nil
	}
	var rec runRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return runRecord{}, false, fmt.Errorf("journal: run %s: %w", id, err)
	}
	return rec, true, nil
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func orderKey(at time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	return append(k, id...)
}

// Accept records t's run id before anything of it runs. A run id is
// accepted once: a second time, here or after a restart, it is
// task.ErrDuplicateRun. A journal that cannot be written (or whose last
// write of events failed) refuses with task.ErrJournal: nothing ran, and
// the web tier may try another master.
func (j *Journal) Accept(t task.Task) error {
	j.mu.Lock()
	closed, over, failed := j.closed, j.bytes >= j.cfg.MaxBytes, j.failed
	j.mu.Unlock()
	if closed {
		return fmt.Errorf("%w: the journal is closed", task.ErrShuttingDown)
	}
	if failed != nil {
		// Events of running runs are waiting to be written: a new run's
		// could not be kept either.
		return fmt.Errorf("%w: %v", task.ErrJournal, failed)
	}
	if over {
		// Make room from finished runs first; refuse only when the running
		// ones alone fill the bound.
		j.prune()
		j.mu.Lock()
		over = j.bytes >= j.cfg.MaxBytes
		j.mu.Unlock()
		if over {
			return fmt.Errorf("%w: it holds %d bytes of events of running runs, the configured maximum", task.ErrJournal, j.cfg.MaxBytes)
		}
	}
	now := j.now().UTC()
	err := j.db.Update(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		rec, ok, err := getRecord(runs, t.RunID)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("%w: run %s was accepted at %s (%s)", task.ErrDuplicateRun, t.RunID, rec.Accepted.Format(time.RFC3339), rec.State)
		}
		if err := putRecord(runs, t.RunID, runRecord{State: stateRunning, Accepted: now, Module: t.ModuleID, Hosts: len(t.Hosts), User: t.User}); err != nil {
			return err
		}
		return tx.Bucket(bucketOrder).Put(orderKey(now, t.RunID), nil)
	})
	if err != nil {
		if errors.Is(err, task.ErrDuplicateRun) {
			return err
		}
		j.log.Error().Err(err).Str("run_id", t.RunID).Msg("journal: cannot record an accepted run; refusing it")
		return fmt.Errorf("%w: %v", task.ErrJournal, err)
	}
	return nil
}

// Append queues ev for writing; the writer commits it (with others) and
// then wakes the run's followers. Events of one run must be appended in
// seq order, from one goroutine. It blocks only while the writer is
// journalQueue events behind.
func (j *Journal) Append(runID string, ev task.Event) {
	ev.RunID = runID
	data, err := json.Marshal(ev)
	if err != nil {
		// A task.Event always encodes; this would be a programming error.
		j.log.Error().Err(err).Str("run_id", runID).Uint64("seq", ev.Seq).Msg("journal: cannot encode an event")
		return
	}
	select {
	case j.queue <- appendReq{runID: runID, seq: ev.Seq, done: ev.Type == task.EventDone, data: data}:
	case <-j.stop:
		j.log.Error().Str("run_id", runID).Uint64("seq", ev.Seq).Msg("journal: event after close; not journaled")
	}
}

// writer commits queued events in batches, one fsync per batch, until the
// journal is closed and the queue is empty. A failed write (disk full,
// read-only file system) is retried with backoff: the events stay queued,
// and followers see nothing new until the write succeeds.
func (j *Journal) writer() {
	defer close(j.done)
	for {
		var batch []appendReq
		select {
		case r := <-j.queue:
			batch = append(batch, r)
		case <-j.stop:
			// Close: write what is still queued, then end.
			for {
				select {
				case r := <-j.queue:
					batch = append(batch, r)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				j.commit(batch, true)
			}
			return
		}
	fill:
		for len(batch) < journalBatch {
			select {
			case r := <-j.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		j.commit(batch, false)
	}
}

// commit writes one batch, retrying with backoff until it succeeds or,
// when closing, a few attempts failed.
func (j *Journal) commit(batch []appendReq, closing bool) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		added, err := j.write(batch)
		if err == nil {
			j.mu.Lock()
			j.bytes += added
			if j.failed != nil {
				j.log.Info().Msg("journal writable again")
			}
			j.failed = nil
			j.mu.Unlock()
			j.wake(batch)
			return
		}
		j.mu.Lock()
		first := j.failed == nil
		j.failed = err
		j.mu.Unlock()
		if first || attempt%20 == 0 {
			j.log.Error().Err(err).Int("events", len(batch)).Int("attempt", attempt).Msg("journal: cannot write events; retrying (runs go on, web tiers wait for them)")
		}
		if closing && attempt >= 5 {
			j.log.Error().Err(err).Int("events", len(batch)).Msg("journal: closing with events that could not be written")
			return
		}
		select {
		case <-time.After(backoff):
		case <-j.stop:
			if !closing {
				// Keep the batch: the close path drains the queue but not
				// this batch, so try again without waiting.
				closing = true
			}
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (j *Journal) write(batch []appendReq) (added int64, err error) {
	err = j.db.Update(func(tx *bolt.Tx) error {
		added = 0
		runs, events := tx.Bucket(bucketRuns), tx.Bucket(bucketEvents)
		recs := make(map[string]runRecord)
		for _, r := range batch {
			rec, ok := recs[r.runID]
			if !ok {
				var found bool
				var err error
				rec, found, err = getRecord(runs, r.runID)
				if err != nil {
					return err
				}
				if !found {
					// Pruned by age while still being written: cannot happen
					// for a running run; keep the event anyway.
					rec = runRecord{State: stateRunning, Accepted: j.now().UTC()}
				}
			}
			if r.seq <= rec.LastSeq {
				continue // written by an earlier attempt of this batch
			}
			b, err := events.CreateBucketIfNotExists([]byte(r.runID))
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(r.seq), r.data); err != nil {
				return err
			}
			rec.LastSeq = r.seq
			rec.Bytes += int64(len(r.data))
			added += int64(len(r.data))
			if r.done {
				rec.State, rec.Ended = stateFinished, j.now().UTC()
			}
			recs[r.runID] = rec
		}
		for id, rec := range recs {
			if err := putRecord(runs, id, rec); err != nil {
				return err
			}
		}
		return nil
	})
	return added, err
}

// wake tells the followers of every run in batch that it has new events.
func (j *Journal) wake(batch []appendReq) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range batch {
		if ch, ok := j.notify[r.runID]; ok {
			close(ch)
			delete(j.notify, r.runID)
		}
	}
}

// waitChan is closed at the next commit of runID's events (or at Close).
func (j *Journal) waitChan(runID string) <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	ch, ok := j.notify[runID]
	if !ok {
		ch = make(chan struct{})
		j.notify[runID] = ch
	}
	return ch
}

// Follow calls send with runID's events after seq after, in order, as they
// are written, and returns nil once the done event was sent (or right away
// when after is already the done event's seq). It returns
// task.ErrRunNotFound for a run it never accepted (or forgot, past the age
// bound), task.ErrInterrupted when the master lost the run (after sending
// what was written of it), task.ErrEventsDropped when the events asked for
// are no longer kept, task.ErrShuttingDown when the journal closes, and
// send's error or ctx's end otherwise.
func (j *Journal) Follow(ctx context.Context, runID string, after uint64, send func(task.Event) error) error {
	for {
		wait := j.waitChan(runID)
		evs, rec, err := j.read(runID, after)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := send(ev); err != nil {
				return err
			}
			after = ev.Seq
			if ev.Type == task.EventDone {
				return nil
			}
		}
		if len(evs) == followBatch {
			continue
		}
		switch {
		case rec.Dropped && after < rec.LastSeq:
			return fmt.Errorf("%w: run %s events after %d (up to %d)", task.ErrEventsDropped, runID, after, rec.LastSeq)
		case rec.State == stateFinished && after >= rec.LastSeq:
			return nil
		case rec.State == stateLost && after >= rec.LastSeq:
			return fmt.Errorf("%w: the master stopped while run %s was in progress (at %s); the hosts without a result may or may not have run it",
				task.ErrInterrupted, runID, rec.Ended.Format(time.RFC3339))
		}
		j.mu.Lock()
		closed := j.closed
		j.mu.Unlock()
		if closed {
			return fmt.Errorf("%w: the master is stopping", task.ErrShuttingDown)
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		case <-j.stop:
		}
	}
}

// read returns up to followBatch events of runID after seq, and its record.
func (j *Journal) read(runID string, after uint64) ([]task.Event, runRecord, error) {
	var evs []task.Event
	var rec runRecord
	err := j.db.View(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		rec, ok, err = getRecord(tx.Bucket(bucketRuns), runID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: this master has no run %s", task.ErrRunNotFound, runID)
		}
		b := tx.Bucket(bucketEvents).Bucket([]byte(runID))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(evs) < followBatch; k, v = c.Next() {
			var ev task.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("journal: run %s event %d: %w", runID, binary.BigEndian.Uint64(k), err)
			}
			evs = append(evs, ev)
		}
		return nil
	})
	return evs, rec, err
}

// Ack records that the web tier stored runID's events up to seq. Once the
// run has ended and everything is acknowledged its events are deleted; the
// run id is remembered until the age bound, so it is still refused as a
// duplicate.
func (j *Journal) Ack(runID string, seq uint64) error {
	var freed int64
	err := j.db.Update(func(tx *bolt.Tx) error {
		freed = 0
		runs := tx.Bucket(bucketRuns)
		rec, ok, err := getRecord(runs, runID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: this master has no run %s", task.ErrRunNotFound, runID)
		}
		if seq > rec.LastSeq {
			return fmt.Errorf("%w: run %s has no event %d yet (last %d)", task.ErrInvalidTask, runID, seq, rec.LastSeq)
		}
		if seq <= rec.AckedSeq {
			return nil
		}
		rec.AckedSeq = seq
		if rec.State != stateRunning && seq == rec.LastSeq && !rec.Dropped {
			if err := dropEvents(tx, runID); err != nil {
				return err
			}
			freed, rec.Bytes, rec.Dropped = rec.Bytes, 0, true
		}
		return putRecord(runs, runID, rec)
	})
	if err != nil {
		if errors.Is(err, task.ErrRunNotFound) || errors.Is(err, task.ErrInvalidTask) {
			return err
		}
		return fmt.Errorf("%w: %v", task.ErrJournal, err)
	}
	j.mu.Lock()
	j.bytes -= freed
	j.mu.Unlock()
	return nil
}

func dropEvents(tx *bolt.Tx, runID string) error {
	err := tx.Bucket(bucketEvents).DeleteBucket([]byte(runID))
	if errors.Is(err, bolterrors.ErrBucketNotFound) {
		return nil
	}
	return err
}

// prune enforces the bounds: runs accepted longer ago than MaxAge are
// forgotten (unless still running), and while the kept events exceed
// MaxBytes the oldest ended runs' events are dropped. Running runs' events
// are never dropped.
func (j *Journal) prune() {
	cutoff := j.now().Add(-j.cfg.MaxAge)
	var forgot, dropped int
	var freed int64
	err := j.db.Update(func(tx *bolt.Tx) error {
		forgot, dropped, freed = 0, 0, 0
		j.mu.Lock()
		total := j.bytes
		j.mu.Unlock()
		runs, order := tx.Bucket(bucketRuns), tx.Bucket(bucketOrder)
		var forget [][]byte // order keys
		c := order.Cursor()
		// Oldest first: the old runs are all at the start, and the runs
		// whose events are dropped for size are the oldest ended ones.
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			old := time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))).Before(cutoff)
			if !old && total < j.cfg.MaxBytes {
				break
			}
			id := string(k[8:])
			rec, ok, err := getRecord(runs, id)
			if err != nil {
				return err
			}
			switch {
			case !ok:
				forget = append(forget, append([]byte(nil), k...))
			case rec.State == stateRunning:
			case old:
				forget = append(forget, append([]byte(nil), k...))
				total -= rec.Bytes
				freed += rec.Bytes
			case !rec.Dropped:
				if err := dropEvents(tx, id); err != nil {
					return err
				}
				j.log.Warn().Str("run_id", id).Uint64("acked_seq", rec.AckedSeq).Uint64("last_seq", rec.LastSeq).
					Msg("journal over its size bound: dropped the events of an ended run that no web tier acknowledged")
				total -= rec.Bytes
				freed += rec.Bytes
				rec.Bytes, rec.Dropped = 0, true
				if err := putRecord(runs, id, rec); err != nil {
					return err
				}
				dropped++
			}
		}
		for _, k := range forget {
			id := string(k[8:])
			if err := dropEvents(tx, id); err != nil {
				return err
			}
			if err := runs.Delete([]byte(id)); err != nil {
				return err
			}
			if err := order.Delete(k); err != nil {
				return err
			}
			forgot++
		}
		return nil
	})
	if err != nil {
		j.log.Error().Err(err).Msg("journal: enforcing its bounds")
		return
	}
	j.mu.Lock()
	j.bytes -= freed
	j.mu.Unlock()
	if forgot > 0 || dropped > 0 {
		j.log.Info().Int("forgotten", forgot).Int("events_dropped", dropped).Int64("freed_bytes", freed).Msg("journal pruned")
	}
}

// RunPruner enforces the bounds every few minutes until ctx ends or the
// journal closes.
func (j *Journal) RunPruner(ctx context.Context) {
	t := time.NewTicker(journalPruneTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-j.stop:
			return
		case <-t.C:
			j.prune()
		}
	}
}

// Err is the last write error, nil when the journal is writable.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.failed
}

// Close writes what is queued, wakes every follower and closes the file.
// Append must not be called after Close.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	close(j.stop)
	<-j.done
	j.mu.Lock()
	for id, ch := range j.notify {
		close(ch)
		delete(j.notify, id)
	}
	j.mu.Unlock()
	return j.db.Close()
}
