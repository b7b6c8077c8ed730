package module

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/task"
)

const shippedDir = "../../modules"

// The names and captions of the original module_list rows
// (shared/reference/OMServer.sql), captions without their HTML prefix.
var originals = map[int][2]string{
	1001: {"查看系统日志", "查看所选服务器的操作系统日志信息"},
	1002: {"查看最新登录", "查看所选服务器的最近的用户登录信息"},
	1003: {"查看系统版本", "查看所选服务器操作系统的版本信息"},
	1004: {"查看内核模块", "查看所选服务器操作系统的内核模块信息"},
	1005: {"同步应用文件", "同步选择的应用文件(可动态添加)到所选的目标服务器"},
	1006: {"查看应用配置", "查看指定的服务的配置信息"},
	1007: {"重启进程服务", "重启目标服务器的指定的进程或服务"},
}

func TestShippedModulesLoad(t *testing.T) {
	specs, err := LoadDir(shippedDir)
	if err != nil {
		t.Fatalf("LoadDir(%s): %v", shippedDir, err)
	}
	// The originals, and 1008 (host facts).
	if len(specs) != len(originals)+1 || specs[1008] == nil || !specs[1008].ReadOnly {
		t.Fatalf("loaded %d modules, want %d and a read-only 1008", len(specs), len(originals)+1)
	}
	if errs := CheckDir(shippedDir); len(errs) != 0 {
		t.Fatalf("CheckDir: %v", errs)
	}
	for id, want := range originals {
		s := specs[id]
		if s == nil {
			t.Errorf("module %d missing", id)
			continue
		}
		if s.Name != want[0] || s.Caption != want[1] {
			t.Errorf("module %d: name/caption %q/%q, want %q/%q", id, s.Name, s.Caption, want[0], want[1])
		}
	}
	// The original forms' option values, in order.
	wantOptions := map[int][]string{
		1005: {"nginx", "nginx_config", "haproxy", "syslog", "sysctl", "resin", "resinhttpd", "resinjar"},
		1006: {"resin", "nginx", "haproxy", "apache", "mysql", "lighttpd"},
		1007: {"resin", "nginx", "haproxy", "apache", "mysql", "lighttpd"},
	}
	for id, want := range wantOptions {
		p, ok := specs[id].Param("sys_param_1")
		if !ok || p.Type != param.Choice {
			t.Fatalf("module %d: sys_param_1 is not a choice", id)
		}
		var got []string
		for _, o := range p.Options {
			got = append(got, o.Value)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("module %d options %v, want %v", id, got, want)
		}
	}
	for _, id := range []int{1001, 1002} {
		p, _ := specs[id].Param("sys_param_1")
		if p.Type != param.Number || *p.Min != 1 || *p.Max != 999 || p.Default != "50" {
			t.Errorf("module %d sys_param_1 = %+v, want number 1..999 default 50", id, p)
		}
	}
}

// Every shipped command, for every option, must be valid sh, and every
// copy source must exist.
func TestShippedModulesExpandToValidShell(t *testing.T) {
	specs, err := LoadDir(shippedDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		sets := []map[string]string{{}}
		if p, ok := s.Param("sys_param_1"); ok && p.Type == param.Choice {
			sets = nil
			for _, o := range p.Options {
				sets = append(sets, map[string]string{"sys_param_1": o.Value})
			}
		}
		for _, params := range sets {
			steps, err := s.Expand(params)
			if err != nil {
				t.Fatalf("module %d %v: %v", s.ID, params, err)
			}
			for _, st := range steps {
				if st.Command != "" {
					out, err := exec.Command("/bin/sh", "-n", "-c", st.Command).CombinedOutput()
					if err != nil {
						t.Errorf("module %d %v: sh -n: %v %s\n%s", s.ID, params, err, out, st.Command)
					}
				}
				if st.Copy != nil {
					if !filepath.IsAbs(st.Copy.Src) {
						t.Errorf("module %d: copy src %q not absolute", s.ID, st.Copy.Src)
					}
					if fi, err := os.Stat(st.Copy.Src); err != nil || !fi.Mode().IsRegular() {
						t.Errorf("module %d: copy src %q: %v", s.ID, st.Copy.Src, err)
					}
				}
			}
		}
	}
}

func TestExpand(t *testing.T) {
	specs, err := LoadDir(shippedDir)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := specs[1001].Expand(map[string]string{"sys_param_1": "007"})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || !strings.Contains(steps[0].Command, "n='7'\n") {
		t.Fatalf("1001 expansion: %q", steps[0].Command)
	}
	steps, err = specs[1001].Expand(nil)
	if err != nil || !strings.Contains(steps[0].Command, "n='50'\n") {
		t.Fatalf("1001 default expansion: %v %+v", err, steps)
	}
	steps, err = specs[1005].Expand(map[string]string{"sys_param_1": "sysctl"})
	if err != nil {
		t.Fatal(err)
	}
	c := steps[0].Copy
	abs, _ := filepath.Abs(filepath.Join(shippedDir, "files/1005/sysctl-omserver.conf"))
	if c == nil || c.Src != abs || c.Dest != "/etc/sysctl.d/90-omserver.conf" || c.Mode != 0o644 {
		t.Fatalf("1005 sysctl copy = %+v", c)
	}
	if !strings.Contains(steps[0].Command, "sysctl -p /etc/sysctl.d/90-omserver.conf") {
		t.Fatalf("1005 sysctl follow-up = %q", steps[0].Command)
	}
	steps, err = specs[1006].Expand(map[string]string{"sys_param_1": "apache"})
	if err != nil || !strings.Contains(steps[0].Command, "for f in /etc/apache2/apache2.conf /etc/httpd/conf/httpd.conf; do") ||
		!strings.Contains(steps[0].Command, "echo no configuration file of 'apache' found") {
		t.Fatalf("1006 apache: %v %+v", err, steps)
	}
	// An unknown name runs nothing, as in the original.
	steps, err = specs[1007].Expand(map[string]string{"sys_param_1": "sshd"})
	if !errors.Is(err, task.ErrInvalidParams) || steps != nil {
		t.Fatalf("1007 unknown service: steps %v, err %v", steps, err)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const goodHead = "id: 1500\nname: test\n"

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name    string
		file    string // default Mid_1500.yaml
		content string
		want    []string // substrings of the error, besides the file name
	}{
		{"malformed yaml", "", "id: 1500\nname: [unclosed\n", []string{"malformed YAML"}},
		{"empty", "", "", []string{"empty module file"}},
		{"two documents", "", goodHead + "steps: [{run: true}]\n---\nid: 2\n", []string{"more than one YAML document"}},
		{"unknown top key", "", goodHead + "steps: [{run: uptime}]\ncommand: rm -rf /\n", []string{"command: unknown key (line 4)"}},
		{"unknown param key", "", goodHead + "params: [{name: a, type: number, min: 1, max: 2, maxlen: 3}]\nsteps: [{run: uptime}]\n", []string{"params[0].maxlen: unknown key"}},
		{"unknown key in an option", "", goodHead + "params:\n  - {name: a, type: number, min: 1, max: 2}\n  - name: c\n    type: choice\n    options:\n      - {value: x}\n      - {value: y, shell: true}\nsteps: [{run: uptime}]\n", []string{"params[1].options[1].shell: unknown key (line 9)"}},
		{"unknown copy key", "", goodHead + "steps: [{copy: {src: a, dest: /a, owner: root}}]\n", []string{"steps[0].copy.owner: unknown key"}},
		{"duplicate key", "", goodHead + "name: again\nsteps: [{run: uptime}]\n", []string{"already defined"}},
		{"wrong type", "", "id: abc\nname: x\nsteps: [{run: uptime}]\n", []string{"cannot unmarshal"}},
		{"id mismatch", "Mid_1501.yaml", goodHead + "steps: [{run: uptime}]\n", []string{"id: id 1500 does not match file name Mid_1501.yaml"}},
		{"missing id", "", "name: x\nsteps: [{run: uptime}]\n", []string{"id: required"}},
		{"bad file name", "Mid_01500.yaml", goodHead + "steps: [{run: uptime}]\n", []string{"is not Mid_<id>.yaml"}},
		{"name too long", "", "id: 1500\nname: 一二三四五六七八九十一二三四五六七八九十一\nsteps: [{run: uptime}]\n", []string{"name: 21 characters"}},
		{"no steps", "", goodHead, []string{"steps: at least one step"}},
		{"empty step", "", goodHead + "steps: [{}]\n", []string{"steps[0]: a step needs run, copy, or both"}},
		{"bad backend", "", goodHead + "backend: telnet\nsteps: [{run: uptime}]\n", []string{"backend: \"telnet\" is not one of"}},
		{"bad timeout", "", goodHead + "timeout: soon\nsteps: [{run: uptime}]\n", []string{"timeout: \"soon\" is not a duration"}},
		{"undeclared param", "", goodHead + "steps: [{run: 'tail -n {{lines}} /var/log/syslog'}]\n", []string{"steps[0].run: {{lines}} refers to an undeclared parameter"}},
		{"undeclared var param", "", goodHead + "steps: [{run: '{{svc.unit}}'}]\n", []string{"steps[0].run: {{svc}} refers to an undeclared parameter"}},
		{"bad reference", "", goodHead + "steps: [{run: 'echo {{ a b }}'}]\n", []string{"steps[0].run: {{ a b }} is not {{param}}"}},
		{"unclosed reference", "", goodHead + "steps: [{run: 'echo {{a'}]\n", []string{`steps[0].run: unclosed "{{"`}},
		{"number without range", "", goodHead + "params: [{name: n, type: number}]\nsteps: [{run: 'echo {{n}}'}]\n", []string{"params[0].min: required", "params[0].max: required"}},
		{"min above max", "", goodHead + "params: [{name: n, type: number, min: 5, max: 1}]\nsteps: [{run: 'echo {{n}}'}]\n", []string{"params[0].max: max 1 is less than min 5"}},
		{"default out of range", "", goodHead + "params: [{name: n, type: number, min: 1, max: 9, default: 10}]\nsteps: [{run: 'echo {{n}}'}]\n", []string{"params[0].default: parameter \"n\": 10 is more than the maximum 9"}},
		{"text without max_length", "", goodHead + "params: [{name: s, type: text}]\nsteps: [{run: 'echo {{s}}'}]\n", []string{"params[0].max_length: required for text"}},
		{"bad pattern", "", goodHead + "params: [{name: s, type: text, max_length: 9, pattern: '(a'}]\nsteps: [{run: 'echo {{s}}'}]\n", []string{"params[0].pattern: not a valid RE2 pattern"}},
		{"options on text", "", goodHead + "params: [{name: s, type: text, max_length: 9, options: [{value: a}]}]\nsteps: [{run: 'echo {{s}}'}]\n", []string{"params[0].options: not allowed for type text"}},
		{"unknown type", "", goodHead + "params: [{name: s, type: file}]\nsteps: [{run: 'echo {{s}}'}]\n", []string{"params[0].type: \"file\" is not number, text, choice, boolean or fixed"}},
		{"bad param name", "", goodHead + "params: [{name: 'a-b', type: number, min: 1, max: 2}]\nsteps: [{run: uptime}]\n", []string{"params[0].name: \"a-b\" is not a name"}},
		{"duplicate param", "", goodHead + "params: [{name: a, type: number, min: 1, max: 2}, {name: a, type: number, min: 1, max: 2}]\nsteps: [{run: 'echo {{a}}'}]\n", []string{"params[1].name: parameter \"a\" declared twice"}},
		{"choice without options", "", goodHead + "params: [{name: c, type: choice}]\nsteps: [{run: 'echo {{c}}'}]\n", []string{"params[0].options: a choice needs at least one option"}},
		{"choice default not an option", "", goodHead + "params: [{name: c, type: choice, default: z, options: [{value: a}]}]\nsteps: [{run: 'echo {{c}}'}]\n", []string{"params[0].default: parameter \"c\": \"z\" is not one of the options"}},
		{"duplicate option", "", goodHead + "params: [{name: c, type: choice, options: [{value: a}, {value: a}]}]\nsteps: [{run: 'echo {{c}}'}]\n", []string{"params[0].options[1].value: \"a\" listed twice"}},
		{"var missing on an option", "", goodHead + "params: [{name: c, type: choice, options: [{value: a, vars: {u: x}}, {value: b}]}]\nsteps: [{run: 'echo {{c.u}}'}]\n", []string{"steps[0].run: {{c.u}}: option \"b\" has no var \"u\""}},
		{"var of a number", "", goodHead + "params: [{name: n, type: number, min: 1, max: 2}]\nsteps: [{run: 'echo {{n.u}}'}]\n", []string{"steps[0].run: {{n.u}}: only a choice parameter has vars"}},
		{"param in double quotes", "", goodHead + "params: [{name: n, type: number, min: 1, max: 2}]\nsteps: [{run: 'echo \"{{n}}\"'}]\n", []string{"steps[0].run: a {{param}} value must not be inside quotes"}},
		{"param in single quotes", "", goodHead + "params: [{name: n, type: number, min: 1, max: 2}]\nsteps: [{run: \"echo '{{n}}'\"}]\n", []string{"must not be inside quotes"}},
		{"param in backquotes", "", goodHead + "params: [{name: n, type: number, min: 1, max: 2}]\nsteps: [{run: 'echo `echo {{n}}`'}]\n", []string{"must not be inside backquotes"}},
		{"param in heredoc", "", goodHead + "params: [{name: n, type: number, min: 1, max: 2}]\nsteps: [{run: \"cat <<EOF\\n{{n}}\\nEOF\\n\"}]\n", []string{"after a here-document"}},
		{"param with eval", "", goodHead + "params: [{name: n, type: number, min: 1, max: 2}]\nsteps: [{run: 'eval echo {{n}}'}]\n", []string{"containing eval"}},
		{"var opens a quote", "", goodHead + "params: [{name: n, type: number, min: 1, max: 2}, {name: c, type: choice, options: [{value: a, vars: {q: 'echo \"'}}]}]\nsteps: [{run: '{{c.q}} {{n}}\"'}]\n", []string{"must not be inside quotes", "(with c=a)"}},
		{"text in [[ ]]", "", goodHead + "params: [{name: s, type: text, max_length: 9}]\nsteps: [{run: '[[ {{s}} -eq 1 ]] && echo one'}]\n", []string{"steps[0].run: a text {{param}} must not be used in a command with [[ ]]"}},
		{"text to ssh", "", goodHead + "params: [{name: s, type: text, max_length: 9}]\nsteps: [{run: 'ssh web2 cat {{s}}'}]\n", []string{`steps[0].run: a text {{param}} must not be used in a command that runs "ssh"`}},
		{"unterminated quote", "", goodHead + "steps: [{run: 'echo \"abc'}]\n", []string{"unterminated quote"}},
		{"multiline on a number", "", goodHead + "params: [{name: n, type: number, min: 1, max: 2, multiline: true}]\nsteps: [{run: 'echo {{n}}'}]\n", []string{"params[0].multiline: not allowed for type number"}},
		{"value on text", "", goodHead + "params: [{name: s, type: text, max_length: 9, value: x}]\nsteps: [{run: 'echo {{s}}'}]\n", []string{"params[0].value: not allowed for type text"}},
		{"boolean without value", "", goodHead + "params: [{name: b, type: boolean}]\nsteps: [{run: 'ls {{b}}'}]\n", []string{"params[0].value: required for boolean"}},
		{"boolean with empty value", "", goodHead + "params: [{name: b, type: boolean, value: ''}]\nsteps: [{run: 'ls {{b}}'}]\n", []string{"params[0].value: empty: a boolean sends its value when checked"}},
		{"boolean value with a line break", "", goodHead + "params: [{name: b, type: boolean, value: \"-l\\nrm\"}]\nsteps: [{run: 'ls {{b}}'}]\n", []string{"params[0].value: must be UTF-8 text", "without control characters or line breaks"}},
		{"boolean default not its value", "", goodHead + "params: [{name: b, type: boolean, value: -l, default: -a}]\nsteps: [{run: 'ls {{b}}'}]\n", []string{`params[0].default: parameter "b": "-a" is neither "-l" (checked) nor "" (not checked)`}},
		{"boolean with options", "", goodHead + "params: [{name: b, type: boolean, value: -l, options: [{value: a}]}]\nsteps: [{run: 'ls {{b}}'}]\n", []string{"params[0].options: not allowed for type boolean"}},
		{"fixed without value", "", goodHead + "params: [{name: f, type: fixed}]\nsteps: [{run: 'ls {{f}}'}]\n", []string{"params[0].value: required for fixed"}},
		{"fixed with a default", "", goodHead + "params: [{name: f, type: fixed, value: a, default: a}]\nsteps: [{run: 'ls {{f}}'}]\n", []string{"params[0].default: not allowed for type fixed"}},
		{"fixed with max_length", "", goodHead + "params: [{name: f, type: fixed, value: a, max_length: 3}]\nsteps: [{run: 'ls {{f}}'}]\n", []string{"params[0].max_length: not allowed for type fixed"}},
		{"multi-line default with a tab", "", goodHead + "params: [{name: m, type: text, multiline: true, max_length: 99, default: \"a\\tb\"}]\nsteps: [{run: 'printf %s {{m}}'}]\n", []string{`params[0].default: parameter "m": contains a control character other than a line feed`}},
		{"multi-line text in a comment", "", goodHead + "params: [{name: m, type: text, multiline: true, max_length: 99}]\nsteps: [{run: \"echo start # {{m}}\"}]\n", []string{"steps[0].run: a multi-line {{param}} must not be used in a comment"}},
		{"multi-line text to sh -c", "", goodHead + "params: [{name: m, type: text, multiline: true, max_length: 99}]\nsteps: [{run: 'sh -c {{m}}'}]\n", []string{`a text {{param}} must not be used in a command that runs "sh"`}},
		{"multi-line text in a heredoc", "", goodHead + "params: [{name: m, type: text, multiline: true, max_length: 99}]\nsteps: [{run: \"cat <<E\\n{{m}}\\nE\\n\"}]\n", []string{"after a here-document"}},
		{"fixed in double quotes", "", goodHead + "params: [{name: f, type: fixed, value: a}]\nsteps: [{run: 'echo \"{{f}}\"'}]\n", []string{"must not be inside quotes"}},
		{"run with STX", "", goodHead + "steps: [{run: \"echo \\x02\"}]\n", []string{"contains a NUL, SOH or STX byte"}},
		{"missing copy file", "", goodHead + "steps: [{copy: {src: files/nothere.conf, dest: /etc/x.conf}}]\n", []string{"steps[0].copy.src: \"files/nothere.conf\"", "no such file"}},
		{"copy src absolute", "", goodHead + "steps: [{copy: {src: /etc/passwd, dest: /tmp/x}}]\n", []string{"steps[0].copy.src: \"/etc/passwd\" must be a relative path inside the modules directory"}},
		{"copy src dotdot", "", goodHead + "steps: [{copy: {src: ../secret, dest: /tmp/x}}]\n", []string{"steps[0].copy.src: \"../secret\" must be a relative path"}},
		{"copy src is a directory", "", goodHead + "steps: [{copy: {src: files, dest: /tmp/x}}]\n", []string{"steps[0].copy.src: \"files\" is not a regular file"}},
		{"copy src via option var missing", "", goodHead + "params: [{name: c, type: choice, options: [{value: a, vars: {f: ok.conf}}, {value: b, vars: {f: gone.conf}}]}]\nsteps: [{copy: {src: 'files/{{c.f}}', dest: /etc/x}}]\n", []string{"steps[0].copy.src: \"files/gone.conf\"", "(with c=b)"}},
		{"copy src plain param", "", goodHead + "params: [{name: s, type: text, max_length: 9}]\nsteps: [{copy: {src: 'files/{{s}}', dest: /etc/x}}]\n", []string{"steps[0].copy.src: {{s}}: a parameter value cannot be used in a copy path"}},
		{"copy dest relative", "", goodHead + "steps: [{copy: {src: files/ok.conf, dest: etc/x}}]\n", []string{"steps[0].copy.dest: \"etc/x\" must be an absolute, clean file path"}},
		{"copy dest unclean", "", goodHead + "steps: [{copy: {src: files/ok.conf, dest: /etc/../root/x}}]\n", []string{"steps[0].copy.dest: \"/etc/../root/x\" must be an absolute, clean"}},
		{"copy mode", "", goodHead + "steps: [{copy: {src: files/ok.conf, dest: /etc/x, mode: '4755'}}]\n", []string{"steps[0].copy.mode: \"4755\" is not an octal permission"}},
		{"copy symlink escape", "", goodHead + "steps: [{copy: {src: files/escape, dest: /etc/x}}]\n", []string{"steps[0].copy.src: \"files/escape\" resolves to", "outside the modules directory"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "files", "ok.conf"), "ok\n")
			outside := filepath.Join(t.TempDir(), "secret")
			writeFile(t, outside, "secret\n")
			if err := os.Symlink(outside, filepath.Join(dir, "files", "escape")); err != nil {
				t.Fatal(err)
			}
			file := tc.file
			if file == "" {
				file = "Mid_1500.yaml"
			}
			path := filepath.Join(dir, file)
			writeFile(t, path, tc.content)
			spec, err := LoadFile(path)
			if err == nil {
				t.Fatalf("LoadFile accepted it: %+v", spec)
			}
			if spec != nil {
				t.Errorf("LoadFile returned a spec with the error")
			}
			for _, w := range append([]string{path + ": "}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			// The directory check reports the same problem, naming the file.
			errs := CheckDir(dir)
			if len(errs) == 0 || !strings.Contains(errors.Join(errs...).Error(), filepath.Base(path)) {
				t.Errorf("CheckDir = %v, want an error naming %s", errs, file)
			}
		})
	}
}

func TestLoadAcceptsGoodSpec(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "files", "a.conf"), "a\n")
	writeFile(t, filepath.Join(dir, "files", "b.conf"), "b\n")
	path := filepath.Join(dir, "Mid_1500.yaml")
	writeFile(t, path, `id: 1500
name: good
timeout: 5s
params:
  - {name: n, type: number, min: -5, max: 5, default: 3}
  - {name: s, type: text, max_length: 10, pattern: '[a-z]+'}
  - name: c
    type: choice
    default: a
    options:
      - {value: a, vars: {f: a.conf, after: echo a}}
      - {value: b, vars: {f: b.conf, after: echo "b"}}
steps:
  - run: |-
      echo {{n}} {{ s }} "$(echo {{s}})" # {{s}} in a comment
  - copy: {src: "files/{{c.f}}", dest: "/tmp/{{c.f}}", mode: "0600"}
    run: "{{c.after}}"
`)
	s, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Param("n"); p.Default != "3" {
		t.Errorf("unquoted YAML default decoded as %q, want 3", p.Default)
	}
	steps, err := s.Expand(map[string]string{"s": "abc", "c": "b"})
	if err != nil {
		t.Fatal(err)
	}
	want := `echo '3' 'abc' "$(echo 'abc')" # 'abc' in a comment`
	if len(steps) != 2 || steps[0].Command != want {
		t.Fatalf("steps[0] = %q, want %q", steps[0].Command, want)
	}
	c := steps[1].Copy
	if c.Src != filepath.Join(dir, "files", "b.conf") || c.Dest != "/tmp/b.conf" || c.Mode != 0o600 || steps[1].Command != `echo "b"` {
		t.Fatalf("steps[1] = %+v %q", c, steps[1].Command)
	}
}

func TestLoadDirReportsEveryFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Mid_1.yaml"), "id: 1\nname: one\nsteps: [{run: uptime}]\n")
	writeFile(t, filepath.Join(dir, "Mid_2.yaml"), "id: 2\nname: two\nbogus: 1\nsteps: [{run: uptime}]\n")
	writeFile(t, filepath.Join(dir, "Mid_3.yaml"), "id: 4\nname: three\nsteps: [{run: uptime}]\n")
	writeFile(t, filepath.Join(dir, "README.md"), "not a module\n")
	specs, err := LoadDir(dir)
	if err == nil {
		t.Fatal("LoadDir accepted a broken directory")
	}
	if len(specs) != 1 || specs[1] == nil {
		t.Errorf("valid modules returned: %v", specs)
	}
	errs := CheckDir(dir)
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	sort.Strings(msgs)
	if len(msgs) != 2 || !strings.Contains(msgs[0], "Mid_2.yaml: bogus: unknown key") || !strings.Contains(msgs[1], "Mid_3.yaml: id: id 4 does not match") {
		t.Fatalf("CheckDir = %q", msgs)
	}
	if errs := CheckDir(t.TempDir()); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no Mid_<id>.yaml files") {
		t.Fatalf("empty dir: %v", errs)
	}
	if errs := CheckDir(filepath.Join(dir, "missing")); len(errs) != 1 {
		t.Fatalf("missing dir: %v", errs)
	}
}

func TestSafetyFields(t *testing.T) {
	base := "id: 2001\nname: x\nsteps:\n  - run: \"true\"\n"
	for _, tt := range []struct{ extra, want string }{
		{"", ""},
		{"read_only: true\nlock: refuse\nlock_wait: 30s\nmax_hosts: 50\n", ""},
		{"lock: sometimes\n", "lock"},
		{"lock_wait: soon\n", "lock_wait"},
		{"max_hosts: 0\n", "max_hosts"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "Mid_2001.yaml"), []byte(base+tt.extra), 0o644); err != nil {
			t.Fatal(err)
		}
		specs, err := LoadDir(dir)
		if tt.want != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q: err = %v, want %q", tt.extra, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.extra, err)
		}
		s := specs[2001]
		if tt.extra == "" && (s.ReadOnly || s.Lock != LockWait || s.LockWait != DefaultLockWait || s.MaxHosts != 0) {
			t.Errorf("defaults: %+v", s)
		}
		if tt.extra != "" && (!s.ReadOnly || s.Lock != LockRefuse || s.LockWait != 30*time.Second || s.MaxHosts != 50) {
			t.Errorf("set: %+v", s)
		}
	}
}

// TestRisky: the modules that change their targets (1005 copies files,
// 1007 restarts services) say so; the read-only ones do not.
func TestRisky(t *testing.T) {
	specs, err := LoadDir(shippedDir)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int]bool{1001: false, 1002: false, 1003: false, 1004: false, 1005: true, 1006: false, 1007: true} {
		if specs[id] == nil || specs[id].Risky != want {
			t.Errorf("module %d risky = %v, want %v", id, specs[id] != nil && specs[id].Risky, want)
		}
	}
}
