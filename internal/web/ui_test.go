package web

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/web/static"
)

// TestRunOutcome: a run's final state reflects its hosts, and the pages
// say so in words and colour classes that never show a failure as success.
func TestRunOutcome(t *testing.T) {
	tests := []struct {
		name    string
		results []task.HostResult
		want    task.RunStatus
	}{
		{"all ok", []task.HostResult{result("192.168.1.10", "", task.StatusOK, "a"), result("192.168.1.20", "", task.StatusOK, "a")}, task.RunOK},
		{"some failed", []task.HostResult{result("192.168.1.10", "", task.StatusOK, "a"), result("192.168.1.20", "", task.StatusFailed, "b")}, task.RunPartial},
		{"all failed", []task.HostResult{result("192.168.1.10", "", task.StatusUnreachable, ""), result("192.168.1.20", "", task.StatusFailed, "b")}, task.RunFailed},
		{"one host without result", []task.HostResult{result("192.168.1.10", "", task.StatusOK, "a")}, task.RunPartial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10","192.168.1.20"]}`)
			call := e.master.nextCall(t)
			for _, r := range tt.results {
				call.send(t, r)
			}
			call.Finish <- nil
			e.waitStatus(id, tt.want)
			page := e.do(req{method: "GET", path: "/runs/" + id, as: "viewer"}).want(t, http.StatusOK, `run-state-`+string(tt.want))
			list := e.do(req{method: "GET", path: "/runs", as: "viewer"}).want(t, http.StatusOK, `data-status="`+string(tt.want)+`"`)
			if tt.want != task.RunOK && (strings.Contains(page.body, "run-state-ok") || strings.Contains(list.body, "run-state-ok")) {
				t.Fatal("a run with failed hosts is shown with the success style")
			}
		})
	}
}

// TestRunPageGroups: identical results are one group, outliers first,
// hosts by address numerically; counts, progress and downloads are there.
func TestRunPageGroups(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var ips []string
	for _, last := range []string{"1", "10", "11", "2", "3", "20"} {
		ip := "127.0.1." + last
		if _, err := e.st.UpsertServer(ctx, store.Server{IP: ip, Name: "h" + last, AppID: 1}); err != nil {
			t.Fatal(err)
		}
		ips = append(ips, `"`+ip+`"`)
	}
	id := e.startRun("operator", `{"module_id":1003,"hosts":[`+strings.Join(ips, ",")+`]}`)
	call := e.master.nextCall(t)
	for _, last := range []string{"20", "11", "10", "2", "1"} {
		call.send(t, result("127.0.1."+last, "", task.StatusOK, "Debian GNU/Linux 12\n"))
	}
	call.send(t, task.HostResult{Host: task.Host{IP: "127.0.1.3"}, Status: task.StatusFailed, ExitCode: 2, Stderr: "cat: /etc/os-release: No such file"})
	call.Finish <- nil
	e.waitStatus(id, task.RunPartial)
	body := e.do(req{method: "GET", path: "/runs/" + id, as: "operator"}).want(t, http.StatusOK,
		`data-status="failed" data-count="1"`, `data-status="ok" data-count="5"`, "5 hosts", "1 host", "6 of 6 hosts done",
		`href="/runs/`+id+`/output.txt"`, `href="/runs/`+id+`/output.json"`, `id="rerun-failed"`).body
	if strings.Index(body, `data-status="failed" data-count="1"`) > strings.Index(body, `data-status="ok" data-count="5"`) {
		t.Fatal("the outlier group is not first")
	}
	if n := strings.Count(body, "Debian GNU/Linux 12"); n != 1 {
		t.Fatalf("identical output shown %d times, want once", n)
	}
	order := regexp.MustCompile(`data-host="(127\.0\.1\.\d+)"`).FindAllStringSubmatch(body, -1)
	var got []string
	for _, m := range order {
		got = append(got, m[1])
	}
	want := "127.0.1.3 127.0.1.1 127.0.1.2 127.0.1.10 127.0.1.11 127.0.1.20"
	if strings.Join(got, " ") != want {
		t.Fatalf("host order %v, want %s", got, want)
	}
	if !strings.Contains(body, `<progress id="progress" max="6" value="6">`) {
		t.Fatal("progress bar missing or wrong")
	}

	txt := e.do(req{method: "GET", path: "/runs/" + id + "/output.txt", as: "viewer"}).want(t, http.StatusOK, "=== 127.0.1.3 (h3) failed exit=2", "cat: /etc/os-release")
	if !strings.Contains(txt.header.Get("Content-Disposition"), "attachment") || strings.Index(txt.body, "127.0.1.2 ") > strings.Index(txt.body, "127.0.1.10 ") {
		t.Fatalf("text download: %v\n%s", txt.header, txt.body)
	}
	js := e.do(req{method: "GET", path: "/runs/" + id + "/output.json", as: "viewer"}).want(t, http.StatusOK)
	var v struct {
		Status  string            `json:"status"`
		Results []task.HostResult `json:"results"`
	}
	if err := json.Unmarshal([]byte(js.body), &v); err != nil || v.Status != "partial" || len(v.Results) != 6 {
		t.Fatalf("json download: %v %+v", err, v)
	}
}

// TestRunConfirmationAndTargets: the dry run answers the plan without
// starting anything; a large run needs the typed host count; a whole
// application or category can be the target.
func TestRunConfirmationAndTargets(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LargeRunHosts = 2 })
	before := e.snapshot()
	r := e.do(req{method: "POST", path: "/api/v1/runs", as: "operator",
		body: `{"module_id":1001,"fun_ids":[11],"params":{"sys_param_1":"5"},"dry_run":true}`}).want(t, http.StatusOK)
	var plan struct {
		ModuleName string            `json:"module_name"`
		Params     map[string]string `json:"params"`
		Hosts      []task.Host       `json:"hosts"`
		Typed      bool              `json:"typed_confirmation"`
		Large      int               `json:"large_run_hosts"`
	}
	if err := json.Unmarshal([]byte(r.body), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.ModuleName != "查看系统日志" || plan.Params["sys_param_1"] != "5" || len(plan.Hosts) != 3 || !plan.Typed || plan.Large != 2 {
		t.Fatalf("plan %+v", plan)
	}
	e.master.assertNoCall(t)
	e.assertUnchanged(before)

	// Without or with a wrong count: refused, nothing recorded.
	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":1003,"fun_ids":[11]}`}).want(t, http.StatusBadRequest, "confirmed by typing its number of hosts (3)")
	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":1003,"fun_ids":[11],"confirmed_hosts":2}`}).want(t, http.StatusBadRequest, "confirmed_hosts is 2")
	e.assertUnchanged(before)
	e.master.assertNoCall(t)

	id := e.startRun("operator", `{"module_id":1003,"fun_ids":[11],"confirmed_hosts":3}`)
	call := e.master.nextCall(t)
	if len(call.Task.Hosts) != 3 || call.Task.ConfirmedHosts != 3 {
		t.Fatalf("task %+v", call.Task)
	}
	call.Finish <- nil
	e.waitStatus(id, task.RunFailed)

	// A whole application, small enough for no typed confirmation.
	id = e.startRun("operator", `{"module_id":1003,"app_ids":[2]}`)
	call = e.master.nextCall(t)
	if len(call.Task.Hosts) != 1 || call.Task.Hosts[0].IP != "192.168.1.21" {
		t.Fatalf("task hosts %+v", call.Task.Hosts)
	}
	call.send(t, result("192.168.1.21", "", task.StatusOK, "x"))
	call.Finish <- nil
	e.waitStatus(id, task.RunOK)

	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":1003,"app_ids":[999]}`}).want(t, http.StatusBadRequest, "does not exist")
	e.do(req{method: "POST", path: "/api/v1/runs", as: "viewer", body: `{"module_id":1003,"app_ids":[2],"dry_run":true}`}).want(t, http.StatusForbidden)
}

// TestRerun: the failed hosts, or the whole run, again with the same
// parameters, through the same confirmation.
func TestRerun(t *testing.T) {
	e := newEnv(t)
	id := e.startRun("operator", `{"module_id":1001,"hosts":["192.168.1.10","192.168.1.20","192.168.1.21"],"params":{"sys_param_1":"7"}}`)
	call := e.master.nextCall(t)
	e.do(req{method: "POST", path: "/api/v1/runs/" + id + "/rerun", as: "operator", body: `{"only_failed":true}`}).want(t, http.StatusConflict, "still running")
	call.send(t, result("192.168.1.10", "", task.StatusOK, "x"))
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.20"}, Status: task.StatusTimeout, ExitCode: -1})
	call.Finish <- nil
	e.waitStatus(id, task.RunPartial)

	plan := e.do(req{method: "POST", path: "/api/v1/runs/" + id + "/rerun", as: "operator", body: `{"only_failed":true,"dry_run":true}`}).want(t, http.StatusOK, "192.168.1.20", "192.168.1.21")
	if strings.Contains(plan.body, "192.168.1.10") {
		t.Fatalf("the ok host is in the failed re-run: %s", plan.body)
	}
	e.master.assertNoCall(t)
	r := e.do(req{method: "POST", path: "/api/v1/runs/" + id + "/rerun", as: "operator", body: `{"only_failed":true}`}).want(t, http.StatusAccepted)
	call = e.master.nextCall(t)
	if len(call.Task.Hosts) != 2 || call.Task.Params["sys_param_1"] != "7" || call.Task.ModuleID != 1001 {
		t.Fatalf("re-run task %+v", call.Task)
	}
	call.Finish <- nil
	var out struct {
		RunID string `json:"run_id"`
	}
	_ = json.Unmarshal([]byte(r.body), &out)
	e.waitStatus(out.RunID, task.RunFailed)

	e.do(req{method: "POST", path: "/api/v1/runs/" + id + "/rerun", as: "operator", body: `{}`}).want(t, http.StatusAccepted)
	call = e.master.nextCall(t)
	if len(call.Task.Hosts) != 3 {
		t.Fatalf("whole re-run has %d hosts", len(call.Task.Hosts))
	}
	call.Finish <- nil
	e.do(req{method: "POST", path: "/api/v1/runs/" + id + "/rerun", as: "viewer", body: `{}`}).want(t, http.StatusForbidden)
}

// TestRunsListFilters: the history filters by user, module and state, and
// shows duration and per-status counts.
func TestRunsListFilters(t *testing.T) {
	e := newEnv(t)
	a := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"]}`)
	call := e.master.nextCall(t)
	call.send(t, result("192.168.1.10", "", task.StatusOK, "x"))
	call.Finish <- nil
	e.waitStatus(a, task.RunOK)
	b := e.startRun("admin", `{"module_id":1004,"hosts":["192.168.1.10","192.168.1.20"]}`)
	call = e.master.nextCall(t)
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.20"}, Status: task.StatusFailed, ExitCode: 1})
	call.Finish <- nil
	e.waitStatus(b, task.RunFailed)

	all := e.do(req{method: "GET", path: "/runs", as: "viewer"}).want(t, http.StatusOK, a[:8], b[:8], `class="count status-failed"`, `class="count status-noresult"`)
	if !regexp.MustCompile(`\d+(\.\d+)?(ms|s)</td>`).MatchString(all.body) {
		t.Fatal("no duration shown")
	}
	only := e.do(req{method: "GET", path: "/runs?status=failed", as: "viewer"}).want(t, http.StatusOK, b[:8])
	if strings.Contains(only.body, a[:8]) {
		t.Fatal("status filter let an ok run through")
	}
	only = e.do(req{method: "GET", path: "/runs?user=operator&module_id=1003", as: "viewer"}).want(t, http.StatusOK, a[:8], "clear filters")
	if strings.Contains(only.body, b[:8]) {
		t.Fatal("user/module filter let another run through")
	}
	e.do(req{method: "GET", path: "/runs?status=bogus", as: "viewer"}).want(t, http.StatusBadRequest, "bogus")
}

// TestImportCSV: real CSV (quoted commas, a header, a byte order mark), a
// preview of inserts, updates and moves before anything changes, a stale
// preview refused, and a refused form shown again with its input.
func TestImportCSV(t *testing.T) {
	e := newEnv(t)
	csvText := "\uFEFFname,wip,lip,os\nweb-primary,10.11.100.10,192.168.1.10,\"Linux, \"\"LTS\"\"\"\nnew1,,127.0.2.1,Linux\nsn2013-08-020,10.11.100.20,192.168.1.20,Linux\n"
	before := e.snapshot()
	// App 2 is not where .10 and .20 live now (app 1): both are moves; one
	// is renamed too.
	prev := e.do(req{method: "POST", path: "/inventory/import", as: "admin", body: form("app_id", "2", "csv", csvText, "action", "preview")}).want(t, http.StatusOK,
		`id="import-preview"`, "1 new, 0 updated, 2 moved from another application, 0 unchanged.", `data-change="move"`, "web-primary", "sn2012-07-010")
	e.assertUnchanged(before)
	if !strings.Contains(prev.body, "&#34;LTS&#34;") && !strings.Contains(prev.body, "&quot;LTS&quot;") {
		// The textarea keeps the input as typed.
		t.Fatalf("input not shown again: %.300s", prev.body)
	}
	digest := digestOf(t, prev.body)

	// Someone changes the inventory meanwhile: the apply shows the new preview.
	if _, err := e.st.UpsertServer(context.Background(), store.Server{IP: "127.0.2.1", Name: "new1", OS: "Linux", AppID: 1}); err != nil {
		t.Fatal(err)
	}
	stale := e.do(req{method: "POST", path: "/inventory/import", as: "admin", body: form("app_id", "2", "csv", csvText, "action", "apply", "preview_digest", digest)}).want(t, http.StatusConflict, "changed since the preview", `id="import-preview"`)
	e.do(req{method: "POST", path: "/inventory/import", as: "admin", body: form("app_id", "2", "csv", csvText, "action", "apply", "preview_digest", digestOf(t, stale.body))}).want(t, http.StatusSeeOther)
	sv, err := e.st.GetServers(context.Background(), []string{"192.168.1.10"})
	if err != nil || sv[0].Name != "web-primary" || sv[0].OS != `Linux, "LTS"` || sv[0].AppID != 2 {
		t.Fatalf("imported %+v, %v", sv, err)
	}
	// Apply without a preview is refused; a bad line re-shows the form.
	e.do(req{method: "POST", path: "/inventory/import", as: "admin", body: form("app_id", "2", "csv", "a,,127.0.2.9,Linux", "action", "apply")}).want(t, http.StatusBadRequest, "preview the import first")
	bad := e.do(req{method: "POST", path: "/inventory/import", as: "admin", body: form("app_id", "2", "csv", "ok,,127.0.2.8,Linux\nbroken,127.0.2.7\n", "action", "preview")}).want(t, http.StatusBadRequest,
		`id="import-error"`, "line 2: 2 fields, want 4", "broken,127.0.2.7")
	if strings.Contains(bad.body, `id="import-preview"`) {
		t.Fatal("a refused import shows a preview")
	}
	// The API's dry run answers the same preview.
	e.do(req{method: "POST", path: "/api/v1/servers/import", as: "admin", body: mustJSON(t, importBody{AppID: 1, CSV: "x,,127.0.2.8,Linux", DryRun: true})}).want(t, http.StatusOK, `"inserts":1`, `"change":"insert"`)
	if _, err := e.st.GetServers(context.Background(), []string{"127.0.2.8"}); err == nil {
		t.Fatal("a dry run imported")
	}
	// The server form: refused input comes back, not a bare error page.
	r := e.do(req{method: "POST", path: "/inventory/servers", as: "admin", body: form("app_id", "1", "name", "kept-name", "lip", "not an address", "wip", "", "os", "Linux")}).want(t, http.StatusBadRequest,
		`id="server-form-error"`, `value="kept-name"`, `value="not an address"`)
	if !strings.Contains(r.body, `id="fun-categs"`) {
		t.Fatal("the refused form is not shown on the inventory page")
	}
}

// TestSmallLeaks: no directory listing under /static/, and a form body
// with a raw ';' gets a message that says what to do.
func TestSmallLeaks(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/static/", "/static"} {
		r := e.do(req{method: "GET", path: p})
		if r.code == http.StatusOK || strings.Contains(r.body, `href="hosts.js"`) {
			t.Fatalf("GET %s: %d %.200s", p, r.code, r.body)
		}
	}
	e.do(req{method: "GET", path: "/static/app.css"}).want(t, http.StatusOK, "Noto Sans CJK SC")
	e.do(req{method: "POST", path: "/inventory/fun-categs", as: "admin", body: "name=a;b"}).want(t, http.StatusBadRequest, "%3B")
}

// TestLanguages: the interface speaks the browser's language by default,
// the switch is remembered for the user (and in a cookie), the two
// catalogues hold the same messages, and every one of them renders.
func TestLanguages(t *testing.T) {
	e := newEnv(t)
	en, zh := e.srv.i18n.ids[langEN], e.srv.i18n.ids[langZH]
	if strings.Join(en, "\n") != strings.Join(zh, "\n") {
		t.Fatalf("catalogues differ: %d en ids, %d zh-CN ids", len(en), len(zh))
	}
	for _, lang := range []string{langEN, langZH} {
		for _, id := range en {
			got := e.srv.i18n.text(lang, id, "Count", 2, "Total", 3, "Done", 1, "ID", "x", "Page", 1, "Role", "r", "State", "s", "Limit", 5,
				"Inserts", 1, "Updates", 1, "Moves", 1, "Same", 1, "Name", "n", "Scope", "127.0.0.1",
				"Index", 2, "Hosts", 4, "Until", "10:00", "Field", "f")
			if got == id || strings.Contains(got, "{{") || strings.Contains(got, "<no value>") {
				t.Errorf("%s %s renders as %q", lang, id, got)
			}
		}
	}
	for _, c := range []struct{ header, want string }{
		{"zh-CN,zh;q=0.9,en;q=0.8", langZH}, {"zh-TW", langZH}, {"zh", langZH}, {"en-US,en;q=0.9", langEN},
		{"fr-FR", langEN}, {"", langEN}, {"de;q=0.9, zh-Hans;q=0.8", langZH},
	} {
		if got := e.srv.i18n.match(c.header); got != c.want {
			t.Errorf("Accept-Language %q: %s, want %s", c.header, got, c.want)
		}
	}
	zhHeader := map[string]string{"Accept-Language": "zh-CN,zh;q=0.9"}
	e.do(req{method: "GET", path: "/login", header: zhHeader}).want(t, http.StatusOK, `<html lang="zh-CN">`, "用户名", "/i18n/zh-CN.js")
	e.do(req{method: "GET", path: "/", as: "operator", header: zhHeader}).want(t, http.StatusOK, "功能类别", "应用", "服务器", "模块", "运行", "取消")
	e.do(req{method: "GET", path: "/", as: "operator"}).want(t, http.StatusOK, `<html lang="en">`, "Function category")

	// The switch: remembered for the user, whatever the browser says.
	r := e.do(req{method: "POST", path: "/lang", as: "operator", body: form("lang", "zh-CN", "next", "/runs")}).want(t, http.StatusSeeOther)
	if r.header.Get("Location") != "/runs" || !strings.Contains(r.header.Get("Set-Cookie"), "omserver_lang=zh-CN") {
		t.Fatalf("switch answer %v", r.header)
	}
	if u, _ := e.st.GetUser(context.Background(), e.users["operator"].ID); u.Lang != langZH {
		t.Fatalf("stored language %q", u.Lang)
	}
	e.do(req{method: "GET", path: "/runs", as: "operator", header: map[string]string{"Accept-Language": "en"}}).want(t, http.StatusOK, "运行记录")
	e.do(req{method: "POST", path: "/lang", as: "operator", body: form("lang", "fr")}).want(t, http.StatusBadRequest)
	e.do(req{method: "POST", path: "/lang", as: "operator", body: form("lang", "en", "next", "//evil.example/")}).want(t, http.StatusSeeOther)
	// The browser catalogue.
	js := e.do(req{method: "GET", path: "/i18n/zh-CN.js"}).want(t, http.StatusOK, "window.OMS_I18N", `"confirm.title":{"other":"提交确认"}`)
	if !strings.Contains(js.header.Get("Content-Type"), "javascript") {
		t.Fatalf("catalogue content type %q", js.header.Get("Content-Type"))
	}
	e.do(req{method: "GET", path: "/i18n/fr.js"}).want(t, http.StatusNotFound)
}

// TestModuleCatalogDrift: the modules page says, per module, whether the
// master has it as here, differently, not at all, or only the master has
// it; an admin imports the master's in one click; the dashboard offers
// only what the master can run, with the master's schema, and a run of a
// module the master lacks is refused before anything is recorded.
func TestModuleCatalogDrift(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.st.CreateModule(ctx, store.Module{ID: 2001, Name: "only here"}); err != nil {
		t.Fatal(err)
	}
	e.setCatalog([]int64{1001, 1002, 1004, 1005, 1006, 1007}, func(mi *task.ModuleInfo) {
		switch mi.ID {
		case 1005: // the example: the master's default is nginx
			mi.Params = json.RawMessage(strings.Replace(string(mi.Params), `"default":"resinjar"`, `"default":"nginx"`, 1))
		case 1007:
			mi.Risky = true
		}
	})
	e.master.mu.Lock()
	e.master.catalog = append(e.master.catalog, task.ModuleInfo{ID: 2002, Name: "disk usage", Caption: "df -h", Params: json.RawMessage(`[]`), Version: "v2002"})
	e.master.mu.Unlock()
	e.srv.runs.ForgetCatalog()

	page := e.do(req{method: "GET", path: "/modules", as: "admin"}).want(t, http.StatusOK, "The master has 7 modules",
		`data-module-id="1001" data-catalog="same"`, `data-module-id="1003" data-catalog="missing"`,
		`data-module-id="1005" data-catalog="different"`, `data-module-id="2001" data-catalog="missing"`,
		`data-module-id="2002" data-catalog="master_only"`, `action="/modules/2002/import"`, `action="/modules/1005/import"`,
		"parameter sys_param_1: select default &#34;resinjar&#34;")
	if strings.Contains(page.body, `action="/modules/1001/import"`) {
		t.Fatal("an up-to-date module offers an import")
	}
	// The dashboard's list: on the master and here, as the master says.
	r := e.do(req{method: "GET", path: "/api/v1/modules?runnable=1", as: "operator"}).want(t, http.StatusOK, `"id":1005`, `"default":"nginx"`)
	var mods []struct {
		ID    int64 `json:"id"`
		Risky bool  `json:"risky"`
	}
	if err := json.Unmarshal([]byte(r.body), &mods); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range mods {
		ids = append(ids, itoa(m.ID))
		if m.ID == 1007 && !m.Risky {
			t.Fatal("1007 not marked risky")
		}
	}
	if strings.Join(ids, " ") != "1001 1002 1004 1005 1006 1007" {
		t.Fatalf("runnable modules %v", ids)
	}
	// A module the master lacks is refused before anything is recorded.
	before := e.snapshot()
	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":1003,"hosts":["192.168.1.10"]}`}).want(t, http.StatusBadRequest, "not installed on the master")
	e.assertUnchanged(before)
	e.master.assertNoCall(t)
	// The master's schema is what a run is checked against; a risky module
	// needs the typed count even on one host.
	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":1007,"hosts":["192.168.1.10"],"dry_run":true}`}).want(t, http.StatusOK, `"risky":true`, `"typed_confirmation":true`)
	e.do(req{method: "POST", path: "/api/v1/runs", as: "operator", body: `{"module_id":1007,"hosts":["192.168.1.10"]}`}).want(t, http.StatusBadRequest, "marked risky")
	id := e.startRun("operator", `{"module_id":1005,"hosts":["192.168.1.10"]}`)
	call := e.master.nextCall(t)
	if call.Task.Params["sys_param_1"] != "nginx" {
		t.Fatalf("run of 1005 got %v; want the master's default", call.Task.Params)
	}
	call.Finish <- nil
	e.waitStatus(id, task.RunFailed)

	// Import: the master-only module is added, the different one replaced.
	e.do(req{method: "POST", path: "/modules/2002/import", as: "operator"}).want(t, http.StatusForbidden)
	e.do(req{method: "POST", path: "/modules/2002/import", as: "admin"}).want(t, http.StatusSeeOther)
	e.do(req{method: "POST", path: "/modules/1005/import", as: "admin"}).want(t, http.StatusSeeOther)
	e.do(req{method: "POST", path: "/modules/1003/import", as: "admin"}).want(t, http.StatusNotFound)
	e.do(req{method: "GET", path: "/modules?ok=imported_module", as: "admin"}).want(t, http.StatusOK, "Module imported from the master.",
		`data-module-id="2002" data-catalog="same"`, `data-module-id="1005" data-catalog="same"`)
	// The legacy answers are in step with the master now.
	e.do(req{method: "GET", path: "/autoadmin/module_list/", as: "viewer"}).want(t, http.StatusOK, "disk usage", "2002")
	e.do(req{method: "GET", path: "/autoadmin/module_info/?Module_Id=1005", as: "viewer"}).want(t, http.StatusOK, "nginx")
}

// TestInventoryFormErrorsStayOnThePage: a refused category form shows the
// inventory page with the reason, not a bare error page.
func TestInventoryFormErrorsStayOnThePage(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	r := e.do(req{method: "POST", path: "/inventory/fun-categs", as: "admin", body: form("name", "Linux.Web")}).want(t, http.StatusConflict, `id="error"`, "Not saved:", `id="fun-categs"`, `id="add-server"`)
	if !strings.Contains(r.body, "already") {
		t.Fatalf("no reason given: %.300s", r.body)
	}
	e.do(req{method: "POST", path: "/inventory/app-categs", as: "admin", body: form("fun_id", "x", "name", "a")}).want(t, http.StatusBadRequest, `id="error"`, "fun_id", `id="app-categs"`)
	e.assertUnchanged(before)
}

// TestEveryPageSpeaksTheUsersLanguage: no page shows a message id instead
// of its text, in either language.
func TestEveryPageSpeaksTheUsersLanguage(t *testing.T) {
	e := newEnv(t)
	id := e.startRun("operator", `{"module_id":1003,"hosts":["192.168.1.10"]}`)
	call := e.master.nextCall(t)
	call.send(t, result("192.168.1.10", "", task.StatusOK, "x"))
	call.Finish <- nil
	e.waitStatus(id, task.RunOK)
	for _, lang := range []string{"en", "zh-CN"} {
		for _, p := range []string{"/", "/runs", "/runs/" + id, "/modules", "/modules/new", "/modules/1003/edit", "/inventory", "/users", "/audit", "/tokens", "/account", "/omaudit/", "/omaudit/tokens", "/notifications", "/nope"} {
			r := e.do(req{method: "GET", path: p, as: "admin", header: map[string]string{"Accept-Language": lang}})
			for _, mid := range e.srv.i18n.ids[langEN] {
				if strings.Contains(r.body, ">"+mid+"<") || strings.Contains(r.body, "<title>"+mid+" ") {
					t.Errorf("%s %s shows the message id %s instead of its text", lang, p, mid)
				}
			}
		}
	}
}

// TestEveryReferencedMessageExists: every message id the templates and the
// browser code name literally is in the catalogues (dynamic ids, built
// with printf, are covered by rendering the pages in TestLanguages and
// TestEveryPageSpeaksTheUsersLanguage).
func TestEveryReferencedMessageExists(t *testing.T) {
	e := newEnv(t)
	have := map[string]bool{}
	for _, id := range e.srv.i18n.ids[langEN] {
		have[id] = true
	}
	check := func(name, text string, re *regexp.Regexp) {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			if !have[m[1]] {
				t.Errorf("%s names message %q, which is not in the catalogues", name, m[1])
			}
		}
	}
	tmpl := regexp.MustCompile(`\.T "([a-z_.0-9]+)"`)
	entries, _ := fs.Glob(templateFiles, "templates/*.html")
	for _, p := range entries {
		b, _ := fs.ReadFile(templateFiles, p)
		check(p, string(b), tmpl)
	}
	js := regexp.MustCompile(`\bT\('([a-z_.0-9]*[a-z_0-9])'`)
	scripts, _ := fs.Glob(static.FS(), "*.js")
	for _, p := range scripts {
		b, _ := fs.ReadFile(static.FS(), p)
		check(p, string(b), js)
	}
	goSrc := regexp.MustCompile(`(?:s\.tr\(r, "|")((?:title|flash|form)\.[a-z_0-9.]+|(?:login|account)\.(?:title|wrong|limited|differ|not_changed))"`)
	files, _ := filepath.Glob("*.go")
	for _, p := range files {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, _ := os.ReadFile(p)
		check(p, string(b), goSrc)
	}
	if len(entries) == 0 || len(scripts) == 0 || len(files) == 0 {
		t.Fatal("nothing checked")
	}
}
