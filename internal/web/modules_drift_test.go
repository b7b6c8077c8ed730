package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
)

// An original module (imported from OMServer.sql: HTML caption with its
// heading, labels ending in a colon) and the same module declared in YAML
// are the same; a real difference in caption, default or bounds is not.
func TestModuleDiffs(t *testing.T) {
	lo, hi, hi2 := int64(1), int64(999), int64(99)
	num := func(label, def string, max *int64) param.Param {
		return param.Param{Name: "sys_param_1", Label: label, Type: param.Number, Default: def, Min: &lo, Max: max}
	}
	original := moduleView{ID: 1001, Name: "查看系统日志", Caption: "[<b>功能说明</b>]<br> 查看所选服务器的操作系统日志信息",
		Params: []param.Param{num("返回信息行数：", "50", &hi)}}
	tests := []struct {
		name   string
		master runs.MasterModule
		want   []string // one substring per expected difference; none: the same
	}{
		{"same module, YAML spelling", runs.MasterModule{Name: "查看系统日志", Caption: "查看所选服务器的操作系统日志信息",
			Params: []param.Param{num("返回信息行数", "50", &hi)}}, nil},
		{"caption says something else", runs.MasterModule{Name: "查看系统日志", Caption: "查看内核日志",
			Params: []param.Param{num("返回信息行数", "50", &hi)}}, []string{"caption differs"}},
		{"other default and bound", runs.MasterModule{Name: "查看系统日志", Caption: "查看所选服务器的操作系统日志信息",
			Params: []param.Param{num("返回信息行数", "20", &hi2)}}, []string{`default "20" in [1, 99] on the master`}},
		{"renamed, parameter gone", runs.MasterModule{Name: "系统日志", Caption: "查看所选服务器的操作系统日志信息"},
			[]string{`name: "查看系统日志" here`, "sys_param_1: only here"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := moduleDiffs(original, tt.master)
			if len(got) != len(tt.want) {
				t.Fatalf("diffs %q, want %d matching %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("diff %d = %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}

// A module whose parameters the form's rows cannot show (a boolean, a
// required multi-line text) is edited for its name and caption only: the
// page lists the parameters instead of rows, and a save keeps them even
// when the request carries rows.
func TestModuleEditKeepsParamsTheFormCannotShow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	params := []param.Param{
		{Name: "sys_param_1", Label: "force", Type: param.Boolean, Value: "yes"},
		{Name: "sys_param_2", Label: "note", Type: param.Text, MaxLength: 200, Multiline: true, Required: true},
	}
	if _, err := e.st.CreateModule(ctx, store.Module{ID: 2002, Name: "flags", Caption: "c", Params: params}); err != nil {
		t.Fatal(err)
	}
	page := e.do(req{method: "GET", path: "/modules/2002/edit", as: "admin"}).want(t, http.StatusOK, `id="params-locked"`, `sys_param_1: boolean`, "required", "multi-line")
	if strings.Contains(page.body, `name="p0_type"`) {
		t.Fatal("the page offers rows that would lose the parameters' kinds")
	}
	e.do(req{method: "POST", path: "/modules/2002/edit", as: "admin", body: form("name", "flags v2", "caption", "c2", "rows", "1",
		"p0_name", "sys_param_1", "p0_type", "text", "p0_maxlength", "5")}).want(t, http.StatusSeeOther)
	m, err := e.st.GetModule(ctx, 2002)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "flags v2" || len(m.Params) != 2 || m.Params[0].Type != param.Boolean || !m.Params[1].Required || !m.Params[1].Multiline {
		t.Fatalf("module after edit %+v", m)
	}
	// The original's kinds keep their rows.
	if !formEditable([]param.Param{{Name: "sys_param_1", Type: param.Choice, Default: "a", Options: []param.Option{{Value: "a"}}}}) {
		t.Fatal("a select with a default is not editable")
	}
}
