package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omserver/omserver-go/internal/store"
)

// API tokens: every user manages their own, for scripts.

type tokenView struct {
	ID       int64      `json:"id"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created_at"`
	LastUsed *time.Time `json:"last_used_at,omitempty"`
	Token    string     `json:"token,omitempty"` // only in the answer to create
}

func (s *Server) tokenViews(r *http.Request) ([]tokenView, error) {
	list, err := s.st.ListAPITokens(r.Context(), authOf(r).UserID)
	if err != nil {
		return nil, err
	}
	out := make([]tokenView, len(list))
	for i, t := range list {
		out[i] = tokenView{ID: t.ID, Name: t.Name, Created: t.CreatedAt, LastUsed: t.LastUsedAt}
	}
	return out, nil
}

// createToken makes a token for the caller and returns it in clear, once.
func (s *Server) createToken(r *http.Request, name string) (tokenView, error) {
	secret, err := newSecret()
	if err != nil {
		return tokenView{}, err
	}
	tok := tokenPrefix + secret
	p := authOf(r)
	id, err := s.st.CreateAPIToken(r.Context(), p.UserID, strings.TrimSpace(name), store.HashToken(tok))
	if err != nil {
		return tokenView{}, err
	}
	s.audit(r, p.Name, "token.create", fmt.Sprintf("token %d %q", id, name))
	return tokenView{ID: id, Name: name, Created: time.Now().UTC(), Token: tok}, nil
}

func (s *Server) deleteToken(r *http.Request) error {
	id, err := idParam(r, "id", "token")
	if err != nil {
		return err
	}
	p := authOf(r)
	if err := s.st.DeleteAPIToken(r.Context(), p.UserID, id); err != nil {
		return err
	}
	s.audit(r, p.Name, "token.delete", "token "+strconv.FormatInt(id, 10))
	return nil
}

func (s *Server) apiTokens(w http.ResponseWriter, r *http.Request) error {
	out, err := s.tokenViews(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiTokenCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := s.decodeJSON(r, &req); err != nil {
		return err
	}
	tv, err := s.createToken(r, req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tv)
	return nil
}

func (s *Server) apiTokenDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteToken(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- pages ---

type tokensPage struct {
	NewToken string
	Tokens   []tokenView
}

func (s *Server) pageTokens(w http.ResponseWriter, r *http.Request) error {
	list, err := s.tokenViews(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "tokens", "title.tokens", tokensPage{Tokens: list})
	return nil
}

// pageTokenCreate shows the new token on the answer itself (not after a
// redirect): it must never travel in a URL.
func (s *Server) pageTokenCreate(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	tv, err := s.createToken(r, r.PostForm.Get("name"))
	if err != nil {
		return err
	}
	list, err := s.tokenViews(r)
	if err != nil {
		return err
	}
	s.renderWith(w, r, http.StatusCreated, "tokens", "title.tokens", tokensPage{NewToken: tv.Token, Tokens: list}, "flash.token_created", "")
	return nil
}

func (s *Server) pageTokenDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteToken(r); err != nil {
		return err
	}
	http.Redirect(w, r, "/tokens?ok=deleted", http.StatusSeeOther)
	return nil
}
