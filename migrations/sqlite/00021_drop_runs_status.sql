-- The SQLite set dropped runs_status in 00020 already (it rebuilt the run
-- indexes there); this version exists so both dialects share numbers.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
