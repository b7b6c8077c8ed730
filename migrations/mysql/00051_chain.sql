-- The tamper-evident record (internal/ledger documents the hashes): every
-- audit entry and every finished run's host results are hash-chained. A
-- chain's head (last sequence number and hash) is one row of chain_heads,
-- locked by each append, so appenders on several web tiers never fork it.
-- Rows that existed before this migration are not chained: start_id is the
-- highest id of the table when the chain began. run_hosts.signature is the
-- master's ed25519 signature of the result.
-- Repeatable after an interruption: columns and indexes are added only if
-- missing, the head rows with INSERT IGNORE.

-- +goose Up
CREATE TABLE IF NOT EXISTS `chain_heads` (
  `name` varchar(16) NOT NULL,
  `seq` bigint NOT NULL,
  `hash` char(64) NOT NULL,
  `start_id` bigint NOT NULL COMMENT 'rows with a lower or equal id predate the chain',
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

SET @has := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'audit_log' AND COLUMN_NAME = 'chain_seq');
SET @ddl := IF(@has = 0, 'ALTER TABLE `audit_log` ADD COLUMN `chain_seq` bigint NULL', 'DO 0');
PREPARE stmt FROM @ddl;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;
SET @has := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'audit_log' AND COLUMN_NAME = 'prev_hash');
SET @ddl := IF(@has = 0, 'ALTER TABLE `audit_log` ADD COLUMN `prev_hash` char(64) NULL', 'DO 0');
PREPARE stmt FROM @ddl;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;
SET @has := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'audit_log' AND COLUMN_NAME = 'row_hash');
SET @ddl := IF(@has = 0, 'ALTER TABLE `audit_log` ADD COLUMN `row_hash` char(64) NULL', 'DO 0');
PREPARE stmt FROM @ddl;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;
SET @has := (SELECT COUNT(*) FROM information_schema.STATISTICS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'audit_log' AND INDEX_NAME = 'audit_log_chain');
SET @ddl := IF(@has = 0, 'ALTER TABLE `audit_log` ADD UNIQUE KEY `audit_log_chain` (`chain_seq`)', 'DO 0');
PREPARE stmt FROM @ddl;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;
SET @has := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'run_hosts' AND COLUMN_NAME = 'chain_seq');
SET @ddl := IF(@has = 0, 'ALTER TABLE `run_hosts` ADD COLUMN `chain_seq` bigint NULL', 'DO 0');
PREPARE stmt FROM @ddl;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;
SET @has := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'run_hosts' AND COLUMN_NAME = 'prev_hash');
SET @ddl := IF(@has = 0, 'ALTER TABLE `run_hosts` ADD COLUMN `prev_hash` char(64) NULL', 'DO 0');
PREPARE stmt FROM @ddl;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;
SET @has := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'run_hosts' AND COLUMN_NAME = 'row_hash');
SET @ddl := IF(@has = 0, 'ALTER TABLE `run_hosts` ADD COLUMN `row_hash` char(64) NULL', 'DO 0');
PREPARE stmt FROM @ddl;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;
SET @has := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'run_hosts' AND COLUMN_NAME = 'signature');
SET @ddl := IF(@has = 0, 'ALTER TABLE `run_hosts` ADD COLUMN `signature` varchar(128) NULL', 'DO 0');
PREPARE stmt FROM @ddl;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;
SET @has := (SELECT COUNT(*) FROM information_schema.STATISTICS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'run_hosts' AND INDEX_NAME = 'run_hosts_chain');
SET @ddl := IF(@has = 0, 'ALTER TABLE `run_hosts` ADD UNIQUE KEY `run_hosts_chain` (`chain_seq`)', 'DO 0');
PREPARE stmt FROM @ddl;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;

INSERT IGNORE INTO `chain_heads` (`name`, `seq`, `hash`, `start_id`)
  SELECT 'audit', 0, REPEAT('0', 64), COALESCE(MAX(`id`), 0) FROM `audit_log`;
INSERT IGNORE INTO `chain_heads` (`name`, `seq`, `hash`, `start_id`)
  SELECT 'results', 0, REPEAT('0', 64), COALESCE(MAX(`id`), 0) FROM `run_hosts`;

-- +goose Down
ALTER TABLE `run_hosts` DROP INDEX `run_hosts_chain`, DROP COLUMN `signature`, DROP COLUMN `row_hash`, DROP COLUMN `prev_hash`, DROP COLUMN `chain_seq`;
ALTER TABLE `audit_log` DROP INDEX `audit_log_chain`, DROP COLUMN `row_hash`, DROP COLUMN `prev_hash`, DROP COLUMN `chain_seq`;
DROP TABLE IF EXISTS `chain_heads`;
