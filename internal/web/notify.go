package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omserver/omserver-go/internal/notify"
	"github.com/omserver/omserver-go/internal/store"
)

// Notification channels (admin only): list, add, edit, delete, test, and
// each channel's recent deliveries. Secrets are write-only: answers and
// pages say whether one is set, never what it is.

// channelRequest is the body of POST and PUT /api/v1/notify/channels.
type channelRequest struct {
	Name     string          `json:"name"`
	Kind     string          `json:"kind"`
	Enabled  *bool           `json:"enabled"`
	Events   []string        `json:"events"`
	Settings notify.Settings `json:"settings"`
}

func (s *Server) channelOf(ctx context.Context, id int64) (notify.Channel, error) {
	sc, err := s.st.GetNotifyChannel(ctx, id)
	if err != nil {
		return notify.Channel{}, err
	}
	return notify.FromStore(sc)
}

// saveChannel validates and stores a new (id 0) or edited channel; blank
// secrets of an edit keep the stored ones.
func (s *Server) saveChannel(r *http.Request, id int64, ch notify.Channel) (notify.Channel, error) {
	if id > 0 {
		old, err := s.channelOf(r.Context(), id)
		if err != nil {
			return notify.Channel{}, err
		}
		if old.Kind == ch.Kind {
			ch.Settings = notify.Merge(ch.Settings, old.Settings)
		}
		ch.ID = id
	}
	if err := ch.Validate(); err != nil {
		return notify.Channel{}, err
	}
	sc, err := notify.ToStore(ch)
	if err != nil {
		return notify.Channel{}, err
	}
	action := "notify.update"
	if id > 0 {
		err = s.st.UpdateNotifyChannel(r.Context(), sc)
	} else {
		action = "notify.create"
		ch.ID, err = s.st.CreateNotifyChannel(r.Context(), sc)
	}
	if err != nil {
		return notify.Channel{}, err
	}
	s.audit(r, authOf(r).Name, action, fmt.Sprintf("%d %s (%s) events %s enabled=%t", ch.ID, ch.Name, ch.Kind, strings.Join(ch.Events, ","), ch.Enabled))
	return ch, nil
}

func (s *Server) channelViews(ctx context.Context) ([]notify.View, error) {
	list, err := s.st.ListNotifyChannels(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]notify.View, 0, len(list))
	for _, sc := range list {
		ch, err := notify.FromStore(sc)
		if err != nil {
			return nil, err
		}
		out = append(out, notify.Redact(ch))
	}
	return out, nil
}

func (s *Server) apiChannels(w http.ResponseWriter, r *http.Request) error {
	views, err := s.channelViews(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": views})
	return nil
}

func (s *Server) apiChannelSave(w http.ResponseWriter, r *http.Request) error {
	var id int64
	if urlParam(r, "id") != "" {
		var err error
		if id, err = idParam(r, "id", "channel"); err != nil {
			return err
		}
	}
	var b channelRequest
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	ch := notify.Channel{Name: b.Name, Kind: b.Kind, Enabled: b.Enabled == nil || *b.Enabled, Events: b.Events, Settings: b.Settings}
	ch, err := s.saveChannel(r, id, ch)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if id == 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, notify.Redact(ch))
	return nil
}

func (s *Server) apiChannelDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "channel")
	if err != nil {
		return err
	}
	if err := s.deleteChannel(r, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deleteChannel(r *http.Request, id int64) error {
	ch, err := s.channelOf(r.Context(), id)
	if err != nil {
		return err
	}
	if err := s.st.DeleteNotifyChannel(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "notify.delete", fmt.Sprintf("%d %s", id, ch.Name))
	return nil
}

// testChannel sends a test message now; the answer says what went wrong.
func (s *Server) testChannel(r *http.Request, id int64) (notify.Channel, error) {
	ch, err := s.channelOf(r.Context(), id)
	if err != nil {
		return ch, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	err = s.notifier.Test(ctx, ch, authOf(r).Name)
	s.audit(r, authOf(r).Name, "notify.test", fmt.Sprintf("%d %s: %s", id, ch.Name, outcome(err)))
	return ch, err
}

func outcome(err error) string {
	if err == nil {
		return "sent"
	}
	return "failed: " + err.Error()
}

func (s *Server) apiChannelTest(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "channel")
	if err != nil {
		return err
	}
	_, err = s.testChannel(r, id)
	if err != nil {
		// The channel's failure is the answer, not an error of this request.
		writeJSON(w, http.StatusOK, map[string]any{"sent": false, "error": err.Error()})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"sent": true})
	return nil
}

// deliveryView is one outbox row as shown.
type deliveryView struct {
	ID        int64      `json:"id"`
	Event     string     `json:"event"`
	RunID     string     `json:"run_id,omitempty"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	NextAt    time.Time  `json:"next_at"`
	LastError string     `json:"last_error,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
}

func (s *Server) deliveries(r *http.Request, channelID int64) ([]deliveryView, int64, error) {
	var before int64
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, 0, invalidf("before %q is not a positive delivery id", clipRunes(v, 40))
		}
		before = n
	}
	const per = 50
	rows, err := s.st.ListNotifyOutbox(r.Context(), channelID, before, per)
	if err != nil {
		return nil, 0, err
	}
	out := make([]deliveryView, len(rows))
	for i, it := range rows {
		out[i] = deliveryView{ID: it.ID, Event: it.Event, RunID: it.RunID, Status: it.Status, Attempts: it.Attempts,
			NextAt: it.NextAt, LastError: it.LastError, CreatedAt: it.CreatedAt}
		if it.SentAt.Valid {
			t := it.SentAt.Time
			out[i].SentAt = &t
		}
	}
	var next int64
	if len(rows) == per {
		next = rows[len(rows)-1].ID
	}
	return out, next, nil
}

func (s *Server) apiChannelDeliveries(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "channel")
	if err != nil {
		return err
	}
	if _, err := s.st.GetNotifyChannel(r.Context(), id); err != nil {
		return err
	}
	list, next, err := s.deliveries(r, id)
	if err != nil {
		return err
	}
	body := map[string]any{"deliveries": list}
	if next > 0 {
		body["next_before"] = next
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// --- pages ---

type notifyPage struct {
	Channels   []notify.View
	Kinds      []string
	Events     []string
	Selected   *notify.View
	Deliveries []deliveryView
	NextBefore int64
}

func (s *Server) notifyPageData(r *http.Request) (notifyPage, error) {
	views, err := s.channelViews(r.Context())
	if err != nil {
		return notifyPage{}, err
	}
	d := notifyPage{Channels: views, Kinds: notify.Kinds(), Events: notify.Events()}
	if raw := r.URL.Query().Get("channel"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			return notifyPage{}, invalidf("channel %q is not a channel id", clipRunes(raw, 40))
		}
		for i := range views {
			if views[i].ID == id {
				d.Selected = &views[i]
			}
		}
		if d.Selected == nil {
			return notifyPage{}, fmt.Errorf("notification channel %d: %w", id, store.ErrNotFound)
		}
		if d.Deliveries, d.NextBefore, err = s.deliveries(r, id); err != nil {
			return notifyPage{}, err
		}
	}
	return d, nil
}

func (s *Server) pageNotify(w http.ResponseWriter, r *http.Request) error {
	d, err := s.notifyPageData(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "notifications", "title.notifications", d)
	return nil
}

// channelFromForm reads the add/edit form.
func channelFromForm(r *http.Request) notify.Channel {
	f := r.PostForm
	port, _ := strconv.Atoi(strings.TrimSpace(f.Get("port")))
	var to []string
	for _, a := range strings.FieldsFunc(f.Get("to"), func(r rune) bool { return r == ',' || r == '\n' || r == ';' }) {
		if a = strings.TrimSpace(a); a != "" {
			to = append(to, a)
		}
	}
	return notify.Channel{
		Name: f.Get("name"), Kind: f.Get("kind"), Enabled: f.Get("enabled") == "on", Events: f["events"],
		Settings: notify.Settings{
			URL: strings.TrimSpace(f.Get("url")), Secret: f.Get("secret"), Host: strings.TrimSpace(f.Get("host")), Port: port,
			TLS: f.Get("tls"), CAFile: strings.TrimSpace(f.Get("ca_file")), Username: f.Get("username"), Password: f.Get("password"),
			From: strings.TrimSpace(f.Get("from")), To: to,
		},
	}
}

// pageNotifyAnswer renders the page again with a message (a failed form,
// a test's outcome) instead of redirecting.
func (s *Server) pageNotifyAnswer(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string) error {
	r.URL.RawQuery = ""
	d, err := s.notifyPageData(r)
	if err != nil {
		return err
	}
	s.renderWith(w, r, status, "notifications", "title.notifications", d, flash, errMsg)
	return nil
}

func (s *Server) pageNotifySave(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	var id int64
	if urlParam(r, "id") != "" {
		var err error
		if id, err = idParam(r, "id", "channel"); err != nil {
			return err
		}
	}
	if _, err := s.saveChannel(r, id, channelFromForm(r)); err != nil {
		return err
	}
	http.Redirect(w, r, "/notifications?ok=saved", http.StatusSeeOther)
	return nil
}

func (s *Server) pageNotifyDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "channel")
	if err != nil {
		return err
	}
	if err := s.deleteChannel(r, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/notifications?ok=deleted", http.StatusSeeOther)
	return nil
}

func (s *Server) pageNotifyTest(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "channel")
	if err != nil {
		return err
	}
	ch, err := s.testChannel(r, id)
	if ch.ID == 0 && err != nil {
		return err
	}
	if err != nil {
		return s.pageNotifyAnswer(w, r, http.StatusOK, "", "Test message to "+ch.Name+" failed: "+err.Error())
	}
	return s.pageNotifyAnswer(w, r, http.StatusOK, "Test message sent to "+ch.Name+".", "")
}
