package web

import (
	"context"
	"net/http"
	"time"

	"github.com/omserver/omserver-go/internal/trail"
)

// The tamper-evident record (internal/trail): the audit page and the API
// show whether the hash chains (and the masters' result signatures)
// verify, from the last check; an admin can check again now.

// chainStatus is the audit page's view of the last verification.
type chainStatus struct {
	Checked bool
	trail.Outcome
}

func (s *Server) chainStatus() chainStatus {
	o, ok := s.trail.Last()
	return chainStatus{Checked: ok, Outcome: o}
}

// verifyTimeout bounds an on-demand verification (it reads every chained
// row, a page at a time).
const verifyTimeout = 5 * time.Minute

func (s *Server) verifyChains(r *http.Request) trail.Outcome {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), verifyTimeout)
	defer cancel()
	o := s.trail.Verify(ctx)
	result := "verified"
	if !o.OK {
		result = "BROKEN"
		for _, c := range o.Chains {
			if c.Break != nil {
				result += ": " + c.Break.String()
			}
		}
		if o.Error != "" {
			result += ": " + o.Error
		}
	}
	s.audit(r, authOf(r).Name, "audit.verify", result)
	return o
}

func (s *Server) apiChain(w http.ResponseWriter, r *http.Request) error {
	o, ok := s.trail.Last()
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"checked": false})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"checked": true, "outcome": o})
	return nil
}

func (s *Server) apiChainVerify(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"checked": true, "outcome": s.verifyChains(r)})
	return nil
}

func (s *Server) pageChainVerify(w http.ResponseWriter, r *http.Request) error {
	s.verifyChains(r)
	http.Redirect(w, r, "/audit", http.StatusSeeOther)
	return nil
}
