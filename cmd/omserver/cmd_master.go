package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/ansible"
	"github.com/omserver/omserver-go/internal/backend/funcrpc"
	"github.com/omserver/omserver-go/internal/backend/local"
	"github.com/omserver/omserver-go/internal/backend/salt"
	"github.com/omserver/omserver-go/internal/backend/ssh"
	"github.com/omserver/omserver-go/internal/config"
	"github.com/omserver/omserver-go/internal/master"
	"github.com/omserver/omserver-go/internal/relay"
)

// cmdMaster runs the master daemon: module registry, dispatcher, relay.
func cmdMaster(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("master", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	insecure := fs.Bool("insecure-relay", false, "allow a plaintext relay on a non-loopback address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *insecure {
		cfg.Master.Relay.Insecure = true
	}
	if err := cfg.CheckMaster(); err != nil {
		return fmt.Errorf("config %s: %w", *cfgPath, err)
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	log = log.With().Str("tier", "master").Logger()
	mc := cfg.Master

	backends, err := buildBackends(mc, log)
	if err != nil {
		return err
	}
	defer closeBackends(backends)
	drain := mc.Drain.Or(defaultDrain)
	journal, err := master.OpenJournal(mc.Journal.Path, master.JournalConfig{MaxBytes: mc.Journal.MaxBytes, MaxAge: mc.Journal.MaxAge.Or(0)}, log)
	if err != nil {
		return err
	}
	defer journal.Close()
	reg := newRegistry()
	mmetrics := newMasterMetrics(reg)
	m, err := master.New(master.Config{
		Forks: mc.Forks, DefaultBackend: mc.Backend,
		ConnectTimeout: mc.ConnectTimeout.Or(0), HostTimeout: mc.HostTimeout.Or(0), OutputCap: mc.OutputCap,
		Journal: journal, Observe: mmetrics.observe,
	}, mc.ModulesDir, backends, log)
	if err != nil {
		return err
	}
	metered := newMeteredMaster(m, mmetrics, reg)
	rs, err := relay.NewServer(relay.ServerConfig{
		Listen: mc.Listen, User: mc.Relay.User, Password: mc.Relay.Password,
		SecretKey: cfg.SecretKey, Scheme: cfg.Cipher,
		CertFile: mc.Relay.TLSCert, KeyFile: mc.Relay.TLSKey, ClientCAFile: mc.Relay.ClientCAFile,
		Insecure: mc.Relay.Insecure, Version: version, ShutdownGrace: drain,
	}, metered, log)
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go journal.RunPruner(runCtx)
	// The relay has its own context, ended only after the master drained:
	// web tiers keep receiving the events of running tasks (and resuming
	// after a network cut) during the whole drain.
	relayCtx, stopRelay := context.WithCancel(context.Background())
	defer stopRelay()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go m.ReloadOnSignal(runCtx, hup)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "ok: %d modules\n", len(m.Modules()))
	})
	mux.Handle("GET /metrics", metricsHandler(reg))
	httpSrv := &http.Server{Addr: mc.HTTPListen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	// Bind both listeners before telling systemd we are ready.
	relayLis, err := net.Listen("tcp", mc.Listen)
	if err != nil {
		return fmt.Errorf("relay listener: %w", err)
	}
	errc := make(chan error, 2)
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		errc <- rs.Serve(relayCtx, relayLis)
	}()
	if mc.HTTPListen != "" {
		httpLis, err := net.Listen("tcp", mc.HTTPListen)
		if err != nil {
			return fmt.Errorf("http listener: %w", err)
		}
		go func() { errc <- serveHTTP(runCtx, httpSrv, httpLis, "", "", log) }()
	}
	log.Info().Str("relay", mc.Listen).Str("http", mc.HTTPListen).Str("backend", mc.Backend).
		Int("modules", len(m.Modules())).Int("forks", mc.Forks).Msg("master started")
	notify(log, daemon.SdNotifyReady)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	notify(log, daemon.SdNotifyStopping)
	log.Info().Dur("drain", drain).Msg("master stopping: new runs are refused; running tasks may finish, then they are cancelled")
	stopCtx, stopCancel := context.WithTimeout(context.Background(), drain)
	defer stopCancel()
	if err := m.Shutdown(stopCtx); err != nil {
		log.Warn().Err(err).Msg("master shutdown")
	}
	// Every run has ended and its last events are journaled: let the
	// relay deliver them (up to the drain again), then close the journal.
	stopRelay()
	<-relayDone
	cancel()
	return runErr
}

// defaultDrain is how long a stopping master lets running tasks finish
// before cancelling them, when master.drain is not set (systemd's
// TimeoutStopSec is longer than twice this: drain, then the relay's flush).
const defaultDrain = 60 * time.Second

// buildBackends makes the local backend and every configured one. The
// default backend must build; others are skipped with a warning when they
// are not configured, so a module asking for them fails with a clear error.
func buildBackends(mc config.MasterConfig, log zerolog.Logger) (map[string]backend.Backend, error) {
	// A wrong minion id mapping is a configuration error even while salt
	// is not in use: it would only surface on a salt run.
	if _, err := salt.ParseMinionID(mc.Salt.MinionID); err != nil {
		return nil, fmt.Errorf("master.salt.minion_id: %w", err)
	}
	out := map[string]backend.Backend{"local": local.New(log)}
	var errs []error
	try := func(name string, configured bool, build func() (backend.Backend, error)) {
		if !configured && name != mc.Backend {
			return
		}
		b, err := build()
		if err != nil {
			if name == mc.Backend {
				errs = append(errs, fmt.Errorf("backend %s (the default): %w", name, err))
			} else {
				log.Warn().Err(err).Str("backend", name).Msg("backend not available")
			}
			return
		}
		out[name] = b
	}
	try("ssh", len(mc.SSH.IdentityFiles) > 0 || mc.SSH.UseAgent, func() (backend.Backend, error) {
		hosts := make(map[string]ssh.HostConfig, len(mc.SSH.Hosts))
		for k, h := range mc.SSH.Hosts {
			hosts[k] = ssh.HostConfig{User: h.User, Port: h.Port, Address: h.Address}
		}
		return ssh.New(ssh.Config{
			User: mc.SSH.User, Port: mc.SSH.Port, IdentityFiles: mc.SSH.IdentityFiles,
			Passphrase: os.Getenv(config.EnvSSHPassphrase), UseAgent: mc.SSH.UseAgent,
			KnownHostsFile: mc.SSH.KnownHostsFile, HostKeyPolicy: mc.SSH.HostKeyPolicy,
			ConnectTimeout: mc.ConnectTimeout.Or(0), Hosts: hosts,
			Pool: ssh.PoolConfig{MaxIdle: mc.SSH.Pool.MaxIdle, IdleTimeout: mc.SSH.Pool.IdleTimeout.Or(0)},
		}, log)
	})
	try("ansible", mc.Ansible.PrivateKeyFile != "", func() (backend.Backend, error) {
		checking := mc.Ansible.HostKeyChecking == nil || *mc.Ansible.HostKeyChecking
		return ansible.New(ansible.Config{
			Binary: mc.Ansible.Binary, User: mc.Ansible.User, Port: mc.Ansible.Port,
			PrivateKeyFile: mc.Ansible.PrivateKeyFile, KnownHostsFile: mc.Ansible.KnownHostsFile,
			HostKeyChecking: checking,
		}, log)
	})
	try("salt", mc.Salt.URL != "", func() (backend.Backend, error) {
		return salt.New(salt.Config{
			URL: mc.Salt.URL, Username: mc.Salt.Username, Password: mc.Salt.Password,
			EAuth: mc.Salt.EAuth, CAFile: mc.Salt.CAFile, MinionID: mc.Salt.MinionID,
		}, log)
	})
	try("func", mc.Func.CertFile != "", func() (backend.Backend, error) {
		return funcrpc.New(funcrpc.Config{
			Port: mc.Func.Port, CertFile: mc.Func.CertFile, KeyFile: mc.Func.KeyFile, CAFile: mc.Func.CAFile,
			Hosts: mc.Func.Hosts,
		}, log)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// closeBackends releases what backends hold between runs (the ssh
// connection pool, salt-api's idle connections).
func closeBackends(backends map[string]backend.Backend) {
	for _, b := range backends {
		if c, ok := b.(interface{ Close() }); ok {
			c.Close()
		}
	}
}

// notify tells systemd about our state when started as a Type=notify unit.
func notify(log zerolog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn().Err(err).Msg("sd_notify")
	}
}
