package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"
)

func TestNewRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	key := writeKey(t)
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := Config{IdentityFiles: []string{key}, KnownHostsFile: kh}
	tests := []struct {
		name   string
		change func(*Config)
		wantE  string
	}{
		{name: "no known_hosts in strict mode", change: func(c *Config) { c.KnownHostsFile = "" }, wantE: "known_hosts file is required"},
		{name: "missing known_hosts in strict mode", change: func(c *Config) { c.KnownHostsFile = kh + ".missing" }, wantE: "no such file"},
		{name: "no known_hosts with accept-new", change: func(c *Config) { c.KnownHostsFile = ""; c.HostKeyPolicy = PolicyAcceptNew }, wantE: "required with host key policy accept-new"},
		{name: "insecure without the flag", change: func(c *Config) { c.HostKeyPolicy = PolicyInsecureIgnore }, wantE: "explicit allow-insecure-host-key flag"},
		{name: "unknown policy", change: func(c *Config) { c.HostKeyPolicy = "trust-me" }, wantE: `host key policy "trust-me"`},
		{name: "port out of range", change: func(c *Config) { c.Port = 70000 }, wantE: "port 70000"},
		{name: "negative connect timeout", change: func(c *Config) { c.ConnectTimeout = -1 }, wantE: "negative"},
		{name: "no auth", change: func(c *Config) { c.IdentityFiles = nil }, wantE: "no authentication"},
		{name: "agent without socket", change: func(c *Config) { c.UseAgent = true; c.AgentSocket = ""; t.Setenv("SSH_AUTH_SOCK", "") }, wantE: "SSH_AUTH_SOCK is not set"},
		{name: "missing identity file", change: func(c *Config) { c.IdentityFiles = []string{key + ".missing"} }, wantE: "identity file"},
		{name: "garbage identity file", change: func(c *Config) { c.IdentityFiles = []string{garbage} }, wantE: "identity file " + garbage},
		{name: "host port out of range", change: func(c *Config) { c.Hosts = map[string]HostConfig{"web": {Port: -2}} }, wantE: "hosts[web]: port -2"},
		{name: "host address with port", change: func(c *Config) { c.Hosts = map[string]HostConfig{"web": {Address: "127.0.0.1:22"}} }, wantE: "must not hold a port"},
		{name: "empty host name", change: func(c *Config) { c.Hosts = map[string]HostConfig{"": {Port: 22}} }, wantE: "empty host name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.change(&cfg)
			b, err := New(cfg, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tc.wantE) {
				t.Fatalf("New: %v (backend %v), want an error containing %q", err, b, tc.wantE)
			}
		})
	}
	if _, err := New(good, zerolog.Nop()); err != nil {
		t.Fatalf("the good config: %v", err)
	}
}

func TestDefaultsAndTargets(t *testing.T) {
	cfg, err := Config{IdentityFiles: []string{"k"}, HostKeyPolicy: PolicyInsecureIgnore, AllowInsecureHostKey: true,
		Hosts: map[string]HostConfig{
			"10.0.0.5": {Port: 2222},
			"db-1":     {User: "deploy", Address: "127.0.0.9"},
		}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "root" || cfg.Port != 22 || cfg.ConnectTimeout != DefaultConnectTimeout {
		t.Fatalf("defaults: %+v", cfg)
	}
	tests := []struct{ ip, name, wantUser, wantAddr string }{
		{ip: "10.0.0.5", wantUser: "root", wantAddr: "10.0.0.5:2222"},
		{ip: "10.0.0.6", name: "db-1", wantUser: "deploy", wantAddr: "127.0.0.9:22"},
		{ip: "10.0.0.7", name: "other", wantUser: "root", wantAddr: "10.0.0.7:22"},
		{name: "other", wantUser: "root", wantAddr: "other:22"},
		{ip: "::1", wantUser: "root", wantAddr: "[::1]:22"},
	}
	for _, tc := range tests {
		got, err := cfg.targetFor(tc.ip, tc.name)
		if err != nil || got.user != tc.wantUser || got.addr != tc.wantAddr {
			t.Errorf("targetFor(%q, %q) = %+v, %v; want %s@%s", tc.ip, tc.name, got, err, tc.wantUser, tc.wantAddr)
		}
	}
	if _, err := cfg.targetFor("", ""); err == nil {
		t.Error("targetFor with neither ip nor name: no error")
	}
}

func TestEncryptedIdentityFile(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "enc")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Config{IdentityFiles: []string{path}, HostKeyPolicy: PolicyInsecureIgnore, AllowInsecureHostKey: true}
	tests := []struct {
		passphrase string
		wantE      string
	}{
		{passphrase: "", wantE: "is encrypted and no passphrase is configured"},
		{passphrase: "wrong", wantE: "identity file " + path},
		{passphrase: "s3cret"},
	}
	for _, tc := range tests {
		cfg := base
		cfg.Passphrase = tc.passphrase
		_, err := New(cfg, zerolog.Nop())
		if tc.wantE == "" && err != nil {
			t.Errorf("passphrase %q: %v", tc.passphrase, err)
		}
		if tc.wantE != "" && (err == nil || !strings.Contains(err.Error(), tc.wantE)) {
			t.Errorf("passphrase %q: %v, want %q", tc.passphrase, err, tc.wantE)
		}
		if err != nil && tc.passphrase != "" && strings.Contains(err.Error(), tc.passphrase) {
			t.Errorf("the error shows the passphrase: %v", err)
		}
	}
}
