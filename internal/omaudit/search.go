package omaudit

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/omserver/omserver-go/internal/store"
)

// Search parameters of the 安全审计 page and of GET /api/v1/omaudit/history.
const (
	SearchHost    = "host"   // one server IP
	SearchUser    = "user"   // exact user name
	SearchCommand = "q"      // text the command contains
	SearchFrom    = "from"   // reported time at or after
	SearchTo      = "to"     // reported time at or before
	SearchBefore  = "before" // older than this row id
	SearchAfter   = "after"  // newer than this row id
	SearchLimit   = "limit"  // rows per page
	DefaultLimit  = 50
)

// searchTimeLayouts are accepted for from and to: the stored format, and
// what an <input type="datetime-local"> sends (with or without seconds).
var searchTimeLayouts = []string{store.HistoryTimeLayout, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

// ParseSearch reads a history search from query parameters. Times are the
// targets' own clock readings, as the collectors report them.
func ParseSearch(q url.Values) (store.HistoryQuery, error) {
	var out store.HistoryQuery
	if h := strings.TrimSpace(q.Get(SearchHost)); h != "" {
		a, err := netip.ParseAddr(h)
		if err != nil || a.Zone() != "" {
			return out, invalidf("host %q is not an IP address", clip(h, 64))
		}
		out.Hosts = []string{a.Unmap().String()}
	}
	out.User = strings.TrimSpace(q.Get(SearchUser))
	if len(out.User) > store.MaxHistoryUserLen {
		return out, invalidf("user is longer than %d bytes", store.MaxHistoryUserLen)
	}
	out.Command = q.Get(SearchCommand)
	if len(out.Command) > 256 {
		return out, invalidf("the command text searched for is longer than 256 bytes")
	}
	var err error
	if out.From, err = searchTime(q, SearchFrom, false); err != nil {
		return out, err
	}
	if out.To, err = searchTime(q, SearchTo, true); err != nil {
		return out, err
	}
	if !out.From.IsZero() && !out.To.IsZero() && out.To.Before(out.From) {
		return out, invalidf("the time range ends (%s) before it starts (%s)", out.To.Format(store.HistoryTimeLayout), out.From.Format(store.HistoryTimeLayout))
	}
	if out.BeforeID, err = searchID(q, SearchBefore); err != nil {
		return out, err
	}
	if out.AfterID, err = searchID(q, SearchAfter); err != nil {
		return out, err
	}
	if out.BeforeID != 0 && out.AfterID != 0 {
		return out, invalidf("give either before or after, not both")
	}
	out.Limit = DefaultLimit
	if v := q.Get(SearchLimit); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxHistoryPage {
			return out, invalidf("limit %q must be 1..%d", clip(v, 20), store.MaxHistoryPage)
		}
		out.Limit = n
	}
	return out, nil
}

// searchTime parses a time bound; a bare date as the upper bound means the
// end of that day.
func searchTime(q url.Values, name string, upper bool) (time.Time, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range searchTimeLayouts {
		t, err := time.Parse(layout, v)
		if err != nil {
			continue
		}
		if upper {
			switch layout {
			case "2006-01-02":
				t = t.Add(24*time.Hour - time.Second)
			case "2006-01-02T15:04", "2006-01-02 15:04":
				t = t.Add(59 * time.Second)
			}
		}
		return t, nil
	}
	return time.Time{}, invalidf("%s %q is not a date and time like 2014-05-20 10:11:12", name, clip(v, 40))
}

func searchID(q url.Values, name string) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, invalidf("%s %q is not a positive row id", name, clip(v, 40))
	}
	return n, nil
}
