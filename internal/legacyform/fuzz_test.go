package legacyform

import (
	"reflect"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/param"
)

// FuzzParse: Parse never panics; whatever it accepts is a valid schema of
// sys_param_N parameters (selects with at least one option) that renders to
// HTML parsing back to the same schema. Seeds: testdata/fuzz/FuzzParse
// (the dump's forms) plus those below.
func FuzzParse(f *testing.F) {
	for _, s := range dumpForms {
		f.Add(s)
	}
	f.Add(`<script>alert(1)</script><input name="sys_param_1" onclick="x">`)
	f.Add(`<select name="sys_param_1"><optgroup><option>a</option></optgroup></select>`)
	f.Add(`<input type="number" name="sys_param_3" min="-9" max="9" value="3">`)
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
				t.Fatalf("select %s without options", p.Name)
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
