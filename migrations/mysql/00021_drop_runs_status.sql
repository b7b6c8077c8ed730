-- runs_status (status) is a prefix of runs_status_created (status,
-- created_at, id): every status lookup can use the latter, so one index
-- fewer is written with every run. 00020 drops it now, but its first
-- version did not: this drops it where that version ran, and does nothing
-- elsewhere.

-- +goose Up
SET @ddl := IF((SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
  AND TABLE_NAME = 'runs' AND INDEX_NAME = 'runs_status') > 0,
  'ALTER TABLE `runs` DROP INDEX `runs_status`', 'DO 0');
PREPARE drop_index FROM @ddl;
EXECUTE drop_index;
DEALLOCATE PREPARE drop_index;

-- +goose Down
-- 00020's Down puts runs_status back.
SELECT 1;
