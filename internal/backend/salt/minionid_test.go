package salt

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

func TestMinionID(t *testing.T) {
	web := task.Host{IP: "192.0.2.10", Name: "web01.bbs"}
	tests := []struct {
		spec    string
		host    task.Host
		want    string
		wantErr string // from For; parse errors are below
	}{
		{"", web, "web01.bbs", ""},
		{"hostname", web, "web01.bbs", ""},
		{"upper", web, "WEB01.BBS", ""},
		{"upper", task.Host{Name: "sn2013-08-021"}, "SN2013-08-021", ""},
		{"upper", task.Host{Name: "straße"}, "STRAßE", ""}, // ASCII only, as Python 2 str.upper
		{"ip", web, "192.0.2.10", ""},
		{"{{.Name}}.example.com", web, "web01.bbs.example.com", ""},
		{"{{.Name | upper}}", web, "WEB01.BBS", ""},
		{"{{lower .Name}}-{{.IP}}", task.Host{IP: "192.0.2.7", Name: "DB1"}, "db1-192.0.2.7", ""},
		{"hostname", task.Host{IP: "192.0.2.1"}, "", "has none"},
		{"upper", task.Host{IP: "192.0.2.1"}, "", "has none"},
		{"ip", task.Host{Name: "web"}, "", "has no IP"},
		{"{{.Name}}.example.com", task.Host{IP: "192.0.2.1"}, "", "lacks a field"},
		{"{{.IP}}", task.Host{Name: "x"}, "", "lacks a field"},
		{"{{.Name}}", task.Host{Name: "spaced name"}, "spaced name", ""}, // salt allows it
		{"{{.Name}}", task.Host{Name: "tab\tname"}, "", "U+0009"},
		{"{{.Name}}", task.Host{Name: "../etc"}, "", "U+002F"},
		{"hostname", task.Host{Name: ".."}, "", "not a name"},
		{"hostname", task.Host{Name: strings.Repeat("a", 256)}, "", "longer than 255"},
	}
	for _, tc := range tests {
		m, err := ParseMinionID(tc.spec)
		if err != nil {
			t.Fatalf("ParseMinionID(%q): %v", tc.spec, err)
		}
		got, err := m.For(tc.host)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q for %v = %q, %v; want an error with %q", tc.spec, tc.host, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q for %v = %q, %v; want %q", tc.spec, tc.host, got, err, tc.want)
		}
	}
}

func TestParseMinionIDRefusesBadSettings(t *testing.T) {
	for spec, want := range map[string]string{
		"Upper":                   "want hostname, upper, ip or a template",
		"fqdn":                    "want hostname, upper, ip or a template",
		"{{.Name":                 "template",
		"{{.Hostname}}":           "Hostname",
		"{{.Name | shout}}":       "shout",
		"{{.Name}} {{.IP}}":       "",
		"{{/* nothing */}}":       "empty",
		"{{.Name}}/minion":        "U+002F",
		"{{.Name}}\n.example":     "U+000A",
		"{{if .Name}}{{end}}":     "empty",
		"{{printf \"%s\" .Name}}": "", // printf is a builtin: fine
	} {
		_, err := ParseMinionID(spec)
		if want == "" {
			if err != nil {
				t.Errorf("%q refused: %v", spec, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMinionID(%q) = %v, want an error with %q", spec, err, want)
		}
	}
}

// The backend targets the mapped minion id, and reads its result under it.
func TestRunTargetsTheMappedMinionID(t *testing.T) {
	f := newFakeSaltAPI(t)
	f.setMinion("WEB1", minionRuns)
	b, _ := newBackend(t, f, func(c *Config) { c.MinionID = MinionIDUpper })
	res := b.Run(context.Background(), task.Host{IP: "192.0.2.10", Name: "web1"}, []backend.Step{{Command: "echo hi"}}, backend.Options{})
	if res.Status != task.StatusOK || res.Stdout != "hi\n" {
		t.Fatalf("result = %+v", res)
	}
	if tgt := f.recorded()[0].Chunk["tgt"].([]any); len(tgt) != 1 || tgt[0] != "WEB1" {
		t.Fatalf("tgt = %v, want [WEB1]", tgt)
	}
	if _, err := New(Config{URL: f.srv.URL, Username: "u", Password: "p", MinionID: "{{.Nme}}"}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "Nme") {
		t.Fatalf("a bad template was accepted by New: %v", err)
	}
}
