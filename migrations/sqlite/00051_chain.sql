-- The tamper-evident record; the same logical schema as the MySQL set
-- (see there and internal/ledger).

-- +goose Up
CREATE TABLE chain_heads (
  name TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL,
  start_id INTEGER NOT NULL
);
ALTER TABLE audit_log ADD COLUMN chain_seq INTEGER NULL;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT NULL;
ALTER TABLE audit_log ADD COLUMN row_hash TEXT NULL;
CREATE UNIQUE INDEX audit_log_chain ON audit_log (chain_seq);
ALTER TABLE run_hosts ADD COLUMN chain_seq INTEGER NULL;
ALTER TABLE run_hosts ADD COLUMN prev_hash TEXT NULL;
ALTER TABLE run_hosts ADD COLUMN row_hash TEXT NULL;
ALTER TABLE run_hosts ADD COLUMN signature TEXT NULL;
CREATE UNIQUE INDEX run_hosts_chain ON run_hosts (chain_seq);
INSERT INTO chain_heads (name, seq, hash, start_id)
  SELECT 'audit', 0, '0000000000000000000000000000000000000000000000000000000000000000', COALESCE(MAX(id), 0) FROM audit_log;
INSERT INTO chain_heads (name, seq, hash, start_id)
  SELECT 'results', 0, '0000000000000000000000000000000000000000000000000000000000000000', COALESCE(MAX(id), 0) FROM run_hosts;

-- +goose Down
DROP INDEX run_hosts_chain;
ALTER TABLE run_hosts DROP COLUMN signature;
ALTER TABLE run_hosts DROP COLUMN row_hash;
ALTER TABLE run_hosts DROP COLUMN prev_hash;
ALTER TABLE run_hosts DROP COLUMN chain_seq;
DROP INDEX audit_log_chain;
ALTER TABLE audit_log DROP COLUMN row_hash;
ALTER TABLE audit_log DROP COLUMN prev_hash;
ALTER TABLE audit_log DROP COLUMN chain_seq;
DROP TABLE chain_heads;
