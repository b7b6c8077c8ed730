package main

// An in-test salt-api for the fault suite's salt scenario, following the
// documented rest_cherrypy wire format
// (https://docs.saltproject.io/en/latest/ref/netapi/all/salt.netapi.rest_cherrypy.html):
// POST /login with {"username", "password", "eauth"} answers
// {"return": [{"token", "start", "expire", "user", "eauth", "perms"}]} or
// 401; POST / with X-Auth-Token and a JSON lowstate list runs the "local"
// client's cmd.run_all
// (https://docs.saltproject.io/en/latest/ref/modules/all/salt.modules.cmdmod.html#salt.modules.cmdmod.run_all):
// the command through `shell -c`, answering {minion: {"pid", "retcode",
// "stdout", "stderr"}}. It models what issue 7 saw on salt-api 3006: while
// a synchronous local call waits for its job, salt's LocalClient polls the
// minion with saltutil.find_job under the caller's token
// (salt/client/__init__.py, gather_job_info); once that token is no longer
// valid the poll raises EauthAuthenticationError, which rest_cherrypy
// answers with HTTP 401 (a CherryPy XHTML error page), while the job runs
// on. Tokens can be invalidated early (as a salt master restart drops
// them) with dropTokens. Every minion is this host: the command gets the
// minion id in OMS_FAKE_MINION, so the counted module can record which
// "minion" ran it. internal/backend/salt has a fuller fake for the
// backend's own tests; this one serves a master process.

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type saltFake struct {
	srv    *httptest.Server
	caFile string
	ctx    context.Context // ends at cleanup: jobs outlive their request, as on a minion

	mu       sync.Mutex
	tokens   map[string]bool
	logins   int
	commands map[string]int // cmd.run_all calls, by minion, kill scripts apart
	kills    int
}

const saltUser = "omserver"

func newSaltFake(t *testing.T) *saltFake {
	t.Helper()
	f := &saltFake{tokens: map[string]bool{}, commands: map[string]int{}}
	var cancel context.CancelFunc
	f.ctx, cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", f.login)
	mux.HandleFunc("POST /{$}", f.run)
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	t.Cleanup(cancel) // runs first: Close waits for handlers, which wait for jobs
	f.caFile = filepath.Join(t.TempDir(), "salt-ca.pem")
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// dropTokens invalidates every token, as a salt master restart does.
func (f *saltFake) dropTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

func (f *saltFake) counts() (commands map[string]int, kills int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.commands {
		out[k] = v
	}
	return out, f.kills
}

func (f *saltFake) login(w http.ResponseWriter, r *http.Request) {
	var creds map[string]string
	if err := json.NewDecoder(r.Body).Decode(&creds); err != nil {
		cherryPyPage(w, http.StatusBadRequest, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins++
	if creds["username"] != saltUser || creds["password"] != faultSaltPassword || creds["eauth"] != "pam" {
		cherryPyPage(w, http.StatusUnauthorized, "Could not authenticate using provided credentials")
		return
	}
	token := fmt.Sprintf("%040x", f.logins)
	f.tokens[token] = true
	now := time.Now()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"return": []map[string]any{{
		"token": token, "start": float64(now.UnixNano()) / 1e9, "expire": float64(now.Add(12*time.Hour).UnixNano()) / 1e9,
		"user": saltUser, "eauth": "pam", "perms": []string{".*"},
	}}})
}

func (f *saltFake) run(w http.ResponseWriter, r *http.Request) {
	token := r.Header.Get("X-Auth-Token")
	var chunks []struct {
		Client  string         `json:"client"`
		Tgt     []string       `json:"tgt"`
		TgtType string         `json:"tgt_type"`
		Fun     string         `json:"fun"`
		Arg     []string       `json:"arg"`
		Kwarg   map[string]any `json:"kwarg"`
	}
	if err := json.NewDecoder(r.Body).Decode(&chunks); err != nil || len(chunks) != 1 {
		cherryPyPage(w, http.StatusBadRequest, "lowstate must be a list of one chunk")
		return
	}
	c := chunks[0]
	if c.Client != "local" || c.TgtType != "list" || c.Fun != "cmd.run_all" || len(c.Tgt) != 1 || len(c.Arg) != 1 {
		cherryPyPage(w, http.StatusBadRequest, "unexpected lowstate")
		return
	}
	f.mu.Lock()
	valid := f.tokens[token]
	f.mu.Unlock()
	if !valid {
		cherryPyPage(w, http.StatusUnauthorized, "No permission -- see authorization schemes")
		return
	}
	minion, command := c.Tgt[0], c.Arg[0]
	f.mu.Lock()
	if strings.Contains(command, "pgrep -f") {
		f.kills++
	} else {
		f.commands[minion]++
	}
	f.mu.Unlock()
	done := make(chan map[string]any, 1)
	go func() { done <- f.runAll(minion, command, c.Kwarg) }()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case res := <-done:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"return": []any{map[string]any{minion: res}}})
			return
		case <-poll.C:
			// saltutil.find_job under the caller's token: refused once the
			// token is gone, while the job runs on.
			f.mu.Lock()
			ok := f.tokens[token]
			f.mu.Unlock()
			if !ok {
				cherryPyPage(w, http.StatusUnauthorized, "No permission -- see authorization schemes")
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// runAll runs a command as cmd.run_all does on a minion; the job is not
// stopped when the API call ends (its timeout kwarg kills it).
func (f *saltFake) runAll(minion, command string, kw map[string]any) map[string]any {
	shell, _ := kw["shell"].(string)
	if shell == "" {
		shell = "/bin/sh"
	}
	ctx := f.ctx
	if secs, ok := kw["timeout"].(float64); ok && secs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(secs*float64(time.Second)))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, shell, "-c", command)
	cmd.Env = append(os.Environ(), "OMS_FAKE_MINION="+minion)
	cmd.WaitDelay = time.Second
	if in, ok := kw["stdin"].(string); ok {
		cmd.Stdin = strings.NewReader(in)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	pid := 0
	if cmd.Process != nil {
		pid = cmd.Process.Pid
	}
	return map[string]any{"pid": pid, "retcode": code, "stdout": stdout.String(), "stderr": stderr.String()}
}

// cherryPyPage answers as CherryPy renders an HTTPError
// (cherrypy/_cperror.py, _HTTPErrorTemplate): XHTML, the message in <p>.
func cherryPyPage(w http.ResponseWriter, status int, msg string) {
	st := fmt.Sprintf("%d %s", status, http.StatusText(status))
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html>
<head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></meta><title>%s</title></head>
    <body>
        <h2>%s</h2>
        <p>%s</p>
        <pre id="traceback">Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/cherrypy/_cprequest.py", line 659, in respond
</pre>
    <div id="powered_by"><span>Powered by <a href="http://www.cherrypy.dev">CherryPy 18.9.0</a></span></div>
    </body>
</html>
`, st, st, msg)
}
