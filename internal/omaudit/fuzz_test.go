package omaudit

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/omserver/omserver-go/internal/store"
)

// FuzzParseRow: whatever a collector (or anyone) sends, ParseRow either
// refuses it or returns a row the store accepts, and the row survives being
// sent again unchanged (what the collector's spool does).
// Seeds: testdata/fuzz/FuzzParseRow.
func FuzzParseRow(f *testing.F) {
	f.Add(agentQuery)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r, err := ParseRow(q)
		if err != nil {
			return
		}
		if err := store.CheckHistoryRow(r); err != nil {
			t.Fatalf("ParseRow accepted a row the store refuses: %v (%+v)", err, r)
		}
		again := url.Values{
			ParamHistoryID: {strconv.FormatInt(r.HistoryID, 10)}, ParamIP: {r.IP}, ParamUser: {r.User},
			ParamDatetime: {r.At.Format(store.HistoryTimeLayout)}, ParamCommand: {r.Command},
		}
		r2, err := ParseRow(again)
		if err != nil || r2 != r {
			t.Fatalf("resend changed the row: %+v -> %+v, %v", r, r2, err)
		}
	})
}
