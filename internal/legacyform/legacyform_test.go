package legacyform

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/task"
)

func i64(v int64) *int64 { return &v }

// The module_extend values of the seven modules in the original dump
// (shared/reference/OMServer.sql), verbatim.
var dumpForms = map[int]string{
	1001: `返回信息行数：<input name="sys_param_1" id="sys_param_1" type="text" size="5" maxlength="3" value="50">`,
	1002: `返回信息行数：<input name="sys_param_1" id="sys_param_1" type="text" size="5" maxlength="3" value="50">`,
	1003: ``,
	1004: ``,
	1005: `选择同步文件：<select name="sys_param_1" id="sys_param_1"> <option value="nginx" selected>nginx启动脚本</option> <option value="nginx_config">nginx配置文件 </option> <option value="haproxy" selected>Haproxy配置文件</option> <option value="syslog" selected>syslog配置文件</option> <option value="sysctl" selected>sysctl配置文件</option> <option value="resin" selected>resin配置文件</option> <option value="resinhttpd" selected>resin_httpd</option> <option value="resinjar" selected>resin.jar</option> </select>`,
	1006: `进程服务名称：<select name="sys_param_1" id="sys_param_1">  <option value="resin" selected>resin</option>  <option value="nginx">nginx</option>  <option value="haproxy">haproxy</option>  <option value="apache">apache</option>  <option value="mysql">mysql</option>  <option value="lighttpd">lighttpd</option></select>`,
	1007: `进程服务名称： <select name="sys_param_1" id="sys_param_1">   <option value="resin" selected>resin</option>   <option value="nginx">nginx</option>   <option value="haproxy">haproxy</option>   <option value="apache">apache</option>   <option value="mysql">mysql</option>   <option value="lighttpd">lighttpd</option> </select>`,
}

var services = []param.Option{{Value: "resin", Label: "resin"}, {Value: "nginx", Label: "nginx"}, {Value: "haproxy", Label: "haproxy"}, {Value: "apache", Label: "apache"}, {Value: "mysql", Label: "mysql"}, {Value: "lighttpd", Label: "lighttpd"}}

func TestParseDumpModules(t *testing.T) {
	lineCount := []param.Param{{Name: "sys_param_1", Label: "返回信息行数：", Type: param.Number, MaxLength: 3, Default: "50", Min: i64(1), Max: i64(999)}}
	want := map[int][]param.Param{
		1001: lineCount,
		1002: lineCount,
		1003: nil,
		1004: nil,
		// Seven options carry "selected"; a browser preselects the last one.
		1005: {{Name: "sys_param_1", Label: "选择同步文件：", Type: param.Choice, Default: "resinjar", Options: []param.Option{
			{Value: "nginx", Label: "nginx启动脚本"}, {Value: "nginx_config", Label: "nginx配置文件"}, {Value: "haproxy", Label: "Haproxy配置文件"},
			{Value: "syslog", Label: "syslog配置文件"}, {Value: "sysctl", Label: "sysctl配置文件"}, {Value: "resin", Label: "resin配置文件"},
			{Value: "resinhttpd", Label: "resin_httpd"}, {Value: "resinjar", Label: "resin.jar"}}}},
		1006: {{Name: "sys_param_1", Label: "进程服务名称：", Type: param.Choice, Default: "resin", Options: services}},
		1007: {{Name: "sys_param_1", Label: "进程服务名称：", Type: param.Choice, Default: "resin", Options: services}},
	}
	for id := 1001; id <= 1007; id++ {
		got, err := Parse(dumpForms[id])
		if err != nil {
			t.Errorf("module %d: %v", id, err)
			continue
		}
		if !reflect.DeepEqual(got, want[id]) {
			t.Errorf("module %d:\n got %+v\nwant %+v", id, got, want[id])
		}
		// Rendering the schema and parsing it again gives the same schema.
		again, err := Parse(Render(got))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("module %d: Render/Parse round trip = %+v, %v\nhtml %s", id, again, err, Render(got))
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []param.Param
	}{
		{"script, style, iframe and handlers are dropped",
			`<script>alert(1)</script><style>x{}</style><iframe src="//evil"></iframe>Lines: <input name="sys_param_1" onfocus="alert(1)" maxlength="10" value="ab" style="x">`,
			[]param.Param{{Name: "sys_param_1", Label: "Lines:", Type: param.Text, MaxLength: 10, Default: "ab"}}},
		{"controls not named sys_param_N are ignored",
			`A <input name="other" value="x"> B <input name="sys_param_2"> <select name="x"><option>1</option></select>`,
			[]param.Param{{Name: "sys_param_2", Label: "B", Type: param.Text, MaxLength: DefaultMaxLength}}},
		{"no selected option: the first is the default; duplicates and disabled dropped; text as value",
			`<select name="sys_param_1"><option>  a  b </option><option value="c" disabled>C</option><option value="a b">dup</option><optgroup label="g"><option value="d">D</option></optgroup></select>`,
			[]param.Param{{Name: "sys_param_1", Type: param.Choice, Default: "a b", Options: []param.Option{{Value: "a b", Label: "a b"}, {Value: "d", Label: "D"}}}}},
		{"html5 number with bounds",
			`N <input type="number" name="sys_param_1" min="-5" max="5" value="0">`,
			[]param.Param{{Name: "sys_param_1", Label: "N", Type: param.Number, MaxLength: 20, Default: "0", Min: i64(-5), Max: i64(5)}}},
		{"short numeric text input with 0 default: min 0",
			`<input name="sys_param_1" maxlength="2" value="0">`,
			[]param.Param{{Name: "sys_param_1", Type: param.Number, MaxLength: 2, Default: "0", Min: i64(0), Max: i64(99)}}},
		{"short non-numeric text stays text",
			`<input name="sys_param_1" maxlength="3" value="abc">`,
			[]param.Param{{Name: "sys_param_1", Type: param.Text, MaxLength: 3, Default: "abc"}}},
		{"inputmode turns the number heuristic off",
			`<input name="sys_param_1" inputmode="text" maxlength="3" value="50">`,
			[]param.Param{{Name: "sys_param_1", Type: param.Text, MaxLength: 3, Default: "50"}}},
		{"entities decoded in labels and values",
			`a &lt;b&gt; &amp; <input name="sys_param_1" value="&quot;x&quot;">`,
			[]param.Param{{Name: "sys_param_1", Label: "a <b> &", Type: param.Text, MaxLength: DefaultMaxLength, Default: `"x"`}}},
		{"two parameters, labels split at each control",
			`文件：<select name="sys_param_1"><option value="a">A</option></select><br>行数：<input name="sys_param_2" maxlength="3" value="10">`,
			[]param.Param{
				{Name: "sys_param_1", Label: "文件：", Type: param.Choice, Default: "a", Options: []param.Option{{Value: "a", Label: "A"}}},
				{Name: "sys_param_2", Label: "行数：", Type: param.Number, MaxLength: 3, Default: "10", Min: i64(1), Max: i64(999)}}},
		{"a long text before the control: its end is the label",
			"<p>" + strings.Repeat("说明 ", 300) + "</p>行数：<input name=\"sys_param_1\" maxlength=\"8\">",
			[]param.Param{{Name: "sys_param_1", Label: strings.Repeat("说明 ", 84) + "行数：", Type: param.Text, MaxLength: 8}}},
		{"only whitespace", "  \n ", nil},
		{"only text", "no controls here", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"duplicate name", `<input name="sys_param_1"><input name="sys_param_1">`, "declared twice"},
		{"select without options", `<select name="sys_param_1"></select>`, "no options"},
		{"select with only disabled options", `<select name="sys_param_1"><option disabled>x</option></select>`, "no options"},
		{"multiple select", `<select name="sys_param_1" multiple><option>x</option></select>`, "multiple"},
		{"file input", `<input type="file" name="sys_param_1">`, `<input type="file" name="sys_param_1">: a file cannot be passed`},
		{"password input", `<input type="password" name="sys_param_2">`, `<input type="password" name="sys_param_2">: a password input is not supported`},
		{"submit button named as a parameter", `<input type="submit" name="sys_param_1" value="go">`, "a button is not a parameter"},
		{"image button", `<input type="IMAGE" name="sys_param_1" src="x.png">`, "a button is not a parameter"},
		{"date input", `<input type="date" name="sys_param_1">`, `input type "date" is not supported`},
		{"range input", `<input type="range" name="sys_param_1">`, `input type "range" is not supported`},
		{"color input", `<input type="color" name="sys_param_1">`, `<input type="color" name="sys_param_1">`},
		{"checkbox group", `<input type="checkbox" name="sys_param_1" value="a"><input type="checkbox" name="sys_param_1" value="b">`, "several checkboxes named sys_param_1"},
		{"checkbox with empty value", `<input type="checkbox" name="sys_param_1" value="">`, "cannot be told from an unchecked one"},
		{"radio then text of the same name", `<input type="radio" name="sys_param_1" value="a"><input name="sys_param_1">`, "declared twice"},
		{"text then radio of the same name", `<input name="sys_param_1"><input type="radio" name="sys_param_1" value="a">`, "only radio buttons may share a name"},
		{"hidden and select of the same name", `<input type="hidden" name="sys_param_1" value="a"><select name="sys_param_1"><option>a</option></select>`, "declared twice"},
		{"textarea and text of the same name", `<textarea name="sys_param_1"></textarea><input name="sys_param_1">`, "declared twice"},
		{"radio group of disabled buttons only", `<input type="radio" name="sys_param_1" value="a" disabled>`, `a choice has no options; it needs at least one (<input type="radio" name="sys_param_1">)`},
		{"textarea default too long", `<textarea name="sys_param_1" maxlength="3">abcd</textarea>`, `4 characters is more than max_length 3 (<textarea name="sys_param_1">)`},
		{"textarea default with a tab", "<textarea name=\"sys_param_1\">a\tb</textarea>", "control character other than a line feed"},
		{"textarea default with an escape", "<textarea name=\"sys_param_1\">a&#27;[2Jb</textarea>", "control character other than a line feed"},
		{"hidden value with a line break", `<input type="hidden" name="sys_param_1" value="a&#10;b">`, `value: contains a control character or line break (<input type="hidden" name="sys_param_1">)`},
		{"checkbox value with a line break", `<input type="checkbox" name="sys_param_1" value="a&#10;b">`, "control character"},
		{"text default with a line break", `<input name="sys_param_1" value="a&#10;b">`, "control character or line break"},
		{"radio option too long", `<input type="radio" name="sys_param_1" value="` + strings.Repeat("a", 4097) + `">`, "at most 4096 bytes"},
		{"oversized", strings.Repeat("a", MaxInputBytes+1), "limit"},
		{"default longer than maxlength", `<input name="sys_param_1" maxlength="5" value="toolongvalue">`, "more than max_length 5"},
		{"number default not integer", `<input type="number" name="sys_param_1" value="1.5">`, "not a base-10 integer"},
		{"number default out of range", `<input type="number" name="sys_param_1" min="1" max="3" value="9">`, "more than the maximum 3"},
		{"bad min", `<input type="number" name="sys_param_1" min="x">`, "not an integer"},
		{"min above max", `<input type="number" name="sys_param_1" min="5" max="1">`, "greater"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %+v, %v; want error containing %q", got, err, tc.want)
			}
			if got != nil {
				t.Errorf("a refused form returned parameters: %+v", got)
			}
		})
	}
	var many strings.Builder
	for i := 1; i <= param.MaxParams+1; i++ {
		many.WriteString(`<input name="sys_param_` + string(rune('0'+i/10)) + string(rune('0'+i%10)) + `">`)
	}
	if _, err := Parse(strings.ReplaceAll(many.String(), "sys_param_0", "sys_param_")); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("too many parameters: %v", err)
	}
}

func TestRenderEscapes(t *testing.T) {
	params := []param.Param{
		{Name: "sys_param_1", Label: `<script>alert("x")</script>`, Type: param.Text, MaxLength: 40, Default: `"><img src=x onerror=alert(1)>`},
		{Name: "sys_param_2", Label: "svc", Type: param.Choice, Default: `a"b`, Options: []param.Option{{Value: `a"b`, Label: "<b>bold</b>"}, {Value: "c", Label: "&amp;"}}},
	}
	out := Render(params)
	for _, bad := range []string{"<script", "<img", "<b>", `"><`} {
		if strings.Contains(out, bad) {
			t.Errorf("rendered HTML contains %q: %s", bad, out)
		}
	}
	got, err := Parse(out)
	if err != nil || !reflect.DeepEqual(got, params) {
		t.Fatalf("re-parse = %+v, %v\nwant %+v", got, err, params)
	}
}

func TestValidateAndCheck(t *testing.T) {
	p, _ := Parse(dumpForms[1001])
	for _, tc := range []struct {
		v  string
		ok bool
	}{{"1", true}, {"999", true}, {"50", true}, {"0", false}, {"1000", false}, {"-1", false}, {"5; rm -rf /", false}, {"", false}, {"1e2", false}} {
		err := p[0].Check(tc.v)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, task.ErrInvalidParams)) {
			t.Errorf("number Check(%q) = %v; want ok=%v", tc.v, err, tc.ok)
		}
	}
	s, _ := Parse(dumpForms[1007])
	for _, tc := range []struct {
		v  string
		ok bool
	}{{"nginx", true}, {"lighttpd", true}, {"sshd", false}, {"nginx; reboot", false}, {"", false}} {
		if err := s[0].Check(tc.v); (err == nil) != tc.ok {
			t.Errorf("select Check(%q) = %v; want ok=%v", tc.v, err, tc.ok)
		}
	}
	txt := param.Param{Name: "sys_param_1", Type: param.Text, MaxLength: 3}
	if txt.Check("abcd") == nil || txt.Check("\xff") == nil || txt.Check("中文字") != nil {
		t.Error("text Check length rules")
	}
	for _, bad := range [][]param.Param{
		{{Name: "x", Type: param.Text, MaxLength: 1}},
		{{Name: "sys_param_1", Type: "date", MaxLength: 1}},
		{{Name: "sys_param_1", Type: param.Text}},
		{{Name: "sys_param_1", Type: param.Choice}},
		{{Name: "sys_param_1", Type: param.Text, MaxLength: 1}, {Name: "sys_param_1", Type: param.Text, MaxLength: 1}},
		{{Name: "sys_param_1", Type: param.Choice, Default: "a", Options: []param.Option{{Value: "a", Label: ""}, {Value: "a", Label: ""}}}},
		{{Name: "sys_param_1", Type: param.Text, MaxLength: 1, Min: i64(1)}},
	} {
		if err := Validate(bad); err == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
	}
}

// Every form element the book allows, each as a browser would submit it.
func TestParseElements(t *testing.T) {
	yes := []param.Option{{Value: "yes", Label: "是"}, {Value: "no", Label: "否"}}
	for _, tc := range []struct {
		name string
		in   string
		want []param.Param
	}{
		{"textarea: multi-line text, its content the default",
			"脚本：<textarea name=\"sys_param_1\" rows=\"5\" maxlength=\"200\">\necho a\r\necho &lt;b&gt;\n</textarea>",
			[]param.Param{{Name: "sys_param_1", Label: "脚本：", Type: param.Text, Multiline: true, MaxLength: 200, Default: "echo a\necho <b>\n"}}},
		{"textarea without maxlength: as long as a value may be",
			`<textarea name="sys_param_2"></textarea>`,
			[]param.Param{{Name: "sys_param_2", Type: param.Text, Multiline: true, MaxLength: DefaultTextareaMaxLength}}},
		{"textarea content is never a label; markup in it is text",
			`<textarea name="other">ignored <b>x</b></textarea>A <textarea name="sys_param_1"><script>x</script></textarea>`,
			[]param.Param{{Name: "sys_param_1", Label: "A", Type: param.Text, Multiline: true, MaxLength: DefaultTextareaMaxLength, Default: "<script>x</script>"}}},
		{"radio group: a choice, the checked button its default, labels after each button",
			`重启：<input type="radio" name="sys_param_1" value="yes">是 <input type="radio" name="sys_param_1" value="no" checked>否<br>行数：<input name="sys_param_2" maxlength="3" value="10">`,
			[]param.Param{
				{Name: "sys_param_1", Label: "重启：", Type: param.Choice, Default: "no", Options: yes},
				{Name: "sys_param_2", Label: "行数：", Type: param.Number, MaxLength: 3, Default: "10", Min: i64(1), Max: i64(999)}}},
		{"radio group in labels, none checked: no default",
			`<label><input type="radio" name="sys_param_1" value="yes"> 是</label><label><input type="radio" name="sys_param_1" value="no"> 否</label>行数：<input name="sys_param_2">`,
			[]param.Param{
				{Name: "sys_param_1", Type: param.Choice, Options: yes},
				{Name: "sys_param_2", Label: "行数：", Type: param.Text, MaxLength: DefaultMaxLength}}},
		{"radio group: last checked wins, disabled and repeated buttons dropped, no value is on",
			`<input type="radio" name="sys_param_1" value="a" checked>A <input type="radio" name="sys_param_1" value="b" disabled checked>B <input type="radio" name="sys_param_1" value="a">again <input type="radio" name="sys_param_1" checked>On`,
			[]param.Param{{Name: "sys_param_1", Type: param.Choice, Default: "on", Options: []param.Option{{Value: "a", Label: "A"}, {Value: "on", Label: "On"}}}}},
		{"radio group split by another control stays one parameter",
			`<input type="radio" name="sys_param_1" value="a">A<br>N <input name="sys_param_2" maxlength="9"><br><input type="radio" name="sys_param_1" value="b">B`,
			[]param.Param{
				{Name: "sys_param_1", Type: param.Choice, Options: []param.Option{{Value: "a", Label: "A"}, {Value: "b", Label: "B"}}},
				{Name: "sys_param_2", Label: "N", Type: param.Text, MaxLength: 9}}},
		{"checkbox: a boolean carrying its value, checked by default",
			`选项：<input type="checkbox" name="sys_param_1" value="-f" checked> 强制<br>`,
			[]param.Param{{Name: "sys_param_1", Label: "选项： 强制", Type: param.Boolean, Value: "-f", Default: "-f"}}},
		{"checkbox without value sends on; unchecked by default",
			`<label><input type="checkbox" name="sys_param_1">verbose</label> lines: <input name="sys_param_2" maxlength="2" value="5">`,
			[]param.Param{
				{Name: "sys_param_1", Label: "verbose", Type: param.Boolean, Value: "on"},
				{Name: "sys_param_2", Label: "lines:", Type: param.Number, MaxLength: 2, Default: "5", Min: i64(1), Max: i64(99)}}},
		{"hidden: a fixed value; its text labels the next control",
			`行数：<input type="hidden" name="sys_param_2" value="/var/log"><input name="sys_param_1" maxlength="3" value="50">`,
			[]param.Param{
				{Name: "sys_param_2", Type: param.Fixed, Value: "/var/log", Default: "/var/log"},
				{Name: "sys_param_1", Label: "行数：", Type: param.Number, MaxLength: 3, Default: "50", Min: i64(1), Max: i64(999)}}},
		{"hidden without value: fixed empty",
			`<input type="hidden" name="sys_param_1">`,
			[]param.Param{{Name: "sys_param_1", Type: param.Fixed}}},
		{"text-like inputs and unknown types are text, without the number heuristic",
			`E <input type="email" name="sys_param_1" maxlength="3" value="12"> S <input type="Search" name="sys_param_2"> U <input type="bogus" name="sys_param_3" value="x">`,
			[]param.Param{
				{Name: "sys_param_1", Label: "E", Type: param.Text, MaxLength: 3, Default: "12"},
				{Name: "sys_param_2", Label: "S", Type: param.Text, MaxLength: DefaultMaxLength},
				{Name: "sys_param_3", Label: "U", Type: param.Text, MaxLength: DefaultMaxLength, Default: "x"}}},
		{"buttons, files and checkboxes not named sys_param_N are ignored",
			`<input type="file" name="upload"><input type="checkbox" name="x" value=""><input type="submit" value="go">N <input name="sys_param_1" maxlength="4">`,
			[]param.Param{{Name: "sys_param_1", Label: "N", Type: param.Text, MaxLength: 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("\n got %+v\nwant %+v", got, tc.want)
			}
			again, err := Parse(Render(got))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("Render/Parse round trip = %+v, %v\nhtml %s", again, err, Render(got))
			}
		})
	}
}

// What each element accepts once parsed: the schema validates a request
// as the browser would have filled it.
func TestParsedElementsValidate(t *testing.T) {
	ps, err := Parse(`<textarea name="sys_param_1" maxlength="20">a</textarea>` +
		`<input type="radio" name="sys_param_2" value="yes">是<input type="radio" name="sys_param_2" value="no">否` +
		`<input type="checkbox" name="sys_param_3" value="-f">` +
		`<input type="hidden" name="sys_param_4" value="v1">` +
		`<input name="sys_param_5" maxlength="9">`)
	if err != nil {
		t.Fatal(err)
	}
	s := param.Schema(ps)
	ok := func(in map[string]string, want map[string]string) {
		t.Helper()
		got, err := s.Validate(in)
		if err != nil {
			t.Fatalf("Validate(%q): %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Validate(%q) = %q, want %q", in, got, want)
		}
	}
	refused := func(in map[string]string, msg string) {
		t.Helper()
		got, err := s.Validate(in)
		if !errors.Is(err, task.ErrInvalidParams) || !strings.Contains(err.Error(), msg) {
			t.Fatalf("Validate(%q) = %q, %v; want an error containing %q", in, got, err, msg)
		}
	}
	ok(map[string]string{"sys_param_2": "yes"},
		map[string]string{"sys_param_1": "a", "sys_param_2": "yes", "sys_param_3": "", "sys_param_4": "v1", "sys_param_5": ""})
	ok(map[string]string{"sys_param_1": "l1\r\nl2\n", "sys_param_2": "no", "sys_param_3": "-f", "sys_param_4": "v1"},
		map[string]string{"sys_param_1": "l1\nl2\n", "sys_param_2": "no", "sys_param_3": "-f", "sys_param_4": "v1", "sys_param_5": ""})
	refused(map[string]string{}, `parameter "sys_param_2": missing and has no default`)
	refused(map[string]string{"sys_param_2": "maybe"}, `"maybe" is not one of the options ["yes" "no"]`)
	refused(map[string]string{"sys_param_2": "yes", "sys_param_3": "-rf"}, `"-rf" is neither "-f" (checked) nor "" (not checked)`)
	refused(map[string]string{"sys_param_2": "yes", "sys_param_4": "v2"}, `"v2" is not the fixed value "v1"`)
	refused(map[string]string{"sys_param_2": "yes", "sys_param_4": ""}, `"" is not the fixed value "v1"`)
	refused(map[string]string{"sys_param_2": "yes", "sys_param_1": "a\rb"}, "control character other than a line feed")
	refused(map[string]string{"sys_param_2": "yes", "sys_param_1": "a\x00b"}, "control character other than a line feed")
	refused(map[string]string{"sys_param_2": "yes", "sys_param_1": "a\tb"}, "control character other than a line feed")
	refused(map[string]string{"sys_param_2": "yes", "sys_param_1": "a\u2028b"}, "control character other than a line feed")
	refused(map[string]string{"sys_param_2": "yes", "sys_param_1": strings.Repeat("\n", 21)}, "21 characters is more than max_length 20")
	refused(map[string]string{"sys_param_2": "yes", "sys_param_5": "a\nb"}, "control character or line break")
}

// Every new element renders escaped and without anything executable.
func TestRenderEscapesNewElements(t *testing.T) {
	evil := `"><script>alert(1)</script></textarea><img src=x onerror=alert(1)>`
	params := []param.Param{
		{Name: "sys_param_1", Label: evil, Type: param.Text, Multiline: true, MaxLength: 200, Default: evil + "\nline2"},
		{Name: "sys_param_2", Label: evil, Type: param.Choice, Options: []param.Option{{Value: evil, Label: evil}, {Value: "b", Label: "<b>B</b>"}}},
		{Name: "sys_param_3", Label: evil, Type: param.Boolean, Value: evil, Default: evil},
		{Name: "sys_param_4", Type: param.Fixed, Value: evil, Default: evil},
	}
	if err := Validate(params); err != nil {
		t.Fatal(err)
	}
	out := Render(params)
	for _, bad := range []string{"<script", "<img", "<b>", `"><`} {
		if strings.Contains(out, bad) {
			t.Errorf("rendered HTML contains %q: %s", bad, out)
		}
	}
	got, err := Parse(out)
	if err != nil || !reflect.DeepEqual(got, params) {
		t.Fatalf("re-parse = %+v, %v\nwant %+v\nhtml %s", got, err, params, out)
	}
}
