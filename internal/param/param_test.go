package param

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/task"
)

func i64(v int64) *int64 { return &v }

// schema has one parameter of each kind, as a legacy form and a module file
// declare them.
func schema() Schema {
	return Schema{
		{Name: "num", Type: Number, Min: i64(1), Max: i64(999), Default: "50"},
		{Name: "legacy_num", Type: Number, MaxLength: 3, Min: i64(0), Max: i64(999), Default: "5"},
		{Name: "host", Type: Text, MaxLength: 20, Pattern: `[A-Za-z0-9.-]+`, Required: true},
		{Name: "free", Type: Text, MaxLength: 8},
		{Name: "svc", Type: Choice, Default: "nginx", Options: []Option{{Value: "nginx"}, {Value: "mysql", Vars: map[string]string{"unit": "mariadb"}}}},
	}
}

func TestValidate(t *testing.T) {
	s := schema()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{"num": "50", "legacy_num": "5", "host": "h", "free": "", "svc": "nginx"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		in     map[string]string
		want   map[string]string // nil: refused
		errHas []string
	}{
		{"defaults; free text without default is empty", with("host", "h"), defaults, nil},
		{"number normalised", with("host", "h", "num", "007"), map[string]string{"num": "7", "legacy_num": "5", "host": "h", "free": "", "svc": "nginx"}, nil},
		{"negative zero", with("host", "h", "legacy_num", "-0"), map[string]string{"num": "50", "legacy_num": "0", "host": "h", "free": "", "svc": "nginx"}, nil},
		{"required missing", with(), nil, []string{`parameter "host": missing and has no default`}},
		{"unknown", with("host", "h", "sys_param_9", "1"), nil, []string{`unknown parameter "sys_param_9"`, "num, legacy_num, host, free, svc"}},
		{"choice not an option", with("host", "h", "svc", "sshd"), nil, []string{`parameter "svc": "sshd" is not one of the options ["nginx" "mysql"]`}},
		{"number out of range", with("host", "h", "num", "1000"), nil, []string{`parameter "num": 1000 is more than the maximum 999`}},
		{"number plus sign", with("host", "h", "num", "+5"), nil, []string{"not a base-10 integer"}},
		{"number injection", with("host", "h", "num", "5; id"), nil, []string{"not a base-10 integer"}},
		{"number overflow", with("host", "h", "num", "99999999999999999999"), nil, []string{"not a base-10 integer"}},
		{"legacy number longer than its maxlength", with("host", "h", "legacy_num", "0050"), nil, []string{`"0050" is longer than 3 characters`}},
		{"text pattern", with("host", "$(id)"), nil, []string{`does not match the pattern`}},
		{"text newline", with("host", "h", "free", "a\nb"), nil, []string{"control character or line break"}},
		{"text U+2028", with("host", "h", "free", "a\u2028b"), nil, []string{"control character"}},
		{"text too long in runes", with("host", "h", "free", "日本語日本語日本語"), nil, []string{"9 characters is more than max_length 8"}},
		{"not UTF-8", with("host", "h", "free", "\xff"), nil, []string{"not valid UTF-8"}},
		{"over the task's byte limit", with("host", "h", "svc", strings.Repeat("a", MaxValueBytes+1)), nil, []string{"4097 bytes is more than the limit of 4096"}},
		{"several at once", with("num", "x", "svc", "y"), nil, []string{`"num"`, `"svc"`, `"host"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Validate(tc.in)
			if tc.want != nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
				for k, v := range tc.want {
					if got[k] != v {
						t.Errorf("%s = %q, want %q", k, got[k], v)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %v", got)
			}
			if !errors.Is(err, task.ErrInvalidParams) || apperr.KindOf(err) != apperr.Invalid {
				t.Errorf("error %v: not task.ErrInvalidParams / apperr.Invalid", err)
			}
			for _, w := range tc.errHas {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	many := map[string]string{}
	for i := range MaxParams + 1 {
		many[strings.Repeat("p", i+1)] = "x"
	}
	if _, err := s.Validate(many); !errors.Is(err, task.ErrInvalidParams) || !strings.Contains(err.Error(), "more than the limit of 32") {
		t.Errorf("too many parameters: %v", err)
	}
}

func TestCheckValue(t *testing.T) {
	p := schema()[0]
	if err := p.Check("12"); err != nil {
		t.Errorf("Check(12) = %v", err)
	}
	// Check's text is the one the web tier's messages were built from.
	if err := p.Check("0"); !errors.Is(err, task.ErrInvalidParams) || err.Error() != "num: invalid module parameters: 0 is less than the minimum 1" {
		t.Errorf("Check(0) = %v", err)
	}
	_, err := p.Normalise("1000")
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Param != "num" || !errors.Is(err, task.ErrInvalidParams) || err.Error() != `parameter "num": 1000 is more than the maximum 999` {
		t.Errorf("Normalise(1000) = %v", err)
	}
	if v, err := p.Normalise("0042"); err != nil || v != "42" {
		t.Errorf("Normalise(0042) = %q, %v", v, err)
	}
}

func TestSchemaCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Schema
		want string
	}{
		{"bad name", Schema{{Name: "1x", Type: Text, MaxLength: 1}}, "not a name"},
		{"name too long", Schema{{Name: strings.Repeat("a", 65), Type: Text, MaxLength: 1}}, "not a name"},
		{"unknown type", Schema{{Name: "a", Type: "date", MaxLength: 1}}, `unknown type "date"`},
		{"duplicate", Schema{{Name: "a", Type: Text, MaxLength: 1}, {Name: "a", Type: Text, MaxLength: 1}}, "declared twice"},
		{"text without max length", Schema{{Name: "a", Type: Text}}, "max length 0 outside 1..4096"},
		{"text max length too big", Schema{{Name: "a", Type: Text, MaxLength: 4097}}, "outside 1..4096"},
		{"text with min", Schema{{Name: "a", Type: Text, MaxLength: 1, Min: i64(1)}}, "a text parameter has no min"},
		{"text with options", Schema{{Name: "a", Type: Text, MaxLength: 1, Options: []Option{{Value: "x"}}}}, "has no options"},
		{"bad pattern", Schema{{Name: "a", Type: Text, MaxLength: 1, Pattern: "("}}, "not a valid RE2 pattern"},
		{"default not matching pattern", Schema{{Name: "a", Type: Text, MaxLength: 9, Pattern: "[a-z]+", Default: "A"}}, "default"},
		{"number with pattern", Schema{{Name: "a", Type: Number, Pattern: "x"}}, "a number parameter has no pattern"},
		{"number min above max", Schema{{Name: "a", Type: Number, Min: i64(5), Max: i64(1)}}, "min 5 is greater than max 1"},
		{"number default out of range", Schema{{Name: "a", Type: Number, Min: i64(1), Max: i64(3), Default: "9"}}, "default: 9 is more than the maximum 3"},
		{"choice without options", Schema{{Name: "a", Type: Choice}}, "has no options"},
		{"choice duplicate option", Schema{{Name: "a", Type: Choice, Options: []Option{{Value: "x"}, {Value: "x"}}}}, "listed twice"},
		{"choice default not an option", Schema{{Name: "a", Type: Choice, Default: "z", Options: []Option{{Value: "x"}}}}, `default: "z" is not one of the options`},
		{"choice with max length", Schema{{Name: "a", Type: Choice, MaxLength: 3, Options: []Option{{Value: "x"}}}}, "has no max_length"},
		{"required with a default", Schema{{Name: "a", Type: Text, MaxLength: 3, Default: "x", Required: true}}, "not required"},
		{"label too long", Schema{{Name: "a", Label: strings.Repeat("标", 256), Type: Text, MaxLength: 1}}, "label longer than 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Check()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	var many Schema
	for i := range MaxParams + 1 {
		many = append(many, Param{Name: "p" + strings.Repeat("x", i), Type: Text, MaxLength: 1})
	}
	if err := many.Check(); err == nil {
		t.Error("33 parameters accepted")
	}
	// A choice with no preselection (default "") is a declaration the
	// legacy forms and the module files both make.
	if err := (Schema{{Name: "a", Type: Choice, Options: []Option{{Value: "x"}}}}).Check(); err != nil {
		t.Errorf("choice without default: %v", err)
	}
}

// The JSON the store persists and the API sends: field names and order of
// the first release, Vars never present.
func TestJSONShape(t *testing.T) {
	s := schema()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const want = `[{"name":"num","label":"","type":"number","default":"50","min":1,"max":999},` +
		`{"name":"legacy_num","label":"","type":"number","max_length":3,"default":"5","min":0,"max":999},` +
		`{"name":"host","label":"","type":"text","max_length":20,"pattern":"[A-Za-z0-9.-]+","required":true},` +
		`{"name":"free","label":"","type":"text","max_length":8},` +
		`{"name":"svc","label":"","type":"select","default":"nginx","options":[{"value":"nginx","label":""},{"value":"mysql","label":""}]}]`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	if strings.Contains(string(b), "mariadb") || strings.Contains(strings.ToLower(string(b)), "vars") {
		t.Fatal("option vars leaked into JSON")
	}
	var back Schema
	if err := json.Unmarshal(b, &back); err != nil || back.Check() != nil || len(back) != len(s) || back[4].Options[1].Vars != nil {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestParseType(t *testing.T) {
	for in, want := range map[string]Type{"text": Text, "number": Number, "select": Choice, "choice": Choice} {
		if got, ok := ParseType(in); !ok || got != want {
			t.Errorf("ParseType(%q) = %q, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "Text", "date", "radio"} {
		if _, ok := ParseType(bad); ok {
			t.Errorf("ParseType(%q) accepted", bad)
		}
	}
}

func TestNewKinds(t *testing.T) {
	s := Schema{
		{Name: "script", Type: Text, Multiline: true, MaxLength: 10},
		{Name: "force", Type: Boolean, Value: "-f"},
		{Name: "verbose", Type: Boolean, Value: "-v", Default: "-v"},
		{Name: "dir", Type: Fixed, Value: "/var/log", Default: "/var/log"},
		{Name: "blank", Type: Fixed},
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Validate(map[string]string{"script": "a\r\nb\n"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"script": "a\nb\n", "force": "", "verbose": "-v", "dir": "/var/log", "blank": ""}
	for k, v := range want {
		if got[k] != v || len(got) != len(want) {
			t.Fatalf("Validate = %q, want %q", got, want)
		}
	}
	for _, tc := range []struct {
		in   map[string]string
		want string
	}{
		{map[string]string{"script": "a\rb"}, "control character other than a line feed"},
		{map[string]string{"script": "a\tb"}, "control character other than a line feed"},
		{map[string]string{"script": "a\u0085b"}, "control character other than a line feed"},
		{map[string]string{"script": "a\u2028b"}, "control character other than a line feed"},
		{map[string]string{"script": strings.Repeat("\r\n", 11)}, "11 characters is more than max_length 10"},
		{map[string]string{"force": "yes"}, `parameter "force": "yes" is neither "-f" (checked) nor "" (not checked)`},
		{map[string]string{"verbose": "-f"}, `"-f" is neither "-v"`},
		{map[string]string{"dir": "/etc"}, `parameter "dir": "/etc" is not the fixed value "/var/log"`},
		{map[string]string{"blank": " "}, `" " is not the fixed value ""`},
	} {
		if _, err := s.Validate(tc.in); !errors.Is(err, task.ErrInvalidParams) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
	// Only a multi-line text keeps a line feed.
	single := Param{Name: "s", Type: Text, MaxLength: 10}
	if err := single.Check("a\nb"); err == nil {
		t.Error("single-line text accepted a line feed")
	}

	for _, tc := range []struct {
		name string
		p    Param
		want string
	}{
		{"multiline on a number", Param{Name: "a", Type: Number, Multiline: true}, "a number parameter has no multiline"},
		{"value on text", Param{Name: "a", Type: Text, MaxLength: 1, Value: "x"}, "a text parameter has no value"},
		{"boolean without value", Param{Name: "a", Type: Boolean}, "needs the value it carries when checked"},
		{"boolean with options", Param{Name: "a", Type: Boolean, Value: "x", Options: []Option{{Value: "x"}}}, "a boolean parameter has no options"},
		{"boolean default neither", Param{Name: "a", Type: Boolean, Value: "x", Default: "y"}, `default: "y" is neither "x"`},
		{"boolean value with a line break", Param{Name: "a", Type: Boolean, Value: "x\ny"}, "value: contains a control character"},
		{"boolean value not UTF-8", Param{Name: "a", Type: Boolean, Value: "\xff"}, "value: must be valid UTF-8"},
		{"fixed default differs", Param{Name: "a", Type: Fixed, Value: "x", Default: "y"}, `default must be its value "x"`},
		{"fixed default missing", Param{Name: "a", Type: Fixed, Value: "x"}, `default must be its value "x"`},
		{"fixed value too long", Param{Name: "a", Type: Fixed, Value: strings.Repeat("x", 4097), Default: strings.Repeat("x", 4097)}, "at most 4096 bytes"},
		{"multi-line default with a tab", Param{Name: "a", Type: Text, Multiline: true, MaxLength: 9, Default: "a\tb"}, "default: contains a control character other than a line feed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := (Schema{tc.p}).Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want an error containing %q", err, tc.want)
			}
		})
	}

	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `[{"name":"script","label":"","type":"text","max_length":10,"multiline":true},` +
		`{"name":"force","label":"","type":"boolean","value":"-f"},` +
		`{"name":"verbose","label":"","type":"boolean","default":"-v","value":"-v"},` +
		`{"name":"dir","label":"","type":"fixed","default":"/var/log","value":"/var/log"},` +
		`{"name":"blank","label":"","type":"fixed"}]`
	if string(b) != wantJSON {
		t.Fatalf("JSON\n got %s\nwant %s", b, wantJSON)
	}
	var back Schema
	if err := json.Unmarshal(b, &back); err != nil || back.Check() != nil {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

// FuzzValidate: an accepted value set holds every declared parameter and
// nothing else, each value accepted again by its own parameter (normalising
// is idempotent), with control characters only as line feeds of the
// multi-line text.
func FuzzValidate(f *testing.F) {
	s := append(schema(), Schema{
		{Name: "script", Type: Text, Multiline: true, MaxLength: 64},
		{Name: "force", Type: Boolean, Value: "-f"},
		{Name: "dir", Type: Fixed, Value: "/var/log", Default: "/var/log"},
	}...)
	f.Add("host", "h", "script", "a\r\nb", "num", "007")
	f.Add("host", "h", "force", "-f", "free", "a\nb")
	f.Add("sys_param_1", "x", "dir", "/etc", "svc", "mysql")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		out, err := s.Validate(map[string]string{k1: v1, k2: v2, k3: v3})
		if err != nil {
			if !errors.Is(err, task.ErrInvalidParams) {
				t.Fatalf("error does not wrap task.ErrInvalidParams: %v", err)
			}
			return
		}
		if len(out) != len(s) {
			t.Fatalf("accepted %q", out)
		}
		for _, p := range s {
			v, ok := out[p.Name]
			if !ok {
				t.Fatalf("%s missing from %q", p.Name, out)
			}
			again, err := p.Normalise(v)
			if err != nil || again != v {
				t.Fatalf("%s=%q normalises to %q, %v", p.Name, v, again, err)
			}
			if strings.ContainsFunc(v, func(r rune) bool { return isControl(r) && !(p.Multiline && r == '\n') }) {
				t.Fatalf("accepted a control character in %s=%q", p.Name, v)
			}
		}
	})
}
