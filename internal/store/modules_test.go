package store

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/legacyform"
	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/task"
)

func TestModules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		lo, hi := int64(1), int64(500)
		params := []param.Param{
			{Name: "sys_param_1", Label: "Lines <b>", Type: param.Number, MaxLength: 3, Default: "50", Min: &lo, Max: &hi},
			{Name: "sys_param_2", Label: "Service", Type: param.Choice, Default: "b",
				Options: []param.Option{{Value: "a", Label: "A"}, {Value: "b", Label: `"B" & <script>`}}},
		}
		id, err := s.CreateModule(ctx, Module{Name: "<script>alert(1)</script>", Caption: "caption", Params: params})
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetModule(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Name != "<script>alert(1)</script>" || !reflect.DeepEqual(m.Params, params) {
			t.Fatalf("module = %+v", m)
		}
		// The generated legacy form is escaped and parses back to the schema.
		if strings.Contains(m.Extend, "<script>") || strings.Contains(m.Extend, "<b>") {
			t.Errorf("generated form not escaped: %s", m.Extend)
		}
		if reparsed, err := legacyform.Parse(m.Extend); err != nil || !reflect.DeepEqual(reparsed, params) {
			t.Errorf("generated form parses to %+v, %v", reparsed, err)
		}

		// A legacy module: Params come from its HTML.
		legacy := `进程服务名称：<select name="sys_param_1"><option value="nginx">nginx</option><option value="mysql" selected>mysql</option></select>`
		lid, err := s.CreateModule(ctx, Module{Name: "legacy", Caption: "c", Extend: legacy})
		if err != nil {
			t.Fatal(err)
		}
		lm, _ := s.GetModule(ctx, lid)
		if lm.Extend != legacy || len(lm.Params) != 1 || lm.Params[0].Default != "mysql" {
			t.Errorf("legacy module = %+v", lm)
		}

		for _, tc := range []struct {
			name string
			m    Module
			want error
		}{
			{"no name", Module{Caption: "c"}, ErrInvalid},
			{"comma in name", Module{Name: "a,b"}, ErrInvalid},
			{"@@ in caption", Module{Name: "n", Caption: "x@@y"}, ErrInvalid},
			{"name too long", Module{Name: strings.Repeat("模", 65)}, ErrInvalid},
			{"caption too long", Module{Name: "n", Caption: strings.Repeat("c", 256)}, ErrInvalid},
			{"bad legacy html", Module{Name: "n", Extend: `<select name="sys_param_1"></select>`}, ErrInvalid},
			{"bad params", Module{Name: "n", Params: []param.Param{{Name: "lines", Type: "text", MaxLength: 3}}}, ErrInvalid},
			{"select default not an option", Module{Name: "n", Params: []param.Param{{Name: "sys_param_1", Type: "select", Default: "z", Options: []param.Option{{Value: "a"}}}}}, ErrInvalid},
			{"id taken", Module{ID: id, Name: "dup"}, ErrConflict},
			{"negative id", Module{ID: -5, Name: "neg"}, ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := s.ListModules(ctx)
				if _, err := s.CreateModule(ctx, tc.m); !errors.Is(err, tc.want) {
					t.Fatalf("CreateModule = %v; want %v", err, tc.want)
				}
				if after, _ := s.ListModules(ctx); !reflect.DeepEqual(before, after) {
					t.Fatal("refused create changed modules")
				}
			})
		}

		// Update: new Params replace the form; the legacy HTML is regenerated.
		m.Name, m.Extend, m.Params = "renamed", "", params[:1]
		if err := s.UpdateModule(ctx, m); err != nil {
			t.Fatal(err)
		}
		m2, _ := s.GetModule(ctx, id)
		if m2.Name != "renamed" || len(m2.Params) != 1 || strings.Contains(m2.Extend, "sys_param_2") {
			t.Errorf("updated module = %+v", m2)
		}
		if err := s.UpdateModule(ctx, Module{ID: 99999, Name: "x"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("update unknown = %v", err)
		}
		if err := s.UpdateModule(ctx, Module{ID: id, Name: ""}); !errors.Is(err, ErrInvalid) {
			t.Errorf("update to empty name = %v", err)
		}
		if err := s.DeleteModule(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetModule(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("get deleted = %v", err)
		}
		if err := s.DeleteModule(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete twice = %v", err)
		}
		// A module whose stored schema is corrupt is reported, not served without parameters.
		if _, err := s.db.ExecContext(ctx, `UPDATE module_list SET module_params = ? WHERE ID = ?`, `{not json`, lid); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetModule(ctx, lid); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not valid JSON") {
			t.Errorf("corrupt schema = %v", err)
		}
		// A legacy row with a form the parser refuses (here a file input)
		// is still listed, flagged, and the other modules stay usable.
		if _, err := s.db.ExecContext(ctx, `INSERT INTO module_list (ID, module_name, module_caption, module_extend) VALUES (?, ?, ?, ?)`,
			5000, "odd", "", `<input type="file" name="sys_param_1">`); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListModules(ctx)
		if err != nil {
			t.Fatalf("one bad row broke the list: %v", err)
		}
		byID := map[int64]Module{}
		for _, m := range list {
			byID[m.ID] = m
		}
		if odd := byID[5000]; odd.Name != "odd" || !strings.Contains(odd.FormError, `<input type="file" name="sys_param_1">`) || len(odd.Params) != 0 {
			t.Errorf("odd module listed as %+v", odd)
		}
		if byID[lid].FormError == "" {
			t.Errorf("corrupt schema module not flagged: %+v", byID[lid])
		}
		if _, err := s.GetModule(ctx, 5000); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "a file cannot be passed to a module") {
			t.Errorf("get odd module = %v", err)
		}
	})
}

// Rows written before the shared parameter schema (module_params holding
// legacyform's JSON, or only module_extend HTML) read back unchanged, and
// their schema marshals to the same JSON, so API answers keep their bytes.
func TestModulesOldRowsReadable(t *testing.T) {
	// Verbatim what the previous release stored for TestModules' schema.
	const stored = `[{"name":"sys_param_1","label":"Lines \u003cb\u003e","type":"number","max_length":3,"default":"50","min":1,"max":500},` +
		`{"name":"sys_param_2","label":"Service","type":"select","default":"b","options":[{"value":"a","label":"A"},{"value":"b","label":"\"B\" \u0026 \u003cscript\u003e"}]}]`
	lo, hi := int64(1), int64(500)
	want := []param.Param{
		{Name: "sys_param_1", Label: "Lines <b>", Type: param.Number, MaxLength: 3, Default: "50", Min: &lo, Max: &hi},
		{Name: "sys_param_2", Label: "Service", Type: param.Choice, Default: "b",
			Options: []param.Option{{Value: "a", Label: "A"}, {Value: "b", Label: `"B" & <script>`}}},
	}
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		if _, err := s.db.ExecContext(ctx, `INSERT INTO module_list (ID, module_name, module_caption, module_extend, module_params) VALUES (?, ?, ?, ?, ?)`,
			3001, "old json", "c", "ignored when module_params is set", stored); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO module_list (ID, module_name, module_caption, module_extend, module_params) VALUES (?, ?, ?, ?, NULL)`,
			3002, "old html", "c", `行数：<input name="sys_param_1" maxlength="3" value="50"> <input name="sys_param_2" maxlength="9" value="x">`); err != nil {
			t.Fatal(err)
		}
		m, err := s.GetModule(ctx, 3001)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.Params, want) {
			t.Fatalf("old JSON row: params %+v\nwant %+v", m.Params, want)
		}
		again, err := json.Marshal(m.Params)
		if err != nil || string(again) != stored {
			t.Fatalf("re-marshalled %s, %v\nwant %s", again, err, stored)
		}
		h, err := s.GetModule(ctx, 3002)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Params) != 2 || h.Params[0].Type != param.Number || h.Params[1].Type != param.Text || h.Params[1].Default != "x" {
			t.Fatalf("old HTML row: params %+v", h.Params)
		}
		// Both validate values through the shared schema.
		if _, err := param.Schema(m.Params).Validate(map[string]string{"sys_param_2": "z"}); !errors.Is(err, task.ErrInvalidParams) {
			t.Fatalf("old row's schema accepted an unknown option: %v", err)
		}
		all, err := s.ListModules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range all {
			if l.FormError != "" {
				t.Errorf("module %d listed with form error %q", l.ID, l.FormError)
			}
		}
	})
}

// The kinds legacy forms brought (multi-line text, radio choice without
// default, checkbox, hidden) store as JSON and as rendered legacy HTML,
// and read back the same from either.
func TestModulesNewKinds(t *testing.T) {
	params := []param.Param{
		{Name: "sys_param_1", Label: "脚本", Type: param.Text, Multiline: true, MaxLength: 500, Default: "echo a\necho b"},
		{Name: "sys_param_2", Label: "重启", Type: param.Choice, Options: []param.Option{{Value: "yes", Label: "是"}, {Value: "no", Label: "否"}}},
		{Name: "sys_param_3", Label: "强制", Type: param.Boolean, Value: "-f", Default: "-f"},
		{Name: "sys_param_4", Type: param.Fixed, Value: "/var/log", Default: "/var/log"},
	}
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := testCtx(t)
		id, err := s.CreateModule(ctx, Module{Name: "kinds", Caption: "c", Params: params})
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetModule(ctx, id)
		if err != nil || !reflect.DeepEqual(m.Params, params) {
			t.Fatalf("stored as JSON: %+v, %v", m.Params, err)
		}
		// A legacy module holding the rendered form parses to the same schema.
		lid, err := s.CreateModule(ctx, Module{Name: "kinds html", Caption: "c", Extend: m.Extend})
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.GetModule(ctx, lid)
		if err != nil || !reflect.DeepEqual(l.Params, params) {
			t.Fatalf("stored as HTML %s: %+v, %v", m.Extend, l.Params, err)
		}
		// A fixed parameter whose default is not its value is refused.
		bad := []param.Param{{Name: "sys_param_1", Type: param.Fixed, Value: "a", Default: "b"}}
		if _, err := s.CreateModule(ctx, Module{Name: "bad", Params: bad}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad fixed parameter: %v", err)
		}
	})
}
