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

// auditFilter reads the audit log's filters (?user=, ?action=) and page.
func auditFilter(r *http.Request) (store.AuditFilter, error) {
	p, err := pageRequest(r, store.DefaultLimit)
	if err != nil {
		return store.AuditFilter{}, err
	}
	return store.AuditFilter{PageRequest: p, Username: queryText(r, "user"), Action: queryText(r, "action")}, nil
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	page, err := s.st.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": page.Entries, "next": jsonNext(nextURL(r, "cursor", page.Next))})
	return nil
}

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	page, err := s.st.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "audit", "title.audit", struct {
		Entries      []store.AuditEntry
		User, Action string
		Links        pageLinks
		Chain        chainStatus
	}{page.Entries, f.Username, f.Action, pageLinks{First: firstURL(r, "cursor"), Next: nextURL(r, "cursor", page.Next)}, s.chainStatus()})
	return nil
}
