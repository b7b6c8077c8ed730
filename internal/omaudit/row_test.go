package omaudit

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
)

// agentQuery is what chapter 14's OMAudit_agent.py sent (its URL built by
// hand: the datetime's space as %20, the command urllib.quote'd).
const agentQuery = "history_id=501&history_ip=192.168.1.10&history_user=root&history_datetime=2014-05-20%2010:11:12&history_command=ls%20-l%20/tmp"

func TestParseRow(t *testing.T) {
	q, err := url.ParseQuery(agentQuery)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRow(q)
	if err != nil {
		t.Fatalf("the original agent's query: %v", err)
	}
	want := store.HistoryRow{HistoryID: 501, IP: "192.168.1.10", User: "root", At: time.Date(2014, 5, 20, 10, 11, 12, 0, time.UTC), Command: "ls -l /tmp"}
	if r != want {
		t.Fatalf("row %+v, want %+v", r, want)
	}
	with := func(kv ...string) url.Values {
		v, _ := url.ParseQuery(agentQuery)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "\x00delete" {
				v.Del(kv[i])
				continue
			}
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	ok := []struct {
		name  string
		q     url.Values
		check func(store.HistoryRow) bool
	}{
		{"token parameter", with("token", "omi_x"), func(r store.HistoryRow) bool { return r.IP == "192.168.1.10" }},
		{"IPv6 made canonical", with("history_ip", "2001:DB8::0:1"), func(r store.HistoryRow) bool { return r.IP == "2001:db8::1" }},
		{"IPv4-mapped unmapped", with("history_ip", "::ffff:192.168.1.10"), func(r store.HistoryRow) bool { return r.IP == "192.168.1.10" }},
		{"history id 0", with("history_id", "0"), func(r store.HistoryRow) bool { return r.HistoryID == 0 }},
		{"largest id", with("history_id", "2147483647"), func(r store.HistoryRow) bool { return r.HistoryID == store.MaxHistoryID }},
		{"multi-line command", with("history_command", "for i in 1 2\ndo\techo $i; done"), func(r store.HistoryRow) bool { return strings.Count(r.Command, "\n") == 1 }},
		{"html kept as text", with("history_command", "<script>alert(1)</script>"), func(r store.HistoryRow) bool { return r.Command == "<script>alert(1)</script>" }},
		{"CJK user and command", with("history_user", "运维", "history_command", "echo 你好"), func(r store.HistoryRow) bool { return r.User == "运维" }},
	}
	for _, tc := range ok {
		r, err := ParseRow(tc.q)
		if err != nil || !tc.check(r) {
			t.Errorf("%s: %+v, %v", tc.name, r, err)
		}
	}
	bad := []struct {
		name, wantMsg string
		q             url.Values
	}{
		{"no id", "history_id null", with("history_id", "\x00delete")},
		{"empty ip", "history_ip null", with("history_ip", "")},
		{"no user", "history_user null", with("history_user", "\x00delete")},
		{"no time", "history_datetime null", with("history_datetime", "\x00delete")},
		{"no command", "history_command null", with("history_command", "")},
		{"id twice", "history_id is given 2 times", url.Values{"history_id": {"1", "2"}, "history_ip": {"192.168.1.10"}, "history_user": {"root"}, "history_datetime": {"2014-05-20 10:11:12"}, "history_command": {"ls"}}},
		{"unknown parameter", `unknown parameter(s) "history_cmd"`, with("history_cmd", "ls")},
		{"id with star (edited history line)", "not a history number", with("history_id", "501*")},
		{"negative id", "not a history number", with("history_id", "-1")},
		{"id with space", "not a history number", with("history_id", " 501")},
		{"id too large", "larger than", with("history_id", "2147483648")},
		{"id too long", "not a history number", with("history_id", "00000000001")},
		{"ip is a name", "not an IPv4 or IPv6 address", with("history_ip", "web1")},
		{"ip with zone", "not an IPv4 or IPv6 address", with("history_ip", "fe80::1%eth0")},
		{"user with space", "user", with("history_user", "ro ot")},
		{"user too long", "user must be 1..32 bytes", with("history_user", strings.Repeat("u", 33))},
		{"user not UTF-8", "user", with("history_user", "\xff")},
		{"time without seconds", "not a date and time", with("history_datetime", "2014-05-20 10:11")},
		{"time with zone", "not a date and time", with("history_datetime", "2014-05-20T10:11:12Z")},
		{"time single digits", "not a date and time", with("history_datetime", "2014-5-20 1:11:120")},
		{"impossible date", "not a date and time", with("history_datetime", "2014-02-30 10:11:12")},
		{"blank command", "command must be", with("history_command", "   ")},
		{"command too long", "command must be", with("history_command", strings.Repeat("x", store.MaxHistoryCommandLen+1))},
		{"command not UTF-8", "not valid UTF-8", with("history_command", "ls \xe4\xb8")},
		{"command with escape sequence", "control character", with("history_command", "printf '\x1b]0;x\x07'")},
		{"command with NUL", "control character", with("history_command", "ls\x00")},
		{"command with CR", "control character", with("history_command", "ls\r")},
	}
	for _, tc := range bad {
		_, err := ParseRow(tc.q)
		if err == nil || apperr.KindOf(err) != apperr.Invalid || !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("%s: err = %v; want invalid with %q", tc.name, err, tc.wantMsg)
		}
		if err != nil && strings.Contains(err.Error(), "invalid input") {
			t.Errorf("%s: message carries the store's sentinel text: %v", tc.name, err)
		}
	}
}
