-- 安全审计 (omaudit): the ingest of server_history by the collector, and the
-- tokens that authenticate it. See the MySQL file for the reasons; SQLite
-- has no column lengths to widen.
--   * server_history.row_digest: hex SHA-256 of the row's host, history id,
--     user, time and command, unique (NULL for older rows), so a collector
--     re-sending a row from its spool stores it once.
--   * indexes for the page's search (user, time) and the retention purge.
--   * omaudit_tokens: ingest tokens (SHA-256 only), bound to one server or
--     to the whole fleet (server_ip NULL).

-- +goose Up
ALTER TABLE server_history ADD COLUMN row_digest TEXT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS history_row_digest ON server_history (row_digest);
CREATE INDEX IF NOT EXISTS history_user ON server_history (history_user);
CREATE INDEX IF NOT EXISTS history_datetime ON server_history (history_datetime);
CREATE INDEX IF NOT EXISTS history_db_datetime ON server_history (db_datetime);

CREATE TABLE IF NOT EXISTS omaudit_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  server_ip TEXT NULL REFERENCES server_list (server_lip) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE,
  created_by TEXT NOT NULL,
  created_at DATETIME NOT NULL,
  last_used_at DATETIME NULL
);
CREATE INDEX IF NOT EXISTS omaudit_tokens_server ON omaudit_tokens (server_ip);

-- +goose Down
DROP TABLE IF EXISTS omaudit_tokens;
