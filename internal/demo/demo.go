// Package demo wires the whole product into one process for `omserver demo`
// (what `make run` starts) and for the end-to-end browser test: the web tier
// and a master with the local backend, talking over the real gRPC relay on
// loopback with TLS and the authenticated cipher, an embedded SQLite file,
// and the original OMServer categories and modules seeded.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/backend/local"
	"github.com/omserver/omserver-go/internal/master"
	"github.com/omserver/omserver-go/internal/relay"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/web"
)

// Options configure a demo instance.
type Options struct {
	Listen     string // web address; must be a loopback address
	DataDir    string // SQLite file, generated TLS material, extracted modules
	ModulesDir string // empty: the modules embedded in the binary
	ResetAdmin bool   // give the admin user a new password even if it exists
	Log        zerolog.Logger
}

// AdminUser is the account the demo creates.
const AdminUser = "admin"

// Instance is a running demo.
type Instance struct {
	URL           string
	AdminPassword string // set when the admin account was created or reset now
	Store         *store.Store

	web     *web.Server
	master  *master.Master
	journal *master.Journal
	client  *relay.Client
	httpSrv *http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errs    chan error
}

// Start brings the demo up and returns once the web tier accepts requests.
func Start(ctx context.Context, opts Options) (inst *Instance, err error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8080"
	}
	if err := requireLoopback(opts.Listen); err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		opts.DataDir = "data"
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("demo: data directory: %w", err)
	}
	log := opts.Log

	modulesDir := opts.ModulesDir
	if modulesDir == "" {
		modulesDir = filepath.Join(opts.DataDir, "modules")
		if err := extractModules(modulesDir); err != nil {
			return nil, err
		}
	}

	runCtx, cancel := context.WithCancel(context.Background())
	inst = &Instance{cancel: cancel, errs: make(chan error, 4)}
	defer func() {
		if err != nil {
			_ = inst.Close(context.Background())
		}
	}()

	st, err := store.Open(ctx, "sqlite", filepath.Join(opts.DataDir, "omserver.db"))
	if err != nil {
		return inst, fmt.Errorf("demo: %w", err)
	}
	inst.Store = st
	if err := st.Migrate(ctx); err != nil {
		return inst, fmt.Errorf("demo: %w", err)
	}
	if err := seed(ctx, st); err != nil {
		return inst, fmt.Errorf("demo: seeding: %w", err)
	}
	inst.AdminPassword, err = ensureAdmin(ctx, st, opts.ResetAdmin)
	if err != nil {
		return inst, fmt.Errorf("demo: admin account: %w", err)
	}

	// Fresh secrets each start: the web tier and the master share them only
	// inside this process.
	secretKey, err := randomHex(32)
	if err != nil {
		return inst, err
	}
	relayPassword, err := randomHex(24)
	if err != nil {
		return inst, err
	}
	certFile, keyFile, err := writeSelfSignedCert(filepath.Join(opts.DataDir, "relay-tls"))
	if err != nil {
		return inst, fmt.Errorf("demo: relay TLS certificate: %w", err)
	}

	journal, err := master.OpenJournal(filepath.Join(opts.DataDir, "journal.db"), master.JournalConfig{}, log.With().Str("tier", "master").Logger())
	if err != nil {
		return inst, fmt.Errorf("demo: %w", err)
	}
	inst.journal = journal
	m, err := master.New(master.Config{Forks: 50, DefaultBackend: "local", HostTimeout: 2 * time.Minute, Journal: journal, LargeRunHosts: 50},
		modulesDir, map[string]backend.Backend{"local": local.New(log)}, log.With().Str("tier", "master").Logger())
	if err != nil {
		return inst, fmt.Errorf("demo: master: %w", err)
	}
	inst.master = m
	catalog, err := m.Catalog()
	if err != nil {
		return inst, fmt.Errorf("demo: master catalog: %w", err)
	}
	if err := seedCatalog(ctx, st, catalog); err != nil {
		return inst, fmt.Errorf("demo: seeding: %w", err)
	}

	relayLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return inst, fmt.Errorf("demo: relay listener: %w", err)
	}
	rs, err := relay.NewServer(relay.ServerConfig{
		Listen: relayLis.Addr().String(), User: "omuser", Password: relayPassword,
		SecretKey: secretKey, Scheme: "aead", CertFile: certFile, KeyFile: keyFile,
	}, m, log.With().Str("tier", "relay").Logger())
	if err != nil {
		relayLis.Close()
		return inst, fmt.Errorf("demo: relay server: %w", err)
	}
	inst.goRun(func() error { return rs.Serve(runCtx, relayLis) })
	go journal.RunPruner(runCtx)

	client, err := relay.NewClient(relay.ClientConfig{
		Addrs: []string{relayLis.Addr().String()}, User: "omuser", Password: relayPassword,
		SecretKey: secretKey, Scheme: "aead", CAFile: certFile, ServerName: "127.0.0.1",
		DialTimeout: 5 * time.Second,
	}, log.With().Str("tier", "relay-client").Logger())
	if err != nil {
		return inst, fmt.Errorf("demo: relay client: %w", err)
	}
	inst.client = client

	ws, err := web.New(web.Config{
		Listen: opts.Listen, SecureCookies: false, SessionTTL: 12 * time.Hour,
		MaxBodyBytes: 1 << 20, MasterName: "demo-master", Runs: runs.Config{TierID: "demo"},
	}, st, client, log.With().Str("tier", "web").Logger())
	if err != nil {
		return inst, fmt.Errorf("demo: web: %w", err)
	}
	inst.web = ws
	if err := ws.Start(ctx); err != nil {
		return inst, fmt.Errorf("demo: web start: %w", err)
	}

	webLis, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return inst, fmt.Errorf("demo: cannot listen on %s (is another demo running?): %w", opts.Listen, err)
	}
	inst.URL = "http://" + webLis.Addr().String()
	inst.httpSrv = &http.Server{Handler: ws.Handler(), ReadHeaderTimeout: 10 * time.Second}
	inst.httpSrv.RegisterOnShutdown(ws.EndStreams) // live-output streams must not hold shutdown open
	inst.goRun(func() error {
		if err := inst.httpSrv.Serve(webLis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("demo: web server: %w", err)
		}
		return nil
	})
	return inst, nil
}

func (i *Instance) goRun(fn func() error) {
	i.wg.Add(1)
	go func() {
		defer i.wg.Done()
		if err := fn(); err != nil {
			i.errs <- err
		}
	}()
}

// ReloadModules reloads the master's module directory, as SIGHUP does for
// `omserver master`; running tasks keep the modules they started with.
func (i *Instance) ReloadModules() error { return i.master.Reload() }

// Err delivers the first failure of a background server.
func (i *Instance) Err() <-chan error { return i.errs }

// Close stops the demo: the web tier finishes its runs, the master cancels
// what is left, then the servers stop.
func (i *Instance) Close(ctx context.Context) error {
	var errs []error
	if i.httpSrv != nil {
		errs = append(errs, i.httpSrv.Shutdown(ctx))
	}
	if i.web != nil {
		errs = append(errs, i.web.Shutdown(ctx))
	}
	if i.master != nil {
		errs = append(errs, i.master.Shutdown(ctx))
	}
	if i.client != nil {
		errs = append(errs, i.client.Close())
	}
	i.cancel()
	i.wg.Wait()
	if i.journal != nil {
		errs = append(errs, i.journal.Close())
	}
	if i.Store != nil {
		errs = append(errs, i.Store.Close())
	}
	return errors.Join(errs...)
}

func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("demo: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("demo: listen address %q is not a loopback address; the demo has no TLS and a printed admin password, so it only listens on 127.0.0.1 or ::1", addr)
	}
	return nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ensureAdmin creates the admin account on a new database, or gives it a new
// password when reset is asked, and returns the password it set (if any).
func ensureAdmin(ctx context.Context, st *store.Store, reset bool) (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	password := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	hash, err := web.HashPassword(password)
	if err != nil {
		return "", err
	}
	u, err := st.GetUserByName(ctx, AdminUser)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if _, err := st.CreateUser(ctx, store.User{Name: AdminUser, PasswordHash: hash, Role: store.RoleAdmin}); err != nil {
			return "", err
		}
		return password, nil
	case err != nil:
		return "", err
	case reset:
		if err := st.SetUserPassword(ctx, u.ID, hash); err != nil {
			return "", err
		}
		if u.Disabled {
			if err := st.SetUserDisabled(ctx, u.ID, false); err != nil {
				return "", err
			}
		}
		return password, nil
	}
	return "", nil
}
