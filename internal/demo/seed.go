package demo

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/omserver/omserver-go/internal/store"
)

// The original OMServer's inventory and module rows (shared/reference/
// OMServer.sql), seeded into the demo database so a new user sees the
// dashboard as the book showed it. The original servers' addresses
// (192.168.x) are not seeded: the demo runs only on this host.

type seedFunCateg struct {
	ID   int64
	Name string
}

type seedAppCateg struct {
	ID, FunID int64
	Name      string
}

type seedModule struct {
	ID                    int64
	Name, Caption, Extend string
}

var originalFunCategs = []seedFunCateg{
	{1, "Linux.Lbalancing"}, {2, "Linux.Sysadmin"}, {3, "Linux.Backup"}, {4, "Linux.Ice"},
	{5, "Linux.Logs"}, {6, "Linux.Hadoop"}, {7, "Linux.Cache"}, {8, "Linux.Memcached"},
	{9, "Linux.Mysql"}, {10, "Linux.Proxy"}, {11, "Linux.Web"}, {12, "Windows.Mssql"},
	{13, "Windows.Web"},
}

var originalAppCategs = []seedAppCateg{
	{1, 11, "www.domain.com"},
	{2, 11, "bbs.domain.com"},
}

var originalModules = []seedModule{
	{1001, "查看系统日志", "[<b>功能说明</b>]<br> 查看所选服务器的操作系统日志信息", `返回信息行数：<input name="sys_param_1" id="sys_param_1" type="text" size="5" maxlength="3" value="50">`},
	{1002, "查看最新登录", "[<b>功能说明</b>]<br> 查看所选服务器的最近的用户登录信息", `返回信息行数：<input name="sys_param_1" id="sys_param_1" type="text" size="5" maxlength="3" value="50">`},
	{1003, "查看系统版本", "[<b>功能说明</b>]<br> 查看所选服务器操作系统的版本信息", ""},
	{1004, "查看内核模块", "[<b>功能说明</b>]<br> 查看所选服务器操作系统的内核模块信息", ""},
	{1005, "同步应用文件", "[<b>功能说明</b>]<br> 同步选择的应用文件(可动态添加)到所选的目标服务器", `选择同步文件：<select name="sys_param_1" id="sys_param_1"> <option value="nginx" selected>nginx启动脚本</option> <option value="nginx_config">nginx配置文件 </option> <option value="haproxy" selected>Haproxy配置文件</option> <option value="syslog" selected>syslog配置文件</option> <option value="sysctl" selected>sysctl配置文件</option> <option value="resin" selected>resin配置文件</option> <option value="resinhttpd" selected>resin_httpd</option> <option value="resinjar" selected>resin.jar</option> </select>`},
	{1006, "查看应用配置", "[<b>功能说明</b>]<br> 查看指定的服务的配置信息", `进程服务名称：<select name="sys_param_1" id="sys_param_1">  <option value="resin" selected>resin</option>  <option value="nginx">nginx</option>  <option value="haproxy">haproxy</option>  <option value="apache">apache</option>  <option value="mysql">mysql</option>  <option value="lighttpd">lighttpd</option></select>`},
	{1007, "重启进程服务", "[<b>功能说明</b>]<br> 重启目标服务器的指定的进程或服务", `进程服务名称： <select name="sys_param_1" id="sys_param_1">   <option value="resin" selected>resin</option>   <option value="nginx">nginx</option>   <option value="haproxy">haproxy</option>   <option value="apache">apache</option>   <option value="mysql">mysql</option>   <option value="lighttpd">lighttpd</option> </select>`},
}

// The demo's one target: this host, on the local backend.
const (
	localhostIP   = "127.0.0.1"
	localhostName = "localhost"
	localhostApp  = 1 // www.domain.com under Linux.Web
)

// seed fills an empty demo database with the original rows; rows that exist
// are left alone, so a restarted demo keeps what the user changed.
func seed(ctx context.Context, st *store.Store) error {
	db := st.DB()
	return insertMissing(ctx, db, []seedRow{
		{table: "server_fun_categ", count: len(originalFunCategs), insert: func(tx *sqlx.Tx) error {
			for _, c := range originalFunCategs {
				if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO server_fun_categ (ID, server_categ_name) VALUES (?, ?)`), c.ID, c.Name); err != nil {
					return err
				}
			}
			return nil
		}},
		{table: "server_app_categ", count: len(originalAppCategs), insert: func(tx *sqlx.Tx) error {
			for _, c := range originalAppCategs {
				if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO server_app_categ (ID, server_categ_id, app_categ_name) VALUES (?, ?, ?)`), c.ID, c.FunID, c.Name); err != nil {
					return err
				}
			}
			return nil
		}},
		{table: "module_list", count: len(originalModules), insert: func(tx *sqlx.Tx) error {
			for _, m := range originalModules {
				if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO module_list (ID, module_name, module_caption, module_extend) VALUES (?, ?, ?, ?)`), m.ID, m.Name, m.Caption, m.Extend); err != nil {
					return err
				}
			}
			return nil
		}},
		{table: "server_list", count: 1, insert: func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO server_list (server_name, server_wip, server_lip, server_op, server_app_id) VALUES (?, ?, ?, ?, ?)`),
				localhostName, "", localhostIP, "Linux", localhostApp)
			return err
		}},
	})
}

type seedRow struct {
	table  string
	count  int
	insert func(tx *sqlx.Tx) error
}

// insertMissing seeds each table that is still empty, all in one transaction.
func insertMissing(ctx context.Context, db *sqlx.DB, rows []seedRow) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	for _, r := range rows {
		var n int
		if err := tx.GetContext(ctx, &n, "SELECT COUNT(*) FROM "+r.table); err != nil {
			return fmt.Errorf("counting %s: %w", r.table, err)
		}
		if n > 0 {
			continue
		}
		if err := r.insert(tx); err != nil {
			return fmt.Errorf("seeding %s: %w", r.table, err)
		}
	}
	return tx.Commit()
}
