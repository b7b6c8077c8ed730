package runs

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/legacyform"
	"github.com/omserver/omserver-go/internal/task"
)

// FuzzValidateParams: whatever a client submits, an accepted parameter set
// is exactly the module's declared parameters, each passing its check and
// free of control characters.
func FuzzValidateParams(f *testing.F) {
	schema, err := legacyform.Parse(`行数：<input name="sys_param_1" type="text" maxlength="3" value="50">` +
		`服务：<select name="sys_param_2"><option value="nginx">nginx</option><option value="mysql" selected>mysql</option></select>` +
		`路径：<input name="sys_param_3" type="text" maxlength="20" value="">`)
	if err != nil || len(schema) != 3 {
		f.Fatalf("schema %v %v", schema, err)
	}
	f.Add("sys_param_1", "20", "sys_param_2", "nginx")
	f.Add("sys_param_1", "0", "sys_param_3", "a\nb")
	f.Add("sys_param_9", "x", "sys_param_2", "sshd")
	f.Add("sys_param_3", strings.Repeat("é", 21), "sys_param_1", "999")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		in := map[string]string{k1: v1, k2: v2}
		out, err := validParams(schema, in)
		if err != nil {
			if apperr.KindOf(err) != apperr.Invalid || !errors.Is(err, task.ErrInvalidParams) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(out) != len(schema) {
			t.Fatalf("accepted %v", out)
		}
		for _, p := range schema {
			v, ok := out[p.Name]
			if !ok {
				t.Fatalf("%s missing from %v", p.Name, out)
			}
			if err := p.Check(v); err != nil {
				t.Fatalf("accepted %s=%q: %v", p.Name, v, err)
			}
			if strings.IndexFunc(v, unicode.IsControl) >= 0 {
				t.Fatalf("accepted a control character in %s=%q", p.Name, v)
			}
			if in2, given := in[p.Name]; given && in2 != v {
				t.Fatalf("%s changed from %q to %q", p.Name, in2, v)
			}
		}
	})
}
