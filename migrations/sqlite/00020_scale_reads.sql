-- Reads that stay fast at scale: the same logical schema as the MySQL set
-- (runs.host_count and runs.n_<status>, run_targets, indexes for the run,
-- inventory and audit filters), with the backfill written in SQLite's JSON1.
-- SQLite indexes carry the rowid, not the primary key, so the run indexes
-- are rebuilt with id as their last column (the tie-break of the run order).

-- +goose Up
ALTER TABLE runs ADD COLUMN host_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN n_ok INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN n_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN n_unreachable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN n_timeout INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN n_cancelled INTEGER NOT NULL DEFAULT 0;

CREATE TABLE run_targets (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  pos INTEGER NOT NULL,
  host_ip TEXT NOT NULL,
  host_name TEXT NOT NULL DEFAULT '',
  created_at DATETIME NOT NULL,
  PRIMARY KEY (run_id, pos)
);

UPDATE runs SET host_count = json_array_length(hosts),
  n_ok = (SELECT COUNT(*) FROM run_hosts h WHERE h.run_id = runs.id AND h.status = 'ok'),
  n_failed = (SELECT COUNT(*) FROM run_hosts h WHERE h.run_id = runs.id AND h.status = 'failed'),
  n_unreachable = (SELECT COUNT(*) FROM run_hosts h WHERE h.run_id = runs.id AND h.status = 'unreachable'),
  n_timeout = (SELECT COUNT(*) FROM run_hosts h WHERE h.run_id = runs.id AND h.status = 'timeout'),
  n_cancelled = (SELECT COUNT(*) FROM run_hosts h WHERE h.run_id = runs.id AND h.status = 'cancelled');
INSERT INTO run_targets (run_id, pos, host_ip, host_name, created_at)
  SELECT r.id, CAST(j.key AS INTEGER), COALESCE(json_extract(j.value, '$.ip'), ''),
         COALESCE(json_extract(j.value, '$.name'), ''), r.created_at
  FROM runs r, json_each(r.hosts) j;
-- Indexes after the backfill: one sort instead of random inserts.
CREATE INDEX run_targets_ip ON run_targets (host_ip, created_at, run_id);
CREATE INDEX run_targets_name ON run_targets (host_name, created_at, run_id);

DROP INDEX runs_created;
DROP INDEX runs_user;
DROP INDEX runs_module;
DROP INDEX runs_status;
CREATE INDEX runs_created ON runs (created_at, id);
CREATE INDEX runs_user ON runs (username, created_at, id);
CREATE INDEX runs_module ON runs (module_id, created_at, id);
CREATE INDEX runs_status_created ON runs (status, created_at, id);

CREATE INDEX server_list_app_lip ON server_list (server_app_id, server_lip);
CREATE INDEX server_list_op_lip ON server_list (server_op, server_lip);
CREATE INDEX server_list_name_lip ON server_list (server_name, server_lip);

CREATE INDEX audit_user_id ON audit_log (username, id);
CREATE INDEX audit_action_id ON audit_log (action, id);

-- +goose Down
DROP INDEX audit_action_id;
DROP INDEX audit_user_id;
DROP INDEX server_list_name_lip;
DROP INDEX server_list_op_lip;
DROP INDEX server_list_app_lip;
DROP INDEX runs_status_created;
DROP INDEX runs_module;
DROP INDEX runs_user;
DROP INDEX runs_created;
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_user ON runs (username, created_at);
CREATE INDEX runs_module ON runs (module_id, created_at);
CREATE INDEX runs_status ON runs (status);
DROP TABLE run_targets;
ALTER TABLE runs DROP COLUMN n_cancelled;
ALTER TABLE runs DROP COLUMN n_timeout;
ALTER TABLE runs DROP COLUMN n_unreachable;
ALTER TABLE runs DROP COLUMN n_failed;
ALTER TABLE runs DROP COLUMN n_ok;
ALTER TABLE runs DROP COLUMN host_count;
