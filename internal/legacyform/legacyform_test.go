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
		{"unsupported input type", `<input type="hidden" name="sys_param_1" value="x">`, "not supported"},
		{"checkbox", `<input type="checkbox" name="sys_param_1">`, "not supported"},
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
