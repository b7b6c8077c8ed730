package main

import (
	"sort"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/config"
)

func TestBuildBackends(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*config.MasterConfig)
		want    string // backends built, sorted, comma-joined
		wantErr string
	}{
		{name: "local default", mutate: func(m *config.MasterConfig) { m.Backend = "local" }, want: "local"},
		{name: "ssh default without keys or agent", mutate: func(m *config.MasterConfig) {}, wantErr: "backend ssh (the default)"},
		{name: "ansible default with a missing binary", mutate: func(m *config.MasterConfig) {
			m.Backend = "ansible"
			m.Ansible.Binary = "/nonexistent/ansible"
		}, wantErr: "backend ansible (the default)"},
		{name: "salt configured beside local", mutate: func(m *config.MasterConfig) {
			m.Backend = "local"
			m.Salt.URL = "https://127.0.0.1:8000"
			m.Salt.Username = "omserver"
			m.Salt.Password = "pw"
		}, want: "local,salt"},
		{name: "salt minion ids upper-cased as the original did", mutate: func(m *config.MasterConfig) {
			m.Backend = "local"
			m.Salt.URL = "https://127.0.0.1:8000"
			m.Salt.Username = "omserver"
			m.Salt.Password = "pw"
			m.Salt.MinionID = "upper"
		}, want: "local,salt"},
		{name: "a bad minion id template fails the start", mutate: func(m *config.MasterConfig) {
			m.Backend = "local"
			m.Salt.MinionID = "{{.Hostname}}.example.com"
		}, wantErr: "master.salt.minion_id"},
		{name: "a broken optional backend is skipped", mutate: func(m *config.MasterConfig) {
			m.Backend = "local"
			m.Func.CertFile = "/nonexistent/cert.pem"
		}, want: "local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc := config.Default().Master
			tt.mutate(&mc)
			got, err := buildBackends(mc, zerolog.Nop())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for n := range got {
				names = append(names, n)
			}
			sort.Strings(names)
			if strings.Join(names, ",") != tt.want {
				t.Errorf("built %v, want %s", names, tt.want)
			}
		})
	}
}
