package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// apiToken creates an API token for user and returns its bearer header.
func (e *env) apiToken(user string) map[string]string {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/api/v1/tokens", as: user, body: `{"name":"legacy script"}`}).want(e.t, http.StatusCreated)
	var v struct{ Token string }
	if err := json.Unmarshal([]byte(r.body), &v); err != nil || !strings.HasPrefix(v.Token, tokenPrefix) {
		e.t.Fatalf("token answer %q", r.body)
	}
	return map[string]string{"Authorization": "Bearer " + v.Token}
}

// moduleRunAsync sends a module_run request in the background: it blocks
// until the run ends.
func (e *env) moduleRunAsync(path string, header map[string]string) <-chan resp {
	ch := make(chan resp, 1)
	go func() {
		hr, _ := http.NewRequest("GET", e.ts.URL+path, nil)
		for k, v := range header {
			hr.Header.Set(k, v)
		}
		res, err := (&http.Client{Timeout: testTimeout}).Do(hr)
		if err != nil {
			ch <- resp{code: -1, body: err.Error()}
			return
		}
		defer res.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := res.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		ch <- resp{code: res.StatusCode, body: b.String(), header: res.Header}
	}()
	return ch
}

func waitResp(t *testing.T, ch <-chan resp) resp {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(testTimeout):
		t.Fatal("module_run did not answer")
		return resp{}
	}
}

// The reply of libraries.py's func_transform, with the output escaped.
func TestModuleRunOriginalReply(t *testing.T) {
	e := newEnv(t)
	bearer := e.apiToken("operator")
	ch := e.moduleRunAsync("/autoadmin/module_run/?ModuleID=1001&hosts=192.168.1.10*sn2012-07-010,192.168.1.20*SN2013-08-020&sys_param_1=20", bearer)
	call := e.master.nextCall(t)
	if call.Task.ModuleID != 1001 || call.Task.Params["sys_param_1"] != "20" || call.Task.User != "operator" || len(call.Task.Hosts) != 2 {
		t.Fatalf("task %+v", call.Task)
	}
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.20", Name: "sn2013-08-020"}, Status: task.StatusFailed, ExitCode: 2,
		Stderr: "tail: cannot open '/var/log/messages'\n"})
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.10", Name: "sn2012-07-010"}, Status: task.StatusOK,
		Stdout: "May 20 10:11:12 sshd[1]: <script>alert(1)</script>\nline 2 & more\n"})
	call.Finish <- nil
	r := waitResp(t, ch)
	sep := "<table width='100%' height='15'><tbody><tr><td background='/static/images/B24.gif'></td></tr></tbody></table><br>"
	want := "<font color='#eeeeee'>主机：</font><font color=#ffffff><b>192.168.1.10</b></font><br>" +
		"<font color='#eeeeee'>运行状态</font> <font color='#006699'><b>成功</b></font><br>" +
		"May 20 10:11:12 sshd[1]: &lt;script&gt;alert(1)&lt;/script&gt;<br>line 2 &amp; more<br>" + sep +
		"<font color='#eeeeee'>主机：</font><font color=#ffffff><b>192.168.1.20</b></font><br>" +
		"<font color='#eeeeee'>运行状态</font> <font color='red'><b>失败</b></font><br>" +
		"tail: cannot open &#39;/var/log/messages&#39;<br>failed (exit 2)<br>" + sep
	if r.code != http.StatusOK || r.body != want {
		t.Fatalf("reply %d:\n got %q\nwant %q", r.code, r.body, want)
	}
	// Recorded and audited like any run.
	page, err := e.st.ListRuns(context.Background(), store.RunFilter{})
	list := page.Runs
	if err != nil || len(list) != 1 || list[0].Username != "operator" || list[0].Status != task.RunPartial {
		t.Fatalf("runs %+v %v", list, err)
	}
	e.do(req{method: "GET", path: "/api/v1/audit", as: "admin"}).want(t, http.StatusOK, "via /autoadmin/module_run/", list[0].ID)

	// A module without parameters: the empty sys_param_N the original's
	// scripts send along are ignored; a host without a name is fine.
	ch = e.moduleRunAsync("/autoadmin/module_run/?ModuleID=1003&hosts=192.168.1.21&sys_param_1=&sys_param_2=", bearer)
	call = e.master.nextCall(t)
	if len(call.Task.Params) != 0 {
		t.Fatalf("params %+v", call.Task.Params)
	}
	call.Finish <- context.DeadlineExceeded // the master was lost: no result
	r = waitResp(t, ch)
	if r.code != http.StatusOK || !strings.Contains(r.body, "<b>192.168.1.21</b>") || !strings.Contains(r.body, "<b>失败</b>") || !strings.Contains(r.body, "no result: the run ended failed") {
		t.Fatalf("run without results: %d %q", r.code, r.body)
	}
}

func TestModuleRunTokenOnly(t *testing.T) {
	e := newEnv(t)
	path := "/autoadmin/module_run/?ModuleID=1003&hosts=192.168.1.10*sn2012-07-010"
	before := e.snapshot()
	for _, who := range []string{"operator", "admin", "viewer"} {
		r := e.do(req{method: "GET", path: path, as: who}).want(t, http.StatusForbidden, "API tokens only")
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("refusal as %s", r.header.Get("Content-Type"))
		}
	}
	// Cross-site, as a browser would send it with the cookie.
	e.do(req{method: "GET", path: path, as: "operator", header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}}).
		want(t, http.StatusForbidden, "API tokens only")
	e.do(req{method: "GET", path: path}).want(t, http.StatusUnauthorized)
	e.do(req{method: "GET", path: path, header: e.apiToken("viewer")}).want(t, http.StatusForbidden, "needs operator")
	e.master.assertNoCall(t)
	e.assertUnchanged(before)
}

func TestModuleRunValidation(t *testing.T) {
	e := newEnv(t)
	bearer := e.apiToken("operator")
	before := e.snapshot()
	for _, tc := range []struct {
		name, query, want string
	}{
		{"unknown module", "ModuleID=9999&hosts=192.168.1.10", "module 9999 does not exist"},
		{"module id not a number", "ModuleID=10x&hosts=192.168.1.10", "not a positive integer"},
		{"no module id", "hosts=192.168.1.10", "missing query parameter ModuleID"},
		{"no hosts", "ModuleID=1003", "missing query parameter hosts"},
		{"unknown host", "ModuleID=1003&hosts=192.168.9.9*ghost", "not in the inventory"},
		{"name of another host", "ModuleID=1003&hosts=192.168.1.10*sn2013-08-020", "is \"sn2012-07-010\" in the inventory"},
		{"host twice", "ModuleID=1003&hosts=192.168.1.10,192.168.1.10*sn2012-07-010", "listed twice"},
		{"empty host entry", "ModuleID=1003&hosts=192.168.1.10,,", "empty entry"},
		{"number out of range", "ModuleID=1001&hosts=192.168.1.10&sys_param_1=100000", "sys_param_1"},
		{"number not a number", "ModuleID=1001&hosts=192.168.1.10&sys_param_1=50%3Breboot", "sys_param_1"},
		{"choice not offered", "ModuleID=1007&hosts=192.168.1.10&sys_param_1=sshd", "sys_param_1"},
		{"undeclared parameter with a value", "ModuleID=1003&hosts=192.168.1.10&sys_param_2=x", "unknown parameter"},
		{"parameter twice", "ModuleID=1001&hosts=192.168.1.10&sys_param_1=1&sys_param_1=2", "given 2 times"},
		{"unknown query parameter", "ModuleID=1003&hosts=192.168.1.10&host=x", `unknown parameter(s) "host"`},
		{"unreadable query", "ModuleID=1003&hosts=%zz", "cannot be read"},
	} {
		r := e.do(req{method: "GET", path: "/autoadmin/module_run/?" + tc.query, header: bearer})
		if r.code != http.StatusBadRequest || !strings.Contains(r.body, tc.want) || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: %d %q; want 400 text with %q", tc.name, r.code, r.body, tc.want)
		}
	}
	e.master.assertNoCall(t)
	e.assertUnchanged(before)
}

func TestModuleRunTimeoutAnswersStillRunning(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ModuleRunTimeout = 200 * time.Millisecond })
	bearer := e.apiToken("operator")
	ch := e.moduleRunAsync("/autoadmin/module_run/?ModuleID=1003&hosts=192.168.1.10", bearer)
	call := e.master.nextCall(t)
	r := waitResp(t, ch)
	if r.code != http.StatusAccepted || !strings.Contains(r.body, "still running") || !strings.Contains(r.body, "/api/v1/runs/"+call.Task.RunID) {
		t.Fatalf("answer %d %q", r.code, r.body)
	}
	// The run goes on and is recorded when it ends.
	call.send(t, task.HostResult{Host: task.Host{IP: "192.168.1.10"}, Status: task.StatusOK, Stdout: "Debian 12"})
	call.Finish <- nil
	e.waitStatus(call.Task.RunID, task.RunOK)
}

// A run that needs a typed confirmation (here: more hosts than
// large_run_hosts) is refused without confirmed_hosts, or with the wrong
// count, and starts with the right one.
func TestModuleRunConfirmedHosts(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LargeRunHosts = 1 })
	bearer := e.apiToken("operator")
	before := e.snapshot()
	const two = "/autoadmin/module_run/?ModuleID=1003&hosts=192.168.1.10,192.168.1.20"
	for _, tc := range []struct{ query, want string }{
		{two, "send confirmed_hosts"},
		{two + "&confirmed_hosts=1", "confirmed_hosts is 1 but the run has 2 hosts"},
		{two + "&confirmed_hosts=two", `confirmed_hosts "two" is not a host count`},
		{two + "&confirmed_hosts=0", "is not a host count"},
		{two + "&confirmed_hosts=2&confirmed_hosts=2", "given 2 times"},
	} {
		e.do(req{method: "GET", path: tc.query, header: bearer}).want(t, http.StatusBadRequest, tc.want)
	}
	e.master.assertNoCall(t)
	e.assertUnchanged(before)

	ch := e.moduleRunAsync(two+"&confirmed_hosts=2", bearer)
	call := e.master.nextCall(t)
	if call.Task.ConfirmedHosts != 2 || len(call.Task.Hosts) != 2 {
		t.Fatalf("task %+v", call.Task)
	}
	call.send(t, result("192.168.1.10", "sn2012-07-010", task.StatusOK, "ok"))
	call.send(t, result("192.168.1.20", "sn2013-08-020", task.StatusOK, "ok"))
	call.Finish <- nil
	if r := waitResp(t, ch); r.code != http.StatusOK || strings.Count(r.body, "<b>成功</b>") != 2 {
		t.Fatalf("reply %d %q", r.code, r.body)
	}
}
