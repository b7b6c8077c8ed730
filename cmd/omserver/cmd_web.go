package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	omnotify "github.com/omserver/omserver-go/internal/notify"
	"github.com/omserver/omserver-go/internal/omaudit"
	"github.com/omserver/omserver-go/internal/relay"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/web"
)

// cmdWeb runs the web tier: dashboard, JSON API and legacy endpoints.
func cmdWeb(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("web", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	listen := fs.String("listen", "", "override web.listen")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Web.Listen = *listen
	}
	if err := cfg.CheckWeb(); err != nil {
		return fmt.Errorf("config %s: %w", *cfgPath, err)
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	log = log.With().Str("tier", "web").Logger()
	wc := cfg.Web

	st, err := openStore(ctx, wc.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	if wc.Database.MigrateOnStart {
		if err := st.Migrate(ctx); err != nil {
			return err
		}
	}

	client, err := relay.NewClient(relay.ClientConfig{
		Addrs: wc.Masters, User: wc.Relay.User, Password: wc.Relay.Password,
		SecretKey: cfg.SecretKey, Scheme: cfg.Cipher,
		CAFile: wc.Relay.CAFile, ServerName: wc.Relay.ServerName,
		CertFile: wc.Relay.CertFile, KeyFile: wc.Relay.KeyFile, Insecure: wc.Relay.Insecure,
		DialTimeout: wc.Relay.DialTimeout.Or(0),
	}, log)
	if err != nil {
		return err
	}
	defer client.Close()

	secure := wc.SecureCookies == nil || *wc.SecureCookies
	tierID := wc.Runs.TierID
	if tierID == "" {
		tierID = defaultTierID(wc.Listen)
	}
	proxies, err := omaudit.ParseProxies(wc.OMAudit.TrustedProxies)
	if err != nil {
		return fmt.Errorf("web.omaudit.trusted_proxies: %w", err)
	}
	ws, err := web.New(web.Config{
		Listen: wc.Listen, BaseURL: wc.BaseURL, SecureCookies: secure,
		SessionTTL: wc.SessionTTL.Or(0), MaxBodyBytes: wc.MaxBodyBytes, LoginRateBurst: wc.LoginRateBurst,
		MaxStreamsPerUser: wc.MaxStreamsPerUser, MasterName: strings.Join(wc.Masters, ","),
		Runs: runs.Config{TierID: tierID, LeaseTTL: wc.Runs.LeaseTTL.Or(0), MasterLostAfter: wc.Runs.MasterLostAfter.Or(0)},
		Notify: omnotify.Config{
			PollInterval: wc.Notify.PollInterval.Or(0), SendTimeout: wc.Notify.SendTimeout.Or(0),
			MaxAttempts: wc.Notify.MaxAttempts, BackoffBase: wc.Notify.BackoffBase.Or(0), BackoffMax: wc.Notify.BackoffMax.Or(0),
		},
		OMAudit: omaudit.Config{
			TrustedProxies: proxies, Rate: wc.OMAudit.IngestRate, Burst: wc.OMAudit.IngestBurst,
			Retention: wc.OMAudit.Retention.Or(0),
		},
		ModuleRunTimeout: wc.ModuleRunTimeout.Or(0),
	}, st, client, log)
	if err != nil {
		return err
	}
	if err := ws.Start(ctx); err != nil {
		return err
	}

	lis, err := net.Listen("tcp", wc.Listen)
	if err != nil {
		return fmt.Errorf("web listener: %w", err)
	}
	srv := &http.Server{Handler: ws.Handler(), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(ws.EndStreams) // live-output streams must not hold shutdown open
	log.Info().Str("listen", wc.Listen).Str("database", st.Dialect()).Strs("masters", wc.Masters).Str("tier_id", tierID).Msg("web started")
	notify(log, daemon.SdNotifyReady)

	errc := make(chan error, 1)
	go func() { errc <- serveHTTP(ctx, srv, lis, wc.TLSCert, wc.TLSKey, log) }()
	var runErr error
	select {
	case <-ctx.Done():
		runErr = <-errc
	case runErr = <-errc:
	}
	notify(log, daemon.SdNotifyStopping)
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ws.Shutdown(stopCtx); err != nil {
		log.Warn().Err(err).Msg("web shutdown")
	}
	return runErr
}

// defaultTierID names this web tier in run leases when web.runs.tier_id
// is not set: the host name and the listening port, unique per machine
// and stable across restarts.
func defaultTierID(listen string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "web"
	}
	if _, port, err := net.SplitHostPort(listen); err == nil {
		return host + ":" + port
	}
	return host
}
