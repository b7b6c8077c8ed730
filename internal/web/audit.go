package web

import (
	"context"
	"net/http"
	"time"

	"github.com/omserver/omserver-go/internal/store"
)

// The audit log: who did what, from where. Every change and every run is
// recorded here; admins read it.

// audit records a security-relevant event; a failure to record is logged,
// not shown to the user (the action itself already happened or was refused).
func (s *Server) audit(r *http.Request, user, action, detail string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := s.st.AddAudit(ctx, store.AuditEntry{Username: user, Action: action, Detail: detail, RemoteAddr: clientIP(r)}); err != nil {
		s.log.Error().Err(err).Str("action", action).Msg("write audit log")
	}
}

// auditPage is one page of entries, newest first.
type auditPage struct {
	Entries []store.AuditEntry `json:"entries"`
	Total   int                `json:"total"`
	Page    int                `json:"page"`
	PerPage int                `json:"per_page"`
}

func (s *Server) auditEntries(r *http.Request) (auditPage, error) {
	page, per, err := pageParam(r, 100)
	if err != nil {
		return auditPage{}, err
	}
	list, total, err := s.st.ListAudit(r.Context(), per, (page-1)*per)
	if err != nil {
		return auditPage{}, err
	}
	return auditPage{Entries: list, Total: total, Page: page, PerPage: per}, nil
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) error {
	ap, err := s.auditEntries(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ap)
	return nil
}

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request) error {
	ap, err := s.auditEntries(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "audit", "title.audit", struct {
		Entries []store.AuditEntry
		pager
	}{ap.Entries, newPager(ap.Page, ap.PerPage, ap.Total)})
	return nil
}
