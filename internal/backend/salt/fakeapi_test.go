package salt

// An in-test salt-api that follows the documented rest_cherrypy wire format:
// https://docs.saltproject.io/en/latest/ref/netapi/all/salt.netapi.rest_cherrypy.html
// (POST /login -> {"return": [{"token", "expire", "start", "user", "eauth",
// "perms"}]} or 401; POST / with X-Auth-Token and a JSON lowstate list ->
// {"return": [{minion: result}]} or 401), running cmd.run_all the way
// https://docs.saltproject.io/en/latest/ref/modules/all/salt.modules.cmdmod.html#salt.modules.cmdmod.run_all
// describes it: the command through `shell -c` when python_shell is true,
// stdin fed from the stdin kwarg, trailing whitespace stripped unless
// rstrip is False, answering {"pid", "retcode", "stdout", "stderr"}.
//
// It models salt-api's behaviour over time, from its source
// (salt/netapi/rest_cherrypy/app.py and salt/client/__init__.py):
//   - Tokens expire: each login's token lives ttl; a request with an
//     unknown or expired token is refused with 401 before anything runs.
//   - A synchronous "local" call publishes the job, then waits for it; while
//     it waits, LocalClient polls the minion with saltutil.find_job using
//     the caller's eauth token (gather_job_info). When the token has expired
//     by then, the poll raises EauthAuthenticationError, which
//     hypermedia_handler turns into HTTP 401, while the job runs on on the
//     minion. The fake checks the token every findJobEvery (salt polls every
//     lowstate "timeout" seconds; the fake polls faster to keep tests short)
//     and answers 401 the same way, leaving the command running.
//   - Every error is CherryPy's XHTML error page (cherrypy/_cperror.py,
//     _HTTPErrorTemplate), about 1 KB, with the message in a <p>.
//   - cmd.run_all's timeout kwarg kills the command after that many seconds.
// It counts the commands it starts (executions), so a test can prove a
// command ran exactly once.

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
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

// minionMode says how a fake minion answers.
type minionMode int

const (
	minionRuns      minionMode = iota // runs the command for real
	minionAbsent                      // missing from the return
	minionFalse                       // maps to false
	minionNoReturn                    // "Minion did not return. [No response]"
	minionErrString                   // a function error string
	minionHangs                       // never answers: the request waits until the client goes away
	minionNoRetcode                   // a dictionary without retcode
)

type fakeSaltAPI struct {
	t        *testing.T
	srv      *httptest.Server
	caFile   string
	user     string
	password string
	eauth    string
	ttl      time.Duration

	mu       sync.Mutex
	minions  map[string]minionMode
	tokens   map[string]time.Time // token -> expiry
	logins   int
	runs     []recordedRun
	rawReply []byte          // when set, POST / answers exactly these bytes
	status   int             // when set, POST / answers this HTTP status
	reject   bool            // when set, POST / answers 401 whatever the token
	ctx      context.Context // ends at cleanup: commands outlive their request, as on a real minion

	findJobEvery time.Duration  // how often a running job's token is checked
	clockSkew    time.Duration  // the salt master's clock minus ours, for the login answer
	executions   map[string]int // commands started, by command line (kill scripts apart)
	kills        int            // kill scripts run (the backend stopping a command)
}

type recordedRun struct {
	Token string
	Chunk map[string]any
}

func newFakeSaltAPI(t *testing.T) *fakeSaltAPI {
	t.Helper()
	f := &fakeSaltAPI{
		t: t, user: "saltapi", password: "s3cret", eauth: "pam", ttl: time.Hour,
		minions: map[string]minionMode{}, tokens: map[string]time.Time{},
		findJobEvery: 50 * time.Millisecond, executions: map[string]int{},
	}

	var cancel context.CancelFunc
	f.ctx, cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", f.login)
	mux.HandleFunc("POST /{$}", f.run)
	f.srv = httptest.NewTLSServer(mux) // listens on 127.0.0.1
	t.Cleanup(f.srv.Close)
	// Registered after Close so it runs first: Close waits for handlers,
	// which wait for their commands.
	t.Cleanup(cancel)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeSaltAPI) setMinion(name string, m minionMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.minions[name] = m
}

func (f *fakeSaltAPI) expireAllTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.tokens {
		f.tokens[k] = time.Now().Add(-time.Second)
	}
}

// executed returns how many times commands containing marker were started.
func (f *fakeSaltAPI) executed(marker string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for c, k := range f.executions {
		if strings.Contains(c, marker) {
			n += k
		}
	}
	return n
}

func (f *fakeSaltAPI) killCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kills
}

// tokenValid reports whether token is known and unexpired; f.mu is held.
func (f *fakeSaltAPI) tokenValid(token string) bool {
	exp, known := f.tokens[token]
	return known && time.Now().Before(exp)
}

func (f *fakeSaltAPI) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

func (f *fakeSaltAPI) recorded() []recordedRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRun(nil), f.runs...)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeSaltAPI) login(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" || r.Header.Get("Accept") != "application/json" {
		http.Error(w, "unexpected content type "+ct, http.StatusBadRequest)
		return
	}
	var creds map[string]string
	if err := json.NewDecoder(r.Body).Decode(&creds); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins++
	if creds["username"] != f.user || creds["password"] != f.password || creds["eauth"] != f.eauth {
		// rest_cherrypy answers 401 "Could not authenticate using provided credentials".
		cherryPyError(w, http.StatusUnauthorized, "Could not authenticate using provided credentials")
		return
	}
	token := fmt.Sprintf("%040x", f.logins)
	now := time.Now()
	exp := now.Add(f.ttl)
	f.tokens[token] = exp
	// start and expire are on the salt master's clock.
	now, exp = now.Add(f.clockSkew), exp.Add(f.clockSkew)
	w.Header().Set("X-Auth-Token", token)
	writeJSON(w, map[string]any{"return": []map[string]any{{
		"token": token, "start": float64(now.UnixNano()) / 1e9, "expire": float64(exp.UnixNano()) / 1e9,
		"user": creds["username"], "eauth": creds["eauth"], "perms": []string{".*"},
	}}})
}

func (f *fakeSaltAPI) run(w http.ResponseWriter, r *http.Request) {
	// The backend sends JSON lowstate and asks for a JSON answer.
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
		http.Error(w, "want Content-Type and Accept application/json", http.StatusNotAcceptable)
		return
	}
	token := r.Header.Get("X-Auth-Token")
	var chunks []map[string]any
	if err := json.NewDecoder(r.Body).Decode(&chunks); err != nil || len(chunks) != 1 {
		http.Error(w, fmt.Sprintf("lowstate must be a list of one chunk: %v", err), http.StatusBadRequest)
		return
	}
	chunk := chunks[0]
	f.mu.Lock()
	if f.reject || !f.tokenValid(token) {
		f.mu.Unlock()
		cherryPyError(w, http.StatusUnauthorized, "")
		return
	}
	f.runs = append(f.runs, recordedRun{Token: token, Chunk: chunk})
	raw, status := f.rawReply, f.status
	tgt, _ := chunk["tgt"].([]any)
	var minion string
	if len(tgt) == 1 {
		minion, _ = tgt[0].(string)
	}
	mode, exists := f.minions[minion]
	f.mu.Unlock()

	if status != 0 {
		cherryPyError(w, status, "")
		return
	}
	if raw != nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
		return
	}
	if chunk["client"] != "local" || chunk["tgt_type"] != "list" || chunk["fun"] != "cmd.run_all" {
		http.Error(w, "unexpected lowstate", http.StatusBadRequest)
		return
	}
	ret := map[string]any{}
	switch {
	case !exists || mode == minionAbsent:
	case mode == minionFalse:
		ret[minion] = false
	case mode == minionNoReturn:
		ret[minion] = "Minion did not return. [No response]"
	case mode == minionErrString:
		ret[minion] = "'cmd.run_all' is not available."
	case mode == minionNoRetcode:
		ret[minion] = map[string]any{"pid": 1, "stdout": "x"}
	default:
		done := make(chan map[string]any, 1)
		go func() { done <- f.cmdRunAll(chunk) }()
		poll := time.NewTicker(f.findJobEvery)
		defer poll.Stop()
	wait:
		for {
			select {
			case r := <-done:
				ret[minion] = r
				break wait
			case <-poll.C:
				// LocalClient's saltutil.find_job poll, with the caller's
				// token: refused once it expired, the job runs on.
				f.mu.Lock()
				ok := f.tokenValid(token)
				f.mu.Unlock()
				if !ok {
					cherryPyError(w, http.StatusUnauthorized, "")
					return
				}
			case <-r.Context().Done():
				return
			}
		}
	}
	writeJSON(w, map[string]any{"return": []any{ret}})
}

// cherryPyError answers the way CherryPy renders an HTTPError
// (cherrypy/_cperror.py get_error_page with _HTTPErrorTemplate): an XHTML
// page with the status in <title> and <h2>, the message (the status's
// standard text when none is given) in <p>, the traceback in <pre>.
func cherryPyError(w http.ResponseWriter, status int, message string) {
	if message == "" {
		message = cherryPyMessages[status]
	}
	st := fmt.Sprintf("%d %s", status, http.StatusText(status))
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, cherryPyTemplate, st, st, html.EscapeString(message), "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/cherrypy/_cprequest.py\", line 659, in respond\n    self._do_respond(path_info)\n")
}

// cherryPyMessages are the default messages CherryPy takes from
// http.server's status table for the statuses salt-api raises.
var cherryPyMessages = map[int]string{
	http.StatusUnauthorized:        "No permission -- see authorization schemes",
	http.StatusInternalServerError: "Server got itself in trouble",
	http.StatusServiceUnavailable:  "The server cannot process the request due to a high load",
	http.StatusGatewayTimeout:      "The gateway server did not receive a timely response",
}

const cherryPyTemplate = `<!DOCTYPE html PUBLIC
"-//W3C//DTD XHTML 1.0 Transitional//EN"
"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html>
<head>
    <meta http-equiv="Content-Type" content="text/html; charset=utf-8"></meta>
    <title>%s</title>
    <style type="text/css">
    #powered_by {
        margin-top: 20px;
        border-top: 2px solid black;
        font-style: italic;
    }

    #traceback {
        color: red;
    }
    </style>
</head>
    <body>
        <h2>%s</h2>
        <p>%s</p>
        <pre id="traceback">%s</pre>
    <div id="powered_by">
      <span>
        Powered by <a href="http://www.cherrypy.dev">CherryPy 18.9.0</a>
      </span>
    </div>
    </body>
</html>
`

// cmdRunAll runs the chunk's command as cmd.run_all would on a minion.
func (f *fakeSaltAPI) cmdRunAll(chunk map[string]any) map[string]any {
	args, _ := chunk["arg"].([]any)
	kw, _ := chunk["kwarg"].(map[string]any)
	if len(args) != 1 || kw["python_shell"] != true {
		return map[string]any{"pid": 0, "retcode": 1, "stdout": "", "stderr": "fake minion: expected one arg and python_shell=True"}
	}
	command, _ := args[0].(string)
	shell, _ := kw["shell"].(string)
	if shell == "" {
		shell = "/bin/sh"
	}
	f.mu.Lock()
	if strings.Contains(command, "pgrep -f") {
		f.kills++
	} else {
		f.executions[command]++
	}
	f.mu.Unlock()
	// Like salt, the command is not stopped when the API client goes away;
	// cmd.run_all's timeout kwarg kills it.
	ctx := f.ctx
	if secs, ok := kw["timeout"].(float64); ok && secs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(secs*float64(time.Second)))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, shell, "-c", command)
	cmd.WaitDelay = 5 * time.Second
	if in, ok := kw["stdin"].(string); ok {
		cmd.Stdin = strings.NewReader(in)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	// The exit code is the process's, even when the output copy outran
	// WaitDelay on a loaded machine (exec.ErrWaitDelay).
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	} else if err == nil {
		code = 0
	}
	pid := 0
	if cmd.Process != nil {
		pid = cmd.Process.Pid
	}
	out, errOut := stdout.String(), stderr.String()
	if kw["rstrip"] != false {
		out, errOut = strings.TrimRight(out, " \t\r\n"), strings.TrimRight(errOut, " \t\r\n")
	}
	return map[string]any{"pid": pid, "retcode": code, "stdout": out, "stderr": errOut}
}
