// Package config reads omserver's one configuration file (YAML, strict: an
// unknown key is an error) and applies environment overrides for secrets, so
// that SECRET_KEY and passwords need not sit in a file. The same file format
// serves `omserver web` (the web section) and `omserver master` (the master
// section); the annotated example is etc/omserver.example.yaml.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Environment variables that override the file. Secrets belong here.
const (
	EnvSecretKey      = "OMSERVER_SECRET_KEY"
	EnvRelayPassword  = "OMSERVER_RELAY_PASSWORD"
	EnvDatabaseDSN    = "OMSERVER_DB_DSN"
	EnvSaltPassword   = "OMSERVER_SALT_PASSWORD"
	EnvSSHPassphrase  = "OMSERVER_SSH_PASSPHRASE"
	maxConfigFileSize = 1 << 20
)

// Config is the whole file.
type Config struct {
	// SecretKey keys the cipher envelope on the relay; web and master must
	// share it. Prefer the OMSERVER_SECRET_KEY environment variable.
	SecretKey string `yaml:"secret_key"`
	// Cipher is "aead" (default, authenticated) or "legacy" (the original
	// RC4 scheme, for talking to an original OMServer peer only).
	Cipher string       `yaml:"cipher"`
	Log    LogConfig    `yaml:"log"`
	Web    WebConfig    `yaml:"web"`
	Master MasterConfig `yaml:"master"`
}

// LogConfig selects zerolog's level and output format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json (default) or console
}

// WebConfig is the web tier.
type WebConfig struct {
	Listen        string   `yaml:"listen"`
	BaseURL       string   `yaml:"base_url"`
	SecureCookies *bool    `yaml:"secure_cookies"` // default true; the demo turns it off for plain http on loopback
	SessionTTL    Duration `yaml:"session_ttl"`
	MaxBodyBytes  int64    `yaml:"max_body_bytes"`
	// LoginRateBurst is how many failed logins an address or a user name may
	// have before further attempts wait (about one a minute is refilled).
	LoginRateBurst int `yaml:"login_rate_burst"`
	// MaxStreamsPerUser bounds the live result streams one user holds open.
	MaxStreamsPerUser int            `yaml:"max_streams_per_user"`
	TLSCert           string         `yaml:"tls_cert"` // serve HTTPS directly; or put a reverse proxy in front
	TLSKey            string         `yaml:"tls_key"`
	Database          DatabaseConfig `yaml:"database"`
	Masters           []string       `yaml:"masters"` // relay addresses, tried in order (failover)
	Relay             RelayClient    `yaml:"relay"`
	Notify            NotifyConfig   `yaml:"notify"`
	// OMAudit is 安全审计: the collectors' ingest and the history's retention.
	OMAudit OMAuditConfig `yaml:"omaudit"`
	// ModuleRunTimeout bounds how long the legacy /autoadmin/module_run/
	// waits for its run before answering that it is still running.
	ModuleRunTimeout Duration   `yaml:"module_run_timeout"`
	Runs             RunsConfig `yaml:"runs"`
}

// RunsConfig is how the web tier follows runs (see docs/DELIVERY.md).
type RunsConfig struct {
	// TierID names this web tier in run leases; it must be unique among
	// the tiers sharing a database and stable across restarts (a
	// restarted tier then takes its runs back at once). Default:
	// hostname:port of web.listen.
	TierID string `yaml:"tier_id"`
	// LeaseTTL is how long a run stays with its tier without a heartbeat
	// before another tier takes it over.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// MasterLostAfter is how long a run's master may stay unreachable
	// before the run is recorded interrupted.
	MasterLostAfter Duration `yaml:"master_lost_after"`
}

// OMAuditConfig is 安全审计 (the original's omaudit app).
type OMAuditConfig struct {
	// TrustedProxies are reverse proxies in front of the web tier (IPs or
	// CIDR prefixes): an ingest request from one of them is attributed to
	// the address it appended to X-Forwarded-For.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// IngestRate and IngestBurst are each host's token bucket: rows per
	// second in the long run, and at once.
	IngestRate  float64 `yaml:"ingest_rate"`
	IngestBurst int     `yaml:"ingest_burst"`
	// Retention deletes history stored longer ago than this (0: keep all).
	Retention Duration `yaml:"retention"`
}

// NotifyConfig tunes the notification outbox (channels themselves are
// configured by an admin in the web tier and stored in the database).
type NotifyConfig struct {
	PollInterval Duration `yaml:"poll_interval"` // how often the outbox is checked (default 5s)
	SendTimeout  Duration `yaml:"send_timeout"`  // one attempt (default 15s)
	MaxAttempts  int      `yaml:"max_attempts"`  // tries before a notification is given up (default 8)
	BackoffBase  Duration `yaml:"backoff_base"`  // wait before the 2nd try, doubling after (default 10s)
	BackoffMax   Duration `yaml:"backoff_max"`   // longest wait between tries (default 30m)
}

// DatabaseConfig chooses the store.
type DatabaseConfig struct {
	Driver         string `yaml:"driver"` // sqlite (default) or mysql
	DSN            string `yaml:"dsn"`
	MigrateOnStart bool   `yaml:"migrate_on_start"`
}

// RelayClient is how the web tier reaches the masters.
type RelayClient struct {
	User        string   `yaml:"user"`
	Password    string   `yaml:"password"`
	CAFile      string   `yaml:"ca_file"`
	ServerName  string   `yaml:"server_name"`
	CertFile    string   `yaml:"cert_file"`
	KeyFile     string   `yaml:"key_file"`
	Insecure    bool     `yaml:"insecure"` // plaintext; loopback only
	DialTimeout Duration `yaml:"dial_timeout"`
}

// MasterConfig is the master daemon.
type MasterConfig struct {
	Listen         string   `yaml:"listen"`      // relay (gRPC)
	HTTPListen     string   `yaml:"http_listen"` // /healthz and /metrics
	ModulesDir     string   `yaml:"modules_dir"`
	Backend        string   `yaml:"backend"` // ssh (default), ansible, salt, func, local
	Forks          int      `yaml:"forks"`
	ConnectTimeout Duration `yaml:"connect_timeout"`
	HostTimeout    Duration `yaml:"host_timeout"`
	OutputCap      int      `yaml:"output_cap"`
	// Drain is how long a stopping master lets running tasks finish (and
	// the relay deliver their events) before it cancels them.
	Drain   Duration      `yaml:"drain"`
	Journal JournalConfig `yaml:"journal"`
	Relay   RelayServer   `yaml:"relay"`
	SSH     SSHConfig     `yaml:"ssh"`
	Ansible AnsibleConfig `yaml:"ansible"`
	Salt    SaltConfig    `yaml:"salt"`
	Func    FuncConfig    `yaml:"func"`
}

// JournalConfig is the master's run journal: accepted run ids and run
// events kept on disk until the web tier acknowledges them.
type JournalConfig struct {
	Path     string   `yaml:"path"`
	MaxBytes int64    `yaml:"max_bytes"`
	MaxAge   Duration `yaml:"max_age"`
}

// RelayServer is the master's side of the relay.
type RelayServer struct {
	User         string `yaml:"user"`
	Password     string `yaml:"password"`
	TLSCert      string `yaml:"tls_cert"`
	TLSKey       string `yaml:"tls_key"`
	ClientCAFile string `yaml:"client_ca"` // require client certificates signed by this CA
	Insecure     bool   `yaml:"insecure"`  // allow plaintext on a non-loopback address
}

// SSHConfig configures the native SSH backend.
type SSHConfig struct {
	User           string                   `yaml:"user"`
	Port           int                      `yaml:"port"`
	IdentityFiles  []string                 `yaml:"identity_files"`
	UseAgent       bool                     `yaml:"use_agent"`
	KnownHostsFile string                   `yaml:"known_hosts_file"`
	HostKeyPolicy  string                   `yaml:"host_key_policy"` // strict (default) or accept-new
	Hosts          map[string]SSHHostConfig `yaml:"hosts"`
	Pool           SSHPoolConfig            `yaml:"pool"`
}

// SSHPoolConfig keeps authenticated connections warm between runs.
type SSHPoolConfig struct {
	MaxIdle     int      `yaml:"max_idle"`     // idle connections kept, all hosts together; 0 = no pool
	IdleTimeout Duration `yaml:"idle_timeout"` // closed after this long unused; default 5m
}

// SSHHostConfig overrides connection details for one target (by IP or name).
type SSHHostConfig struct {
	User    string `yaml:"user"`
	Port    int    `yaml:"port"`
	Address string `yaml:"address"`
}

// AnsibleConfig configures the ansible backend.
type AnsibleConfig struct {
	Binary          string `yaml:"binary"`
	User            string `yaml:"user"`
	Port            int    `yaml:"port"`
	PrivateKeyFile  string `yaml:"private_key_file"`
	KnownHostsFile  string `yaml:"known_hosts_file"`
	HostKeyChecking *bool  `yaml:"host_key_checking"` // default true
}

// SaltConfig configures the salt-api backend.
type SaltConfig struct {
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	EAuth    string `yaml:"eauth"`
	CAFile   string `yaml:"ca_file"`
	// MinionID maps a host to its minion id: hostname (default), upper
	// (the original's upper-cased names), ip, or a template such as
	// {{.Name}}.example.com. Checked when the master starts.
	MinionID string `yaml:"minion_id"`
}

// FuncConfig configures the Func XML-RPC backend.
type FuncConfig struct {
	Port     int    `yaml:"port"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"`
	// Hosts maps a target (IP or hostname) to the address to dial instead.
	Hosts map[string]string `yaml:"hosts"`
}

// Duration is a time.Duration written as "30s", "5m" in the file.
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration must be a string like \"30s\": %w", n.Line, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	if v < 0 {
		return fmt.Errorf("line %d: duration %q is negative", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// Default returns the configuration used when a key is absent.
func Default() Config {
	secure := true
	checking := true
	return Config{
		Cipher: "aead",
		Log:    LogConfig{Level: "info", Format: "json"},
		Web: WebConfig{
			Listen:            "127.0.0.1:8080",
			SecureCookies:     &secure,
			SessionTTL:        Duration(12 * time.Hour),
			MaxBodyBytes:      1 << 20,
			LoginRateBurst:    5,
			MaxStreamsPerUser: 32,
			Database:          DatabaseConfig{Driver: "sqlite", DSN: "data/omserver.db", MigrateOnStart: true},
			Masters:           []string{"127.0.0.1:7070"},
			Relay:             RelayClient{User: "omuser", DialTimeout: Duration(5 * time.Second)},
			Runs:              RunsConfig{LeaseTTL: Duration(30 * time.Second), MasterLostAfter: Duration(time.Minute)},
			OMAudit:           OMAuditConfig{IngestRate: 5, IngestBurst: 200},
			ModuleRunTimeout:  Duration(10 * time.Minute),
		},
		Master: MasterConfig{
			Listen:         "127.0.0.1:7070",
			HTTPListen:     "127.0.0.1:9070",
			ModulesDir:     "/etc/omserver/modules",
			Backend:        "ssh",
			Forks:          50,
			ConnectTimeout: Duration(10 * time.Second),
			HostTimeout:    Duration(5 * time.Minute),
			OutputCap:      64 << 10,
			Drain:          Duration(time.Minute),
			Journal:        JournalConfig{Path: "/var/lib/omserver/journal.db", MaxBytes: 1 << 30, MaxAge: Duration(7 * 24 * time.Hour)},
			Relay:          RelayServer{User: "omuser"},
			SSH:            SSHConfig{User: "root", Port: 22, KnownHostsFile: "/etc/omserver/known_hosts", HostKeyPolicy: "strict"},
			Ansible:        AnsibleConfig{Binary: "ansible", User: "root", Port: 22, HostKeyChecking: &checking},
			Salt:           SaltConfig{EAuth: "pam"},
			Func:           FuncConfig{Port: 51234},
		},
	}
}

// Load reads path (if not empty) over the defaults, then applies the
// environment (getenv is os.Getenv outside tests).
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxConfigFileSize+1))
		if err != nil {
			return cfg, fmt.Errorf("config: reading %s: %w", path, err)
		}
		if len(data) > maxConfigFileSize {
			return cfg, fmt.Errorf("config: %s is larger than %d bytes", path, maxConfigFileSize)
		}
		if err := Decode(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	applyEnv(&cfg, getenv)
	return cfg, nil
}

// Decode parses YAML strictly into cfg, keeping cfg's values for absent keys.
func Decode(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file means all defaults
		}
		return err
	}
	return nil
}

func applyEnv(cfg *Config, getenv func(string) string) {
	set := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set(&cfg.SecretKey, EnvSecretKey)
	set(&cfg.Web.Relay.Password, EnvRelayPassword)
	set(&cfg.Master.Relay.Password, EnvRelayPassword)
	set(&cfg.Web.Database.DSN, EnvDatabaseDSN)
	set(&cfg.Master.Salt.Password, EnvSaltPassword)
}

// CheckWeb reports what `omserver web` cannot start without.
func (c Config) CheckWeb() error {
	var errs []error
	if c.SecretKey == "" {
		errs = append(errs, fmt.Errorf("secret_key is empty: set it in the file or in %s", EnvSecretKey))
	}
	if c.Web.Relay.Password == "" {
		errs = append(errs, fmt.Errorf("web.relay.password is empty: set it in the file or in %s", EnvRelayPassword))
	}
	if len(c.Web.Masters) == 0 {
		errs = append(errs, errors.New("web.masters lists no master address"))
	}
	switch c.Web.Database.Driver {
	case "sqlite", "mysql":
	default:
		errs = append(errs, fmt.Errorf("web.database.driver %q: want sqlite or mysql", c.Web.Database.Driver))
	}
	if c.Web.Runs.LeaseTTL != 0 && time.Duration(c.Web.Runs.LeaseTTL) < 3*time.Second {
		errs = append(errs, fmt.Errorf("web.runs.lease_ttl %s is too short: want at least 3s", time.Duration(c.Web.Runs.LeaseTTL)))
	}
	if (c.Web.TLSCert == "") != (c.Web.TLSKey == "") {
		errs = append(errs, errors.New("web.tls_cert and web.tls_key must be set together"))
	}
	for _, p := range c.Web.OMAudit.TrustedProxies {
		if !validProxy(p) {
			errs = append(errs, fmt.Errorf("web.omaudit.trusted_proxies: %q is not an IP address or CIDR prefix", p))
		}
	}
	if c.Web.OMAudit.IngestRate < 0 || c.Web.OMAudit.IngestBurst < 0 {
		errs = append(errs, errors.New("web.omaudit.ingest_rate and ingest_burst must not be negative"))
	}
	errs = append(errs, checkCipher(c.Cipher))
	return errors.Join(errs...)
}

// CheckMaster reports what `omserver master` cannot start without.
func (c Config) CheckMaster() error {
	var errs []error
	if c.SecretKey == "" {
		errs = append(errs, fmt.Errorf("secret_key is empty: set it in the file or in %s", EnvSecretKey))
	}
	if c.Master.Relay.Password == "" {
		errs = append(errs, fmt.Errorf("master.relay.password is empty: set it in the file or in %s", EnvRelayPassword))
	}
	if c.Master.ModulesDir == "" {
		errs = append(errs, errors.New("master.modules_dir is empty"))
	}
	if c.Master.Journal.Path == "" {
		errs = append(errs, errors.New("master.journal.path is empty: the master keeps accepted runs and their events there"))
	}
	if c.Master.Forks < 1 {
		errs = append(errs, fmt.Errorf("master.forks is %d: want at least 1", c.Master.Forks))
	}
	if c.Master.SSH.Pool.MaxIdle < 0 {
		errs = append(errs, fmt.Errorf("master.ssh.pool.max_idle is %d: want 0 (no pool) or more", c.Master.SSH.Pool.MaxIdle))
	}
	switch c.Master.Backend {
	case "ssh", "ansible", "salt", "func", "local":
	default:
		errs = append(errs, fmt.Errorf("master.backend %q: want ssh, ansible, salt, func or local", c.Master.Backend))
	}
	if (c.Master.Relay.TLSCert == "") != (c.Master.Relay.TLSKey == "") {
		errs = append(errs, errors.New("master.relay.tls_cert and tls_key must be set together"))
	}
	errs = append(errs, checkCipher(c.Cipher))
	return errors.Join(errs...)
}

func validProxy(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

func checkCipher(s string) error {
	switch strings.ToLower(s) {
	case "", "aead", "legacy":
		return nil
	}
	return fmt.Errorf("cipher %q: want aead or legacy", s)
}
