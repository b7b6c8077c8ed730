package cipher

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testKey = "ctmj#&amp;8hrgow_^sj$ejt@9fzsmh_o)-=(byt5jmg=e3#foya6u"

// fixedClock returns a clock stuck at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// detReader is a deterministic byte stream (SHA-256 in counter mode) that
// stands in for crypto/rand where a test needs reproducible messages.
type detReader struct {
	seed    string
	counter uint64
	buf     []byte
}

func (r *detReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.buf) == 0 {
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], r.counter)
			r.counter++
			sum := sha256.Sum256(append([]byte(r.seed), c[:]...))
			r.buf = sum[:]
		}
		k := copy(p[n:], r.buf)
		r.buf = r.buf[k:]
		n += k
	}
	return n, nil
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

func TestNew(t *testing.T) {
	tests := []struct {
		scheme, key string
		want        string // scheme of the codec, "" when an error is expected
	}{
		{"", "k", SchemeAEAD},
		{"aead", "k", SchemeAEAD},
		{"legacy", "k", SchemeLegacy},
		{"rc4", "k", ""},
		{"AEAD", "k", ""},
		{"aead", "", ""},
		{"legacy", "", ""},
	}
	for _, tc := range tests {
		c, err := New(tc.scheme, tc.key)
		if tc.want == "" {
			if err == nil || c != nil {
				t.Errorf("New(%q, %q): want an error, got codec %v", tc.scheme, tc.key, c)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q, %q): %v", tc.scheme, tc.key, err)
			continue
		}
		if c.Scheme() != tc.want {
			t.Errorf("New(%q): scheme %q, want %q", tc.scheme, c.Scheme(), tc.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	large := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	plaintexts := map[string][]byte{
		"empty":  {},
		"task":   []byte(`{"run_id":"r1","module_id":1001,"params":{"sys_param_1":"a@@b"}}`),
		"utf8":   []byte("主机：192.168.1.10 运行状态 成功\nLinux 6.1 ✓"),
		"binary": {0, 1, 2, 0xff, 0xfe, 0},
		"large":  large,
	}
	for _, scheme := range []string{SchemeAEAD, SchemeLegacy} {
		for name, pt := range plaintexts {
			t.Run(scheme+"/"+name, func(t *testing.T) {
				c, err := New(scheme, testKey)
				if err != nil {
					t.Fatal(err)
				}
				msg, err := c.Seal(pt)
				if err != nil {
					t.Fatalf("seal: %v", err)
				}
				got, err := c.Open(msg)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if !bytes.Equal(got, pt) || got == nil {
					t.Fatalf("round trip changed the plaintext (got %d bytes, want %d)", len(got), len(pt))
				}
			})
		}
	}
}

func TestAEADEnvelopeShape(t *testing.T) {
	a := NewAEAD(testKey, WithClock(fixedClock(testEpoch)))
	msg, err := a.Seal([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(msg, AEADPrefix) {
		t.Fatalf("message %q lacks prefix %q", msg, AEADPrefix)
	}
	if strings.Contains(msg, "hello") {
		t.Fatal("plaintext visible in the message")
	}
	again, _ := a.Seal([]byte("hello"))
	if again == msg {
		t.Fatal("two seals are identical: salt/nonce not random")
	}
}

func TestAEADSealRandomFailure(t *testing.T) {
	a := NewAEAD(testKey)
	a.rand = failingReader{}
	msg, err := a.Seal([]byte("x"))
	if err == nil || msg != "" {
		t.Fatalf("seal with failing randomness: msg %q err %v", msg, err)
	}
}

// openFresh opens msg with a new opener (empty replay cache) at testEpoch.
func openFresh(key, msg string) ([]byte, error) {
	return NewAEAD(key, WithClock(fixedClock(testEpoch))).Open(msg)
}

func TestAEADEveryBitFlipRejected(t *testing.T) {
	sealer := NewAEAD(testKey, WithClock(fixedClock(testEpoch)))
	msg, err := sealer.Seal([]byte("1007@@nginx"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openFresh(testKey, msg); err != nil {
		t.Fatalf("unmodified message refused: %v", err)
	}
	for i := 0; i < len(msg); i++ {
		for bit := 0; bit < 8; bit++ {
			b := []byte(msg)
			b[i] ^= 1 << bit
			plain, err := openFresh(testKey, string(b))
			if err == nil {
				t.Fatalf("flip of byte %d bit %d accepted", i, bit)
			}
			if plain != nil {
				t.Fatalf("flip of byte %d bit %d: plaintext returned with error %v", i, bit, err)
			}
			if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("flip of byte %d bit %d: unexpected error %v", i, bit, err)
			}
		}
	}
}

// Flipping bits of the decoded header (not the text) must fail
// authentication: version byte -> ErrVersion, the rest -> ErrAuth.
func TestAEADHeaderTamperRejected(t *testing.T) {
	sealer := NewAEAD(testKey, WithClock(fixedClock(testEpoch)))
	msg, _ := sealer.Seal([]byte("payload"))
	raw, err := parseEnvelope(msg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(raw); i++ {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		tampered := AEADPrefix + encodeRaw(b)
		_, err := openFresh(testKey, tampered)
		want := ErrAuth
		if i == 0 {
			want = ErrVersion
		}
		if !errors.Is(err, want) {
			t.Fatalf("byte %d tampered: got %v, want %v", i, err, want)
		}
	}
}

func TestAEADTruncationRejected(t *testing.T) {
	sealer := NewAEAD(testKey, WithClock(fixedClock(testEpoch)))
	msg, _ := sealer.Seal([]byte("some payload long enough"))
	for n := 0; n < len(msg); n++ {
		plain, err := openFresh(testKey, msg[:n])
		if err == nil || plain != nil {
			t.Fatalf("truncated to %d chars: plain %q err %v", n, plain, err)
		}
		if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
			t.Fatalf("truncated to %d chars: unexpected error %v", n, err)
		}
	}
}

func TestAEADRejections(t *testing.T) {
	sealer := NewAEAD(testKey, WithClock(fixedClock(testEpoch)))
	good, _ := sealer.Seal([]byte("x"))
	legacyMsg, _ := NewLegacy(testKey).Seal([]byte("1001@@h@@50@@"))
	vector := loadVectors(t)[0].Ciphertext

	tests := []struct {
		name string
		key  string
		msg  string
		want error
	}{
		{"wrong key", testKey + "x", good, ErrAuth},
		{"legacy message", testKey, legacyMsg, ErrVersion},
		{"legacy vector", testKey, vector, ErrVersion},
		{"future version", testKey, "omv3." + good[len(AEADPrefix):], ErrVersion},
		{"old version", testKey, "omv1.AAAA", ErrVersion},
		{"empty", testKey, "", ErrMalformed},
		{"garbage", testKey, "hello world", ErrMalformed},
		{"prefix only", testKey, AEADPrefix, ErrMalformed},
		{"std base64 body", testKey, AEADPrefix + "ab+/", ErrMalformed},
		{"padded body", testKey, good + "==", ErrMalformed},
		{"line break", testKey, good[:20] + "\n" + good[20:], ErrMalformed},
		{"appended byte", testKey, good + "A", ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain, err := openFresh(tc.key, tc.msg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if plain != nil {
				t.Fatal("plaintext returned with an error")
			}
		})
	}
}

func TestAEADWrongKeyMessage(t *testing.T) {
	msg, _ := NewAEAD("one").Seal([]byte("x"))
	_, err := NewAEAD("two").Open(msg)
	if err == nil || !strings.Contains(err.Error(), "wrong SECRET_KEY or tampered message") {
		t.Fatalf("wrong key error not explicit: %v", err)
	}
}

func TestAEADReplay(t *testing.T) {
	a := NewAEAD(testKey, WithClock(fixedClock(testEpoch)))
	msg, _ := a.Seal([]byte("run once"))
	if _, err := a.Open(msg); err != nil {
		t.Fatalf("first open: %v", err)
	}
	plain, err := a.Open(msg)
	if !errors.Is(err, ErrReplay) || plain != nil {
		t.Fatalf("second open: plain %q err %v, want ErrReplay", plain, err)
	}
	// A different message is still fine.
	other, _ := a.Seal([]byte("run once"))
	if _, err := a.Open(other); err != nil {
		t.Fatalf("fresh message after a replay: %v", err)
	}
}

func TestAEADIssueTimeWindow(t *testing.T) {
	window := 2 * time.Minute
	tests := []struct {
		name   string
		skew   time.Duration // open time minus seal time
		wantOK bool
	}{
		{"same second", 0, true},
		{"just inside past", window, true},
		{"just inside future", -window, true},
		{"expired", window + time.Second, false},
		{"far expired", 24 * time.Hour, false},
		{"from the future", -window - time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sealer := NewAEAD(testKey, WithClock(fixedClock(testEpoch)))
			opener := NewAEAD(testKey, WithReplayWindow(window), WithClock(fixedClock(testEpoch.Add(tc.skew))))
			msg, _ := sealer.Seal([]byte("x"))
			plain, err := opener.Open(msg)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrExpired) || plain != nil {
				t.Fatalf("got plain %q err %v, want ErrExpired", plain, err)
			}
		})
	}
}

func TestAEADDefaultWindowIsTwoMinutes(t *testing.T) {
	if w := NewAEAD("k").guard.Window(); w != 2*time.Minute {
		t.Fatalf("default window %s", w)
	}
}

func TestReplayGuard(t *testing.T) {
	now := testEpoch
	g := NewReplayGuard(time.Minute, 3)
	check := func(id string, issued time.Time, want error) {
		t.Helper()
		err := g.Check(id, issued, now)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("Check(%s) at %s: got %v, want %v", id, now.Format(time.TimeOnly), err, want)
		}
	}
	check("a", now, nil)
	check("a", now, ErrReplay)
	check("b", now.Add(-30*time.Second), nil)
	check("c", now.Add(30*time.Second), nil)
	check("d", now, ErrReplayCacheFull) // cap reached, nothing expired yet
	check("", now, ErrMalformed)
	check(strings.Repeat("n", MaxReplayIDBytes+1), now, ErrMalformed)
	check("old", now.Add(-61*time.Second), ErrExpired)
	check("new", now.Add(61*time.Second), ErrExpired)
	if g.Len() != 3 {
		t.Fatalf("Len %d, want 3", g.Len())
	}

	// 31s later "b" (issued 30s before the start) can no longer pass the
	// time check, so it is forgotten and its slot reused.
	now = now.Add(31 * time.Second)
	check("d", now, nil)
	if g.Len() != 3 {
		t.Fatalf("after prune Len %d, want 3", g.Len())
	}
	check("a", testEpoch, ErrReplay) // still inside its window

	// Far later everything has expired.
	now = now.Add(10 * time.Minute)
	check("e", now, nil)
	if g.Len() != 1 {
		t.Fatalf("after full prune Len %d, want 1", g.Len())
	}
}

func TestReplayGuardDefaults(t *testing.T) {
	g := NewReplayGuard(0, 0)
	if g.window != DefaultReplayWindow || g.maxEntries != DefaultReplayMaxEntries {
		t.Fatalf("defaults: window %s max %d", g.window, g.maxEntries)
	}
}

func TestAEADConcurrent(t *testing.T) {
	a := NewAEAD(testKey)
	const workers, perWorker = 16, 50
	msgs := make(chan string, workers*perWorker)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				pt := []byte(strings.Repeat("x", w+i))
				m, err := a.Seal(pt)
				if err != nil {
					failures.Add(1)
					continue
				}
				got, err := a.Open(m)
				if err != nil || !bytes.Equal(got, pt) {
					failures.Add(1)
				}
				msgs <- m
			}
		}(w)
	}
	wg.Wait()
	close(msgs)
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d concurrent seal/open failures", n)
	}
	// Every message was opened once already; concurrent reopens must all be
	// replays.
	var replays atomic.Int64
	var all []string
	for m := range msgs {
		all = append(all, m)
	}
	for _, m := range all {
		wg.Add(1)
		go func(m string) {
			defer wg.Done()
			if _, err := a.Open(m); errors.Is(err, ErrReplay) {
				replays.Add(1)
			}
		}(m)
	}
	wg.Wait()
	if int(replays.Load()) != len(all) {
		t.Fatalf("%d of %d reopened messages detected as replays", replays.Load(), len(all))
	}
}

// Two goroutines racing to open the same fresh message: exactly one wins.
func TestAEADConcurrentReplayOneWinner(t *testing.T) {
	for round := 0; round < 20; round++ {
		a := NewAEAD(testKey)
		msg, _ := a.Seal([]byte("once"))
		var ok atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := a.Open(msg); err == nil {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("round %d: %d goroutines opened the same message", round, ok.Load())
		}
	}
}

func TestLegacyConcurrent(t *testing.T) {
	l := NewLegacy(testKey)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				pt := []byte(strings.Repeat("y", w*i))
				m, err := l.Seal(pt)
				if err != nil {
					failures.Add(1)
					continue
				}
				if got, err := l.Open(m); err != nil || !bytes.Equal(got, pt) {
					failures.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d failures", failures.Load())
	}
}
