package store

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"time"

	"github.com/jmoiron/sqlx"
)

// Roles.
const (
	RoleAdmin    = "admin"    // modules, inventory, users, and everything below
	RoleOperator = "operator" // runs modules
	RoleViewer   = "viewer"   // reads inventory and history
)

// ValidRole reports whether r is one of the roles.
func ValidRole(r string) bool {
	return r == RoleAdmin || r == RoleOperator || r == RoleViewer
}

// User is a web-tier account. PasswordHash is a bcrypt or argon2id hash
// produced by the caller; the store never sees a password.
type User struct {
	ID           int64     `db:"id" json:"id"`
	Name         string    `db:"name" json:"name"`
	PasswordHash string    `db:"password_hash" json:"-"`
	Role         string    `db:"role" json:"role"`
	Disabled     bool      `db:"disabled" json:"disabled"`
	CreatedAt    time.Time `db:"created_at" json:"created_at"`
}

// Session is a logged-in browser session. ID is HashToken(cookie token).
type Session struct {
	ID         string    `db:"id" json:"-"`
	UserID     int64     `db:"user_id" json:"user_id"`
	CreatedAt  time.Time `db:"created_at" json:"created_at"`
	ExpiresAt  time.Time `db:"expires_at" json:"expires_at"`
	LastSeen   time.Time `db:"last_seen" json:"last_seen"`
	RemoteAddr string    `db:"remote_addr" json:"remote_addr"`
}

// APIToken is a script's credential. TokenHash is HashToken(token).
type APIToken struct {
	ID         int64      `db:"id" json:"id"`
	UserID     int64      `db:"user_id" json:"user_id"`
	Name       string     `db:"name" json:"name"`
	TokenHash  string     `db:"token_hash" json:"-"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	LastUsedAt *time.Time `db:"-" json:"last_used_at,omitempty"`
}

var (
	userNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
	tokenHashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// MaxRemoteAddrLen is the longest remote address kept (host:port of IPv6).
const MaxRemoteAddrLen = 64

func checkUser(u User) error {
	if !userNameRE.MatchString(u.Name) {
		return invalid("user: name %q must be 1-64 letters, digits or . _ @ - (starting with a letter or digit)", u.Name)
	}
	if !ValidRole(u.Role) {
		return invalid("user %s: role %q is not admin, operator or viewer", u.Name, u.Role)
	}
	if err := checkPasswordHash(u.PasswordHash); err != nil {
		return err
	}
	return nil
}

func checkPasswordHash(h string) error {
	if len(h) < 20 || len(h) > 255 {
		return invalid("user: password hash missing or malformed (expected a bcrypt or argon2id hash)")
	}
	return nil
}

func checkTokenHash(h string) error {
	if !tokenHashRE.MatchString(h) {
		return invalid("token hash must be 64 lowercase hex digits (use HashToken)")
	}
	return nil
}

const userCols = `id, name, password_hash, role, disabled, created_at`

// CreateUser adds a user (ErrConflict if the name is taken) and returns its id.
func (s *Store) CreateUser(ctx context.Context, u User) (int64, error) {
	if err := checkUser(u); err != nil {
		return 0, err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO users (name, password_hash, role, disabled, created_at) VALUES (?, ?, ?, ?, ?)`,
		u.Name, u.PasswordHash, u.Role, u.Disabled, dbTime(s.now()))
	if err != nil {
		return 0, classify(err, fmt.Sprintf("create user %q", u.Name))
	}
	return res.LastInsertId()
}

func fixUser(u User) User { u.CreatedAt = u.CreatedAt.UTC(); return u }

// GetUser returns a user by id.
func (s *Store) GetUser(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, `SELECT `+userCols+` FROM users WHERE id = ?`, id)
	return fixUser(u), classify(err, fmt.Sprintf("user %d", id))
}

// GetUserByName returns a user by name.
func (s *Store) GetUserByName(ctx context.Context, name string) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, `SELECT `+userCols+` FROM users WHERE name = ?`, name)
	return fixUser(u), classify(err, fmt.Sprintf("user %q", name))
}

// ListUsers returns every user, by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	out := []User{}
	if err := s.db.SelectContext(ctx, &out, `SELECT `+userCols+` FROM users ORDER BY name`); err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	for i := range out {
		out[i] = fixUser(out[i])
	}
	return out, nil
}

// CountUsers returns the number of users (0 on a fresh installation).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM users`); err != nil {
		return 0, fmt.Errorf("store: count users: %w", err)
	}
	return n, nil
}

// changeUser applies update to user id inside a transaction, refusing with
// ErrConflict any change that would leave no enabled admin (so nobody can
// lock every administrator out).
func (s *Store) changeUser(ctx context.Context, id int64, what string, update func(tx *sqlx.Tx) error) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var before User
		if err := tx.GetContext(ctx, &before, `SELECT `+userCols+` FROM users WHERE id = ?`, id); err != nil {
			return classify(err, fmt.Sprintf("user %d", id))
		}
		if err := update(tx); err != nil {
			return err
		}
		if before.Role == RoleAdmin && !before.Disabled {
			var admins int
			if err := tx.GetContext(ctx, &admins, `SELECT COUNT(*) FROM users WHERE role = ? AND disabled = ?`, RoleAdmin, false); err != nil {
				return fmt.Errorf("store: count admins: %w", err)
			}
			if admins == 0 {
				return fmt.Errorf("%s user %s: it is the last enabled admin: %w", what, before.Name, ErrConflict)
			}
		}
		return nil
	})
}

// UpdateUserRole changes a user's role.
func (s *Store) UpdateUserRole(ctx context.Context, id int64, role string) error {
	if !ValidRole(role) {
		return invalid("role %q is not admin, operator or viewer", role)
	}
	return s.changeUser(ctx, id, "change role of", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, id)
		return classify(err, "update user role")
	})
}

// SetUserPassword replaces a user's password hash. Callers should also
// DeleteUserSessions so other sessions must log in again.
func (s *Store) SetUserPassword(ctx context.Context, id int64, passwordHash string) error {
	if err := checkPasswordHash(passwordHash); err != nil {
		return err
	}
	return s.changeUser(ctx, id, "set password of", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, passwordHash, id)
		return classify(err, "update user password")
	})
}

// SetUserDisabled disables or enables a user. Disabling also ends the
// user's sessions; API tokens of a disabled user stop working.
func (s *Store) SetUserDisabled(ctx context.Context, id int64, disabled bool) error {
	return s.changeUser(ctx, id, "disable", func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled = ? WHERE id = ?`, disabled, id); err != nil {
			return classify(err, "update user disabled")
		}
		if disabled {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
				return classify(err, "delete sessions")
			}
		}
		return nil
	})
}

// DeleteUser removes a user with their sessions and API tokens. Their runs
// and audit entries keep the user's name.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	return s.changeUser(ctx, id, "delete", func(tx *sqlx.Tx) error {
		// Explicit deletes: ON DELETE CASCADE is the backstop.
		for _, q := range []string{`DELETE FROM sessions WHERE user_id = ?`, `DELETE FROM api_tokens WHERE user_id = ?`, `DELETE FROM users WHERE id = ?`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return classify(err, "delete user")
			}
		}
		return nil
	})
}

// CreateSession records a new session for userID; tokenHash is
// HashToken(cookie token).
func (s *Store) CreateSession(ctx context.Context, tokenHash string, userID int64, expires time.Time, remoteAddr string) error {
	if err := checkTokenHash(tokenHash); err != nil {
		return err
	}
	now := dbTime(s.now())
	if !expires.After(now) {
		return invalid("session: expiry %s is not in the future", expires.UTC().Format(time.RFC3339))
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM users WHERE id = ?`, userID); err != nil {
			return classify(err, fmt.Sprintf("session: user %d", userID))
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen, remote_addr) VALUES (?, ?, ?, ?, ?, ?)`,
			tokenHash, userID, now, dbTime(expires), now, clipText(remoteAddr, MaxRemoteAddrLen))
		return classify(err, "create session")
	})
}

const sessionCols = `s.id, s.user_id, s.created_at, s.expires_at, s.last_seen, s.remote_addr`

// GetSession returns a live session and its user. An unknown or expired
// session, or one whose user is disabled, is ErrNotFound; a database that
// cannot answer is ErrUnavailable (never "not logged in"). It only reads.
func (s *Store) GetSession(ctx context.Context, tokenHash string) (Session, User, error) {
	if checkTokenHash(tokenHash) != nil {
		return Session{}, User{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	var row struct {
		Session
		UID          int64     `db:"u_id"`
		Name         string    `db:"u_name"`
		PasswordHash string    `db:"u_password_hash"`
		Role         string    `db:"u_role"`
		Disabled     bool      `db:"u_disabled"`
		CreatedAt    time.Time `db:"u_created_at"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT `+sessionCols+`, u.id AS u_id, u.name AS u_name, u.password_hash AS u_password_hash,
		u.role AS u_role, u.disabled AS u_disabled, u.created_at AS u_created_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = ? AND s.expires_at > ? AND u.disabled = ?`, tokenHash, dbTime(s.now()), false)
	if err != nil {
		return Session{}, User{}, classify(err, "session")
	}
	sess := row.Session
	sess.CreatedAt, sess.ExpiresAt, sess.LastSeen = sess.CreatedAt.UTC(), sess.ExpiresAt.UTC(), sess.LastSeen.UTC()
	u := User{ID: row.UID, Name: row.Name, PasswordHash: row.PasswordHash, Role: row.Role, Disabled: row.Disabled, CreatedAt: row.CreatedAt.UTC()}
	return sess, u, nil
}

// TouchSession records activity on a session and moves its expiry
// (sliding sessions).
func (s *Store) TouchSession(ctx context.Context, tokenHash string, expires time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen = ?, expires_at = ? WHERE id = ?`, dbTime(s.now()), dbTime(expires), tokenHash)
	if err != nil {
		return classify(err, "touch session")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("session: %w", ErrNotFound)
	}
	return nil
}

// DeleteSession ends one session (logout). Deleting an unknown session is
// not an error: logout is idempotent.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, tokenHash)
	return classify(err, "delete session")
}

// DeleteUserSessions ends every session of a user and returns how many.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	if err != nil {
		return 0, classify(err, "delete user sessions")
	}
	return res.RowsAffected()
}

// PurgeExpiredSessions deletes expired sessions and returns how many.
func (s *Store) PurgeExpiredSessions(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, dbTime(s.now()))
	if err != nil {
		return 0, classify(err, "purge sessions")
	}
	return res.RowsAffected()
}

// MaxTokenNameLen is the longest API token name.
const MaxTokenNameLen = 64

// CreateAPIToken records a token for userID; tokenHash is HashToken(token).
func (s *Store) CreateAPIToken(ctx context.Context, userID int64, name, tokenHash string) (int64, error) {
	if err := checkName("api token", name, MaxTokenNameLen); err != nil {
		return 0, err
	}
	if err := checkTokenHash(tokenHash); err != nil {
		return 0, err
	}
	var id int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := exists(ctx, tx, `SELECT 1 FROM users WHERE id = ?`, userID); err != nil {
			return classify(err, fmt.Sprintf("user %d", userID))
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?)`,
			userID, name, tokenHash, dbTime(s.now()))
		if err != nil {
			return classify(err, "create api token")
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// tokenUseGranularity is how stale a token's last_used_at may get: a
// script calling every second does not write the database every second.
const tokenUseGranularity = time.Minute

// GetUserByAPIToken returns the enabled user owning the token and records
// its use. An unknown token or a disabled user is ErrNotFound; a database
// that cannot answer is ErrUnavailable. Recording the use is best effort:
// a database that can be read but not written (full disk, read-only) must
// not turn a valid token into a refused one, so its failure is ignored.
func (s *Store) GetUserByAPIToken(ctx context.Context, tokenHash string) (User, error) {
	if checkTokenHash(tokenHash) != nil {
		return User{}, fmt.Errorf("api token: %w", ErrNotFound)
	}
	var u User
	err := s.db.GetContext(ctx, &u, `SELECT u.id, u.name, u.password_hash, u.role, u.disabled, u.created_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND u.disabled = ?`, tokenHash, false)
	if err != nil {
		return User{}, classify(err, "api token")
	}
	now := s.now()
	_, _ = s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		dbTime(now), tokenHash, dbTime(now.Add(-tokenUseGranularity)))
	return fixUser(u), nil
}

// ListAPITokens returns a user's tokens (hashes only), newest first.
func (s *Store) ListAPITokens(ctx context.Context, userID int64) ([]APIToken, error) {
	var rows []struct {
		APIToken
		LastUsed sql.NullTime `db:"last_used_at"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT id, user_id, name, token_hash, created_at, last_used_at FROM api_tokens WHERE user_id = ? ORDER BY id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: list api tokens: %w", err)
	}
	out := make([]APIToken, 0, len(rows))
	for _, r := range rows {
		t := r.APIToken
		t.CreatedAt = t.CreatedAt.UTC()
		t.LastUsedAt = nullTime(r.LastUsed)
		out = append(out, t)
	}
	return out, nil
}

// DeleteAPIToken revokes token id of userID (ErrNotFound if the user has no
// such token).
func (s *Store) DeleteAPIToken(ctx context.Context, userID, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = ? AND user_id = ?`, id, userID)
	if err != nil {
		return classify(err, "delete api token")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("api token %d of user %d: %w", id, userID, ErrNotFound)
	}
	return nil
}
