package omaudit

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/apperr"
)

func TestParseSearch(t *testing.T) {
	ts := func(s string) time.Time { v, _ := time.Parse("2006-01-02 15:04:05", s); return v }
	q, err := ParseSearch(url.Values{"host": {"::ffff:192.168.1.10"}, "user": {" root "}, "q": {"rm -rf"},
		"from": {"2026-01-02T03:04"}, "to": {"2026-01-02"}, "before": {"99"}, "limit": {"20"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Hosts) != 1 || q.Hosts[0] != "192.168.1.10" || q.User != "root" || q.Command != "rm -rf" ||
		!q.From.Equal(ts("2026-01-02 03:04:00")) || !q.To.Equal(ts("2026-01-02 23:59:59")) || q.BeforeID != 99 || q.Limit != 20 {
		t.Fatalf("parsed %+v", q)
	}
	q, err = ParseSearch(url.Values{"to": {"2026-01-02 03:04"}})
	if err != nil || !q.To.Equal(ts("2026-01-02 03:04:59")) || q.Limit != DefaultLimit {
		t.Fatalf("minute upper bound: %+v %v", q, err)
	}
	for _, tc := range []struct {
		q    url.Values
		want string
	}{
		{url.Values{"host": {"web1"}}, "not an IP address"},
		{url.Values{"user": {strings.Repeat("u", 33)}}, "longer than"},
		{url.Values{"q": {strings.Repeat("q", 257)}}, "longer than 256"},
		{url.Values{"from": {"yesterday"}}, "not a date and time"},
		{url.Values{"from": {"2026-01-03"}, "to": {"2026-01-02"}}, "ends"},
		{url.Values{"before": {"0"}}, "not a positive row id"},
		{url.Values{"after": {"x"}}, "not a positive row id"},
		{url.Values{"before": {"5"}, "after": {"3"}}, "not both"},
		{url.Values{"limit": {"501"}}, "limit"},
	} {
		_, err := ParseSearch(tc.q)
		if err == nil || apperr.KindOf(err) != apperr.Invalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want %q", tc.q, err, tc.want)
		}
	}
}
