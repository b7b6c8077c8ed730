package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/omserver/omserver-go/internal/apperr"
)

// errWrongPassword is a refused password change: the current password
// given does not match.
var errWrongPassword = apperr.New(apperr.Forbidden, "the current password is wrong")

// changeOwnPassword lets any user replace their own password, given the
// current one (so a borrowed session or a leaked token cannot take the
// account over). Every session of the user ends; the caller starts a new
// one for a browser that should stay logged in.
func (s *Server) changeOwnPassword(r *http.Request, current, next string) error {
	p := authOf(r)
	ctx := r.Context()
	u, err := s.st.GetUser(ctx, p.UserID)
	if err != nil {
		return err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(current)) != nil {
		s.audit(r, p.Name, "password.change.refused", "wrong current password")
		return errWrongPassword
	}
	if next == current {
		return invalidf("the new password is the same as the current one")
	}
	hash, err := HashPassword(next)
	if err != nil {
		return invalidf("%s", err)
	}
	if err := s.st.SetUserPassword(ctx, u.ID, hash); err != nil {
		return err
	}
	if _, err := s.st.DeleteUserSessions(ctx, u.ID); err != nil {
		return err
	}
	s.audit(r, p.Name, "password.change", "own password changed; all sessions ended")
	return nil
}

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request) error {
	p := authOf(r)
	writeJSON(w, http.StatusOK, map[string]any{"id": p.UserID, "name": p.Name, "role": p.Role})
	return nil
}

func (s *Server) apiPasswordChange(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	if err := s.changeOwnPassword(r, b.Current, b.New); err != nil {
		return fmt.Errorf("password not changed: %w", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "password changed; every session of this account has ended"})
	return nil
}

func (s *Server) pageAccount(w http.ResponseWriter, r *http.Request) error {
	s.render(w, r, http.StatusOK, "account", "title.account", nil)
	return nil
}

// pageAccountPassword changes the password and keeps this browser logged
// in with a fresh session (the others have ended).
func (s *Server) pageAccountPassword(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	f := r.PostForm
	if f.Get("new_password") != f.Get("new_password2") {
		s.renderWith(w, r, http.StatusBadRequest, "account", "title.account", nil, "", s.tr(r, "account.differ"))
		return nil
	}
	if err := s.changeOwnPassword(r, f.Get("current_password"), f.Get("new_password")); err != nil {
		if apperr.KindOf(err) == apperr.Internal {
			return err
		}
		s.renderWith(w, r, statusOf(apperr.KindOf(err)), "account", "title.account", nil, "", s.tr(r, "account.not_changed")+" "+err.Error()+".")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	u, err := s.st.GetUser(ctx, authOf(r).UserID)
	if err == nil {
		err = s.startSession(ctx, w, u, r.RemoteAddr)
	}
	if err != nil {
		// The password did change; only the new session failed.
		s.log.Error().Err(err).Msg("new session after password change")
		s.clearCookie(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/account?ok=password", http.StatusSeeOther)
	return nil
}
