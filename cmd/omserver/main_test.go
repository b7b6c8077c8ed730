package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCmd runs the omserver command line in-process.
func runCmd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String() + errOut.String(), err
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "omserver.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{
		{},
		{"frobnicate"},
		{"module"},
		{"module", "list", "x"},
		{"user"},
		{"migrate"},                      // --config missing
		{"master", "--no-such-flag"},     // bad flag
		{"user", "add", "--config", "x"}, // file missing: not a usage error but an error
	}
	for _, args := range tests {
		if _, err := runCmd(t, "", args...); err == nil {
			t.Errorf("omserver %v succeeded, want an error", args)
		}
	}
	if _, err := runCmd(t, "", "frobnicate"); !errors.As(err, new(usageError)) {
		t.Errorf("unknown command: err = %v, want a usage error", err)
	}
}

func TestModuleCheck(t *testing.T) {
	out, err := runCmd(t, "", "module", "check", "../../modules")
	if err != nil {
		t.Fatalf("shipped modules fail the check: %v\n%s", err, out)
	}
	if !strings.Contains(out, "7 module(s) OK") {
		t.Errorf("output %q does not report the seven modules", out)
	}

	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "Mid_2001.yaml"), []byte("id: 2001\nname: x\nbogus_key: 1\nsteps: [{run: uptime}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, "", "module", "check", bad)
	if err == nil {
		t.Fatalf("a module with an unknown key passed the check:\n%s", out)
	}
	if !strings.Contains(out, "Mid_2001.yaml") || !strings.Contains(out, "bogus_key") {
		t.Errorf("check output %q does not name the file and the field", out)
	}
}

func TestMigrateAndUserCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, "web:\n  database:\n    driver: sqlite\n    dsn: "+filepath.Join(dir, "db", "om.db")+"\n")

	out, err := runCmd(t, "", "migrate", "--config", cfg)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "migrated") {
		t.Errorf("migrate output %q", out)
	}
	// A second migrate is a no-op that still succeeds.
	if out, err := runCmd(t, "", "migrate", "--config", cfg); err != nil {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}

	if out, err := runCmd(t, "short\n", "user", "add", "--config", cfg, "--role", "admin", "alice"); err == nil || !strings.Contains(out+err.Error(), "at least") {
		t.Errorf("a short password was accepted: %v %s", err, out)
	}
	if _, err := runCmd(t, "correct horse battery\n", "user", "add", "--config", cfg, "--role", "root", "alice"); err == nil {
		t.Error("an unknown role was accepted")
	}
	if out, err := runCmd(t, "correct horse battery\n", "user", "add", "--config", cfg, "--role", "viewer", "alice"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "correct horse battery\n", "user", "add", "--config", cfg, "alice"); err == nil {
		t.Error("a duplicate user was accepted")
	}
	out, err = runCmd(t, "", "user", "list", "--config", cfg)
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "viewer") {
		t.Errorf("user list = %q, %v", out, err)
	}
	if out, err := runCmd(t, "", "user", "disable", "--config", cfg, "alice"); err != nil {
		t.Fatalf("disable: %v %s", err, out)
	}
	out, _ = runCmd(t, "", "user", "list", "--config", cfg)
	if !strings.Contains(out, "disabled") {
		t.Errorf("user list after disable = %q", out)
	}
	if _, err := runCmd(t, "", "user", "disable", "--config", cfg, "nobody"); err == nil {
		t.Error("disabling a missing user succeeded")
	}
}

func TestMasterAndWebRefuseIncompleteConfig(t *testing.T) {
	cfg := writeConfig(t, "master:\n  backend: local\n  modules_dir: ../../modules\n")
	t.Setenv("OMSERVER_SECRET_KEY", "")
	t.Setenv("OMSERVER_RELAY_PASSWORD", "")
	for _, cmd := range []string{"master", "web"} {
		_, err := runCmd(t, "", cmd, "--config", cfg)
		if err == nil || !strings.Contains(err.Error(), "secret_key") {
			t.Errorf("%s without a secret key: err = %v, want it to name secret_key", cmd, err)
		}
	}
}

func TestMasterRefusesPlaintextOffLoopback(t *testing.T) {
	cfg := writeConfig(t, "secret_key: k\nmaster:\n  backend: local\n  modules_dir: ../../modules\n  listen: 0.0.0.0:0\n  http_listen: ''\n  journal: {path: "+filepath.Join(t.TempDir(), "j.db")+"}\n  relay:\n    password: pw\n")
	_, err := runCmd(t, "", "master", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("plaintext relay on 0.0.0.0: err = %v, want a refusal naming TLS", err)
	}
}
