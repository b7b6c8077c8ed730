-- Schedules: a module with parameters, run on a target (a saved host list,
-- an application or a function category, resolved at each fire) by a cron
-- expression. One web tier at a time runs the scheduler (a row of
-- leader_leases); each fire is taken by a compare-and-set of next_at and
-- recorded once in schedule_fires (unique per schedule and fire time), so
-- a fire never starts two runs. Repeatable: IF NOT EXISTS.

-- +goose Up
CREATE TABLE IF NOT EXISTS `schedules` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `name` varchar(64) NOT NULL,
  `module_id` bigint NOT NULL,
  `params` text NOT NULL COMMENT 'JSON object',
  `target_kind` varchar(8) NOT NULL COMMENT 'hosts, app, fun',
  `target_id` bigint NOT NULL DEFAULT 0 COMMENT 'application or function category id',
  `target_hosts` mediumtext NOT NULL COMMENT 'JSON array of server addresses (hosts)',
  `cron` varchar(128) NOT NULL,
  `enabled` tinyint(1) NOT NULL DEFAULT 1,
  `next_at` datetime(6) NULL,
  `last_run_id` varchar(64) NOT NULL DEFAULT '',
  `created_by` varchar(64) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `updated_at` datetime(6) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `schedules_name` (`name`),
  KEY `schedules_due` (`enabled`, `next_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `schedule_fires` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `schedule_id` bigint NOT NULL,
  `fire_at` datetime(6) NOT NULL,
  `started_at` datetime(6) NOT NULL,
  `outcome` varchar(16) NOT NULL COMMENT 'started, skipped, failed',
  `run_id` varchar(64) NOT NULL DEFAULT '',
  `detail` varchar(1024) NOT NULL DEFAULT '',
  `tier` varchar(64) NOT NULL DEFAULT '',
  PRIMARY KEY (`id`),
  UNIQUE KEY `schedule_fires_once` (`schedule_id`, `fire_at`),
  KEY `schedule_fires_list` (`schedule_id`, `id`),
  CONSTRAINT `schedule_fires_schedule_fk` FOREIGN KEY (`schedule_id`) REFERENCES `schedules` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `leader_leases` (
  `name` varchar(32) NOT NULL,
  `owner` varchar(64) NOT NULL,
  `until` datetime(6) NOT NULL,
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE IF EXISTS `leader_leases`;
DROP TABLE IF EXISTS `schedule_fires`;
DROP TABLE IF EXISTS `schedules`;
