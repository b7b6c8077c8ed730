-- Notification channels (configured by an admin) and the outbox of
-- notifications waiting to be sent. A row of the outbox is claimed by one
-- web tier at a time (claimed_by, claimed_until: a lease), so that several
-- tiers over one database send each notification once.
-- Repeatable after an interruption: tables are created IF NOT EXISTS.

-- +goose Up
CREATE TABLE IF NOT EXISTS `notify_channels` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `name` varchar(64) NOT NULL,
  `kind` varchar(16) NOT NULL COMMENT 'webhook, dingtalk, wecom, feishu, smtp',
  `enabled` tinyint(1) NOT NULL DEFAULT 1,
  `events` varchar(255) NOT NULL COMMENT 'comma-separated: run.finished, run.failed, run.paused',
  `config` text NOT NULL COMMENT 'JSON settings, secrets included; never shown back',
  `created_at` datetime(6) NOT NULL,
  `updated_at` datetime(6) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `notify_channels_name` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `notify_outbox` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `channel_id` bigint NOT NULL,
  `event` varchar(32) NOT NULL,
  `run_id` varchar(64) NOT NULL DEFAULT '',
  `payload` mediumtext NOT NULL COMMENT 'JSON event as sent',
  `status` varchar(16) NOT NULL COMMENT 'pending, sent, dead',
  `attempts` int NOT NULL DEFAULT 0,
  `next_at` datetime(6) NOT NULL,
  `claimed_by` varchar(64) NOT NULL DEFAULT '',
  `claimed_until` datetime(6) NULL,
  `last_error` varchar(1024) NOT NULL DEFAULT '',
  `created_at` datetime(6) NOT NULL,
  `sent_at` datetime(6) NULL,
  PRIMARY KEY (`id`),
  KEY `notify_outbox_due` (`status`, `next_at`),
  KEY `notify_outbox_channel` (`channel_id`, `id`),
  CONSTRAINT `notify_outbox_channel_fk` FOREIGN KEY (`channel_id`) REFERENCES `notify_channels` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE IF EXISTS `notify_outbox`;
DROP TABLE IF EXISTS `notify_channels`;
