package web

import (
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/runs"
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
