-- The MySQL set widens the original columns here. SQLite columns are TEXT
-- without a length, so there is nothing to change; the migration exists so
-- both dialects share version numbers.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
