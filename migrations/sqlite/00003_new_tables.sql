-- Tables of OMServer-Go, the same logical schema as the MySQL set.
-- Time columns are declared DATETIME so the driver returns time.Time.

-- +goose Up
ALTER TABLE module_list ADD COLUMN module_params TEXT NULL;

CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at DATETIME NOT NULL
);

CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  last_seen DATETIME NOT NULL,
  remote_addr TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_at DATETIME NOT NULL,
  last_used_at DATETIME NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  module_id INTEGER NOT NULL,
  module_name TEXT NOT NULL,
  username TEXT NOT NULL,
  params TEXT NOT NULL,
  hosts TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT NOT NULL,
  master TEXT NOT NULL DEFAULT '',
  created_at DATETIME NOT NULL,
  finished_at DATETIME NULL
);
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_user ON runs (username, created_at);
CREATE INDEX runs_module ON runs (module_id, created_at);
CREATE INDEX runs_status ON runs (status);

CREATE TABLE run_hosts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  host_ip TEXT NOT NULL,
  host_name TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  exit_code INTEGER NOT NULL,
  stdout TEXT NOT NULL,
  stderr TEXT NOT NULL,
  stdout_truncated INTEGER NOT NULL DEFAULT 0,
  stderr_truncated INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL,
  started_at DATETIME NULL,
  duration_ms INTEGER NOT NULL DEFAULT 0,
  UNIQUE (run_id, host_ip, host_name)
);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at DATETIME NOT NULL,
  username TEXT NOT NULL,
  action TEXT NOT NULL,
  detail TEXT NOT NULL,
  remote_addr TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit_log (at);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE run_hosts;
DROP TABLE runs;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE users;
ALTER TABLE module_list DROP COLUMN module_params;
