-- Notification channels and their outbox; the same logical schema as the
-- MySQL set (see there).

-- +goose Up
CREATE TABLE notify_channels (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  events TEXT NOT NULL,
  config TEXT NOT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);

CREATE TABLE notify_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel_id INTEGER NOT NULL REFERENCES notify_channels (id) ON DELETE CASCADE,
  event TEXT NOT NULL,
  run_id TEXT NOT NULL DEFAULT '',
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at DATETIME NOT NULL,
  claimed_by TEXT NOT NULL DEFAULT '',
  claimed_until DATETIME NULL,
  last_error TEXT NOT NULL DEFAULT '',
  created_at DATETIME NOT NULL,
  sent_at DATETIME NULL
);
CREATE INDEX notify_outbox_due ON notify_outbox (status, next_at);
CREATE INDEX notify_outbox_channel ON notify_outbox (channel_id, id);

-- +goose Down
DROP TABLE notify_outbox;
DROP TABLE notify_channels;
