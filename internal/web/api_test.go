package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

func TestInventoryReads(t *testing.T) {
	e := newEnv(t)
	e.do(req{method: "GET", path: "/api/v1/fun-categs", as: "viewer"}).want(t, http.StatusOK, `{"id":11,"name":"Linux.Web","app_count":2}`, `"next":null`)
	e.do(req{method: "GET", path: "/api/v1/app-categs?fun_id=11", as: "viewer"}).want(t, http.StatusOK, `"name":"www.domain.com"`, `"name":"bbs.domain.com"`, `"server_count":2`)
	r := e.do(req{method: "GET", path: "/api/v1/servers?app_id=1", as: "viewer"}).want(t, http.StatusOK)
	var servers struct {
		Servers []store.ServerRow `json:"servers"`
		Next    *string           `json:"next"`
	}
	if err := json.Unmarshal([]byte(r.body), &servers); err != nil || len(servers.Servers) != 2 || servers.Next != nil ||
		servers.Servers[0].IP != "192.168.1.10" || servers.Servers[0].Name != "sn2012-07-010" || servers.Servers[0].AppName != "www.domain.com" {
		t.Fatalf("servers %s", r.body)
	}
	r = e.do(req{method: "GET", path: "/api/v1/modules/1005", as: "viewer"}).want(t, http.StatusOK)
	var m moduleView
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != 1005 || len(m.Params) != 1 || m.Params[0].Type != "select" || len(m.Params[0].Options) != 8 || m.CaptionText != "[功能说明]\n 同步选择的应用文件(可动态添加)到所选的目标服务器" {
		t.Fatalf("module %+v", m)
	}
	if strings.Contains(r.body, "<select") || strings.Contains(r.body, "extend") {
		t.Fatal("the API exposes the stored form HTML")
	}
}

// Bad ids and parameters give a clear 4xx and change nothing.
func TestBadIDsAndInput(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	cases := []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"GET", "/api/v1/modules/abc", "", 400, "not a positive integer"},
		{"GET", "/api/v1/modules/0", "", 400, "not a positive integer"},
		{"GET", "/api/v1/modules/99999", "", 404, "not found"},
		{"GET", "/api/v1/app-categs?fun_id=x", "", 400, "fun_id"},
		{"GET", "/api/v1/app-categs?fun_id=999", "", 404, "not found"},
		{"GET", "/api/v1/servers?app_id=-3", "", 400, "app_id"},
		{"GET", "/api/v1/servers?app_id=999", "", 404, "not found"},
		{"GET", "/api/v1/runs/nope", "", 404, "not found"},
		{"GET", "/api/v1/runs/%3Cscript%3E", "", 400, "not valid"},
		{"GET", "/api/v1/runs/x/events", "", 404, "not found"},
		{"GET", "/api/v1/runs?page=0", "", 400, "page"},
		{"GET", "/api/v1/runs?per_page=100000", "", 400, "per_page"},
		{"GET", "/api/v1/runs?status=bogus", "", 400, "bogus"},
		{"POST", "/api/v1/runs/nope/cancel", "", 404, "not found"},
		{"GET", "/api/v1/nothing", "", 404, "no such API endpoint"},
		{"PATCH", "/api/v1/modules/1001", "", 405, "not allowed"},
		{"POST", "/api/v1/fun-categs", `{"name":""}`, 400, "empty"},
		{"POST", "/api/v1/fun-categs", `{"name":"a|b"}`, 400, "'|'"},
		{"POST", "/api/v1/fun-categs", `{"name":"x","extra":1}`, 400, "unknown field"},
		{"POST", "/api/v1/fun-categs", `[1,2]`, 400, "not valid JSON"},
		{"PUT", "/api/v1/fun-categs/999", `{"name":"x"}`, 404, "not found"},
		{"PUT", "/api/v1/fun-categs/abc", `{"name":"x"}`, 400, "not a positive integer"},
		{"DELETE", "/api/v1/fun-categs/11", "", 409, "application categories"},
		{"DELETE", "/api/v1/fun-categs/999", "", 404, "not found"},
		{"POST", "/api/v1/app-categs", `{"fun_categ_id":999,"name":"x"}`, 400, ""},
		{"DELETE", "/api/v1/app-categs/1", "", 409, "servers"},
		{"POST", "/api/v1/servers", `{"ip":"not-an-ip","name":"h","app_id":1}`, 400, "not an IPv4 or IPv6"},
		{"POST", "/api/v1/servers", `{"ip":"10.0.0.1","name":"h","app_id":999}`, 400, "does not exist"},
		{"POST", "/api/v1/servers", `{"ip":"10.0.0.1","name":"a*b","app_id":1}`, 400, "'*'"},
		{"DELETE", "/api/v1/servers/10.9.9.9", "", 404, "not found"},
		{"DELETE", "/api/v1/servers/bogus", "", 400, "not a server address"},
		{"POST", "/api/v1/servers/import", `{"app_id":1,"csv":"a,,10.0.0.1,Linux\nb,10.0.0.2,Linux"}`, 400, "line 2"},
		{"POST", "/api/v1/servers/import", `{"app_id":1,"csv":"a,,10.0.0.1,Linux\nb,,999.1.1.1,Linux"}`, 400, "line 2"},
		{"POST", "/api/v1/servers/import", `{"app_id":1,"csv":"a,,10.0.0.1,Linux\n\n# c\nb,,10.0.0.1,Linux"}`, 400, "line 4: address 10.0.0.1 is already on line 1"},
		{"POST", "/api/v1/servers/import", `{"app_id":999,"csv":"a,,10.0.0.1,Linux"}`, 400, "does not exist"},
		{"POST", "/api/v1/servers/import", `{"app_id":1,"csv":""}`, 400, "no server lines"},
		{"POST", "/api/v1/modules", `{"name":"m","caption":"c","params":[{"name":"bad","type":"text","max_length":5}]}`, 400, "sys_param_N"},
		{"POST", "/api/v1/modules", `{"id":1001,"name":"dup","caption":"c"}`, 409, "already exists"},
		{"POST", "/api/v1/modules", `{"name":"","caption":"c"}`, 400, "empty"},
		{"PUT", "/api/v1/modules/99999", `{"name":"m","caption":"c"}`, 404, "not found"},
		{"PUT", "/api/v1/modules/1001", `{"id":1002,"name":"m","caption":"c"}`, 400, "does not match"},
		{"POST", "/api/v1/modules", `{"name":"m","caption":"c","params":[{"name":"sys_param_1","type":"select","options":[]}]}`, 400, "no options"},
		{"DELETE", "/api/v1/modules/99999", "", 404, "not found"},
		{"POST", "/api/v1/users", `{"name":"x y","role":"viewer","password":"longenough"}`, 400, "name"},
		{"POST", "/api/v1/users", `{"name":"xy","role":"root","password":"longenough"}`, 400, "role"},
		{"POST", "/api/v1/users", `{"name":"xy","role":"viewer","password":"short"}`, 400, "at least 8"},
		{"POST", "/api/v1/users", `{"name":"viewer","role":"viewer","password":"longenough"}`, 409, "already exists"},
		{"PUT", "/api/v1/users/999", `{"role":"viewer"}`, 404, "not found"},
		{"PUT", "/api/v1/users/1", `{"role":"viewer"}`, 400, "your own account"},
		{"PUT", "/api/v1/users/2", `{"role":"boss"}`, 400, "role"},
		{"DELETE", "/api/v1/tokens/abc", "", 400, "not a positive integer"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" "+c.body, func(t *testing.T) {
			r := e.do(req{method: c.method, path: c.path, as: "admin", body: c.body})
			r.want(t, c.code)
			if msg := r.jsonError(t); !strings.Contains(msg, c.msg) {
				t.Fatalf("message %q lacks %q", msg, c.msg)
			}
		})
	}
	e.assertUnchanged(before)
	// A form post with bad ids or values also changes nothing.
	for _, p := range []struct{ path, body string }{
		{"/inventory/fun-categs/abc", "name=x"},
		{"/inventory/fun-categs", "name="},
		{"/inventory/app-categs", "fun_id=zz&name=x"},
		{"/inventory/servers", "app_id=1&name=h&lip=nope"},
		{"/inventory/import", "app_id=1&csv=" + "a,,10.0.0.1,Linux%0Abroken"},
		{"/modules/new", "name=x&caption=c&rows=1&p0_name=sys_param_1&p0_type=select&p0_options="},
		{"/modules/new", "name=x&caption=c&rows=1&p0_name=oops&p0_type=text"},
		{"/modules/1001/edit", "name=&caption=c&rows=0"},
		{"/users", "name=a&role=viewer&password=short"},
		{"/users/2", "disabled=maybe"},
	} {
		r := e.do(req{method: "POST", path: p.path, as: "admin", body: p.body})
		if r.code < 400 || r.code > 499 {
			t.Fatalf("POST %s %s: status %d", p.path, p.body, r.code)
		}
	}
	e.assertUnchanged(before)
}

func TestInventoryAdmin(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{method: "POST", path: "/api/v1/fun-categs", as: "admin", body: `{"name":"Linux.Test"}`}).want(t, http.StatusCreated)
	var fc store.FunCateg
	_ = json.Unmarshal([]byte(r.body), &fc)
	r = e.do(req{method: "POST", path: "/api/v1/app-categs", as: "admin", body: mustJSON(t, appBody{FunCategID: fc.ID, Name: "t.example"})}).want(t, http.StatusCreated)
	var ac store.AppCateg
	_ = json.Unmarshal([]byte(r.body), &ac)
	e.do(req{method: "POST", path: "/api/v1/servers", as: "admin", body: mustJSON(t, store.Server{IP: "10.0.0.5", Name: "t5", AppID: ac.ID, OS: "Linux"})}).want(t, http.StatusCreated)
	e.do(req{method: "POST", path: "/api/v1/servers", as: "admin", body: mustJSON(t, store.Server{IP: "10.0.0.5", Name: "t5b", AppID: ac.ID})}).want(t, http.StatusOK)
	r = e.do(req{method: "POST", path: "/api/v1/servers/import", as: "admin", body: mustJSON(t, importBody{AppID: ac.ID, CSV: "# name,wip,lip,os\nt6,1.2.3.4,10.0.0.6,Linux\n\nt5c,,10.0.0.5,Debian\n"})}).want(t, http.StatusOK)
	if !strings.Contains(r.body, `"inserted":1`) || !strings.Contains(r.body, `"updated":1`) {
		t.Fatalf("import %s", r.body)
	}
	e.do(req{method: "GET", path: "/autoadmin/server_list/?app_categId=" + itoa(ac.ID), as: "viewer"}).want(t, http.StatusOK)
	got := e.do(req{method: "GET", path: "/autoadmin/server_list/?app_categId=" + itoa(ac.ID), as: "viewer"}).body
	if got != "10.0.0.5,10.0.0.6|10.0.0.5*t5c,10.0.0.6*t6" {
		t.Fatalf("server list %q", got)
	}
	e.do(req{method: "DELETE", path: "/api/v1/servers/10.0.0.5", as: "admin"}).want(t, http.StatusNoContent)
	e.do(req{method: "PUT", path: "/api/v1/app-categs/" + itoa(ac.ID), as: "admin", body: mustJSON(t, appBody{FunCategID: fc.ID, Name: "renamed"})}).want(t, http.StatusOK)

	// The same through the page forms.
	e.do(req{method: "POST", path: "/inventory/fun-categs", as: "admin", body: form("name", "Page.Categ")}).want(t, http.StatusSeeOther)
	importCSV := "p1,,10.0.1.1,Linux\np2,,10.0.1.2,Linux"
	prev := e.do(req{method: "POST", path: "/inventory/import", as: "admin", body: form("app_id", itoa(ac.ID), "csv", importCSV, "action", "preview")}).want(t, http.StatusOK, `id="import-preview"`, "10.0.1.2")
	e.do(req{method: "POST", path: "/inventory/import", as: "admin", body: form("app_id", itoa(ac.ID), "csv", importCSV, "action", "apply", "preview_digest", digestOf(t, prev.body))}).want(t, http.StatusSeeOther)
	e.do(req{method: "POST", path: "/inventory/servers/delete", as: "admin", body: form("lip", "10.0.1.2")}).want(t, http.StatusSeeOther)
	page := e.do(req{method: "GET", path: "/inventory?ok=imported", as: "admin"}).want(t, http.StatusOK, "Page.Categ", "10.0.1.1", "Servers imported.", "renamed")
	if strings.Contains(page.body, "10.0.1.2") {
		t.Fatal("deleted server still listed")
	}
	entries, _ := e.auditLog(100)
	actions := map[string]bool{}
	for _, a := range entries {
		actions[a.Action] = true
	}
	for _, want := range []string{"fun_categ.create", "app_categ.create", "server.save", "server.import", "server.delete", "app_categ.update"} {
		if !actions[want] {
			t.Fatalf("audit log lacks %s: %v", want, actions)
		}
	}
}

func TestModuleAdmin(t *testing.T) {
	e := newEnv(t)
	body := `{"id":2001,"name":"tail app log","caption":"<b>shows</b> a log","params":[
		{"name":"sys_param_1","label":"lines","type":"number","max_length":3,"min":1,"max":500,"default":"50"},
		{"name":"sys_param_2","label":"app","type":"select","options":[{"value":"nginx","label":"Nginx"},{"value":"php","label":"PHP"}],"default":"php"}]}`
	e.do(req{method: "POST", path: "/api/v1/modules", as: "admin", body: body}).want(t, http.StatusCreated, `"id":2001`, `"caption_text":"shows a log"`)
	// Its legacy form is rendered from the schema, escaped.
	info := e.do(req{method: "GET", path: "/autoadmin/module_info/?Module_Id=2001", as: "viewer"}).want(t, http.StatusOK).body
	if !strings.HasPrefix(info, "2001@@tail app log@@<b>shows</b> a log@@") || !strings.Contains(info, `name="sys_param_2"`) {
		t.Fatalf("module_info %q", info)
	}
	// It runs with its declared parameters only.
	id := e.startRun("operator", `{"module_id":2001,"hosts":["192.168.1.10"],"params":{"sys_param_1":"500"}}`)
	call := e.master.nextCall(t)
	if call.Task.Params["sys_param_2"] != "php" || call.Task.Params["sys_param_1"] != "500" {
		t.Fatalf("params %v", call.Task.Params)
	}
	call.Finish <- nil
	e.waitStatus(id, task.RunFailed)
	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":2001,"hosts":["192.168.1.10"],"params":{"sys_param_1":"501"}}`}).want(t, http.StatusBadRequest, "maximum")

	// Edit through the page with structured rows.
	e.do(req{method: "GET", path: "/modules/2001/edit", as: "admin"}).want(t, http.StatusOK, `value="sys_param_2"`, "nginx=Nginx")
	e.do(req{method: "POST", path: "/modules/2001/edit", as: "admin", body: form("name", "tail v2", "caption", "c2", "rows", "2",
		"p0_name", "sys_param_1", "p0_label", "which", "p0_type", "select", "p0_options", "a=Alpha\nb=Beta", "p0_default", "b",
		"p1_name", "")}).want(t, http.StatusSeeOther)
	m, err := e.st.GetModule(context.Background(), 2001)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "tail v2" || len(m.Params) != 1 || m.Params[0].Default != "b" || len(m.Params[0].Options) != 2 {
		t.Fatalf("module after edit %+v", m)
	}
	// Create through the page (next free id).
	e.do(req{method: "POST", path: "/modules/new", as: "admin", body: form("name", "new one", "caption", "", "rows", "1",
		"p0_name", "sys_param_1", "p0_type", "text", "p0_maxlength", "10")}).want(t, http.StatusSeeOther)
	e.do(req{method: "GET", path: "/modules", as: "viewer"}).want(t, http.StatusOK, "new one", "tail v2")
	e.do(req{method: "POST", path: "/modules/2001/delete", as: "admin"}).want(t, http.StatusSeeOther)
	if _, err := e.st.GetModule(context.Background(), 2001); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("module still there: %v", err)
	}
	// Runs keep their records after the module is gone.
	e.do(req{method: "GET", path: "/runs/" + id, as: "viewer"}).want(t, http.StatusOK, "tail app log")
}

func TestUserAdmin(t *testing.T) {
	e := newEnv(t)
	e.do(req{method: "POST", path: "/api/v1/users", as: "admin", body: `{"name":"carol","role":"operator","password":"carol-password"}`}).want(t, http.StatusCreated, `"role":"operator"`)
	r := e.do(req{method: "POST", path: "/login", body: form("username", "carol", "password", "carol-password")}).want(t, http.StatusSeeOther)
	if !strings.Contains(r.header.Get("Set-Cookie"), sessionCookie) {
		t.Fatal("new user cannot log in")
	}
	u, _ := e.st.GetUserByName(context.Background(), "carol")
	e.do(req{method: "PUT", path: "/api/v1/users/" + itoa(u.ID), as: "admin", body: `{"disabled":true}`}).want(t, http.StatusOK, `"disabled":true`)
	e.do(req{method: "POST", path: "/login", body: form("username", "carol", "password", "carol-password")}).want(t, http.StatusUnauthorized)
	e.do(req{method: "POST", path: "/users/" + itoa(u.ID), as: "admin", body: form("role", "viewer", "disabled", "false", "password", "another-password")}).want(t, http.StatusSeeOther)
	e.do(req{method: "POST", path: "/login", body: form("username", "carol", "password", "another-password")}).want(t, http.StatusSeeOther)
	e.do(req{method: "GET", path: "/users", as: "admin"}).want(t, http.StatusOK, `data-user="carol"`)
	e.do(req{method: "GET", path: "/audit", as: "admin"}).want(t, http.StatusOK, "user.create", "user.update")
	e.do(req{method: "GET", path: "/api/v1/audit", as: "admin"}).want(t, http.StatusOK, `"action":"user.update"`)
	if strings.Contains(e.do(req{method: "GET", path: "/api/v1/users", as: "admin"}).body, "$2a$") {
		t.Fatal("password hashes exposed")
	}
}

// Output, module names and captions are always escaped.
func TestEscaping(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.st.CreateModule(ctx, store.Module{ID: 3000, Name: "<script>alert(1)</script>", Caption: `<img src=x onerror=alert(2)><br>line two<script>alert(3)</script>`})
	if err != nil {
		t.Fatal(err)
	}
	id := e.startRun("operator", `{"module_id":3000,"hosts":["192.168.1.10"]}`)
	call := e.master.nextCall(t)
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.10"}, Status: task.StatusOK,
		Stdout: `<script>alert("out")</script>`, Stderr: `</pre><iframe src=//x>`, Error: `<b>e</b>`})
	call.Finish <- nil
	e.waitStatus(id, task.RunOK)

	for _, p := range []string{"/runs/" + id, "/runs", "/modules"} {
		body := e.do(req{method: "GET", path: p, as: "viewer"}).want(t, http.StatusOK).body
		for _, bad := range []string{"<script>alert", "<img", "<iframe", "<b>e</b>", "onerror=alert"} {
			if strings.Contains(body, bad) {
				t.Fatalf("%s contains unescaped %q", p, bad)
			}
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Fatalf("%s does not show the module name as text", p)
		}
	}
	detail := e.do(req{method: "GET", path: "/runs/" + id, as: "viewer"}).body
	if !strings.Contains(detail, "&lt;script&gt;alert(&#34;out&#34;)&lt;/script&gt;") {
		t.Fatalf("output not shown escaped: %s", detail)
	}
	// The caption is reduced to text: tags gone, <br> a line break.
	mods := e.do(req{method: "GET", path: "/api/v1/modules/3000", as: "viewer"}).body
	if !strings.Contains(mods, `"caption_text":"line two"`) {
		t.Fatalf("caption text: %s", mods)
	}
	// JSON answers escape HTML too, and carry nosniff.
	r := e.do(req{method: "GET", path: "/api/v1/runs/" + id, as: "viewer"})
	if strings.Contains(r.body, "<script>") || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("json: %s %v", r.body, r.header)
	}
}

func TestCaptionText(t *testing.T) {
	cases := map[string]string{
		"[<b>功能说明</b>]<br> 查看所选服务器的操作系统日志信息": "[功能说明]\n 查看所选服务器的操作系统日志信息",
		"plain":                       "plain",
		"a<script>alert(1)</script>b": "ab",
		"x &lt;y&gt; &amp;":           "x <y> &",
		"<p>one</p><p>two</p>":        "one\n\ntwo",
		"":                            "",
	}
	for in, want := range cases {
		if got := captionText(in); got != want {
			t.Errorf("captionText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecurityHeadersHealthMetrics(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MetricsToken = "scrape-secret-1" })
	r := e.do(req{method: "GET", path: "/login"})
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(r.body, "<script>") || strings.Contains(r.body, "style=") {
		t.Fatal("inline script or style allowed or used")
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Referrer-Policy") == "" || r.header.Get("X-Request-Id") == "" {
		t.Fatalf("headers %v", r.header)
	}
	// The dashboard carries the DOM the browser test relies on.
	e.do(req{method: "GET", path: "/", as: "operator"}).want(t, http.StatusOK, `id="fun-categ"`, `id="app-categ"`, `id="servers" multiple`,
		`id="show-hostname"`, `id="module"`, `id="module-caption"`, `id="param-form"`, `id="run"`, `id="cancel"`, `id="output"`, `id="run-status"`,
		`src="/static/dashboard.js"`)
	js := e.do(req{method: "GET", path: "/static/hosts.js"}).want(t, http.StatusOK, "EventSource", "host-result")
	if !strings.Contains(js.header.Get("Content-Type"), "javascript") {
		t.Fatalf("js content type %q", js.header.Get("Content-Type"))
	}
	e.do(req{method: "GET", path: "/static/app.css"}).want(t, http.StatusOK, ".status-ok")

	e.do(req{method: "GET", path: "/healthz"}).want(t, http.StatusOK, `"database":"ok"`, `"master":"ok"`)
	e.master.mu.Lock()
	e.master.healthErr = errors.New("dial tcp 127.0.0.1:1: connection refused")
	e.master.mu.Unlock()
	h := e.do(req{method: "GET", path: "/healthz"}).want(t, http.StatusServiceUnavailable, `"master":"unavailable"`)
	if strings.Contains(h.body, "127.0.0.1") {
		t.Fatal("health leaks error details")
	}

	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"]}`)
	call := e.master.nextCall(t)
	call.Finish <- nil
	e.waitStatus(id, task.RunFailed)
	// /metrics: the token or an admin, nobody else.
	e.do(req{method: "GET", path: "/metrics"}).want(t, http.StatusUnauthorized, "metrics token")
	e.do(req{method: "GET", path: "/metrics", header: map[string]string{"Authorization": "Bearer wrong"}}).want(t, http.StatusUnauthorized)
	e.do(req{method: "GET", path: "/metrics", as: "operator"}).want(t, http.StatusForbidden)
	e.do(req{method: "GET", path: "/metrics", as: "admin"}).want(t, http.StatusOK, "omserver_web_runs_started_total 1")
	scraper := map[string]string{"Authorization": "Bearer scrape-secret-1"}
	m := e.do(req{method: "GET", path: "/metrics", header: scraper}).want(t, http.StatusOK, "omserver_web_runs_started_total 1",
		`omserver_web_http_requests_total{code="200",method="GET",route="/login"}`, "omserver_web_sse_subscribers")
	// The counter moves right after the run's record is finished.
	deadline := time.Now().Add(testTimeout)
	for !strings.Contains(m.body, `omserver_web_runs_finished_total{status="failed"} 1`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		m = e.do(req{method: "GET", path: "/metrics", header: scraper})
	}
	if !strings.Contains(m.body, `omserver_web_runs_finished_total{status="failed"} 1`) {
		t.Fatal("finished run not counted")
	}
}

func TestPaging(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 55 {
		if err := e.st.CreateRun(ctx, store.Run{ID: fmt.Sprintf("r%02d", i), ModuleID: 1003, ModuleName: "m", Username: "operator",
			Hosts: []task.Host{{IP: "192.168.1.10"}}, Status: task.RunDone, CreatedAt: testNow().Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	p1 := e.do(req{method: "GET", path: "/runs", as: "viewer"}).want(t, http.StatusOK, `id="next-page"`)
	if strings.Count(p1.body, `class="run-row"`) != 50 || strings.Contains(p1.body, `id="prev-page"`) {
		t.Fatalf("page 1 has %d rows", strings.Count(p1.body, `class="run-row"`))
	}
	next := html.UnescapeString(hrefOf(t, p1.body, "next-page"))
	p2 := e.do(req{method: "GET", path: next, as: "viewer"}).want(t, http.StatusOK, `id="prev-page"`, `data-run-id="r04"`, `data-run-id="r00"`)
	if strings.Count(p2.body, `class="run-row"`) != 5 || strings.Contains(p2.body, `id="next-page"`) || strings.Contains(p2.body, `data-run-id="r05"`) {
		t.Fatalf("page 2 has %d rows", strings.Count(p2.body, `class="run-row"`))
	}
	// The API's older parameters: per_page is the page size, page=1 the
	// first page; a later page number says how to go on.
	r := e.do(req{method: "GET", path: "/api/v1/runs?page=1&per_page=20", as: "viewer"}).want(t, http.StatusOK)
	var list struct {
		Runs []store.Run `json:"runs"`
		Next *string     `json:"next"`
	}
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Runs) != 20 || list.Next == nil || list.Runs[0].ID != "r54" {
		t.Fatalf("per_page=20: %.300s", r.body)
	}
	msg := e.do(req{method: "GET", path: "/api/v1/runs?page=3&per_page=20", as: "viewer"}).want(t, http.StatusBadRequest).jsonError(t)
	if !strings.Contains(msg, "next") {
		t.Fatalf("page=3: %q", msg)
	}
	e.do(req{method: "GET", path: "/runs?page=abc", as: "viewer"}).want(t, http.StatusBadRequest)
}

// hrefOf returns the href of the element with this id in an HTML page.
func hrefOf(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `id="`+id+`" href="`)
	if i < 0 {
		t.Fatalf("no link #%s in the page", id)
	}
	rest := body[i+len(`id="`+id+`" href="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestDuplicateCategoryNames: a second category with a name already in
// use (as MySQL compares: case and surrounding space ignored) is refused
// with 409 and changes nothing; the same application name under another
// function category is fine.
func TestDuplicateCategoryNames(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	for _, c := range []req{
		{method: "POST", path: "/api/v1/fun-categs", body: `{"name":"Linux.Web"}`},
		{method: "POST", path: "/api/v1/fun-categs", body: `{"name":"linux.web"}`},
		{method: "PUT", path: "/api/v1/fun-categs/1", body: `{"name":"Linux.Web"}`},
		{method: "POST", path: "/api/v1/app-categs", body: `{"fun_categ_id":11,"name":"WWW.domain.com"}`},
		{method: "PUT", path: "/api/v1/app-categs/2", body: `{"fun_categ_id":11,"name":"www.domain.com"}`},
	} {
		c.as = "admin"
		r := e.do(c).want(t, http.StatusConflict)
		if msg := r.jsonError(t); !strings.Contains(msg, "already named") {
			t.Fatalf("%s %s: message %q", c.method, c.path, msg)
		}
	}
	for _, c := range []req{
		{method: "POST", path: "/inventory/fun-categs", body: form("name", " Linux.Web ")},
		{method: "POST", path: "/inventory/fun-categs/1", body: form("name", "Linux.Web")},
		{method: "POST", path: "/inventory/app-categs", body: form("fun_id", "11", "name", "www.domain.com")},
	} {
		c.as = "admin"
		e.do(c).want(t, http.StatusConflict, "already named")
	}
	e.assertUnchanged(before)
	// Keeping its own name, or renaming to it in another case, is fine.
	e.do(req{method: "PUT", path: "/api/v1/fun-categs/11", as: "admin", body: `{"name":"Linux.Web"}`}).want(t, http.StatusOK)
	e.do(req{method: "POST", path: "/inventory/app-categs/1", as: "admin", body: form("fun_id", "11", "name", "www.domain.com")}).want(t, http.StatusSeeOther)
	e.do(req{method: "POST", path: "/api/v1/app-categs", as: "admin", body: `{"fun_categ_id":1,"name":"www.domain.com"}`}).want(t, http.StatusCreated)
}

// TestJSONErrorsInCallerTerms: a body of the wrong shape is refused with
// the JSON field and kind, not Go's struct and type names.
func TestJSONErrorsInCallerTerms(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	for _, c := range []struct{ body, want string }{
		{`{"module_id":"1003","hosts":["192.168.1.10"]}`, `field "module_id" must be an integer, not string`},
		{`{"module_id":1003,"hosts":"192.168.1.10"}`, `field "hosts" must be an array, not string`},
		{`{"module_id":1003,"hosts":["192.168.1.10"],"params":{"sys_param_1":5}}`, `must be a string, not number`},
		{`[1]`, `the body must be an object, not array`},
		{`{"module_id":1003,"nope":1}`, `unknown field "nope"`},
	} {
		msg := e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: c.body}).want(t, http.StatusBadRequest).jsonError(t)
		if !strings.Contains(msg, c.want) || strings.Contains(msg, "Go ") || strings.Contains(msg, "runRequest") {
			t.Fatalf("%s: message %q, want it to say %q in JSON terms", c.body, msg, c.want)
		}
	}
	e.master.assertNoCall(t)
	e.assertUnchanged(before)
}

// TestUserCreateAnswer: the answer to creating a user is the stored user
// (with its creation time), never its password hash.
func TestUserCreateAnswer(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{method: "POST", path: "/api/v1/users", as: "admin", body: `{"name":"newop","role":"operator","password":"a-long-password"}`}).want(t, http.StatusCreated)
	var u struct {
		ID        int64     `json:"id"`
		CreatedAt time.Time `json:"created_at"`
	}
	if err := json.Unmarshal([]byte(r.body), &u); err != nil {
		t.Fatal(err)
	}
	if u.ID <= 0 || u.CreatedAt.IsZero() || strings.Contains(r.body, "$2a$") {
		t.Fatalf("answer %s", r.body)
	}
}

// TestNotFoundPage: an unknown page is the site's error page (escaped),
// an unknown legacy or API path stays plain text or JSON.
func TestNotFoundPage(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{method: "GET", path: "/no/such/<b>page", as: "viewer"}).want(t, http.StatusNotFound, "Page not found", `href="/runs"`)
	if strings.Contains(r.body, "<b>page") || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("not an escaped HTML page: %s %.300s", r.header.Get("Content-Type"), r.body)
	}
	e.do(req{method: "GET", path: "/api/v1/nope", as: "viewer"}).want(t, http.StatusNotFound, `"error"`)
}

// digestOf reads the preview digest from an import preview page.
func digestOf(t *testing.T, page string) string {
	t.Helper()
	const marker = `name="preview_digest" value="`
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("no preview digest in the page: %.400s", page)
	}
	rest := page[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}
