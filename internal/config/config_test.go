package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadExampleFileIsValid(t *testing.T) {
	cfg, err := Load("../../etc/omserver.example.yaml", env(map[string]string{
		EnvSecretKey: "s3cret", EnvRelayPassword: "pw",
	}))
	if err != nil {
		t.Fatalf("example config does not load: %v", err)
	}
	if err := cfg.CheckWeb(); err != nil {
		t.Errorf("example web section: %v", err)
	}
	if err := cfg.CheckMaster(); err != nil {
		t.Errorf("example master section: %v", err)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "empty file keeps defaults", yaml: "", check: func(t *testing.T, c Config) {
			if c.Master.Forks != 50 || c.Web.Listen != "127.0.0.1:8080" || c.Cipher != "aead" {
				t.Errorf("defaults lost: forks=%d listen=%s cipher=%s", c.Master.Forks, c.Web.Listen, c.Cipher)
			}
		}},
		{name: "unknown key refused", yaml: "web:\n  lisen: x\n", wantErr: "lisen"},
		{name: "bad duration refused", yaml: "master:\n  host_timeout: soon\n", wantErr: "soon"},
		{name: "negative duration refused", yaml: "master:\n  host_timeout: -1s\n", wantErr: "negative"},
		{name: "durations parsed", yaml: "master:\n  host_timeout: 90s\n", check: func(t *testing.T, c Config) {
			if got := c.Master.HostTimeout.Or(0); got != 90*time.Second {
				t.Errorf("host_timeout = %v", got)
			}
		}},
		{name: "omaudit settings", yaml: "web:\n  module_run_timeout: 2m\n  omaudit:\n    trusted_proxies: [10.0.0.5, 10.1.0.0/16]\n    retention: 2160h\n    ingest_rate: 2\n",
			check: func(t *testing.T, c Config) {
				o := c.Web.OMAudit
				if len(o.TrustedProxies) != 2 || o.Retention.Or(0) != 2160*time.Hour || o.IngestRate != 2 || o.IngestBurst != 200 || c.Web.ModuleRunTimeout.Or(0) != 2*time.Minute {
					t.Errorf("omaudit settings: %+v, module_run_timeout %v", o, c.Web.ModuleRunTimeout)
				}
			}},
		{name: "ssh pool", yaml: "master:\n  ssh:\n    pool: {max_idle: 500, idle_timeout: 2m}\n", check: func(t *testing.T, c Config) {
			if p := c.Master.SSH.Pool; p.MaxIdle != 500 || p.IdleTimeout.Or(0) != 2*time.Minute {
				t.Errorf("pool = %+v", p)
			}
			if err := c.CheckMaster(); err != nil && strings.Contains(err.Error(), "pool") {
				t.Errorf("a valid pool is refused: %v", err)
			}
		}},
		{name: "salt minion id", yaml: "master:\n  salt:\n    minion_id: '{{.Name}}.example.com'\n", check: func(t *testing.T, c Config) {
			if c.Master.Salt.MinionID != "{{.Name}}.example.com" {
				t.Errorf("minion_id = %q", c.Master.Salt.MinionID)
			}
		}},
		{name: "ssh pool off by default", yaml: "", check: func(t *testing.T, c Config) {
			if c.Master.SSH.Pool.MaxIdle != 0 {
				t.Errorf("pool on by default: %+v", c.Master.SSH.Pool)
			}
		}},
		{name: "negative pool bound refused", yaml: "master:\n  ssh:\n    pool: {max_idle: -1}\n", check: func(t *testing.T, c Config) {
			if err := c.CheckMaster(); err == nil || !strings.Contains(err.Error(), "master.ssh.pool.max_idle") {
				t.Errorf("CheckMaster = %v", err)
			}
		}},
		{name: "environment overrides secrets", yaml: "secret_key: fromfile\n",
			env: map[string]string{EnvSecretKey: "fromenv", EnvRelayPassword: "rp", EnvDatabaseDSN: "dsn"},
			check: func(t *testing.T, c Config) {
				if c.SecretKey != "fromenv" || c.Web.Relay.Password != "rp" || c.Master.Relay.Password != "rp" || c.Web.Database.DSN != "dsn" {
					t.Errorf("env not applied: %+v", c)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestChecksNameWhatIsMissing(t *testing.T) {
	c := Default()
	c.Master.Backend = "telnet"
	c.Web.Database.Driver = "postgres"
	c.Web.OMAudit.TrustedProxies = []string{"proxy.example"}
	werr := c.CheckWeb()
	merr := c.CheckMaster()
	for _, want := range []string{"secret_key", EnvRelayPassword, "postgres", "proxy.example"} {
		if werr == nil || !strings.Contains(werr.Error(), want) {
			t.Errorf("CheckWeb = %v, want mention of %q", werr, want)
		}
	}
	for _, want := range []string{"secret_key", "telnet"} {
		if merr == nil || !strings.Contains(merr.Error(), want) {
			t.Errorf("CheckMaster = %v, want mention of %q", merr, want)
		}
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), env(nil)); err == nil {
		t.Fatal("missing file accepted")
	}
}
