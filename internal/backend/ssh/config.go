package ssh

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Host key policies.
const (
	// PolicyStrict refuses any host whose key is not already in the
	// known_hosts file (the default).
	PolicyStrict = "strict"
	// PolicyAcceptNew records the key of a host not yet in known_hosts and
	// connects; a host whose key changed is still refused.
	PolicyAcceptNew = "accept-new"
	// PolicyInsecureIgnore checks no host key at all. Only allowed with
	// Config.AllowInsecureHostKey; New logs a warning.
	PolicyInsecureIgnore = "insecure-ignore"
)

// Defaults applied by New.
const (
	DefaultUser           = "root"
	DefaultPort           = 22
	DefaultConnectTimeout = 10 * time.Second
)

// Config is the SSH backend's configuration.
type Config struct {
	User string // login user; default "root"
	Port int    // default 22

	// IdentityFiles are private keys, OpenSSH or PEM format, unencrypted or
	// encrypted with Passphrase.
	IdentityFiles []string
	Passphrase    string // never logged
	// UseAgent adds the keys of the ssh-agent at AgentSocket (default
	// $SSH_AUTH_SOCK).
	UseAgent    bool
	AgentSocket string

	// KnownHostsFile is required unless HostKeyPolicy is insecure-ignore.
	KnownHostsFile string
	// HostKeyPolicy is strict (default), accept-new or insecure-ignore.
	HostKeyPolicy string
	// AllowInsecureHostKey must be set for insecure-ignore, so that it is
	// never chosen by a typo.
	AllowInsecureHostKey bool

	// ConnectTimeout bounds dialling, the handshake and authentication;
	// default 10s. backend.Options.ConnectTimeout overrides it per run.
	ConnectTimeout time.Duration

	// Hosts overrides connection details per target, keyed by the host's IP
	// or name (IP first).
	Hosts map[string]HostConfig

	// Pool keeps authenticated connections warm between runs (off by
	// default).
	Pool PoolConfig
}

// HostConfig overrides connection details for one target.
type HostConfig struct {
	User string
	Port int
	// Address is what to dial instead of the host's IP or name, e.g. to
	// reach several logical hosts that point at one sshd.
	Address string
}

// withDefaults returns a copy of c with defaults filled in, or an error
// naming every field that is wrong.
func (c Config) withDefaults() (Config, error) {
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.HostKeyPolicy == "" {
		c.HostKeyPolicy = PolicyStrict
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.UseAgent && c.AgentSocket == "" {
		c.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
	}

	var errs []error
	if !validPort(c.Port) {
		errs = append(errs, fmt.Errorf("port %d: want 1..65535", c.Port))
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("connect timeout %v is negative", c.ConnectTimeout))
	}
	switch c.HostKeyPolicy {
	case PolicyStrict:
		if c.KnownHostsFile == "" {
			errs = append(errs, errors.New("known_hosts file is required with host key policy strict"))
		} else if _, err := os.Stat(c.KnownHostsFile); err != nil {
			errs = append(errs, fmt.Errorf("known_hosts file: %w", err))
		}
	case PolicyAcceptNew:
		if c.KnownHostsFile == "" {
			errs = append(errs, errors.New("known_hosts file is required with host key policy accept-new"))
		}
	case PolicyInsecureIgnore:
		if !c.AllowInsecureHostKey {
			errs = append(errs, errors.New("host key policy insecure-ignore needs the explicit allow-insecure-host-key flag"))
		}
	default:
		errs = append(errs, fmt.Errorf("host key policy %q: want strict, accept-new or insecure-ignore", c.HostKeyPolicy))
	}
	if len(c.IdentityFiles) == 0 && !c.UseAgent {
		errs = append(errs, errors.New("no authentication: give identity files or use the agent"))
	}
	if c.UseAgent && c.AgentSocket == "" {
		errs = append(errs, errors.New("use agent: SSH_AUTH_SOCK is not set and no agent socket given"))
	}
	if c.Pool.MaxIdle < 0 || c.Pool.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("pool: max idle %d and idle timeout %v must not be negative", c.Pool.MaxIdle, c.Pool.IdleTimeout))
	}
	for name, h := range c.Hosts {
		if name == "" {
			errs = append(errs, errors.New("hosts: empty host name"))
		}
		if h.Port != 0 && !validPort(h.Port) {
			errs = append(errs, fmt.Errorf("hosts[%s]: port %d: want 1..65535", name, h.Port))
		}
		if h.Address != "" {
			if _, _, err := net.SplitHostPort(h.Address); err == nil {
				errs = append(errs, fmt.Errorf("hosts[%s]: address %q must not hold a port (use port)", name, h.Address))
			}
		}
	}
	return c, errors.Join(errs...)
}

func validPort(p int) bool { return p >= 1 && p <= 65535 }

// target is where and as whom one host is reached.
type target struct {
	user string
	addr string // host:port to dial, also the known_hosts name
}

// poolKey names the connection a target needs: who logs in where.
func (t target) poolKey() string { return t.user + "@" + t.addr }

// targetFor resolves the host's overrides: Hosts[ip], then Hosts[name].
func (c Config) targetFor(ip, name string) (target, error) {
	h, ok := c.Hosts[ip]
	if !ok && name != "" {
		h = c.Hosts[name]
	}
	t := target{user: c.User}
	if h.User != "" {
		t.user = h.User
	}
	port := c.Port
	if h.Port != 0 {
		port = h.Port
	}
	host := h.Address
	if host == "" {
		host = ip
	}
	if host == "" {
		host = name
	}
	if host == "" {
		return target{}, errors.New("host has neither ip nor name")
	}
	t.addr = net.JoinHostPort(host, strconv.Itoa(port))
	return t, nil
}
