package backend

import (
	"os"
	"strings"
	"testing"
)

func TestValidateSteps(t *testing.T) {
	cp := func(src, dest string, mode os.FileMode) Step {
		return Step{Copy: &Copy{Src: src, Dest: dest, Mode: mode}}
	}
	tests := []struct {
		name    string
		steps   []Step
		wantErr string
	}{
		{"command", []Step{{Command: "uptime"}}, ""},
		{"copy then command", []Step{{Copy: &Copy{Src: "/m/files/a.conf", Dest: "/etc/a.conf", Mode: 0o644}, Command: "cat /etc/a.conf"}}, ""},
		{"no steps", nil, "no steps"},
		{"blank command", []Step{{Command: "  "}}, "neither a copy nor a command"},
		{"NUL", []Step{{Command: "echo a\x00b"}}, "NUL"},
		{"relative source", []Step{cp("files/a", "/etc/a", 0o644)}, "copy source"},
		{"unclean source", []Step{cp("/m/../etc/shadow", "/etc/a", 0o644)}, "copy source"},
		{"relative destination", []Step{cp("/m/a", "etc/a", 0o644)}, "copy destination"},
		{"unclean destination", []Step{cp("/m/a", "/tmp/../etc/a", 0o644)}, "copy destination"},
		{"root destination", []Step{cp("/m/a", "/", 0o644)}, "copy destination"},
		{"setuid", []Step{cp("/m/a", "/usr/bin/a", os.ModeSetuid|0o755)}, "permission bits"},
		{"second step bad", []Step{{Command: "true"}, {Command: ""}}, "step 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSteps(tt.steps)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("valid steps refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}
