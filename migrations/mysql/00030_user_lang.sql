-- Each user's interface language ("en", "zh-CN"; '' = the browser's).
-- Safe to run again after an interruption: the column is added only if
-- missing.

-- +goose Up
SET @has_col := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users' AND COLUMN_NAME = 'lang');
SET @ddl := IF(@has_col = 0, 'ALTER TABLE `users` ADD COLUMN `lang` varchar(16) NOT NULL DEFAULT '''' COMMENT ''interface language''', 'DO 0');
PREPARE add_col FROM @ddl;
EXECUTE add_col;
DEALLOCATE PREPARE add_col;

-- +goose Down
ALTER TABLE `users` DROP COLUMN `lang`;
