package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// originalRows returns the original OMServer's categories, applications and
// modules, as in its dump (shared/reference/OMServer.sql), for the demo and
// fresh installs. A function, not package variables, so nothing can change
// them between calls.
func originalRows() (funCategs []string, appCategs []AppCateg, modules []Module) {
	const lineCountForm = `返回信息行数：<input name="sys_param_1" id="sys_param_1" type="text" size="5" maxlength="3" value="50">`
	funCategs = []string{
		"Linux.Lbalancing", "Linux.Sysadmin", "Linux.Backup", "Linux.Ice", "Linux.Logs",
		"Linux.Hadoop", "Linux.Cache", "Linux.Memcached", "Linux.Mysql", "Linux.Proxy",
		"Linux.Web", "Windows.Mssql", "Windows.Web",
	}
	appCategs = []AppCateg{
		{ID: 1, FunCategID: 11, Name: "www.domain.com"},
		{ID: 2, FunCategID: 11, Name: "bbs.domain.com"},
	}
	modules = []Module{
		{ID: 1001, Name: "查看系统日志", Caption: "[<b>功能说明</b>]<br> 查看所选服务器的操作系统日志信息", Extend: lineCountForm},
		{ID: 1002, Name: "查看最新登录", Caption: "[<b>功能说明</b>]<br> 查看所选服务器的最近的用户登录信息", Extend: lineCountForm},
		{ID: 1003, Name: "查看系统版本", Caption: "[<b>功能说明</b>]<br> 查看所选服务器操作系统的版本信息"},
		{ID: 1004, Name: "查看内核模块", Caption: "[<b>功能说明</b>]<br> 查看所选服务器操作系统的内核模块信息"},
		{ID: 1005, Name: "同步应用文件", Caption: "[<b>功能说明</b>]<br> 同步选择的应用文件(可动态添加)到所选的目标服务器",
			Extend: `选择同步文件：<select name="sys_param_1" id="sys_param_1"> <option value="nginx" selected>nginx启动脚本</option> <option value="nginx_config">nginx配置文件 </option> <option value="haproxy" selected>Haproxy配置文件</option> <option value="syslog" selected>syslog配置文件</option> <option value="sysctl" selected>sysctl配置文件</option> <option value="resin" selected>resin配置文件</option> <option value="resinhttpd" selected>resin_httpd</option> <option value="resinjar" selected>resin.jar</option> </select>`},
		{ID: 1006, Name: "查看应用配置", Caption: "[<b>功能说明</b>]<br> 查看指定的服务的配置信息",
			Extend: `进程服务名称：<select name="sys_param_1" id="sys_param_1">  <option value="resin" selected>resin</option>  <option value="nginx">nginx</option>  <option value="haproxy">haproxy</option>  <option value="apache">apache</option>  <option value="mysql">mysql</option>  <option value="lighttpd">lighttpd</option></select>`},
		{ID: 1007, Name: "重启进程服务", Caption: "[<b>功能说明</b>]<br> 重启目标服务器的指定的进程或服务",
			Extend: `进程服务名称： <select name="sys_param_1" id="sys_param_1">   <option value="resin" selected>resin</option>   <option value="nginx">nginx</option>   <option value="haproxy">haproxy</option>   <option value="apache">apache</option>   <option value="mysql">mysql</option>   <option value="lighttpd">lighttpd</option> </select>`},
	}
	return funCategs, appCategs, modules
}

// SeedOriginal fills an empty inventory with the original OMServer's
// function categories, application categories and modules 1001-1007 (not
// its servers or history), keeping their ids. Each table is seeded only if
// it is empty, so calling it again, or on a migrated original database,
// changes nothing. It reports whether anything was written.
func (s *Store) SeedOriginal(ctx context.Context) (bool, error) {
	originalFunCategs, originalAppCategs, originalModules := originalRows()
	wrote := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		empty := func(table string) (bool, error) {
			var n int
			if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM `+table); err != nil {
				return false, fmt.Errorf("store: seed: count %s: %w", table, err)
			}
			return n == 0, nil
		}
		if ok, err := empty("server_fun_categ"); err != nil {
			return err
		} else if ok {
			for i, name := range originalFunCategs {
				if _, err := tx.ExecContext(ctx, `INSERT INTO server_fun_categ (ID, server_categ_name) VALUES (?, ?)`, i+1, name); err != nil {
					return classify(err, "seed function category "+name)
				}
			}
			wrote = true
		}
		if ok, err := empty("server_app_categ"); err != nil {
			return err
		} else if ok {
			for _, a := range originalAppCategs {
				if _, err := tx.ExecContext(ctx, `INSERT INTO server_app_categ (ID, server_categ_id, app_categ_name) VALUES (?, ?, ?)`, a.ID, a.FunCategID, a.Name); err != nil {
					return classify(err, "seed application category "+a.Name)
				}
			}
			wrote = true
		}
		if ok, err := empty("module_list"); err != nil {
			return err
		} else if ok {
			for _, m := range originalModules {
				extend, params, err := prepareModule(m)
				if err != nil {
					return fmt.Errorf("store: seed module %d: %w", m.ID, err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO module_list (ID, module_name, module_caption, module_extend, module_params) VALUES (?, ?, ?, ?, ?)`,
					m.ID, m.Name, m.Caption, extend, params); err != nil {
					return classify(err, fmt.Sprintf("seed module %d", m.ID))
				}
			}
			wrote = true
		}
		return nil
	})
	return wrote, err
}
