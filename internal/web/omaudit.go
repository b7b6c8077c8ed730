package web

import (
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/omserver/omserver-go/internal/omaudit"
	"github.com/omserver/omserver-go/internal/store"
)

// 安全审计 (the original's omaudit app): the collectors' ingest, the page
// that watches and searches the stream, its live events, the legacy
// omaudit_run text endpoint, and the admins' ingest tokens. The rules
// (authentication of collectors, validation, retention) live in
// internal/omaudit; this file is HTTP only.

// omauditPull is GET /omaudit/omaudit_pull/: one history row from a
// collector, answered "OK" as the original did (old agents compare the body
// with it). The token comes from "Authorization: Bearer", else from the
// token parameter (for agents that build their URL by hand).
func (s *Server) omauditPull(w http.ResponseWriter, r *http.Request) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return invalidf("the query string cannot be read (%s): percent-encode every value", clipRunes(err.Error(), 120))
	}
	token := q.Get(omaudit.ParamToken)
	if h := r.Header.Get("Authorization"); h != "" {
		t, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return invalidf("the Authorization header must be \"Bearer %s...\"", omaudit.TokenPrefix)
		}
		token = t
	}
	_, _, err = s.omaudit.Ingest(r.Context(), omaudit.Submission{
		Params: q, Token: token, Peer: r.RemoteAddr, ForwardedFor: r.Header.Values("X-Forwarded-For"),
	})
	if err != nil {
		return err
	}
	writeText(w, http.StatusOK, "OK")
	return nil
}

// historyView is a row for the API and the page's live stream.
type historyView struct {
	ID        int64  `json:"id"`
	HistoryID int64  `json:"history_id"`
	IP        string `json:"ip"`
	User      string `json:"user"`
	At        string `json:"at"`        // the host's clock, as reported
	StoredAt  string `json:"stored_at"` // UTC, when the web tier stored it
	Command   string `json:"command"`
}

func viewOf(r store.HistoryRow) historyView {
	return historyView{ID: r.ID, HistoryID: r.HistoryID, IP: r.IP, User: r.User, Command: r.Command,
		At: r.At.Format(store.HistoryTimeLayout), StoredAt: r.Stored.UTC().Format(time.RFC3339)}
}

// historyResult is a page of a search: rows newest first, and the keys of
// the neighbouring pages when there are any.
type historyResult struct {
	Rows        []historyView `json:"rows"`
	OlderBefore int64         `json:"older_before,omitempty"` // ?before= of the next older page
	NewerAfter  int64         `json:"newer_after,omitempty"`  // ?after= of the next newer page
}

func (s *Server) searchHistory(r *http.Request) (store.HistoryQuery, historyResult, error) {
	q, err := omaudit.ParseSearch(r.URL.Query())
	if err != nil {
		return q, historyResult{}, err
	}
	page, err := s.st.ListHistory(r.Context(), q)
	if err != nil {
		return q, historyResult{}, err
	}
	res := historyResult{Rows: make([]historyView, len(page.Rows))}
	for i, row := range page.Rows {
		res.Rows[i] = viewOf(row)
	}
	if n := len(page.Rows); n > 0 {
		forward := q.AfterID > 0
		if (!forward && page.More) || forward {
			res.OlderBefore = page.Rows[n-1].ID
		}
		if (forward && page.More) || q.BeforeID > 0 {
			res.NewerAfter = page.Rows[0].ID
		}
	}
	return q, res, nil
}

// apiOmauditHistory is GET /api/v1/omaudit/history: search by host, user,
// command text and time range, paginated by row id.
func (s *Server) apiOmauditHistory(w http.ResponseWriter, r *http.Request) error {
	_, res, err := s.searchHistory(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// omauditPage is the 安全审计 page: the live watch (browser side) and a
// search with its result.
type omauditPage struct {
	Host, User, Q, From, To string
	Result                  historyResult
	OlderURL, NewerURL      string
}

func (s *Server) pageOmaudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pd := omauditPage{Host: q.Get("host"), User: q.Get("user"), Q: q.Get("q"), From: q.Get("from"), To: q.Get("to")}
	_, res, err := s.searchHistory(r)
	if err != nil {
		s.renderWith(w, r, http.StatusBadRequest, "omaudit", "title.omaudit", pd, "", err.Error())
		return nil
	}
	pd.Result = res
	link := func(key string, id int64) string {
		v := url.Values{}
		for _, k := range []string{"host", "user", "q", "from", "to", "limit"} {
			if x := q.Get(k); x != "" {
				v.Set(k, x)
			}
		}
		v.Set(key, strconv.FormatInt(id, 10))
		return "/omaudit/?" + v.Encode()
	}
	if res.OlderBefore > 0 {
		pd.OlderURL = link("before", res.OlderBefore)
	}
	if res.NewerAfter > 0 {
		pd.NewerURL = link("after", res.NewerAfter)
	}
	s.render(w, r, http.StatusOK, "omaudit", "title.omaudit", pd)
	return nil
}

// watchHosts reads the hosts a watch is limited to: server IPs, or the
// original dashboard's "ip*name" values, comma-separated; none means every
// host, as in the original.
func watchHosts(raw string) ([]string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	parts := strings.Split(raw, ",")
	if len(parts) > store.MaxHistoryHosts {
		return nil, invalidf("%d hosts is more than the limit of %d", len(parts), store.MaxHistoryHosts)
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		ip, _, _ := strings.Cut(strings.TrimSpace(p), "*")
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			return nil, invalidf("host %q is not an IP address (hosts=ip,ip or ip*name,ip*name)", clipRunes(p, 64))
		}
		out = append(out, a.Unmap().String())
	}
	return out, nil
}

// legacyOmauditLatest and legacyOmauditBatch are how many rows omaudit_run
// answers: the original's newest 5 when a page starts watching, then the
// rows after LastID (bounded here; the next poll continues from the last).
const (
	legacyOmauditLatest = 5
	legacyOmauditBatch  = 500
)

// legacyOmauditRun is GET /omaudit/omaudit_run/?LastID=&hosts= in the
// original's text format, for old pages and scripts: per row, newest first,
//
//	<font color=#cccccc>IP</font>&nbsp;&nbsp;\tUSER&nbsp;&nbsp;\tSTORED\t # <font color=#ffffff>COMMAND</font>*
//
// then "@@" and the newest id (empty when there is no row). LastID=0 (or
// none) gives the newest 5 rows; another LastID the rows after it, oldest
// 500 of them. The original inserted the values raw into a page that
// eval()ed the answer; here they are escaped (see legacyHistoryField).
func (s *Server) legacyOmauditRun(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var last int64
	if v := q.Get("LastID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return invalidf("LastID %q is not a row id (0 to start)", clipRunes(v, 40))
		}
		last = n
	}
	hosts, err := watchHosts(q.Get("hosts"))
	if err != nil {
		return err
	}
	hq := store.HistoryQuery{Hosts: hosts, Limit: legacyOmauditLatest}
	if last > 0 {
		hq = store.HistoryQuery{Hosts: hosts, AfterID: last, Limit: legacyOmauditBatch}
	}
	page, err := s.st.ListHistory(r.Context(), hq)
	if err != nil {
		return err
	}
	writeText(w, http.StatusOK, legacyHistoryText(page.Rows))
	return nil
}

// legacyHistoryText renders rows (newest first) in omaudit_run's format.
func legacyHistoryText(rows []store.HistoryRow) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("<font color=#cccccc>")
		b.WriteString(legacyHistoryField(r.IP))
		b.WriteString("</font>&nbsp;&nbsp;\t")
		b.WriteString(legacyHistoryField(r.User))
		b.WriteString("&nbsp;&nbsp;\t")
		b.WriteString(r.Stored.UTC().Format(store.HistoryTimeLayout))
		b.WriteString("\t # <font color=#ffffff>")
		b.WriteString(legacyHistoryField(r.Command))
		b.WriteString("</font>*")
	}
	b.WriteString("@@")
	if len(rows) > 0 {
		b.WriteString(strconv.FormatInt(rows[0].ID, 10))
	}
	return b.String()
}

// legacyHistoryField escapes a value for omaudit_run's consumers: the
// original page eval()s the answer inside a single-quoted JavaScript
// string, splits it on "*" and "@@" and inserts the rows as HTML. So HTML
// is escaped, and so is every character that could end or escape that
// string, break a line in it, or split a row: \ * @ tab, CR, LF, U+2028,
// U+2029 become character references, which the page shows as the
// characters they stand for.
func legacyHistoryField(s string) string {
	return legacyFieldEscaper.Replace(html.EscapeString(s))
}

var legacyFieldEscaper = strings.NewReplacer(
	`\`, "&#92;", "*", "&#42;", "@", "&#64;", "\t", "&#9;", "\n", "&#10;", "\r", "&#13;",
	"\u2028", "&#8232;", "\u2029", "&#8233;",
)

// omauditPoll is how often a live stream re-reads the table for rows
// stored by other web tiers (rows stored here wake it at once).
const omauditPoll = 2 * time.Second

// omauditStreamBatch bounds one read of a live stream.
const omauditStreamBatch = 200

// apiOmauditEvents is GET /api/v1/omaudit/events?hosts=ip,ip: the
// 安全审计 stream as server-sent events, one "row" event per command with
// the row id as the event id. A new stream starts with the newest 5 rows
// (as the original page did); one resuming (Last-Event-ID, or ?after=)
// gets every row after that id.
func (s *Server) apiOmauditEvents(w http.ResponseWriter, r *http.Request) error {
	hosts, err := watchHosts(r.URL.Query().Get("hosts"))
	if err != nil {
		return err
	}
	var after int64
	resume := r.Header.Get("Last-Event-ID")
	if resume == "" {
		resume = r.URL.Query().Get("after")
	}
	if resume != "" {
		if after, err = strconv.ParseInt(resume, 10, 64); err != nil || after < 0 {
			return invalidf("the stream cannot resume after %q: not a row id", clipRunes(resume, 40))
		}
	}
	ctx := r.Context()
	who := authOf(r)
	if !s.streamN.acquire(who.UserID, s.cfg.MaxStreamsPerUser) {
		w.Header().Set("Retry-After", "10")
		writeJSON(w, http.StatusTooManyRequests, apiError{Error: fmt.Sprintf(
			"you already have %d live streams open (the limit); close some pages and try again", s.cfg.MaxStreamsPerUser)})
		return nil
	}
	defer s.streamN.release(who.UserID)
	// The starting point is read before the first byte goes out, so a
	// database failure is still an ordinary error answer.
	var first []store.HistoryRow
	if resume == "" {
		// The newest id of the whole table first, then the watched hosts'
		// newest rows up to it: a row stored in between is not skipped.
		newest, err := s.st.ListHistory(ctx, store.HistoryQuery{Limit: 1})
		if err != nil {
			return err
		}
		if len(newest.Rows) > 0 {
			after = newest.Rows[0].ID
			page, err := s.st.ListHistory(ctx, store.HistoryQuery{Hosts: hosts, BeforeID: after + 1, Limit: legacyOmauditLatest})
			if err != nil {
				return err
			}
			first = page.Rows
		}
	}
	st := &sseStream{w: w, rc: http.NewResponseController(w)}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.metrics.sseSubscribers.Inc()
	defer s.metrics.sseSubscribers.Dec()
	sendRows := func(rows []store.HistoryRow) bool { // rows newest first; sent oldest first
		for i := len(rows) - 1; i >= 0; i-- {
			if !st.sendWithID("row", strconv.FormatInt(rows[i].ID, 10), viewOf(rows[i])) {
				return false
			}
		}
		return true
	}
	if !sendRows(first) {
		return nil
	}
	poll := time.NewTicker(omauditPoll)
	defer poll.Stop()
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	for {
		// Taken before reading, so a row stored after the read wakes us.
		changed := s.omaudit.Changed()
		page, err := s.st.ListHistory(ctx, store.HistoryQuery{Hosts: hosts, AfterID: after, Newer: true, Limit: omauditStreamBatch})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error().Err(err).Msg("omaudit stream: read history")
			}
			return nil // the browser reconnects and resumes from its last id
		}
		if !sendRows(page.Rows) {
			return nil
		}
		if len(page.Rows) > 0 {
			after = page.Rows[0].ID
		}
		if page.More {
			continue
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-heartbeat.C:
			if !st.heartbeat() {
				return nil
			}
		case <-ctx.Done():
			return nil
		case <-s.streams.Done():
			return nil
		}
	}
}

// sendWithID writes an event with an id, which the browser sends back as
// Last-Event-ID when it reconnects.
func (st *sseStream) sendWithID(event, id string, v any) bool {
	if _, err := fmt.Fprintf(st.w, "id: %s\n", id); err != nil {
		return false
	}
	return st.send(event, v)
}

// --- ingest tokens (admins) ---

type ingestTokenView struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	ServerIP  string     `json:"server_ip,omitempty"` // empty: any server
	CreatedBy string     `json:"created_by"`
	Created   time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used_at,omitempty"`
	Token     string     `json:"token,omitempty"` // only in the answer to create
}

func ingestView(t store.IngestToken) ingestTokenView {
	return ingestTokenView{ID: t.ID, Name: t.Name, ServerIP: t.ServerIP, CreatedBy: t.CreatedBy, Created: t.CreatedAt, LastUsed: t.LastUsedAt}
}

// ingestTokenPage is one page of tokens by id.
type ingestTokenPage struct {
	Tokens    []ingestTokenView `json:"tokens"`
	NextAfter int64             `json:"next_after,omitempty"`
}

func (s *Server) ingestTokens(r *http.Request) (ingestTokenPage, error) {
	after, _, err := queryID(r, "after")
	if err != nil {
		return ingestTokenPage{}, err
	}
	list, more, err := s.st.ListIngestTokens(r.Context(), after, 100)
	if err != nil {
		return ingestTokenPage{}, err
	}
	out := ingestTokenPage{Tokens: make([]ingestTokenView, len(list))}
	for i, t := range list {
		out.Tokens[i] = ingestView(t)
	}
	if more {
		out.NextAfter = list[len(list)-1].ID
	}
	return out, nil
}

func (s *Server) createIngestToken(r *http.Request, name, serverIP string) (ingestTokenView, error) {
	p := authOf(r)
	tok, secret, err := s.omaudit.NewToken(r.Context(), name, strings.TrimSpace(serverIP), p.Name)
	if err != nil {
		return ingestTokenView{}, err
	}
	scope := "every server"
	if tok.ServerIP != "" {
		scope = "server " + tok.ServerIP
	}
	s.audit(r, p.Name, "omaudit.token.create", fmt.Sprintf("ingest token %d %q for %s", tok.ID, tok.Name, scope))
	v := ingestView(tok)
	v.Token = secret
	return v, nil
}

func (s *Server) deleteIngestToken(r *http.Request) error {
	id, err := idParam(r, "id", "ingest token")
	if err != nil {
		return err
	}
	if err := s.st.DeleteIngestToken(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, authOf(r).Name, "omaudit.token.delete", "ingest token "+strconv.FormatInt(id, 10))
	return nil
}

func (s *Server) apiIngestTokens(w http.ResponseWriter, r *http.Request) error {
	page, err := s.ingestTokens(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) apiIngestTokenCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name     string `json:"name"`
		ServerIP string `json:"server_ip"`
	}
	if err := s.decodeJSON(r, &req); err != nil {
		return err
	}
	v, err := s.createIngestToken(r, req.Name, req.ServerIP)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) apiIngestTokenDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteIngestToken(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type ingestTokensPage struct {
	ingestTokenPage
	NewToken  string
	NewScope  string
	IngestURL string
}

func (s *Server) ingestTokensData(r *http.Request) (ingestTokensPage, error) {
	page, err := s.ingestTokens(r)
	if err != nil {
		return ingestTokensPage{}, err
	}
	base := s.cfg.BaseURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return ingestTokensPage{ingestTokenPage: page, IngestURL: strings.TrimSuffix(base, "/")}, nil
}

func (s *Server) pageIngestTokens(w http.ResponseWriter, r *http.Request) error {
	pd, err := s.ingestTokensData(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "omaudit_tokens", "title.omaudit_tokens", pd)
	return nil
}

// pageIngestTokenCreate shows the new token on the answer itself, never in
// a URL.
func (s *Server) pageIngestTokenCreate(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	v, err := s.createIngestToken(r, r.PostForm.Get("name"), r.PostForm.Get("server_ip"))
	if err != nil {
		return err
	}
	pd, err := s.ingestTokensData(r)
	if err != nil {
		return err
	}
	pd.NewToken, pd.NewScope = v.Token, v.ServerIP
	s.renderWith(w, r, http.StatusCreated, "omaudit_tokens", "title.omaudit_tokens", pd, "flash.token_created", "")
	return nil
}

func (s *Server) pageIngestTokenDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteIngestToken(r); err != nil {
		return err
	}
	http.Redirect(w, r, "/omaudit/tokens?ok=deleted", http.StatusSeeOther)
	return nil
}
