package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/omserver/omserver-go/internal/store"
)

// Users (admin only): list, add, change role, disable, reset a password.

func (s *Server) apiUsers(w http.ResponseWriter, r *http.Request) error {
	list, err := s.st.ListUsers(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// createUser validates and adds a user.
func (s *Server) createUser(r *http.Request, name, roleName, password string) (store.User, error) {
	if !store.ValidRole(roleName) {
		return store.User{}, invalidf("role %q is not admin, operator or viewer", clipRunes(roleName, 20))
	}
	hash, err := HashPassword(password)
	if err != nil {
		return store.User{}, invalidf("%s", err)
	}
	u := store.User{Name: strings.TrimSpace(name), Role: roleName, PasswordHash: hash}
	id, err := s.st.CreateUser(r.Context(), u)
	if err != nil {
		return store.User{}, err
	}
	u.ID = id
	s.audit(r, authOf(r).Name, "user.create", fmt.Sprintf("%d %s as %s", id, u.Name, roleName))
	return u, nil
}

func (s *Server) apiUserCreate(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password string `json:"password"`
	}
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	u, err := s.createUser(r, b.Name, b.Role, b.Password)
	if err != nil {
		return err
	}
	// Read back, so the answer carries what was stored (its creation time).
	if stored, err := s.st.GetUser(r.Context(), u.ID); err == nil {
		u = stored
	}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

// updateUser applies a role, a disabled flag and/or a new password. Every
// change is validated before any is applied; an admin cannot demote or
// disable themselves (so the last admin cannot lock everyone out by accident).
func (s *Server) updateUser(r *http.Request, id int64, roleName string, disabled *bool, newPassword string) error {
	u, err := s.st.GetUser(r.Context(), id)
	if err != nil {
		return err
	}
	me := authOf(r)
	if roleName != "" && !store.ValidRole(roleName) {
		return invalidf("role %q is not admin, operator or viewer", clipRunes(roleName, 20))
	}
	if id == me.UserID && ((roleName != "" && roleName != store.RoleAdmin) || (disabled != nil && *disabled)) {
		return invalidf("you cannot demote or disable your own account")
	}
	var hash string
	if newPassword != "" {
		if hash, err = HashPassword(newPassword); err != nil {
			return invalidf("%s", err)
		}
	}
	var changes []string
	if roleName != "" && roleName != u.Role {
		if err := s.st.UpdateUserRole(r.Context(), id, roleName); err != nil {
			return err
		}
		changes = append(changes, "role "+roleName)
	}
	if disabled != nil && *disabled != u.Disabled {
		if err := s.st.SetUserDisabled(r.Context(), id, *disabled); err != nil {
			return err
		}
		// Its sessions end now, not merely while it is disabled: enabling
		// the account again must not bring back a session that may have
		// been the reason for disabling it.
		if *disabled {
			if _, err := s.st.DeleteUserSessions(r.Context(), id); err != nil {
				return err
			}
		}
		changes = append(changes, fmt.Sprintf("disabled=%t", *disabled))
	}
	if hash != "" {
		if err := s.st.SetUserPassword(r.Context(), id, hash); err != nil {
			return err
		}
		if _, err := s.st.DeleteUserSessions(r.Context(), id); err != nil {
			return err
		}
		changes = append(changes, "password reset")
	}
	if len(changes) > 0 {
		s.audit(r, me.Name, "user.update", fmt.Sprintf("%d %s: %s", id, u.Name, strings.Join(changes, ", ")))
	}
	return nil
}

func (s *Server) apiUserUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "user")
	if err != nil {
		return err
	}
	var b struct {
		Role     string `json:"role"`
		Disabled *bool  `json:"disabled"`
		Password string `json:"password"`
	}
	if err := s.decodeJSON(r, &b); err != nil {
		return err
	}
	if err := s.updateUser(r, id, b.Role, b.Disabled, b.Password); err != nil {
		return err
	}
	u, err := s.st.GetUser(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// --- pages ---

func (s *Server) pageUsers(w http.ResponseWriter, r *http.Request) error {
	list, err := s.st.ListUsers(r.Context())
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "users", "title.users", list)
	return nil
}

func (s *Server) pageUserCreate(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(r); err != nil {
		return err
	}
	f := r.PostForm
	if _, err := s.createUser(r, f.Get("name"), f.Get("role"), f.Get("password")); err != nil {
		return err
	}
	http.Redirect(w, r, "/users?ok=created", http.StatusSeeOther)
	return nil
}

func (s *Server) pageUserUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "id", "user")
	if err != nil {
		return err
	}
	if err := s.parseForm(r); err != nil {
		return err
	}
	f := r.PostForm
	var disabled *bool
	switch f.Get("disabled") {
	case "true", "false":
		v := f.Get("disabled") == "true"
		disabled = &v
	case "":
	default:
		return invalidf("disabled must be true or false")
	}
	if err := s.updateUser(r, id, f.Get("role"), disabled, f.Get("password")); err != nil {
		return err
	}
	http.Redirect(w, r, "/users?ok=saved", http.StatusSeeOther)
	return nil
}
