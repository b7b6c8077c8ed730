package notify

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
)

// Config tunes the notifier. Zero values mean the defaults in brackets.
type Config struct {
	// Owner names this web tier in outbox leases [host-pid-random].
	Owner string
	// BaseURL is the web tier's public URL, for links to runs [none].
	BaseURL string
	// PollInterval is how often the outbox is checked for due rows [5s];
	// a notification enqueued by this tier is sent at once.
	PollInterval time.Duration
	// SendTimeout bounds one attempt of one notification [15s].
	SendTimeout time.Duration
	// Lease is how long a claimed row is this tier's [4 × SendTimeout]; a
	// tier that dies holding rows releases them when it ends.
	Lease time.Duration
	// MaxAttempts is how many times a notification is tried before it is
	// given up ("dead") [8].
	MaxAttempts int
	// BackoffBase and BackoffMax shape the wait before retry n:
	// BackoffBase·2^(n-1), at most BackoffMax, ±20% [10s, 30m].
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Workers is how many notifications are sent at once [4].
	Workers int
	// HTTPClient posts webhooks [a client with SendTimeout].
	HTTPClient *http.Client
}

func (c *Config) setDefaults() {
	if c.Owner == "" {
		c.Owner = store.NewHolderID()
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 15 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 4 * c.SendTimeout
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 10 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Minute
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.SendTimeout}
	}
}

// Notifier enqueues notifications of runs and sends the outbox.
type Notifier struct {
	cfg  Config
	st   *store.Store
	log  zerolog.Logger
	now  func() time.Time
	wake chan struct{}
}

// New returns a notifier over st.
func New(cfg Config, st *store.Store, log zerolog.Logger) (*Notifier, error) {
	if st == nil {
		return nil, errors.New("notify: a store is required")
	}
	cfg.setDefaults()
	if cfg.Lease <= cfg.SendTimeout {
		return nil, fmt.Errorf("notify: lease %s must be longer than the send timeout %s", cfg.Lease, cfg.SendTimeout)
	}
	return &Notifier{cfg: cfg, st: st, log: log.With().Str("component", "notify").Logger(),
		now: func() time.Time { return time.Now().UTC() }, wake: make(chan struct{}, 1)}, nil
}

// Owner is this notifier's name in outbox leases.
func (n *Notifier) Owner() string { return n.cfg.Owner }

var _ runs.Observer = (*Notifier)(nil)

// Observe enqueues the notification of a run's milestone for every channel
// that wants it. Failures are logged: a notification never fails a run.
func (n *Notifier) Observe(ctx context.Context, nt runs.Notice) {
	run, err := n.st.GetRunInfo(ctx, nt.RunID)
	if err != nil {
		n.log.Error().Err(err).Str("run_id", nt.RunID).Msg("notification: read the run")
		return
	}
	m := Message{RunID: run.ID, ModuleID: run.ModuleID, ModuleName: run.ModuleName, User: run.Username,
		Status: string(run.Status), Error: run.Error, Hosts: run.HostCount, Summary: run.Summary, At: n.now()}
	switch nt.Kind {
	case runs.NoticeEnded:
		m.Event = EventOf(run.Status, run.Summary)
	case runs.NoticePaused:
		m.Event, m.Detail = EventPaused, nt.Detail
	default:
		return
	}
	if n.cfg.BaseURL != "" {
		m.URL = strings.TrimRight(n.cfg.BaseURL, "/") + "/runs/" + run.ID
	}
	if err := n.Enqueue(ctx, m); err != nil {
		n.log.Error().Err(err).Str("run_id", nt.RunID).Str("event", m.Event).Msg("notification: enqueue")
	}
}

// Enqueue puts m in the outbox of every enabled channel subscribed to its
// event, and wakes this tier's sender.
func (n *Notifier) Enqueue(ctx context.Context, m Message) error {
	chans, err := n.st.ListNotifyChannels(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("notify: encode: %w", err)
	}
	var items []store.OutboxItem
	for _, sc := range chans {
		if !sc.Enabled {
			continue
		}
		ch, err := FromStore(sc)
		if err != nil {
			n.log.Error().Err(err).Int64("channel", sc.ID).Msg("notification: unreadable channel skipped")
			continue
		}
		if ch.Subscribed(m.Event) {
			items = append(items, store.OutboxItem{ChannelID: ch.ID, Event: m.Event, RunID: m.RunID, Payload: string(body)})
		}
	}
	if len(items) == 0 {
		return nil
	}
	if err := n.st.EnqueueNotifications(ctx, items); err != nil {
		return err
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run sends the outbox until ctx ends: at every poll interval, and at once
// when this tier enqueues.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.PollInterval)
	defer t.Stop()
	for {
		if _, err := n.SendDue(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn().Err(err).Msg("notification outbox")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.wake:
		}
	}
}

// SendDue claims the due rows of the outbox, sends them and records each
// outcome; it returns how many were sent.
func (n *Notifier) SendDue(ctx context.Context) (int, error) {
	items, err := n.st.ClaimNotifications(ctx, n.cfg.Owner, n.cfg.Lease, 0)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	chans := map[int64]*Channel{}
	for _, it := range items {
		if _, ok := chans[it.ChannelID]; ok {
			continue
		}
		sc, err := n.st.GetNotifyChannel(ctx, it.ChannelID)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				return 0, err
			}
			chans[it.ChannelID] = nil
			continue
		}
		ch, err := FromStore(sc)
		if err != nil {
			n.log.Error().Err(err).Int64("channel", sc.ID).Msg("notification: unreadable channel")
			chans[it.ChannelID] = nil
			continue
		}
		chans[it.ChannelID] = &ch
	}
	var (
		mu   sync.Mutex
		sent int
		wg   sync.WaitGroup
		sem  = make(chan struct{}, n.cfg.Workers)
	)
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if n.deliver(ctx, it, chans[it.ChannelID]) {
				mu.Lock()
				sent++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return sent, nil
}

// deliver sends one claimed row and records the outcome.
func (n *Notifier) deliver(ctx context.Context, it store.OutboxItem, ch *Channel) bool {
	log := n.log.With().Int64("delivery", it.ID).Int64("channel", it.ChannelID).Str("event", it.Event).Str("run_id", it.RunID).Logger()
	var err error
	switch {
	case ch == nil:
		err = errors.New("the channel was deleted or cannot be read")
	case !ch.Enabled:
		err = errors.New("the channel is disabled")
	default:
		var m Message
		if err = json.Unmarshal([]byte(it.Payload), &m); err == nil {
			err = n.send(ctx, *ch, m, it.ID)
		}
	}
	// The outcome is recorded even when ctx ended meanwhile.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil {
		if rerr := n.st.NotificationSent(rctx, it.ID, n.cfg.Owner); rerr != nil {
			log.Error().Err(rerr).Msg("notification sent, but recording it failed (another tier may send it again after the lease)")
		} else {
			log.Info().Str("channel_name", ch.Name).Msg("notification sent")
		}
		return true
	}
	attempt := it.Attempts + 1
	giveUp := attempt >= n.cfg.MaxAttempts || ch == nil || !ch.Enabled
	next := n.now().Add(n.backoff(attempt))
	if rerr := n.st.NotificationFailed(rctx, it.ID, n.cfg.Owner, err.Error(), next, giveUp); rerr != nil {
		log.Error().Err(rerr).Msg("record a failed notification")
	}
	ev := log.Warn()
	if giveUp {
		ev = log.Error()
	}
	ev.Err(err).Int("attempt", attempt).Bool("given_up", giveUp).Time("next_at", next).Msg("notification not sent")
	return false
}

// backoff is the wait before the attempt after attempt n (1-based).
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.cfg.BackoffBase
	for i := 1; i < attempt && d < n.cfg.BackoffMax; i++ {
		d *= 2
	}
	if d > n.cfg.BackoffMax {
		d = n.cfg.BackoffMax
	}
	// ±20% so that tiers and channels retrying together spread out.
	span := int64(d) * 2 / 5
	if span > 0 {
		j, err := rand.Int(rand.Reader, big.NewInt(span))
		if err == nil {
			d += time.Duration(j.Int64() - span/2)
		}
	}
	return d
}

// send makes one attempt on a channel.
func (n *Notifier) send(ctx context.Context, ch Channel, m Message, delivery int64) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
	defer cancel()
	if ch.Kind == KindSMTP {
		return sendMail(ctx, ch.Settings, m, delivery, n.now(), n.cfg.SendTimeout)
	}
	return sendHTTP(ctx, n.cfg.HTTPClient, ch, m, delivery, n.now())
}

// Test sends a test message to ch now (not through the outbox) and returns
// what went wrong, for the admin's test button.
func (n *Notifier) Test(ctx context.Context, ch Channel, user string) error {
	m := Message{Event: EventTest, User: user, At: n.now(), ModuleName: ch.Name}
	if n.cfg.BaseURL != "" {
		m.URL = strings.TrimRight(n.cfg.BaseURL, "/") + "/notifications"
	}
	return n.send(ctx, ch, m, 0)
}
