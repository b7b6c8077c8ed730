package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
)

// freeAddrs returns n distinct free loopback addresses for servers the
// test starts. All n listeners are held until every address is chosen, so
// the kernel cannot hand the same port out twice.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// waitHTTP polls url until it answers 200, within a bounded time.
func waitHTTP(t *testing.T, url string, errc <-chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-errc:
			t.Fatalf("server exited while starting: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", url)
}

// TestMasterAndWebCommands runs the production commands as an operator
// would configure them: `omserver master` (local backend, shipped modules)
// and `omserver web` (SQLite) from one config file, secrets from the
// environment; then logs in over HTTP, runs module 1003 on localhost through
// the relay, reads the result back from the API, and stops both gracefully.
func TestMasterAndWebCommands(t *testing.T) {
	dir := t.TempDir()
	addrs := freeAddrs(t, 3)
	relayAddr, masterHTTP, webAddr := addrs[0], addrs[1], addrs[2]
	dbPath := filepath.Join(dir, "om.db")
	cfg := writeConfig(t, fmt.Sprintf(`
log: {level: warn}
web:
  listen: %s
  secure_cookies: false
  database: {driver: sqlite, dsn: %s, migrate_on_start: true}
  masters: [%s]
  relay: {user: omuser, insecure: true, dial_timeout: 5s}
master:
  listen: %s
  http_listen: %s
  modules_dir: ../../modules
  backend: local
  journal: {path: %s}
  relay: {user: omuser}
`, webAddr, dbPath, relayAddr, relayAddr, masterHTTP, filepath.Join(dir, "journal.db")))
	t.Setenv("OMSERVER_SECRET_KEY", "e2e-secret-key-0123456789")
	t.Setenv("OMSERVER_RELAY_PASSWORD", "e2e-relay-password")

	if out, err := runCmd(t, "", "migrate", "--config", cfg); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "operator-password-1\n", "user", "add", "--config", cfg, "--role", "operator", "op"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	seedInventory(t, dbPath)

	ctx, stop := context.WithCancel(context.Background())
	masterErr, webErr := make(chan error, 1), make(chan error, 1)
	go func() { masterErr <- run(ctx, []string{"master", "--config", cfg}, nil, io.Discard, io.Discard) }()
	waitHTTP(t, "http://"+masterHTTP+"/healthz", masterErr)
	go func() { webErr <- run(ctx, []string{"web", "--config", cfg}, nil, io.Discard, io.Discard) }()
	waitHTTP(t, "http://"+webAddr+"/login", webErr)

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	base := "http://" + webAddr
	resp, err := client.PostForm(base+"/login", url.Values{"username": {"op"}, "password": {"operator-password-1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("login ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}

	resp, err = client.Post(base+"/api/v1/runs", "application/json",
		bytes.NewBufferString(`{"module_id":1003,"hosts":["127.0.0.1"],"params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	var started struct {
		RunID string `json:"run_id"`
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &started) != nil || started.RunID == "" {
		t.Fatalf("starting a run: %d %s", resp.StatusCode, body)
	}

	var got struct {
		Status  task.RunStatus `json:"status"`
		Results []struct {
			Status string `json:"status"`
			Stdout string `json:"stdout"`
		} `json:"results"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/api/v1/runs/" + started.RunID)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("run %s: %v: %s", started.RunID, err, body)
		}
		if got.Status != task.RunRunning {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got.Status != task.RunOK || len(got.Results) != 1 || got.Results[0].Status != "ok" || !strings.Contains(got.Results[0].Stdout, "Linux") {
		t.Fatalf("run through omserver web -> relay -> omserver master: %+v", got)
	}

	resp, err = client.Get("http://" + masterHTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `omserver_master_host_results_total{status="ok"} 1`) {
		t.Errorf("master metrics do not count the run:\n%.2000s", metrics)
	}

	stop()
	for name, errc := range map[string]chan error{"master": masterErr, "web": webErr} {
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("%s exited with %v", name, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%s did not stop", name)
		}
	}
}

// seedInventory puts the original categories and localhost in the database.
func seedInventory(t *testing.T, dbPath string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.SeedOriginal(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertServer(ctx, store.Server{IP: "127.0.0.1", Name: "localhost", OS: "Linux", AppID: 1}); err != nil {
		t.Fatal(err)
	}
}
