package module

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/task"
)

// unquoteWord reverses backend.ShellQuote the way a POSIX shell reads one word made
// only of '...' strings and \' escapes; ok is false when anything would be
// read unquoted.
func unquoteWord(w string) (string, bool) {
	var b strings.Builder
	for w != "" {
		switch {
		case w[0] == '\'':
			end := strings.IndexByte(w[1:], '\'')
			if end < 0 {
				return "", false
			}
			b.WriteString(w[1 : 1+end])
			w = w[2+end:]
		case strings.HasPrefix(w, `\'`):
			b.WriteByte('\'')
			w = w[2:]
		default:
			return "", false
		}
	}
	return b.String(), true
}

func FuzzValidateParams(f *testing.F) {
	s := paramSpec(f)
	for _, seed := range [][4]string{
		{"50", "web1", "x", "nginx"},
		{"50; rm -rf /", "h", "x", "nginx"},
		{"1", "; rm -rf /", "$(id)", "mysql"},
		{"999", "a@@b", "`id`", "sshd"},
		{"2", "h", "it's", "nginx"},
		{"3", "h", "line\nbreak", "nginx"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, num, host, free, svc string) {
		in := map[string]string{"num": num, "host": host, "free": free, "svc": svc}
		vals, err := s.ValidateParams(in)
		if err != nil {
			if !errors.Is(err, task.ErrInvalidParams) {
				t.Fatalf("error does not wrap task.ErrInvalidParams: %v", err)
			}
			if steps, err2 := s.Expand(in); steps != nil || err2 == nil {
				t.Fatalf("Expand gave steps for refused params")
			}
			return
		}
		for _, k := range []string{"host", "free"} {
			v := vals[k]
			if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
				t.Fatalf("accepted %s=%q with a control character", k, v)
			}
		}
		steps, err := s.Expand(in)
		if err != nil || len(steps) != 1 {
			t.Fatalf("Expand after ValidateParams accepted: %v", err)
		}
		cmd := steps[0].Command
		unit := map[string]string{"nginx": "nginx", "mysql": "mariadb"}[vals["svc"]]
		want := "echo " + backend.ShellQuote(vals["num"]) + " " + backend.ShellQuote(vals["host"]) + " " + backend.ShellQuote(vals["free"]) + " " + unit
		if cmd != want {
			t.Fatalf("expanded %q, want %q", cmd, want)
		}
		for _, k := range []string{"num", "host", "free"} {
			got, ok := unquoteWord(backend.ShellQuote(vals[k]))
			if !ok || got != vals[k] {
				t.Fatalf("quoted %s does not read back: %q -> %q", k, vals[k], got)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"id: 1700\nname: x\nsteps: [{run: uptime}]\n",
		"id: 1700\nname: x\nparams: [{name: n, type: number, min: 1, max: 9, default: 5}]\nsteps: [{run: 'echo {{n}}'}]\n",
		"id: 1700\nname: x\nparams: [{name: c, type: choice, options: [{value: a, vars: {u: b}}]}]\nsteps: [{run: 'echo {{c.u}} \"{{c}}\"'}]\n",
		"id: 1700\nname: x\nsteps: [{copy: {src: ../x, dest: /x}}]\n",
		"id: 1700\nname: x\nparams: [{name: m, type: text, multiline: true, max_length: 9}, {name: b, type: boolean, value: -l}, {name: f, type: fixed, value: v}]\nsteps: [{run: 'ls {{b}} {{f}} # {{m}}'}]\n",
		"{{{{",
		"id: [1700]\n",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "Mid_1700.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(path, data)
		if err != nil {
			if s != nil {
				t.Fatal("spec returned with an error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if s.ID != 1700 {
			t.Fatalf("accepted id %d for Mid_1700.yaml", s.ID)
		}
		if err := s.Params.Check(); err != nil {
			t.Fatalf("accepted a schema the other tiers refuse: %v", err)
		}
		steps, err := s.Expand(nil)
		if err != nil && !errors.Is(err, task.ErrInvalidParams) {
			t.Fatalf("Expand of an accepted spec: %v", err)
		}
		_ = steps
	})
}

// FuzzValidateKinds: a multi-line text, boolean or fixed value is either
// refused or expanded as exactly one single-quoted word that reads back as
// the validated value, which holds no control character but line feeds.
func FuzzValidateKinds(f *testing.F) {
	s := kindsSpec(f)
	for _, seed := range [][3]string{
		{"a\nb", "", "/var/log"},
		{"a\r\nb\r\n", "-l", "/var/log"},
		{"it's\n$(id)\n# x", "-l", "/etc"},
		{"a\tb", "-lR", ""},
		{"\x00", "on", "/var/log\n"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, body, long, dir string) {
		in := map[string]string{"body": body, "long": long, "dir": dir}
		vals, err := s.ValidateParams(in)
		if err != nil {
			if !errors.Is(err, task.ErrInvalidParams) {
				t.Fatalf("error does not wrap task.ErrInvalidParams: %v", err)
			}
			return
		}
		if long != "" && long != "-l" || dir != "/var/log" {
			t.Fatalf("accepted long=%q dir=%q", long, dir)
		}
		v := vals["body"]
		if strings.ContainsFunc(v, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }) || !utf8.ValidString(v) {
			t.Fatalf("accepted body %q", v)
		}
		if v != strings.ReplaceAll(body, "\r\n", "\n") {
			t.Fatalf("body %q normalised to %q", body, v)
		}
		steps, err := s.Expand(in)
		if err != nil || len(steps) != 1 {
			t.Fatalf("Expand after ValidateParams accepted: %v", err)
		}
		want := "printf '%s|' " + backend.ShellQuote(v) + " " + backend.ShellQuote(long) + " " + backend.ShellQuote("-a") + " " + backend.ShellQuote(dir)
		if steps[0].Command != want {
			t.Fatalf("expanded %q, want %q", steps[0].Command, want)
		}
		if got, ok := unquoteWord(backend.ShellQuote(v)); !ok || got != v {
			t.Fatalf("quoted body does not read back: %q -> %q", v, got)
		}
	})
}
