package web

import (
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/store"
)

// FuzzParseServerCSV: the import parser never panics, and what it accepts is
// a set of valid, distinct servers; what it refuses it names.
func FuzzParseServerCSV(f *testing.F) {
	for _, s := range []string{
		"sn1,10.0.0.1,192.168.1.10,Linux\n",
		"# comment\n\na,,10.0.0.2,Debian\r\nb,,::1,Linux",
		"a,b,c\n",
		"a,,10.0.0.1,Linux\nb,,10.0.0.1,Linux",
		"x*y,,10.0.0.3,Linux",
		",,,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		servers, err := parseServerCSV(text, 7)
		if err != nil {
			if apperr.KindOf(err) != apperr.Invalid || !strings.HasPrefix(err.Error(), "nothing imported") {
				t.Fatalf("unexpected error %v", err)
			}
			if servers != nil {
				t.Fatal("servers returned with an error")
			}
			return
		}
		if len(servers) == 0 {
			t.Fatal("success with no servers")
		}
		seen := map[string]bool{}
		for _, sv := range servers {
			if err := store.CheckServer(sv); err != nil {
				t.Fatalf("accepted an invalid server %+v: %v", sv, err)
			}
			if sv.AppID != 7 || seen[sv.IP] {
				t.Fatalf("bad app id or duplicate: %+v", sv)
			}
			seen[sv.IP] = true
		}
	})
}
