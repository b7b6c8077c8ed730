-- Delivery of runs across crashes, outages and several web tiers
-- (docs/DELIVERY.md): each run keeps the sequence number of the last event
-- of its master's stream whose effect is stored (a web tier resumes the
-- stream after it), and a run in progress is owned by one web tier through
-- a lease row with a heartbeat.
-- Safe to run again after an interruption (MySQL DDL is not transactional):
-- the column is added only if missing, the table IF NOT EXISTS.

-- +goose Up
SET @has_col := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'runs' AND COLUMN_NAME = 'acked_seq');
SET @ddl := IF(@has_col = 0, 'ALTER TABLE `runs` ADD COLUMN `acked_seq` bigint NOT NULL DEFAULT 0 COMMENT ''last event of the master stream stored''', 'DO 0');
PREPARE add_col FROM @ddl;
EXECUTE add_col;
DEALLOCATE PREPARE add_col;

CREATE TABLE IF NOT EXISTS `run_leases` (
  `run_id` varchar(64) NOT NULL,
  `owner` varchar(128) NOT NULL COMMENT 'web tier id (web.runs.tier_id)',
  `expires_at` datetime(6) NOT NULL,
  PRIMARY KEY (`run_id`),
  KEY `run_leases_owner` (`owner`),
  KEY `run_leases_expires` (`expires_at`),
  CONSTRAINT `run_leases_run_fk` FOREIGN KEY (`run_id`) REFERENCES `runs` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE IF EXISTS `run_leases`;
ALTER TABLE `runs` DROP COLUMN `acked_seq`;
