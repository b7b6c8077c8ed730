-- Delivery of runs across crashes and outages (docs/DELIVERY.md): the last
-- stored event of each run's master stream, and run leases (one web tier
-- owns a run in progress; with SQLite there is one tier, but the rows keep
-- the code path the same).

-- +goose Up
ALTER TABLE runs ADD COLUMN acked_seq INTEGER NOT NULL DEFAULT 0;

CREATE TABLE run_leases (
  run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  owner TEXT NOT NULL,
  expires_at DATETIME NOT NULL
);
CREATE INDEX run_leases_owner ON run_leases (owner);
CREATE INDEX run_leases_expires ON run_leases (expires_at);

-- +goose Down
DROP TABLE run_leases;
ALTER TABLE runs DROP COLUMN acked_seq;
