package legacyform

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/task"
)

// FuzzParse: Parse never panics; whatever it accepts is a valid schema of
// sys_param_N parameters that renders to HTML parsing back to the same
// schema, whose defaults pass its own validation. Seeds:
// testdata/fuzz/FuzzParse (the dump's forms and one per form element:
// textarea, radio group, checkbox, hidden, the refused kinds) plus those
// below.
func FuzzParse(f *testing.F) {
	for _, s := range dumpForms {
		f.Add(s)
	}
	f.Add(`<script>alert(1)</script><input name="sys_param_1" onclick="x">`)
	f.Add(`<select name="sys_param_1"><optgroup><option>a</option></optgroup></select>`)
	f.Add(`<input type="number" name="sys_param_3" min="-9" max="9" value="3">`)
	f.Add(`<textarea name="sys_param_1">` + "\n\nx\r\ny" + `</textarea><input type="radio" name="sys_param_2">a<input type="checkbox" name="sys_param_3" checked>b`)
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := Parse(in)
		if err != nil {
			if ps != nil {
				t.Fatalf("error %v with parameters %+v", err, ps)
			}
			return
		}
		if err := Validate(ps); err != nil {
			t.Fatalf("Parse returned an invalid schema: %v\n%+v", err, ps)
		}
		for _, p := range ps {
			if !strings.HasPrefix(p.Name, "sys_param_") {
				t.Fatalf("name %q", p.Name)
			}
			if p.Type == param.Choice && len(p.Options) == 0 {
				t.Fatalf("choice %s without options", p.Name)
			}
			if p.Required || p.Pattern != "" || (p.Multiline && p.Type != param.Text) {
				t.Fatalf("a legacy form cannot declare %+v", p)
			}
		}
		// The defaults are what a browser submits untouched: accepted,
		// unless a parameter has none to offer (a radio group with no
		// button checked, an empty number).
		if _, err := param.Schema(ps).Validate(nil); err != nil {
			if !errors.Is(err, task.ErrInvalidParams) {
				t.Fatalf("defaults: %v", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.Contains(line, "missing and has no default") {
					t.Fatalf("a default is refused by its own parameter: %v", err)
				}
			}
		}
		out := Render(ps)
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("rendered form does not parse: %v\n%s", err, out)
		}
		if len(ps) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, ps) {
			t.Fatalf("round trip differs:\n in  %+v\n out %+v\n html %s", ps, again, out)
		}
	})
}
