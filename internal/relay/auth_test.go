package relay

import (
	"testing"
	"time"
)

func TestCredentialsMatch(t *testing.T) {
	c := newCredentials("relay", "pw")
	cases := []struct {
		user, pass string
		want       bool
	}{
		{"relay", "pw", true},
		{"relay", "pw ", false},
		{"relay", "", false},
		{"", "pw", false},
		{"Relay", "pw", false},
		{"relay", "pwpwpwpwpwpwpwpwpwpwpwpwpwpwpwpwpwpwpwpw", false},
	}
	for _, tc := range cases {
		if got := c.match(tc.user, tc.pass); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.user, tc.pass, got, tc.want)
		}
	}
}

func TestSessionsExpireAndStayBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSessions(time.Hour)
	tok, exp, err := s.issue(now)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("expiry %v", exp)
	}
	if !s.valid(tok, now.Add(59*time.Minute)) {
		t.Fatal("token refused before expiry")
	}
	if s.valid(tok, now.Add(time.Hour)) {
		t.Fatal("token accepted at expiry")
	}
	if s.valid(tok, now) {
		t.Fatal("an expired token was not forgotten")
	}
	if s.valid("", now) || s.valid("made-up", now) {
		t.Fatal("unknown token accepted")
	}
	for i := 0; i < maxSessions+10; i++ {
		if _, _, err := s.issue(now.Add(time.Duration(i) * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.expires); n > maxSessions {
		t.Fatalf("%d sessions kept, limit %d", n, maxSessions)
	}
}

func TestFailureLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newFailureLimiter()
	for i := 0; i < loginBurst; i++ {
		if l.blocked("10.0.0.1", now) {
			t.Fatalf("blocked after %d failures", i)
		}
		l.fail("10.0.0.1", now)
	}
	if !l.blocked("10.0.0.1", now) {
		t.Fatalf("not blocked after %d failures", loginBurst)
	}
	if l.blocked("10.0.0.2", now) {
		t.Fatal("another peer blocked")
	}
	if !l.blocked("10.0.0.1", now.Add(loginEvery/2)) {
		t.Fatal("unblocked too early")
	}
	if l.blocked("10.0.0.1", now.Add(loginEvery)) {
		t.Fatal("still blocked after one refill interval")
	}
	for i := 0; i < maxLimitPeers+10; i++ {
		l.fail(string(rune('a'+i%26))+time.Duration(i).String(), now)
	}
	if n := len(l.peer); n > maxLimitPeers {
		t.Fatalf("%d peers tracked, limit %d", n, maxLimitPeers)
	}
}
