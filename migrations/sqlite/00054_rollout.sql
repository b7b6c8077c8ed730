-- Rollouts: runs count skipped hosts (see the MySQL set).

-- +goose Up
ALTER TABLE runs ADD COLUMN n_skipped INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE runs DROP COLUMN n_skipped;
