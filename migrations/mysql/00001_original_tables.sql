-- The five tables of the original OMServer, exactly as its dump defines them
-- (names, columns, types, keys, foreign keys). On a database already loaded
-- from OMServer.sql every statement is a no-op; on an empty database it
-- creates them. Later migrations only widen columns and add.

-- +goose Up
CREATE TABLE IF NOT EXISTS `server_fun_categ` (
  `ID` int(11) NOT NULL AUTO_INCREMENT COMMENT '服务功能分类ID',
  `server_categ_name` char(20) NOT NULL COMMENT '服务功能分类名称',
  PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='服务功能分类表';

CREATE TABLE IF NOT EXISTS `server_app_categ` (
  `ID` int(11) NOT NULL AUTO_INCREMENT COMMENT '服务应用分类ID',
  `server_categ_id` int(11) NOT NULL COMMENT '服务功能分类ID',
  `app_categ_name` char(30) NOT NULL COMMENT '服务应用分类名称',
  PRIMARY KEY (`ID`),
  KEY `server_app_categ_ibfk_1` (`server_categ_id`),
  CONSTRAINT `server_app_categ_ibfk_1` FOREIGN KEY (`server_categ_id`) REFERENCES `server_fun_categ` (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='服务应用分类表';

CREATE TABLE IF NOT EXISTS `server_list` (
  `server_name` char(13) NOT NULL COMMENT '主机名称',
  `server_wip` char(15) NOT NULL DEFAULT '' COMMENT '主机外网IP',
  `server_lip` char(12) NOT NULL DEFAULT '' COMMENT '主机内网IP',
  `server_op` char(10) NOT NULL DEFAULT '' COMMENT '主机操作系统',
  `server_app_id` int(11) NOT NULL COMMENT '服务应用分类ID',
  PRIMARY KEY (`server_lip`),
  KEY `server_list_ibfk_1` (`server_app_id`),
  CONSTRAINT `server_list_ibfk_1` FOREIGN KEY (`server_app_id`) REFERENCES `server_app_categ` (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='服务器列表';

-- Module ids start at 1001 as in the original.
CREATE TABLE IF NOT EXISTS `module_list` (
  `ID` int(11) NOT NULL AUTO_INCREMENT COMMENT '模块ID号',
  `module_name` char(20) NOT NULL COMMENT '模块名称',
  `module_caption` char(255) NOT NULL COMMENT '模块功能描述',
  `module_extend` varchar(2000) NOT NULL COMMENT '模块前端扩展',
  PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='模块列表' AUTO_INCREMENT=1001;

CREATE TABLE IF NOT EXISTS `server_history` (
  `ID` int(11) NOT NULL AUTO_INCREMENT COMMENT '主键ID',
  `history_id` int(11) NOT NULL COMMENT '事件ID',
  `history_ip` char(15) NOT NULL COMMENT '事件IP地址',
  `history_user` char(15) NOT NULL COMMENT '事件用户名',
  `history_datetime` datetime NOT NULL COMMENT '事件时间',
  `db_datetime` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT '入库时间',
  `history_command` char(255) NOT NULL COMMENT '事件命令',
  PRIMARY KEY (`ID`),
  KEY `history_ip` (`history_ip`),
  CONSTRAINT `server_history_ibfk_1` FOREIGN KEY (`history_ip`) REFERENCES `server_list` (`server_lip`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='操作事件表';

-- +goose Down
-- The original tables hold the operator's data: never dropped by a rollback.
SELECT 1;
