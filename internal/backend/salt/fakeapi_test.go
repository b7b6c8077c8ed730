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
		http.Error(w, "Could not authenticate using provided credentials", http.StatusUnauthorized)
		return
	}
	token := fmt.Sprintf("%040x", f.logins)
	now := time.Now()
	exp := now.Add(f.ttl)
	f.tokens[token] = exp
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
	exp, known := f.tokens[token]
	if f.reject || !known || time.Now().After(exp) {
		f.mu.Unlock()
		http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
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
		http.Error(w, "<html><body>500 Internal Server Error</body></html>", status)
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
		ret[minion] = f.cmdRunAll(chunk)
	}
	writeJSON(w, map[string]any{"return": []any{ret}})
}

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
	// Like salt, the command is not stopped when the API client goes away.
	cmd := exec.CommandContext(f.ctx, shell, "-c", command)
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
	out, errOut := stdout.String(), stderr.String()
	if kw["rstrip"] != false {
		out, errOut = strings.TrimRight(out, " \t\r\n"), strings.TrimRight(errOut, " \t\r\n")
	}
	return map[string]any{"pid": pid, "retcode": code, "stdout": out, "stderr": errOut}
}
