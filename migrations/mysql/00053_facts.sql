-- Host facts (module 1008, internal/facts): each server's latest facts
-- with their time, and its disks as rows so that "disk / above 90%" is an
-- index range. Keyed by the server's address, without a foreign key: a
-- server deleted from the inventory keeps its last facts until overwritten.
-- Repeatable: IF NOT EXISTS.

-- +goose Up
CREATE TABLE IF NOT EXISTS `server_facts` (
  `server_ip` varchar(45) NOT NULL,
  `run_id` varchar(64) NOT NULL,
  `collected_at` datetime(6) NOT NULL,
  `cpu_count` int NOT NULL,
  `load1` double NOT NULL,
  `mem_used_pct` double NOT NULL,
  `facts` mediumtext NOT NULL COMMENT 'JSON',
  PRIMARY KEY (`server_ip`),
  KEY `server_facts_mem` (`mem_used_pct`, `server_ip`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `server_disks` (
  `server_ip` varchar(45) NOT NULL,
  `mount` varchar(255) NOT NULL,
  `size_kb` bigint NOT NULL,
  `used_kb` bigint NOT NULL,
  `avail_kb` bigint NOT NULL,
  `used_pct` double NOT NULL,
  PRIMARY KEY (`server_ip`, `mount`),
  KEY `server_disks_use` (`mount`, `used_pct`, `server_ip`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE IF EXISTS `server_disks`;
DROP TABLE IF EXISTS `server_facts`;
