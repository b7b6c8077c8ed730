package ansible

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Config says how the backend drives ansible. The zero value (plus a
// binary on PATH) logs in as the current user on port 22 with ssh's default
// keys and known_hosts, checking host keys strictly.
type Config struct {
	// Binary is the ansible ad-hoc command; "" means "ansible" on PATH.
	Binary string
	// User is ansible_user; "" lets ssh choose.
	User string
	// Port is ansible_port; 0 means 22.
	Port int
	// PrivateKeyFile is ansible_ssh_private_key_file; "" uses ssh's
	// defaults and the agent (SSH_AUTH_SOCK is passed through).
	PrivateKeyFile string
	// KnownHostsFile is the known_hosts file checked when HostKeyChecking is
	// on; "" means ssh's default (~/.ssh/known_hosts).
	KnownHostsFile string
	// HostKeyChecking refuses hosts whose key is not in known_hosts. Turning
	// it off accepts any host key (and records none): only for labs.
	HostKeyChecking bool
	// ConnectTimeout bounds the ssh connection (ansible's "timeout");
	// 0 means DefaultConnectTimeout. Options.ConnectTimeout overrides it.
	ConnectTimeout time.Duration
	// ExtraEnv is added to ansible's environment ("KEY=value"), e.g.
	// ANSIBLE_PYTHON_INTERPRETER. It cannot replace the variables the
	// backend needs to read ansible's output.
	ExtraEnv []string
}

// Defaults.
const (
	DefaultBinary         = "ansible"
	DefaultConnectTimeout = 10 * time.Second
)

// jinjaDelims start template expressions: ansible templates module
// arguments and inventory variables, so none of these may reach it from
// the config or the task.
var jinjaDelims = []string{"{{", "{%", "{#"}

func hasJinja(s string) bool {
	for _, d := range jinjaDelims {
		if strings.Contains(s, d) {
			return true
		}
	}
	return false
}

// safeWord accepts values that go into ansible's config and inventory
// verbatim: no whitespace, quotes, shell or template characters.
var safeWord = regexp.MustCompile(`^[A-Za-z0-9._/@+:,=-]+$`)

var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validate checks cfg and fills defaults.
func (c Config) validate() (Config, error) {
	if c.Binary == "" {
		c.Binary = DefaultBinary
	}
	path, err := exec.LookPath(c.Binary)
	if err != nil {
		return c, fmt.Errorf("ansible backend: ansible binary %q not usable: %w (install the Debian package ansible, which brings ansible-core and the ansible.posix collection)", c.Binary, err)
	}
	c.Binary = path
	if c.Port < 0 || c.Port > 65535 {
		return c, fmt.Errorf("ansible backend: port %d outside 0..65535", c.Port)
	}
	if c.Port == 0 {
		c.Port = 22
	}
	if c.User != "" && !safeWord.MatchString(c.User) {
		return c, fmt.Errorf("ansible backend: user %q holds characters not allowed in a login name", c.User)
	}
	for _, f := range []struct{ name, path string }{
		{"private key file", c.PrivateKeyFile},
		{"known hosts file", c.KnownHostsFile},
	} {
		if f.path == "" {
			continue
		}
		if !safeWord.MatchString(f.path) || !strings.HasPrefix(f.path, "/") {
			return c, fmt.Errorf("ansible backend: %s %q must be an absolute path without spaces, quotes or template characters", f.name, f.path)
		}
		if _, err := os.Stat(f.path); err != nil {
			return c, fmt.Errorf("ansible backend: %s: %w", f.name, err)
		}
	}
	if c.ConnectTimeout < 0 {
		return c, errors.New("ansible backend: negative connect timeout")
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	for _, kv := range c.ExtraEnv {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !envKey.MatchString(k) {
			return c, fmt.Errorf("ansible backend: extra environment entry %q is not KEY=value", kv)
		}
	}
	c.ExtraEnv = append([]string(nil), c.ExtraEnv...)
	return c, nil
}

// targetAddress is the address ansible connects to: the host's IP, or its
// name when it has no IP. Both go into the inventory, so only plain IPs
// and DNS names are accepted.
func targetAddress(ip, name string) (string, error) {
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			return "", fmt.Errorf("host address %q is not an IP address", ip)
		}
		return a.String(), nil
	}
	if dnsName.MatchString(name) && len(name) <= 253 {
		return name, nil
	}
	return "", fmt.Errorf("host has no IP and its name %q is not a DNS name", name)
}

var dnsName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
