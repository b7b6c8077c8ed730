package notify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/task"
	"github.com/omserver/omserver-go/internal/testutil/mysqltest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openSQLite(t *testing.T) *store.Store {
	t.Helper()
	return openAt(t, store.DialectSQLite, filepath.Join(t.TempDir(), "n.db"))
}

// openAt opens and migrates the database at dsn; a second call on the same
// dsn is a second handle, as a second web tier has.
func openAt(t *testing.T, driver, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func newNotifier(t *testing.T, st *store.Store, mutate ...func(*Config)) *Notifier {
	t.Helper()
	cfg := Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, SendTimeout: 5 * time.Second, MaxAttempts: 3}
	for _, m := range mutate {
		m(&cfg)
	}
	n, err := New(cfg, st, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func addChannel(t *testing.T, st *store.Store, ch Channel) Channel {
	t.Helper()
	if err := ch.Validate(); err != nil {
		t.Fatalf("channel %q refused: %v", ch.Name, err)
	}
	sc, err := ToStore(ch)
	if err != nil {
		t.Fatal(err)
	}
	ch.ID, err = st.CreateNotifyChannel(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

var sample = Message{Event: EventFailed, RunID: "r1", ModuleID: 1007, ModuleName: "重启进程服务", User: "ops",
	Status: "done", Hosts: 3, Summary: map[task.Status]int{task.StatusOK: 2, task.StatusFailed: 1}, At: time.Unix(1700000000, 0).UTC()}

// capture is an HTTP receiver on loopback that runs check on every request
// and answers with the status and body it returns.
type capture struct {
	mu   sync.Mutex
	reqs []captured
}

type captured struct {
	Header http.Header
	Query  string
	Body   []byte
}

func (c *capture) server(t *testing.T, answer func(n int, r captured) (int, string)) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cr := captured{Header: r.Header.Clone(), Query: r.URL.RawQuery, Body: body}
		c.mu.Lock()
		c.reqs = append(c.reqs, cr)
		n := len(c.reqs)
		c.mu.Unlock()
		status, text := answer(n, cr)
		w.WriteHeader(status)
		io.WriteString(w, text)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (c *capture) all() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]captured(nil), c.reqs...)
}

func TestWebhookIsSignedAndVerifies(t *testing.T) {
	var c capture
	ts := c.server(t, func(int, captured) (int, string) { return 200, "ok" })
	st := openSQLite(t)
	n := newNotifier(t, st)
	ch := Channel{Name: "hook", Kind: KindWebhook, Enabled: true, Events: []string{EventFailed}, Settings: Settings{URL: ts.URL + "/hook", Secret: "s3cret"}}
	if err := n.send(testCtx(t), ch, sample, 42); err != nil {
		t.Fatal(err)
	}
	got := c.all()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	r := got[0]
	if err := VerifyWebhook("s3cret", r.Header, r.Body, time.Now(), 5*time.Minute); err != nil {
		t.Fatalf("signature does not verify: %v (headers %v)", err, r.Header)
	}
	if err := VerifyWebhook("other", r.Header, r.Body, time.Now(), 5*time.Minute); err == nil {
		t.Fatal("a wrong secret verified")
	}
	tampered := append([]byte(nil), r.Body...)
	tampered[len(tampered)-2] ^= 1
	if err := VerifyWebhook("s3cret", r.Header, tampered, time.Now(), 5*time.Minute); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := VerifyWebhook("s3cret", r.Header, r.Body, time.Now().Add(time.Hour), 5*time.Minute); err == nil {
		t.Fatal("an old timestamp verified")
	}
	if r.Header.Get(HeaderDelivery) != "42" || r.Header.Get(HeaderEvent) != EventFailed {
		t.Errorf("delivery/event headers = %q/%q", r.Header.Get(HeaderDelivery), r.Header.Get(HeaderEvent))
	}
	var m Message
	if err := json.Unmarshal(r.Body, &m); err != nil || m.RunID != "r1" || m.Summary[task.StatusFailed] != 1 || m.ModuleName != "重启进程服务" {
		t.Fatalf("body = %s (%v)", r.Body, err)
	}
}

// Signature formats are checked with values computed independently
// (python3: hmac.new(...).digest(), base64) for fixed timestamps.
func TestRobotSignatures(t *testing.T) {
	// DingTalk: HMAC-SHA256(key=secret, msg="1700000000000\nSECabc").
	if got := DingTalkSign("SECabc", 1700000000000); got != dingTalkVector {
		t.Errorf("DingTalkSign = %s, want %s", got, dingTalkVector)
	}
	// Feishu: HMAC-SHA256(key="1700000000\nabc", msg="").
	if got := FeishuSign("abc", 1700000000); got != feishuVector {
		t.Errorf("FeishuSign = %s, want %s", got, feishuVector)
	}
}

func TestRobots(t *testing.T) {
	tests := []struct {
		kind   string
		secret string
		answer string
		check  func(t *testing.T, r captured)
		want   string // error text wanted; "" for success
	}{
		{kind: KindDingTalk, secret: "SECxyz", answer: `{"errcode":0,"errmsg":"ok"}`, check: func(t *testing.T, r captured) {
			q := parseQuery(t, r.Query)
			ms, _ := strconv.ParseInt(q.Get("timestamp"), 10, 64)
			if q.Get("access_token") != "tok" || q.Get("sign") != DingTalkSign("SECxyz", ms) || time.Since(time.UnixMilli(ms)) > time.Minute {
				t.Errorf("query = %s", r.Query)
			}
			var b struct {
				MsgType  string            `json:"msgtype"`
				Markdown map[string]string `json:"markdown"`
			}
			if err := json.Unmarshal(r.Body, &b); err != nil || b.MsgType != "markdown" || !strings.Contains(b.Markdown["text"], "failed 1") {
				t.Errorf("body = %s", r.Body)
			}
		}},
		{kind: KindDingTalk, answer: `{"errcode":310000,"errmsg":"sign not match"}`, want: "errcode 310000"},
		{kind: KindWeCom, answer: `{"errcode":0,"errmsg":"ok"}`, check: func(t *testing.T, r captured) {
			var b struct {
				MsgType  string            `json:"msgtype"`
				Markdown map[string]string `json:"markdown"`
			}
			if err := json.Unmarshal(r.Body, &b); err != nil || b.MsgType != "markdown" || !strings.Contains(b.Markdown["content"], "重启进程服务") {
				t.Errorf("body = %s", r.Body)
			}
		}},
		{kind: KindWeCom, answer: `{"errcode":93000,"errmsg":"invalid webhook url"}`, want: "errcode 93000"},
		{kind: KindFeishu, secret: "fs", answer: `{"code":0,"msg":"success","data":{}}`, check: func(t *testing.T, r captured) {
			var b struct {
				Timestamp string            `json:"timestamp"`
				Sign      string            `json:"sign"`
				MsgType   string            `json:"msg_type"`
				Content   map[string]string `json:"content"`
			}
			if err := json.Unmarshal(r.Body, &b); err != nil {
				t.Fatal(err)
			}
			sec, _ := strconv.ParseInt(b.Timestamp, 10, 64)
			if b.Sign != FeishuSign("fs", sec) || b.MsgType != "text" || !strings.Contains(b.Content["text"], "运行失败") {
				t.Errorf("body = %s", r.Body)
			}
		}},
		{kind: KindFeishu, answer: `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`, want: "code 19021"},
		{kind: KindFeishu, answer: `<html>proxy error</html>`, want: "without a code"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.answer, func(t *testing.T) {
			var c capture
			ts := c.server(t, func(int, captured) (int, string) { return 200, tt.answer })
			n := newNotifier(t, openSQLite(t))
			ch := Channel{Name: "r", Kind: tt.kind, Enabled: true, Events: []string{EventFailed}, Settings: Settings{URL: ts.URL + "/send?access_token=tok", Secret: tt.secret}}
			if err := ch.Validate(); err != nil {
				t.Fatal(err)
			}
			err := n.send(testCtx(t), ch, sample, 1)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, c.all()[0])
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "tok") {
				t.Errorf("error shows the robot's token: %v", err)
			}
		})
	}
}

// A 500 is retried with backoff until the receiver takes it; after
// MaxAttempts failures the row is given up.
func TestOutboxRetriesAndGivesUp(t *testing.T) {
	var failFirst atomic.Int32
	failFirst.Store(2)
	var c capture
	ts := c.server(t, func(n int, _ captured) (int, string) {
		if failFirst.Add(-1) >= 0 {
			return 500, "busy"
		}
		return 200, "ok"
	})
	st := openSQLite(t)
	ctx := testCtx(t)
	ch := addChannel(t, st, Channel{Name: "hook", Kind: KindWebhook, Enabled: true, Events: []string{EventFailed}, Settings: Settings{URL: ts.URL, Secret: "k"}})
	n := newNotifier(t, st, func(c *Config) { c.MaxAttempts = 5 })
	if err := n.Enqueue(ctx, sample); err != nil {
		t.Fatal(err)
	}
	// First pass: the receiver answers 500; the row waits for its backoff.
	if k, err := n.SendDue(ctx); err != nil || k != 0 {
		t.Fatalf("first pass sent %d, %v", k, err)
	}
	rows, _ := st.ListNotifyOutbox(ctx, ch.ID, 0, 10)
	if len(rows) != 1 || rows[0].Status != store.OutboxPending || rows[0].Attempts != 1 || !strings.Contains(rows[0].LastError, "500") || !rows[0].NextAt.After(rows[0].CreatedAt) {
		t.Fatalf("after a 500: %+v", rows)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := n.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		rows, _ = st.ListNotifyOutbox(ctx, ch.ID, 0, 10)
		if rows[0].Status == store.OutboxSent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not sent in time: %+v", rows)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if rows[0].Attempts != 3 || rows[0].LastError != "" || !rows[0].SentAt.Valid || len(c.all()) != 3 {
		t.Errorf("sent row = %+v after %d requests; want 3 attempts (two 500s, then 200)", rows[0], len(c.all()))
	}
	// The same delivery id on every attempt, for receivers to deduplicate.
	for _, r := range c.all() {
		if r.Header.Get(HeaderDelivery) != strconv.FormatInt(rows[0].ID, 10) {
			t.Errorf("delivery header %q, want %d", r.Header.Get(HeaderDelivery), rows[0].ID)
		}
	}

	// A channel that never answers is given up after MaxAttempts.
	never := addChannel(t, st, Channel{Name: "never", Kind: KindWebhook, Enabled: true, Events: []string{EventFinished}, Settings: Settings{URL: "http://127.0.0.1:1/", Secret: "k"}})
	m := sample
	m.Event = EventFinished
	if err := n.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := n.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		r, _ := st.ListNotifyOutbox(ctx, never.ID, 0, 10)
		if r[0].Status == store.OutboxDead {
			if r[0].Attempts != 5 || !strings.Contains(r[0].LastError, "127.0.0.1") {
				t.Fatalf("dead row = %+v", r[0])
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the unreachable channel was never given up")
}

// Two tiers (two notifiers with their own owners) sending one outbox send
// each notification exactly once, on SQLite and MariaDB.
func TestTwoSendersSendOnce(t *testing.T) {
	for _, b := range []struct {
		name   string
		driver string
		dsn    func(*testing.T) string
	}{
		{"sqlite", store.DialectSQLite, func(t *testing.T) string { return filepath.Join(t.TempDir(), "n.db") }},
		{"mariadb", store.DialectMySQL, func(t *testing.T) string { return mysqltest.New(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := testCtx(t)
			var mu sync.Mutex
			seen := map[string]int{}
			var c capture
			ts := c.server(t, func(_ int, r captured) (int, string) {
				mu.Lock()
				seen[r.Header.Get(HeaderDelivery)]++
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
				return 200, "ok"
			})
			dsn := b.dsn(t)
			st := openAt(t, b.driver, dsn)
			addChannel(t, st, Channel{Name: "hook", Kind: KindWebhook, Enabled: true, Events: []string{EventFailed, EventFinished}, Settings: Settings{URL: ts.URL, Secret: "k"}})
			const total = 60
			for i := 0; i < total; i++ {
				m := sample
				m.RunID = "run" + strconv.Itoa(i)
				if err := newNotifier(t, st).Enqueue(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			// Two "tiers" with their own database handles, as two processes have.
			other := openAt(t, b.driver, dsn)
			a, bb := newNotifier(t, st, func(c *Config) { c.Owner = "tier-a" }), newNotifier(t, other, func(c *Config) { c.Owner = "tier-b" })
			var wg sync.WaitGroup
			var sentA, sentB atomic.Int64
			for _, x := range []struct {
				n   *Notifier
				cnt *atomic.Int64
			}{{a, &sentA}, {bb, &sentB}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 200; i++ {
						k, err := x.n.SendDue(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						x.cnt.Add(int64(k))
						mu.Lock()
						done := len(seen) >= total
						mu.Unlock()
						if done {
							return
						}
					}
				}()
			}
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != total {
				t.Fatalf("%d distinct notifications received, want %d", len(seen), total)
			}
			for id, k := range seen {
				if k != 1 {
					t.Errorf("delivery %s received %d times", id, k)
				}
			}
			if sentA.Load()+sentB.Load() != total {
				t.Errorf("senders report %d + %d sent, want %d in all", sentA.Load(), sentB.Load(), total)
			}
			t.Logf("tier a sent %d, tier b sent %d", sentA.Load(), sentB.Load())
		})
	}
}

// A tier that claimed rows and died leaves them to another tier once its
// lease runs out; a live lease is respected.
func TestLeaseExpiryHandsOver(t *testing.T) {
	st := openSQLite(t)
	ctx := testCtx(t)
	var c capture
	ts := c.server(t, func(int, captured) (int, string) { return 200, "ok" })
	addChannel(t, st, Channel{Name: "hook", Kind: KindWebhook, Enabled: true, Events: []string{EventFailed}, Settings: Settings{URL: ts.URL, Secret: "k"}})
	if err := newNotifier(t, st).Enqueue(ctx, sample); err != nil {
		t.Fatal(err)
	}
	claimed, err := st.ClaimNotifications(ctx, "dead-tier", 300*time.Millisecond, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %v, %v", claimed, err)
	}
	n := newNotifier(t, st, func(c *Config) { c.Owner = "live-tier" })
	if k, err := n.SendDue(ctx); err != nil || k != 0 {
		t.Fatalf("sent %d (%v) while another tier's lease runs", k, err)
	}
	time.Sleep(400 * time.Millisecond)
	if k, err := n.SendDue(ctx); err != nil || k != 1 {
		t.Fatalf("after the lease: sent %d (%v), want 1", k, err)
	}
	if err := st.NotificationSent(ctx, claimed[0].ID, "dead-tier"); err == nil {
		t.Fatal("the dead tier could still record the row it lost")
	}
}

func TestMailWithStartTLS(t *testing.T) {
	srv := newSMTPD(t, true, "ops", "pw")
	st := openSQLite(t)
	n := newNotifier(t, st)
	ch := Channel{Name: "mail", Kind: KindSMTP, Enabled: true, Events: []string{EventFailed}, Settings: Settings{
		Host: "127.0.0.1", Port: srv.port(), TLS: TLSStartTLS, CAFile: srv.caFile, Username: "ops", Password: "pw",
		From: "OMServer <omserver@example.com>", To: []string{"oncall@example.com", "运维 <ops@example.com>"}}}
	if err := ch.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := n.send(testCtx(t), ch, sample, 7); err != nil {
		t.Fatal(err)
	}
	mails := srv.received()
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	m := mails[0]
	if !m.TLS || m.Authed != "ops" || len(m.To) != 2 || !strings.Contains(m.From, "omserver@example.com") {
		t.Fatalf("mail = %+v", m)
	}
	head, body, _ := strings.Cut(m.Data, "\r\n\r\n")
	var subject string
	for _, l := range strings.Split(head, "\r\n") {
		if s, ok := strings.CutPrefix(l, "Subject: "); ok {
			subject, _ = new(mime.WordDecoder).DecodeHeader(s)
		}
	}
	if subject != sample.Subject() {
		t.Errorf("subject = %q, want %q", subject, sample.Subject())
	}
	text, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(body, "\r\n", ""))
	if err != nil || !strings.Contains(string(text), "failed 1") || !strings.Contains(string(text), "r1") {
		t.Errorf("body = %q (%v)", text, err)
	}

	// Wrong password: refused, and said so.
	ch.Settings.Password = "bad"
	if err := n.send(testCtx(t), ch, sample, 8); err == nil || !strings.Contains(err.Error(), "login") {
		t.Errorf("bad password: err = %v", err)
	}
	// A server without STARTTLS is never talked to in the clear.
	plain := newSMTPD(t, false, "", "")
	ch.Settings.Port, ch.Settings.Password = plain.port(), "pw"
	if err := n.send(testCtx(t), ch, sample, 9); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("no STARTTLS: err = %v", err)
	}
	if len(plain.received()) != 0 {
		t.Error("a mail was sent without TLS")
	}
	// An explicit plain relay without a password works.
	ch.Settings.TLS, ch.Settings.Username, ch.Settings.Password, ch.Settings.CAFile = TLSNone, "", "", ""
	if err := n.send(testCtx(t), ch, sample, 10); err != nil || len(plain.received()) != 1 {
		t.Errorf("plain relay: err = %v, %d mails", err, len(plain.received()))
	}
}

func TestValidate(t *testing.T) {
	ok := func() Channel {
		return Channel{Name: "x", Kind: KindWebhook, Events: []string{EventFailed}, Settings: Settings{URL: "https://hooks.example.com/x", Secret: "k"}}
	}
	mail := func() Channel {
		return Channel{Name: "m", Kind: KindSMTP, Events: []string{EventFinished}, Settings: Settings{Host: "smtp.example.com", From: "a@example.com", To: []string{"b@example.com"}, Username: "u", Password: "p"}}
	}
	tests := []struct {
		name   string
		mutate func(*Channel)
		want   string
	}{
		{"webhook ok", func(*Channel) {}, ""},
		{"mail ok", func(c *Channel) { *c = mail() }, ""},
		{"no name", func(c *Channel) { c.Name = " " }, "name"},
		{"bad kind", func(c *Channel) { c.Kind = "sms" }, "kind"},
		{"no events", func(c *Channel) { c.Events = nil }, "no event"},
		{"bad event", func(c *Channel) { c.Events = []string{"run.started"} }, "not one of"},
		{"dup event", func(c *Channel) { c.Events = []string{EventFailed, EventFailed} }, "twice"},
		{"webhook without secret", func(c *Channel) { c.Settings.Secret = "" }, "needs a secret"},
		{"ftp url", func(c *Channel) { c.Settings.URL = "ftp://x/y" }, "http"},
		{"url with password", func(c *Channel) { c.Settings.URL = "https://u:p@x/y" }, "user or password"},
		{"wecom with secret", func(c *Channel) { c.Kind = KindWeCom }, "no signing secret"},
		{"robot with mail fields", func(c *Channel) { c.Kind = KindDingTalk; c.Settings.Host = "x" }, "smtp channels only"},
		{"mail bad from", func(c *Channel) { *c = mail(); c.Settings.From = "nobody" }, "from"},
		{"mail header injection", func(c *Channel) { *c = mail(); c.Settings.To = []string{"a@example.com\r\nBcc: x@example.com"} }, "recipient"},
		{"mail no recipients", func(c *Channel) { *c = mail(); c.Settings.To = nil }, "recipients"},
		{"mail password in clear", func(c *Channel) { *c = mail(); c.Settings.TLS = TLSNone }, "never sent without TLS"},
		{"mail user without password", func(c *Channel) { *c = mail(); c.Settings.Password = "" }, "go together"},
		{"mail bad tls", func(c *Channel) { *c = mail(); c.Settings.TLS = "ssl" }, "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRedactShowsNoSecret(t *testing.T) {
	c := Channel{Name: "d", Kind: KindDingTalk, Events: []string{EventFailed}, Settings: Settings{URL: "https://oapi.dingtalk.com/robot/send?access_token=TOKEN123", Secret: "SECRET456"}}
	b, _ := json.Marshal(Redact(c))
	if strings.Contains(string(b), "TOKEN123") || strings.Contains(string(b), "SECRET456") || !strings.Contains(string(b), `"secret_set":true`) {
		t.Fatalf("view = %s", b)
	}
	m := Channel{Name: "m", Kind: KindSMTP, Settings: Settings{Password: "PW789", Username: "u"}}
	if b, _ := json.Marshal(Redact(m)); strings.Contains(string(b), "PW789") {
		t.Fatalf("view = %s", b)
	}
	// Blank secrets in an edit keep the stored ones.
	got := Merge(Settings{URL: "", Secret: ""}, c.Settings)
	if got.URL != c.Settings.URL || got.Secret != c.Settings.Secret {
		t.Fatalf("merge = %+v", got)
	}
}

func TestEventOf(t *testing.T) {
	tests := []struct {
		st   task.RunStatus
		sum  map[task.Status]int
		want string
	}{
		{task.RunDone, map[task.Status]int{task.StatusOK: 3}, EventFinished},
		{task.RunDone, map[task.Status]int{task.StatusOK: 3, task.StatusTimeout: 1}, EventFailed},
		{task.RunDone, map[task.Status]int{task.StatusOK: 3, task.StatusFailed: 0}, EventFinished},
		{task.RunCancelled, map[task.Status]int{task.StatusOK: 3}, EventFailed},
		{task.RunInterrupted, nil, EventFailed},
		{task.RunOK, map[task.Status]int{task.StatusOK: 3}, EventFinished},
		{task.RunPartial, map[task.Status]int{task.StatusOK: 2, task.StatusFailed: 1}, EventFailed},
		{task.RunFailed, map[task.Status]int{task.StatusFailed: 3}, EventFailed},
	}
	for _, tt := range tests {
		if got := EventOf(tt.st, tt.sum); got != tt.want {
			t.Errorf("EventOf(%s, %v) = %s, want %s", tt.st, tt.sum, got, tt.want)
		}
	}
}

// Observe reads the run and enqueues for subscribed, enabled channels only.
func TestObserveEnqueues(t *testing.T) {
	st := openSQLite(t)
	ctx := testCtx(t)
	run := store.Run{ID: "run1", ModuleID: 1003, ModuleName: "view OS", Username: "ops", Hosts: []task.Host{{IP: "127.0.0.1"}, {IP: "127.0.0.2"}}}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if err := st.AddRunResult(ctx, "run1", task.HostResult{Host: task.Host{IP: "127.0.0.1"}, Status: task.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddRunResult(ctx, "run1", task.HostResult{Host: task.Host{IP: "127.0.0.2"}, Status: task.StatusUnreachable}); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRun(ctx, "run1", task.RunDone, ""); err != nil {
		t.Fatal(err)
	}
	wants := addChannel(t, st, Channel{Name: "a", Kind: KindWebhook, Enabled: true, Events: []string{EventFailed}, Settings: Settings{URL: "http://127.0.0.1:1/", Secret: "k"}})
	other := addChannel(t, st, Channel{Name: "b", Kind: KindWebhook, Enabled: true, Events: []string{EventFinished}, Settings: Settings{URL: "http://127.0.0.1:1/", Secret: "k"}})
	off := addChannel(t, st, Channel{Name: "c", Kind: KindWebhook, Enabled: false, Events: []string{EventFailed}, Settings: Settings{URL: "http://127.0.0.1:1/", Secret: "k"}})
	n := newNotifier(t, st, func(c *Config) { c.BaseURL = "https://ops.example.com/" })
	n.Observe(ctx, runs.Notice{Kind: runs.NoticeEnded, RunID: "run1", Status: task.RunDone})
	rows, _ := st.ListNotifyOutbox(ctx, wants.ID, 0, 10)
	if len(rows) != 1 || rows[0].Event != EventFailed || rows[0].RunID != "run1" {
		t.Fatalf("subscribed channel rows = %+v", rows)
	}
	var m Message
	if err := json.Unmarshal([]byte(rows[0].Payload), &m); err != nil || m.Summary[task.StatusUnreachable] != 1 || m.URL != "https://ops.example.com/runs/run1" || m.Hosts != 2 {
		t.Fatalf("payload = %s", rows[0].Payload)
	}
	for _, ch := range []Channel{other, off} {
		if rows, _ := st.ListNotifyOutbox(ctx, ch.ID, 0, 10); len(rows) != 0 {
			t.Errorf("channel %s got %d rows", ch.Name, len(rows))
		}
	}
}

// Computed with python3: base64(hmac.new(key, msg, sha256).digest()).
const (
	dingTalkVector = "jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM="
	feishuVector   = "VIS10b0EBvzzSdFnuk4tznEmK5wHaruvf/WnViv2yR4="
)

func parseQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
