package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const fakeHash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"

func TestUsers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		if n, err := s.CountUsers(ctx); err != nil || n != 0 {
			t.Fatalf("count = %d, %v", n, err)
		}
		admin, err := s.CreateUser(ctx, User{Name: "admin", PasswordHash: fakeHash, Role: RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		op, err := s.CreateUser(ctx, User{Name: "op.one", PasswordHash: fakeHash, Role: RoleOperator})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			u    User
			want error
		}{
			{"duplicate", User{Name: "admin", PasswordHash: fakeHash, Role: RoleViewer}, ErrConflict},
			{"bad role", User{Name: "x", PasswordHash: fakeHash, Role: "root"}, ErrInvalid},
			{"bad name", User{Name: "a b", PasswordHash: fakeHash, Role: RoleViewer}, ErrInvalid},
			{"html name", User{Name: "<script>", PasswordHash: fakeHash, Role: RoleViewer}, ErrInvalid},
			{"no hash", User{Name: "x", Role: RoleViewer}, ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.CreateUser(ctx, tc.u); !errors.Is(err, tc.want) {
					t.Fatalf("CreateUser = %v; want %v", err, tc.want)
				}
				if n, _ := s.CountUsers(ctx); n != 2 {
					t.Fatalf("refused create changed users: %d", n)
				}
			})
		}
		u, err := s.GetUserByName(ctx, "admin")
		if err != nil || u.ID != admin || u.Role != RoleAdmin || u.PasswordHash != fakeHash || u.CreatedAt.Location() != time.UTC || u.CreatedAt.IsZero() {
			t.Fatalf("get admin = %+v, %v", u, err)
		}
		if _, err := s.GetUser(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Errorf("get unknown = %v", err)
		}
		if _, err := s.GetUserByName(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("get unknown name = %v", err)
		}
		// The last enabled admin cannot be demoted, disabled or deleted.
		if err := s.UpdateUserRole(ctx, admin, RoleViewer); !errors.Is(err, ErrConflict) {
			t.Errorf("demote last admin = %v", err)
		}
		if err := s.SetUserDisabled(ctx, admin, true); !errors.Is(err, ErrConflict) {
			t.Errorf("disable last admin = %v", err)
		}
		if err := s.DeleteUser(ctx, admin); !errors.Is(err, ErrConflict) {
			t.Errorf("delete last admin = %v", err)
		}
		if u, _ := s.GetUser(ctx, admin); u.Role != RoleAdmin || u.Disabled {
			t.Fatalf("refused changes changed the admin: %+v", u)
		}
		if err := s.UpdateUserRole(ctx, op, "superuser"); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad role = %v", err)
		}
		if err := s.UpdateUserRole(ctx, op, RoleAdmin); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateUserRole(ctx, admin, RoleViewer); err != nil {
			t.Fatalf("demote with another admin = %v", err)
		}
		if err := s.SetUserPassword(ctx, op, "short"); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad hash = %v", err)
		}
		newHash := strings.Replace(fakeHash, "N9", "M8", 1)
		if err := s.SetUserPassword(ctx, op, newHash); err != nil {
			t.Fatal(err)
		}
		if u, _ := s.GetUser(ctx, op); u.PasswordHash != newHash {
			t.Errorf("hash not changed")
		}
		users, err := s.ListUsers(ctx)
		if err != nil || len(users) != 2 || users[0].Name != "admin" || users[1].Role != RoleAdmin {
			t.Errorf("list = %+v, %v", users, err)
		}
		if err := s.DeleteUser(ctx, admin); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, admin); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete twice = %v", err)
		}
	})
}

func TestSessionsAndTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		s.now = func() time.Time { return clock }
		uid, _ := s.CreateUser(ctx, User{Name: "alice", PasswordHash: fakeHash, Role: RoleOperator})
		admin, _ := s.CreateUser(ctx, User{Name: "root", PasswordHash: fakeHash, Role: RoleAdmin})
		tok := HashToken("cookie-token")
		if err := s.CreateSession(ctx, "not-a-hash", uid, clock.Add(time.Hour), ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad hash = %v", err)
		}
		if err := s.CreateSession(ctx, tok, uid, clock.Add(-time.Second), ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("expired at creation = %v", err)
		}
		if err := s.CreateSession(ctx, tok, 4242, clock.Add(time.Hour), ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown user = %v", err)
		}
		if err := s.CreateSession(ctx, tok, uid, clock.Add(time.Hour), "[2001:db8::1]:4242"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSession(ctx, tok, uid, clock.Add(time.Hour), ""); !errors.Is(err, ErrConflict) {
			t.Errorf("same token twice = %v", err)
		}
		sess, u, err := s.GetSession(ctx, tok)
		if err != nil || u.Name != "alice" || sess.UserID != uid || !sess.ExpiresAt.Equal(clock.Add(time.Hour)) || sess.RemoteAddr != "[2001:db8::1]:4242" {
			t.Fatalf("get session = %+v %+v %v", sess, u, err)
		}
		if _, _, err := s.GetSession(ctx, HashToken("other")); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown session = %v", err)
		}
		// Sliding expiry.
		clock = clock.Add(50 * time.Minute)
		if err := s.TouchSession(ctx, tok, clock.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(30 * time.Minute)
		sess, _, err = s.GetSession(ctx, tok)
		if err != nil || !sess.LastSeen.Equal(clock.Add(-30*time.Minute)) {
			t.Fatalf("after touch = %+v, %v", sess, err)
		}
		if err := s.TouchSession(ctx, HashToken("gone"), clock); !errors.Is(err, ErrNotFound) {
			t.Errorf("touch unknown = %v", err)
		}
		// Expiry and purge.
		clock = clock.Add(time.Hour)
		if _, _, err := s.GetSession(ctx, tok); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired session = %v", err)
		}
		if n, err := s.PurgeExpiredSessions(ctx); err != nil || n != 1 {
			t.Errorf("purge = %d, %v", n, err)
		}
		// Disabled users lose their sessions and tokens.
		tok2 := HashToken("t2")
		if err := s.CreateSession(ctx, tok2, uid, clock.Add(time.Hour), ""); err != nil {
			t.Fatal(err)
		}
		apiTok := HashToken("api-secret")
		tid, err := s.CreateAPIToken(ctx, uid, "cron job", apiTok)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateAPIToken(ctx, uid, "again", apiTok); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate token = %v", err)
		}
		if _, err := s.CreateAPIToken(ctx, 4242, "x", HashToken("y")); !errors.Is(err, ErrNotFound) {
			t.Errorf("token for unknown user = %v", err)
		}
		if _, err := s.CreateAPIToken(ctx, uid, "", HashToken("z")); !errors.Is(err, ErrInvalid) {
			t.Errorf("token without name = %v", err)
		}
		got, err := s.GetUserByAPIToken(ctx, apiTok)
		if err != nil || got.ID != uid {
			t.Fatalf("token user = %+v, %v", got, err)
		}
		toks, err := s.ListAPITokens(ctx, uid)
		if err != nil || len(toks) != 1 || toks[0].Name != "cron job" || toks[0].LastUsedAt == nil || !toks[0].LastUsedAt.Equal(clock) {
			t.Fatalf("tokens = %+v, %v", toks, err)
		}
		if err := s.SetUserDisabled(ctx, uid, true); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.GetSession(ctx, tok2); !errors.Is(err, ErrNotFound) {
			t.Errorf("session of disabled user = %v", err)
		}
		if _, err := s.GetUserByAPIToken(ctx, apiTok); !errors.Is(err, ErrNotFound) {
			t.Errorf("token of disabled user = %v", err)
		}
		if err := s.SetUserDisabled(ctx, uid, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetUserByAPIToken(ctx, apiTok); err != nil {
			t.Errorf("token after re-enable = %v", err)
		}
		if err := s.DeleteAPIToken(ctx, admin, tid); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete another user's token = %v", err)
		}
		if err := s.DeleteAPIToken(ctx, uid, tid); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetUserByAPIToken(ctx, apiTok); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoked token = %v", err)
		}
		for i := range 3 {
			if err := s.CreateSession(ctx, HashToken(string(rune('a'+i))), uid, clock.Add(time.Hour), ""); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.DeleteUserSessions(ctx, uid); err != nil || n != 3 {
			t.Errorf("delete user sessions = %d, %v", n, err)
		}
		if err := s.DeleteSession(ctx, tok2); err != nil {
			t.Errorf("logout twice must be harmless: %v", err)
		}
	})
}

// TestUserLang: a user's interface language is stored, read back with the
// user (by id, by session and by API token), and only en, zh-CN or "" is
// accepted.
func TestUserLang(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		id, err := s.CreateUser(ctx, User{Name: "li", PasswordHash: fakeHash, Role: RoleOperator})
		if err != nil {
			t.Fatal(err)
		}
		if u, _ := s.GetUser(ctx, id); u.Lang != "" {
			t.Fatalf("new user has language %q", u.Lang)
		}
		if err := s.SetUserLang(ctx, id, "zh-CN"); err != nil {
			t.Fatal(err)
		}
		tok := HashToken("session-of-li")
		if err := s.CreateSession(ctx, tok, id, time.Now().Add(time.Hour), "test"); err != nil {
			t.Fatal(err)
		}
		if _, u, err := s.GetSession(ctx, tok); err != nil || u.Lang != "zh-CN" {
			t.Fatalf("session user language %q, %v", u.Lang, err)
		}
		if _, err := s.CreateAPIToken(ctx, id, "t", HashToken("tok-of-li")); err != nil {
			t.Fatal(err)
		}
		if u, err := s.GetUserByAPIToken(ctx, HashToken("tok-of-li")); err != nil || u.Lang != "zh-CN" {
			t.Fatalf("token user language %q, %v", u.Lang, err)
		}
		for _, bad := range []string{"fr", "zh", "EN", "zh-CN;DROP"} {
			if err := s.SetUserLang(ctx, id, bad); !errors.Is(err, ErrInvalid) {
				t.Fatalf("SetUserLang(%q) = %v, want ErrInvalid", bad, err)
			}
		}
		if u, _ := s.GetUser(ctx, id); u.Lang != "zh-CN" {
			t.Fatalf("a refused language changed the stored one to %q", u.Lang)
		}
		if err := s.SetUserLang(ctx, 999999, "en"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
	})
}
