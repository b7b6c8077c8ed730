package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/task"
)

// BenchmarkWebRelayMasterOneHost measures what the web tier and the relay
// add to a one-host run (issue 8's target: at most 5 ms at p50). Each
// iteration runs module 1003 on 127.0.0.1 twice, through the demo's real
// parts: once as an operator does (POST /api/v1/runs over HTTP, then the
// run's event stream until its done event: the web tier records the run,
// seals the task, sends it over the TLS relay, and stores and streams the
// result), once handed to the same master directly. The difference of the
// two medians is the overhead.
func BenchmarkWebRelayMasterOneHost(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := Start(ctx, Options{Listen: "127.0.0.1:0", DataDir: b.TempDir(), ModulesDir: "../../modules", Log: zerolog.Nop()})
	if err != nil {
		b.Fatalf("demo did not start: %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = inst.Close(ctx)
	})
	client := loggedInClient(b, inst)
	host := []task.Host{{IP: localhostIP, Name: localhostName}}

	var viaWeb, direct []time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		tk := task.Task{RunID: fmt.Sprintf("bench-direct-%d-%d", time.Now().UnixNano(), i), ModuleID: 1003, Hosts: host,
			User: "bench", IssuedAt: time.Now(), Nonce: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)}
		ok := false
		if err := inst.master.Run(ctx, tk, func(ev task.Event) {
			if ev.Type == task.EventResult && ev.Result.Status == task.StatusOK {
				ok = true
			}
		}); err != nil || !ok {
			b.Fatalf("direct run: %v (ok %v)", err, ok)
		}
		direct = append(direct, time.Since(t0))

		t1 := time.Now()
		runThroughWeb(b, client, inst.URL)
		viaWeb = append(viaWeb, time.Since(t1))
	}
	b.StopTimer()
	web, master := median(viaWeb), median(direct)
	b.ReportMetric(ms(web), "web-p50-ms")
	b.ReportMetric(ms(master), "master-p50-ms")
	b.ReportMetric(ms(web-master), "overhead-p50-ms")
}

// loggedInClient logs in as the demo's admin, as a browser does.
func loggedInClient(b *testing.B, inst *Instance) *http.Client {
	b.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := client.PostForm(inst.URL+"/login", url.Values{"username": {AdminUser}, "password": {inst.AdminPassword}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(inst.URL)
	if len(jar.Cookies(u)) == 0 {
		b.Fatalf("login refused: %s", resp.Status)
	}
	return client
}

// runThroughWeb starts module 1003 on localhost and reads the run's event
// stream until its done event, which must say ok.
func runThroughWeb(b *testing.B, client *http.Client, base string) {
	b.Helper()
	resp, err := client.Post(base+"/api/v1/runs", "application/json", strings.NewReader(`{"module_id":1003,"hosts":["127.0.0.1"]}`))
	if err != nil {
		b.Fatal(err)
	}
	var started struct {
		RunID string `json:"run_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		b.Fatalf("starting a run: %s %v", resp.Status, err)
	}
	ev, err := client.Get(base + "/api/v1/runs/" + started.RunID + "/events")
	if err != nil {
		b.Fatal(err)
	}
	defer ev.Body.Close()
	sc := bufio.NewScanner(ev.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	done := false
	for sc.Scan() {
		if done {
			if !strings.Contains(sc.Text(), `"status":"ok"`) {
				b.Fatalf("run %s ended: %s", started.RunID, sc.Text())
			}
			return
		}
		done = sc.Text() == "event: done"
	}
	b.Fatalf("run %s: the event stream ended without a done event (%v)", started.RunID, sc.Err())
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
