-- runs_status (status) is a prefix of runs_status_created (status,
-- created_at, id) from 00020: every status lookup can use the latter, so
-- one index fewer is written with every run. Repeatable: dropped only if
-- there.

-- +goose Up
SET @ddl := IF((SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
  AND TABLE_NAME = 'runs' AND INDEX_NAME = 'runs_status') > 0,
  'ALTER TABLE `runs` DROP INDEX `runs_status`', 'DO 0');
PREPARE drop_index FROM @ddl;
EXECUTE drop_index;
DEALLOCATE PREPARE drop_index;

-- +goose Down
ALTER TABLE `runs` ADD INDEX `runs_status` (`status`);
