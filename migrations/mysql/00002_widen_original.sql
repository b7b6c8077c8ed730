-- Widen the original columns (never drop or rename): server_lip char(12)
-- cannot hold an IPv6 address, hostnames are longer than 13 characters, and
-- the dump's tables are in 3-byte utf8, which cannot store every character.
--
-- server_history.history_ip references server_list.server_lip; InnoDB refuses
-- to change the type of a column in a foreign key, so the constraint is
-- dropped, both columns are widened identically, and it is added back with
-- its original name. The state after migration 1 is the same on an empty
-- database and on the dump (same constraint and key names). Comments are
-- restated because MODIFY replaces the whole column definition.
--
-- MySQL DDL is not transactional: if this file is interrupted halfway, goose
-- has not recorded it and runs it again. Every statement is therefore safe
-- to repeat: the constraint is dropped and added only when it is (not)
-- there (a prepared statement, as neither MySQL nor MariaDB has a portable
-- IF [NOT] EXISTS for foreign keys), and CONVERT/MODIFY to the same
-- definition change nothing the second time.

-- +goose Up
SET @has_fk := (SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS
  WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'server_history'
    AND CONSTRAINT_NAME = 'server_history_ibfk_1' AND CONSTRAINT_TYPE = 'FOREIGN KEY');
SET @ddl := IF(@has_fk > 0, 'ALTER TABLE `server_history` DROP FOREIGN KEY `server_history_ibfk_1`', 'DO 0');
PREPARE drop_fk FROM @ddl;
EXECUTE drop_fk;
DEALLOCATE PREPARE drop_fk;

ALTER TABLE `server_fun_categ` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
ALTER TABLE `server_app_categ` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
ALTER TABLE `server_list` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
ALTER TABLE `server_history` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
ALTER TABLE `module_list` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;

ALTER TABLE `server_fun_categ`
  MODIFY `server_categ_name` varchar(64) NOT NULL COMMENT '服务功能分类名称';

ALTER TABLE `server_app_categ`
  MODIFY `app_categ_name` varchar(64) NOT NULL COMMENT '服务应用分类名称';

ALTER TABLE `server_list`
  MODIFY `server_name` varchar(64) NOT NULL COMMENT '主机名称',
  MODIFY `server_wip` varchar(45) NOT NULL DEFAULT '' COMMENT '主机外网IP',
  MODIFY `server_lip` varchar(45) NOT NULL DEFAULT '' COMMENT '主机内网IP',
  MODIFY `server_op` varchar(32) NOT NULL DEFAULT '' COMMENT '主机操作系统';

ALTER TABLE `server_history`
  MODIFY `history_ip` varchar(45) NOT NULL COMMENT '事件IP地址';

-- A database restored from a mysqldump file (which turns foreign key checks
-- off while loading) may hold history rows of servers since removed. Adding
-- the constraint back must not fail on them, and original rows are never
-- deleted, so it is added without checking existing rows (goose runs this
-- file on one connection, so the session setting covers exactly this).
SET foreign_key_checks = 0;

SET @has_fk := (SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS
  WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'server_history'
    AND CONSTRAINT_NAME = 'server_history_ibfk_1' AND CONSTRAINT_TYPE = 'FOREIGN KEY');
SET @ddl := IF(@has_fk = 0, 'ALTER TABLE `server_history` ADD CONSTRAINT `server_history_ibfk_1` FOREIGN KEY (`history_ip`) REFERENCES `server_list` (`server_lip`)', 'DO 0');
PREPARE add_fk FROM @ddl;
EXECUTE add_fk;
DEALLOCATE PREPARE add_fk;

SET foreign_key_checks = 1;

ALTER TABLE `module_list`
  MODIFY `module_name` varchar(64) NOT NULL COMMENT '模块名称',
  MODIFY `module_caption` varchar(255) NOT NULL COMMENT '模块功能描述',
  MODIFY `module_extend` text NOT NULL COMMENT '模块前端扩展';

-- +goose Down
-- Narrowing could cut data: a rollback keeps the wider columns.
SELECT 1;
