package ansible

import (
	"strings"
	"testing"
)

// Documents shaped like the ansible.posix.json callback's output, as
// captured from ansible-core 2.14 (see result.go for the format).
const (
	docOK          = `{"custom_stats": {}, "global_custom_stats": {}, "plays": [{"play": {"name": "Ansible Ad-Hoc"}, "tasks": [{"hosts": {"omserver_target": {"action": "shell", "changed": true, "rc": 0, "stdout": "hi\n", "stderr": "", "msg": ""}}, "task": {"name": "shell"}}]}], "stats": {"omserver_target": {"failures": 0, "ok": 1, "unreachable": 0}}}`
	docFailed      = `{"plays": [{"tasks": [{"hosts": {"omserver_target": {"action": "shell", "failed": true, "rc": 3, "stdout": "a", "stderr": "b", "msg": "non-zero return code"}}}]}], "stats": {}}`
	docUnreachable = `{"plays": [{"tasks": [{"hosts": {"omserver_target": {"changed": false, "msg": "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.2 port 22: Connection refused", "unreachable": true}}}]}], "stats": {"omserver_target": {"unreachable": 1}}}`
	docStatsOnly   = `{"plays": [{"tasks": []}], "stats": {"omserver_target": {"unreachable": 1}}}`
	docListMsg     = `{"plays": [{"tasks": [{"hosts": {"omserver_target": {"failed": true, "msg": ["a", "b"]}}}]}]}`
	docTwice       = `{"plays": [{"tasks": [{"hosts": {"omserver_target": {}}}, {"hosts": {"omserver_target": {}}}]}]}`
)

func TestParseCallback(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		check   func(moduleResult) bool
		wantErr string
	}{
		{"ok", docOK, func(r moduleResult) bool { return !r.Failed && *r.RC == 0 && r.Stdout == "hi\n" }, ""},
		{"warning before document", "[WARNING]: something\n" + docOK, func(r moduleResult) bool { return r.Stdout == "hi\n" }, ""},
		{"failed", docFailed, func(r moduleResult) bool { return r.Failed && *r.RC == 3 && r.message() == "non-zero return code" }, ""},
		{"unreachable", docUnreachable, func(r moduleResult) bool { return r.Unreachable && strings.Contains(r.message(), "refused") }, ""},
		{"unreachable from stats only", docStatsOnly, func(r moduleResult) bool { return r.Unreachable }, ""},
		{"list msg", docListMsg, func(r moduleResult) bool { return r.message() == `["a", "b"]` }, ""},
		{"two results", docTwice, nil, "2 results"},
		{"other host", strings.ReplaceAll(docOK, "omserver_target", "other"), nil, "no result"},
		{"empty", "", nil, "no JSON"},
		{"not json", "ERROR! the playbook could not be found\n", nil, "no JSON"},
		{"truncated json", docOK[:len(docOK)/2], nil, "parsing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseCallback([]byte(tc.doc), inventoryAlias)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(r) {
				t.Fatalf("unexpected result %+v", r)
			}
		})
	}
}

func TestEncodeCommandHidesTemplates(t *testing.T) {
	w := encodeCommand(`echo '{{ lookup("pipe", "id") }}' {% if %} {# c #}`)
	if hasJinja(w) {
		t.Fatalf("wrapped command still holds template delimiters: %s", w)
	}
}

func FuzzParseCallback(f *testing.F) {
	for _, d := range []string{docOK, docFailed, docUnreachable, docStatsOnly, docListMsg, docTwice, "", "{", "x\n{}"} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		r, err := parseCallback([]byte(doc), inventoryAlias)
		if err != nil {
			return
		}
		_ = r.message()
		_ = failureText(r)
	})
}
