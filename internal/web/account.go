package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// errWrongPassword is a refused password change: the current password
// given does not match.
var errWrongPassword = errors.New("the current password is wrong")

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
		return badReq("the new password is the same as the current one")
	}
	hash, err := HashPassword(next)
	if err != nil {
		return badReq("%s", err.Error())
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

func (s *Server) apiPasswordChange(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if !s.decodeJSON(w, r, &b) {
		return
	}
	err := s.changeOwnPassword(r, b.Current, b.New)
	var br *badRequest
	switch {
	case errors.Is(err, errWrongPassword):
		writeJSONError(w, http.StatusForbidden, "password not changed: "+err.Error())
	case errors.As(err, &br):
		writeJSONError(w, http.StatusBadRequest, "password not changed: "+br.msg)
	case err != nil:
		s.apiStoreError(w, r, "change password", err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "password changed; every session of this account has ended"})
	}
}

func (s *Server) pageAccount(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "account", "Your account", nil)
}

// pageAccountPassword changes the password and keeps this browser logged
// in with a fresh session (the others have ended).
func (s *Server) pageAccountPassword(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	f := r.PostForm
	if f.Get("new_password") != f.Get("new_password2") {
		s.renderWith(w, r, http.StatusBadRequest, "account", "Your account", nil, "", "Password not changed: the two new passwords differ.")
		return
	}
	err := s.changeOwnPassword(r, f.Get("current_password"), f.Get("new_password"))
	var br *badRequest
	switch {
	case errors.Is(err, errWrongPassword):
		s.renderWith(w, r, http.StatusForbidden, "account", "Your account", nil, "", "Password not changed: "+err.Error()+".")
		return
	case errors.As(err, &br):
		s.renderWith(w, r, http.StatusBadRequest, "account", "Your account", nil, "", "Password not changed: "+br.msg+".")
		return
	case err != nil:
		s.pageFail(w, r, "change password", err)
		return
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
		return
	}
	http.Redirect(w, r, "/account?ok=password", http.StatusSeeOther)
}
