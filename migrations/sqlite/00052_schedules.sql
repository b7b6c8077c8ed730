-- Schedules, their fires and the scheduler's leader lease; the same logical
-- schema as the MySQL set (see there).

-- +goose Up
CREATE TABLE schedules (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  module_id INTEGER NOT NULL,
  params TEXT NOT NULL,
  target_kind TEXT NOT NULL,
  target_id INTEGER NOT NULL DEFAULT 0,
  target_hosts TEXT NOT NULL,
  cron TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  next_at DATETIME NULL,
  last_run_id TEXT NOT NULL DEFAULT '',
  created_by TEXT NOT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE INDEX schedules_due ON schedules (enabled, next_at);

CREATE TABLE schedule_fires (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
  fire_at DATETIME NOT NULL,
  started_at DATETIME NOT NULL,
  outcome TEXT NOT NULL,
  run_id TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '',
  tier TEXT NOT NULL DEFAULT '',
  UNIQUE (schedule_id, fire_at)
);
CREATE INDEX schedule_fires_list ON schedule_fires (schedule_id, id);

CREATE TABLE leader_leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  until DATETIME NOT NULL
);

-- +goose Down
DROP TABLE leader_leases;
DROP TABLE schedule_fires;
DROP TABLE schedules;
