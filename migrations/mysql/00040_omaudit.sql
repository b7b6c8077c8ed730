-- 安全审计 (omaudit): the ingest of server_history by the collector, and the
-- tokens that authenticate it.
--
-- server_history (an original table: nothing dropped or renamed, no row
-- changed):
--   * history_user char(15) -> varchar(64) and history_command char(255) ->
--     varchar(4096): Linux user names reach 32 characters and commands are
--     often longer than 255. Values read back the same (CHAR padding is
--     stripped on read either way).
--   * row_digest (new, NULL for existing rows): hex SHA-256 of the row's
--     host, history id, user, time and command, unique, so that a collector
--     re-sending a row from its spool stores it once. Several NULLs are
--     allowed by a unique key, so original rows need no digest.
--   * indexes for the page's search (user, time) and the retention purge
--     (db_datetime).
-- omaudit_tokens (new): ingest tokens, only their SHA-256 stored; a token
-- bound to one server (server_ip) or to the whole fleet (NULL).
--
-- Safe to run again after an interruption (MySQL DDL is not transactional):
-- MODIFY to the same definition changes nothing, the column and indexes are
-- added only when missing, the table is created IF NOT EXISTS.

-- +goose Up
ALTER TABLE `server_history`
  MODIFY `history_user` varchar(64) NOT NULL COMMENT '事件用户名',
  MODIFY `history_command` varchar(4096) NOT NULL COMMENT '事件命令';

SET @has_col := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'server_history' AND COLUMN_NAME = 'row_digest');
SET @ddl := IF(@has_col = 0, 'ALTER TABLE `server_history` ADD COLUMN `row_digest` char(64) NULL COMMENT ''hex SHA-256 of the row (resend detection)''', 'DO 0');
PREPARE add_col FROM @ddl;
EXECUTE add_col;
DEALLOCATE PREPARE add_col;

SET @has_idx := (SELECT COUNT(*) FROM information_schema.STATISTICS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'server_history' AND INDEX_NAME = 'history_row_digest');
SET @ddl := IF(@has_idx = 0, 'ALTER TABLE `server_history` ADD UNIQUE KEY `history_row_digest` (`row_digest`)', 'DO 0');
PREPARE add_idx FROM @ddl;
EXECUTE add_idx;
DEALLOCATE PREPARE add_idx;

SET @has_idx := (SELECT COUNT(*) FROM information_schema.STATISTICS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'server_history' AND INDEX_NAME = 'history_user');
SET @ddl := IF(@has_idx = 0, 'ALTER TABLE `server_history` ADD KEY `history_user` (`history_user`)', 'DO 0');
PREPARE add_idx FROM @ddl;
EXECUTE add_idx;
DEALLOCATE PREPARE add_idx;

SET @has_idx := (SELECT COUNT(*) FROM information_schema.STATISTICS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'server_history' AND INDEX_NAME = 'history_datetime');
SET @ddl := IF(@has_idx = 0, 'ALTER TABLE `server_history` ADD KEY `history_datetime` (`history_datetime`)', 'DO 0');
PREPARE add_idx FROM @ddl;
EXECUTE add_idx;
DEALLOCATE PREPARE add_idx;

SET @has_idx := (SELECT COUNT(*) FROM information_schema.STATISTICS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'server_history' AND INDEX_NAME = 'history_db_datetime');
SET @ddl := IF(@has_idx = 0, 'ALTER TABLE `server_history` ADD KEY `history_db_datetime` (`db_datetime`)', 'DO 0');
PREPARE add_idx FROM @ddl;
EXECUTE add_idx;
DEALLOCATE PREPARE add_idx;

-- server_ip has server_list's collation: a foreign key needs the same one.
CREATE TABLE IF NOT EXISTS `omaudit_tokens` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `name` varchar(64) NOT NULL,
  `server_ip` varchar(45) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL COMMENT 'the one server this token sends for; NULL: any server',
  `token_hash` char(64) NOT NULL COMMENT 'hex SHA-256 of the token',
  `created_by` varchar(64) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `last_used_at` datetime(6) NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `omaudit_tokens_hash` (`token_hash`),
  KEY `omaudit_tokens_server` (`server_ip`),
  CONSTRAINT `omaudit_tokens_server_fk` FOREIGN KEY (`server_ip`) REFERENCES `server_list` (`server_lip`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
-- The tokens go; server_history keeps its wider columns, digests and
-- indexes (narrowing could cut data).
DROP TABLE IF EXISTS `omaudit_tokens`;
