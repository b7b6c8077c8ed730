package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
)

// The original OMServer's answers for the data of its dump
// (shared/reference/OMServer.sql), verified against its Django views.
var legacyWant = []struct {
	path, body string
}{
	{"/autoadmin/server_fun_categ/", "<-请选择功能类别->,Linux.Lbalancing,Linux.Sysadmin,Linux.Backup,Linux.Ice,Linux.Logs,Linux.Hadoop,Linux.Cache,Linux.Memcached,Linux.Mysql,Linux.Proxy,Linux.Web,Windows.Mssql,Windows.Web|-1,1,2,3,4,5,6,7,8,9,10,11,12,13"},
	{"/autoadmin/server_app_categ/?fun_categId=11", "<-请选择应用类别->,www.domain.com,bbs.domain.com|-1,1,2"},
	{"/autoadmin/server_app_categ/?fun_categId=3", "<-请选择应用类别->|-1"},
	{"/autoadmin/server_list/?app_categId=1", "192.168.1.10,192.168.1.20|192.168.1.10*sn2012-07-010,192.168.1.20*sn2013-08-020"},
	{"/autoadmin/server_list/?app_categId=2", "192.168.1.21,192.168.1.22|192.168.1.21*sn2013-08-021,192.168.1.22*sn2013-08-022"},
	{"/autoadmin/module_list/", "请选择功能模块...,查看系统日志,查看最新登录,查看系统版本,查看内核模块,同步应用文件,查看应用配置,重启进程服务|-1,1001,1002,1003,1004,1005,1006,1007"},
	{"/autoadmin/module_info/?Module_Id=1001", `1001@@查看系统日志@@[<b>功能说明</b>]<br> 查看所选服务器的操作系统日志信息@@返回信息行数：<input name="sys_param_1" id="sys_param_1" type="text" size="5" maxlength="3" value="50">`},
	{"/autoadmin/module_info/?Module_Id=1003", `1003@@查看系统版本@@[<b>功能说明</b>]<br> 查看所选服务器操作系统的版本信息@@`},
	{"/autoadmin/module_info/?Module_Id=1007", `1007@@重启进程服务@@[<b>功能说明</b>]<br> 重启目标服务器的指定的进程或服务@@进程服务名称： <select name="sys_param_1" id="sys_param_1">   <option value="resin" selected>resin</option>   <option value="nginx">nginx</option>   <option value="haproxy">haproxy</option>   <option value="apache">apache</option>   <option value="mysql">mysql</option>   <option value="lighttpd">lighttpd</option> </select>`},
}

var legacyBad = []struct {
	path string
	code int
	msg  string
}{
	{"/autoadmin/module_info/", 400, "missing query parameter Module_Id"},
	{"/autoadmin/module_info/?Module_Id=abc", 400, "not a positive integer"},
	{"/autoadmin/module_info/?Module_Id=9999", 404, "module 9999 does not exist"},
	{"/autoadmin/server_app_categ/", 400, "missing query parameter fun_categId"},
	{"/autoadmin/server_list/?app_categId=-1", 400, "not a positive integer"},
}

func checkLegacy(t *testing.T, e *env) {
	t.Helper()
	for _, c := range legacyWant {
		r := e.do(req{method: "GET", path: c.path, as: "viewer"}).want(t, http.StatusOK)
		if r.body != c.body {
			t.Errorf("GET %s\n got %q\nwant %q", c.path, r.body, c.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: content type %q, nosniff %q", c.path, ct, r.header.Get("X-Content-Type-Options"))
		}
	}
	for _, c := range legacyBad {
		e.do(req{method: "GET", path: c.path, as: "viewer"}).want(t, c.code, c.msg)
	}
}

// The legacy endpoints on a MariaDB loaded with the original dump, then
// migrated: exactly the original's text.
func TestLegacyEndpointsMariaDBDump(t *testing.T) {
	dsn := mysqltest.New(t)
	mysqltest.LoadDump(t, dsn, mysqltest.DumpPath(t))
	ctx := context.Background()
	st, err := store.Open(ctx, store.DialectMySQL, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, st)
	checkLegacy(t, e)
	// The dashboard's JSON API reads the same data.
	e.do(req{method: "GET", path: "/api/v1/servers?app_id=2", as: "operator"}).want(t, http.StatusOK, `"ip":"192.168.1.22","name":"sn2013-08-022"`)
}

// The same on SQLite seeded with the original rows.
func TestLegacyEndpointsSQLite(t *testing.T) {
	e := newEnv(t)
	if _, err := e.st.UpsertServer(context.Background(), store.Server{IP: "192.168.1.22", Name: "sn2013-08-022", WIP: "10.11.100.22", OS: "Linux", AppID: 2}); err != nil {
		t.Fatal(err)
	}
	checkLegacy(t, e)
}

// BenchmarkLegacyServerList measures GET /autoadmin/server_list/ through
// the whole router (session lookup, SQLite query, formatting) for an
// application of 200 servers, and the formatting alone.
func BenchmarkLegacyServerList(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.DialectSQLite, filepath.Join(b.TempDir(), "bench.sqlite"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := st.SeedOriginal(ctx); err != nil {
		b.Fatal(err)
	}
	list := make([]store.Server, 200)
	for i := range list {
		list[i] = store.Server{IP: "10.0." + itoa(int64(i/250)) + "." + itoa(int64(i%250)), Name: "host-" + itoa(int64(i)), AppID: 1}
	}
	if _, _, err := st.ImportServers(ctx, list); err != nil {
		b.Fatal(err)
	}
	uid, err := st.CreateUser(ctx, store.User{Name: "bench", Role: store.RoleViewer, PasswordHash: dummyHash})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := newSecret()
	if err := st.CreateSession(ctx, store.HashToken(tok), uid, time.Now().Add(time.Hour), ""); err != nil {
		b.Fatal(err)
	}
	srv, err := New(Config{}, st, newFakeMaster(), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	b.Run("http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("GET", "/autoadmin/server_list/?app_categId=1", nil)
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK || !strings.HasPrefix(w.Body.String(), "10.0.0.0,") {
				b.Fatalf("status %d body %.80q", w.Code, w.Body.String())
			}
		}
	})
	b.Run("format", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = formatServerList(list)
		}
	})
}

// TestLegacySeparatorsRefused: names that would break the legacy text
// formats (a comma in a listed name, "@@" in a module's fields) are
// refused with 400 and change nothing.
func TestLegacySeparatorsRefused(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	for _, c := range []req{
		{method: "POST", path: "/api/v1/fun-categs", body: `{"name":"Linux,Web2"}`},
		{method: "PUT", path: "/api/v1/fun-categs/1", body: `{"name":"a,b"}`},
		{method: "POST", path: "/api/v1/app-categs", body: `{"fun_categ_id":11,"name":"a,b"}`},
		{method: "POST", path: "/api/v1/servers", body: `{"ip":"192.168.9.9","name":"a,b","app_id":1}`},
		{method: "POST", path: "/api/v1/modules", body: `{"name":"m,n","caption":"c","params":[]}`},
		{method: "POST", path: "/api/v1/modules", body: `{"name":"m@@n","caption":"c","params":[]}`},
		{method: "PUT", path: "/api/v1/modules/1003", body: `{"name":"查看系统版本","caption":"a@@b","params":[]}`},
	} {
		c.as = "admin"
		r := e.do(c).want(t, http.StatusBadRequest)
		if msg := r.jsonError(t); !strings.Contains(msg, "legacy") {
			t.Fatalf("%s %s %s: message %q", c.method, c.path, c.body, msg)
		}
	}
	for _, c := range []req{
		{method: "POST", path: "/inventory/fun-categs", body: form("name", "x,y")},
		{method: "POST", path: "/inventory/app-categs/1", body: form("fun_id", "11", "name", "x,y")},
		{method: "POST", path: "/inventory/servers", body: form("app_id", "1", "lip", "192.168.9.9", "name", "x,y")},
		{method: "POST", path: "/modules/new", body: form("name", "x,y", "caption", "c", "rows", "0")},
		{method: "POST", path: "/modules/1003/edit", body: form("name", "x", "caption", "a@@b", "rows", "0")},
	} {
		c.as = "admin"
		e.do(c).want(t, http.StatusBadRequest, "legacy")
	}
	e.assertUnchanged(before)
}
