package omaudit

import (
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
)

// The ingest parameters, as the original agent (chapter 14's
// OMAudit_agent.py) sent them to /omaudit/omaudit_pull/.
const (
	ParamHistoryID = "history_id"
	ParamIP        = "history_ip"
	ParamUser      = "history_user"
	ParamDatetime  = "history_datetime"
	ParamCommand   = "history_command"
	// ParamToken carries the ingest token for agents that cannot send a
	// header (the original one builds its URL by hand).
	ParamToken = "token"
)

var rowParams = []string{ParamHistoryID, ParamIP, ParamUser, ParamDatetime, ParamCommand}

func invalidf(format string, args ...any) error {
	return apperr.Errorf(apperr.Invalid, format, args...)
}

// ParseRow reads one history row from the ingest parameters. Every one of
// the five must be present once; the token parameter may be; anything else
// is refused, so that a misspelt parameter is not silently dropped. The
// errors are apperr.Invalid and name the parameter.
func ParseRow(q url.Values) (store.HistoryRow, error) {
	var unknown []string
	for k := range q {
		if k != ParamToken && !isRowParam(k) {
			unknown = append(unknown, strconv.Quote(clip(k, 40)))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return store.HistoryRow{}, invalidf("unknown parameter(s) %s: send %s", strings.Join(unknown, ", "), strings.Join(rowParams, ", "))
	}
	get := func(name string) (string, error) {
		vs := q[name]
		switch {
		case len(vs) == 0 || vs[0] == "":
			// The original answered "<name> null" for a missing one.
			return "", invalidf("%s null: the parameter is missing or empty", name)
		case len(vs) > 1:
			return "", invalidf("%s is given %d times; send it once", name, len(vs))
		}
		return vs[0], nil
	}
	var r store.HistoryRow
	raw, err := get(ParamHistoryID)
	if err != nil {
		return r, err
	}
	if len(raw) > 10 || strings.Trim(raw, "0123456789") != "" {
		return r, invalidf("%s %q is not a history number (digits only)", ParamHistoryID, clip(raw, 40))
	}
	if r.HistoryID, err = strconv.ParseInt(raw, 10, 64); err != nil || r.HistoryID > store.MaxHistoryID {
		return r, invalidf("%s %s is larger than %d", ParamHistoryID, raw, store.MaxHistoryID)
	}
	if raw, err = get(ParamIP); err != nil {
		return r, err
	}
	addr, err := netip.ParseAddr(raw)
	if err != nil || addr.Zone() != "" {
		return r, invalidf("%s %q is not an IPv4 or IPv6 address", ParamIP, clip(raw, 64))
	}
	r.IP = addr.Unmap().String()
	if r.User, err = get(ParamUser); err != nil {
		return r, err
	}
	if raw, err = get(ParamDatetime); err != nil {
		return r, err
	}
	if len(raw) != len(store.HistoryTimeLayout) {
		return r, invalidf("%s %q is not a date and time like 2014-05-20 10:11:12", ParamDatetime, clip(raw, 40))
	}
	if r.At, err = time.Parse(store.HistoryTimeLayout, raw); err != nil {
		return r, invalidf("%s %q is not a date and time like 2014-05-20 10:11:12", ParamDatetime, clip(raw, 40))
	}
	if r.Command, err = get(ParamCommand); err != nil {
		return r, err
	}
	if err := store.CheckHistoryRow(r); err != nil {
		// The store's own check words it; strip its sentinel's suffix.
		return r, invalidf("%s", strings.TrimSuffix(err.Error(), ": "+store.ErrInvalid.Error()))
	}
	return r, nil
}

func isRowParam(k string) bool {
	for _, p := range rowParams {
		if k == p {
			return true
		}
	}
	return false
}

// clip shortens s for a message, keeping it valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
