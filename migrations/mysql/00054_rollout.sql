-- Rollouts: hosts a stopped rollout never reached are recorded "skipped";
-- runs count them like the other statuses. Repeatable: the column is added
-- only if missing.

-- +goose Up
SET @has := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'runs' AND COLUMN_NAME = 'n_skipped');
SET @ddl := IF(@has = 0, 'ALTER TABLE `runs` ADD COLUMN `n_skipped` int NOT NULL DEFAULT 0', 'DO 0');
PREPARE stmt FROM @ddl;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;

-- +goose Down
ALTER TABLE `runs` DROP COLUMN `n_skipped`;
