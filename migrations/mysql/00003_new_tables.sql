-- Tables of OMServer-Go: the declared parameter schema of each module, users,
-- sessions, API tokens, runs with their per-host results, and the audit log.
-- Times are DATETIME(6) in UTC (the store always writes UTC).
-- Safe to run again after an interruption (MySQL DDL is not transactional):
-- tables are created IF NOT EXISTS and the column is added only if missing.

-- +goose Up
SET @has_col := (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'module_list' AND COLUMN_NAME = 'module_params');
SET @ddl := IF(@has_col = 0, 'ALTER TABLE `module_list` ADD COLUMN `module_params` text NULL COMMENT ''declared parameter schema (JSON)''', 'DO 0');
PREPARE add_col FROM @ddl;
EXECUTE add_col;
DEALLOCATE PREPARE add_col;

CREATE TABLE IF NOT EXISTS `users` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `name` varchar(64) NOT NULL,
  `password_hash` varchar(255) NOT NULL,
  `role` varchar(16) NOT NULL,
  `disabled` tinyint(1) NOT NULL DEFAULT 0,
  `created_at` datetime(6) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `users_name` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `sessions` (
  `id` char(64) NOT NULL COMMENT 'hex SHA-256 of the cookie token',
  `user_id` bigint NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `expires_at` datetime(6) NOT NULL,
  `last_seen` datetime(6) NOT NULL,
  `remote_addr` varchar(64) NOT NULL DEFAULT '',
  PRIMARY KEY (`id`),
  KEY `sessions_user` (`user_id`),
  KEY `sessions_expires` (`expires_at`),
  CONSTRAINT `sessions_user_fk` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `api_tokens` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `user_id` bigint NOT NULL,
  `name` varchar(64) NOT NULL,
  `token_hash` char(64) NOT NULL COMMENT 'hex SHA-256 of the token',
  `created_at` datetime(6) NOT NULL,
  `last_used_at` datetime(6) NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `api_tokens_hash` (`token_hash`),
  KEY `api_tokens_user` (`user_id`),
  CONSTRAINT `api_tokens_user_fk` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A run keeps the module's id and name as they were: no foreign key, so that
-- deleting a module never deletes its history.
CREATE TABLE IF NOT EXISTS `runs` (
  `id` varchar(64) NOT NULL,
  `module_id` bigint NOT NULL,
  `module_name` varchar(64) NOT NULL,
  `username` varchar(64) NOT NULL,
  `params` text NOT NULL COMMENT 'JSON object',
  `hosts` mediumtext NOT NULL COMMENT 'JSON array of {ip,name}',
  `status` varchar(16) NOT NULL,
  `error` text NOT NULL,
  `master` varchar(255) NOT NULL DEFAULT '',
  `created_at` datetime(6) NOT NULL,
  `finished_at` datetime(6) NULL,
  PRIMARY KEY (`id`),
  KEY `runs_created` (`created_at`),
  KEY `runs_user` (`username`, `created_at`),
  KEY `runs_module` (`module_id`, `created_at`),
  KEY `runs_status` (`status`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `run_hosts` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `run_id` varchar(64) NOT NULL,
  `host_ip` varchar(45) NOT NULL,
  `host_name` varchar(64) NOT NULL DEFAULT '',
  `status` varchar(16) NOT NULL,
  `exit_code` int NOT NULL,
  `stdout` mediumtext NOT NULL,
  `stderr` mediumtext NOT NULL,
  `stdout_truncated` tinyint(1) NOT NULL DEFAULT 0,
  `stderr_truncated` tinyint(1) NOT NULL DEFAULT 0,
  `error` text NOT NULL,
  `started_at` datetime(6) NULL,
  `duration_ms` bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `run_hosts_host` (`run_id`, `host_ip`, `host_name`),
  CONSTRAINT `run_hosts_run_fk` FOREIGN KEY (`run_id`) REFERENCES `runs` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `audit_log` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `at` datetime(6) NOT NULL,
  `username` varchar(64) NOT NULL,
  `action` varchar(64) NOT NULL,
  `detail` text NOT NULL,
  `remote_addr` varchar(64) NOT NULL DEFAULT '',
  PRIMARY KEY (`id`),
  KEY `audit_at` (`at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE IF EXISTS `audit_log`;
DROP TABLE IF EXISTS `run_hosts`;
DROP TABLE IF EXISTS `runs`;
DROP TABLE IF EXISTS `api_tokens`;
DROP TABLE IF EXISTS `sessions`;
DROP TABLE IF EXISTS `users`;
ALTER TABLE `module_list` DROP COLUMN `module_params`;
