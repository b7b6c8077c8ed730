// Package web is OMServer's web tier: the dashboard pages, the JSON API
// under /api/v1, the legacy text endpoints under /autoadmin/, login and
// sessions, and the lifecycle of runs (recorded, dispatched to the master
// through MasterClient, streamed to browsers by server-sent events).
//
// The web tier never executes anything itself: it can only ask the master to
// run a module the master has, with parameters the module declares, on hosts
// of the inventory.
//
// Security decisions:
//   - Everything shown is escaped: pages are html/template, the browser code
//     inserts with textContent only. Host output, module names and labels
//     are text.
//   - Module captions of the original hold HTML ("[<b>功能说明</b>]<br> ...").
//     They are not sanitised into HTML but reduced to plain text with a real
//     HTML tokenizer (tags dropped, <br> and block ends become line breaks,
//     script/style content dropped) and shown escaped; the stored caption is
//     kept unchanged for the legacy module_info endpoint. Parameter forms are
//     rendered only from the parsed schema, never from module_extend.
//   - CSP allows only this site's scripts and styles (no inline code at all),
//     no framing; nosniff; Referrer-Policy same-origin.
//   - Every non-safe request passes net/http's CrossOriginProtection
//     (Sec-Fetch-Site, then Origin vs Host; cfg.BaseURL's origin trusted),
//     and the session cookie is HttpOnly, SameSite=Strict, Secure when
//     configured. Scripts use bearer tokens (no cookie, no CSRF exposure).
//   - Sessions and API tokens are 32 random bytes; only their SHA-256 is
//     stored. Passwords are bcrypt. Logins are rate limited per client IP
//     (the TCP peer: forwarded headers are not trusted) and per user name.
//   - /healthz answers without login (for probes) and reveals no error
//     details. /metrics needs the metrics token or an admin's login, or is
//     served without login only on an address of its own (MetricsHandler).
//   - /static/ serves files only, never a directory listing.
//   - /omaudit/omaudit_pull/ (安全审计 ingest) answers without login: it
//     takes an ingest token and checks the sender's address (internal/omaudit).
//   - /autoadmin/module_run/ runs modules on a GET, which any site can make
//     a browser send with its cookies: it accepts API tokens only.
package web

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/apperr"
	"github.com/omserver/omserver-go/internal/facts"
	"github.com/omserver/omserver-go/internal/notify"
	"github.com/omserver/omserver-go/internal/omaudit"
	"github.com/omserver/omserver-go/internal/runs"
	"github.com/omserver/omserver-go/internal/schedule"
	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/trail"
	"github.com/omserver/omserver-go/web/static"
)

// MasterClient is how the web tier reaches the masters (satisfied by
// internal/relay's *Client): the runs service dispatches runs through it
// (see runs.Dispatcher), and /healthz asks it whether a master is usable.
type MasterClient interface {
	runs.Dispatcher
	Health(ctx context.Context) error
}

// Config is the web tier's configuration.
type Config struct {
	Listen         string        // host:port for HTTPServer; default 127.0.0.1:8080
	BaseURL        string        // public URL (https://ops.example.com); its origin is trusted for cross-origin checks
	SecureCookies  bool          // set the Secure flag on cookies (true behind HTTPS)
	SessionTTL     time.Duration // default 12h
	LoginRateBurst int           // login attempts allowed in a burst, per IP and per user name; default 5
	MaxBodyBytes   int64         // request body cap; default 1 MiB
	MasterName     string        // shown in logs and /healthz
	// MaxStreamsPerUser bounds the live event streams one user (all their
	// sessions and tokens) may hold open at once; default 32.
	MaxStreamsPerUser int
	// FactsModule is the module whose runs' outputs are host facts
	// (internal/facts); default 1008.
	FactsModule int64
	// Schedule tunes the scheduler (internal/schedule).
	Schedule schedule.Config
	// Trail configures the tamper-evident record: the masters' result
	// signing key, sealing and verification (internal/trail).
	Trail trail.Config
	// LargeRunHosts: a run on more hosts must be confirmed by typing its
	// host count (risky modules always); default 50.
	LargeRunHosts int
	// MetricsToken, when set, lets a scraper read /metrics with
	// "Authorization: Bearer <token>"; an admin's login always may. For
	// /metrics without login, serve MetricsHandler on an address of its own.
	MetricsToken string
	// Runs tunes how this tier follows runs (tier id for leases, lease
	// time, how long a master may stay unreachable); see runs.Config.
	Runs runs.Config
	// Notify tunes the notification outbox (internal/notify); its BaseURL
	// defaults to BaseURL.
	Notify notify.Config
	// OMAudit configures 安全审计: the collectors' ingest and retention.
	OMAudit omaudit.Config
	// ModuleRunTimeout bounds how long /autoadmin/module_run/ waits for its
	// run to end; default 10m.
	ModuleRunTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.LoginRateBurst <= 0 {
		c.LoginRateBurst = 5
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MasterName == "" {
		c.MasterName = "master"
	}
	if c.MaxStreamsPerUser <= 0 {
		c.MaxStreamsPerUser = 32
	}
	if c.LargeRunHosts <= 0 {
		c.LargeRunHosts = runs.DefaultLargeRunHosts
	}
	if c.ModuleRunTimeout <= 0 {
		c.ModuleRunTimeout = 10 * time.Minute
	}
}

// Server is the web tier. Create it with New.
type Server struct {
	cfg      Config
	st       *store.Store
	master   MasterClient
	log      zerolog.Logger
	metrics  *metrics
	pages    *pages
	i18n     *catalogues
	limiter  *loginLimiter
	runs     *runs.Service
	omaudit  *omaudit.Service
	notifier *notify.Notifier
	trail    *trail.Trail
	sched    *schedule.Scheduler
	streamN  streamCounter
	handler  http.Handler

	// base is the parent context of background work (session purging);
	// cancelled by Shutdown.
	base       context.Context
	cancelBase context.CancelFunc
	// streams ends the SSE streams (on Shutdown, or as soon as the
	// http.Server from HTTPServer starts shutting down).
	streams       context.Context
	cancelStreams context.CancelFunc
}

// New builds a server; it does not touch the network until Start.
func New(cfg Config, st *store.Store, master MasterClient, log zerolog.Logger) (*Server, error) {
	if st == nil {
		return nil, errors.New("web: a store is required")
	}
	if master == nil {
		return nil, errors.New("web: a master client is required")
	}
	cfg.setDefaults()
	pg, err := loadPages()
	if err != nil {
		return nil, err
	}
	cat, err := loadCatalogues(templateFiles)
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	streams, cancelStreams := context.WithCancel(context.Background())
	s := &Server{
		streams:       streams,
		cancelStreams: cancelStreams,
		cfg:           cfg,
		st:            st,
		master:        master,
		log:           log.With().Str("component", "web").Logger(),
		metrics:       newMetrics(),
		pages:         pg,
		i18n:          cat,
		limiter:       newLoginLimiter(cfg.LoginRateBurst),
		base:          base,
		cancelBase:    cancel,
	}
	if cfg.Notify.BaseURL == "" {
		cfg.Notify.BaseURL = cfg.BaseURL
	}
	s.notifier, err = notify.New(cfg.Notify, st, log)
	if err != nil {
		cancel()
		cancelStreams()
		return nil, err
	}
	s.trail = trail.New(cfg.Trail, st, log)
	rc := cfg.Runs
	rc.Registerer = s.metrics.reg
	rc.LargeRunHosts = cfg.LargeRunHosts
	rc.Observers = append(rc.Observers, s.trail, facts.NewCollector(cfg.FactsModule, st, log), s.notifier)
	rc.CheckResult = s.trail.CheckResult
	s.runs, err = runs.New(rc, st, master, log)
	if err != nil {
		cancel()
		cancelStreams()
		return nil, err
	}
	ocfg := cfg.OMAudit
	ocfg.Registerer = s.metrics.reg
	s.omaudit, err = omaudit.New(ocfg, st, log)
	if err != nil {
		cancel()
		cancelStreams()
		return nil, err
	}
	s.sched, err = schedule.New(cfg.Schedule, st, s.runs, log)
	if err != nil {
		cancel()
		cancelStreams()
		return nil, err
	}
	h, err := s.routes()
	if err != nil {
		cancel()
		cancelStreams()
		return nil, err
	}
	s.handler = h
	return s, nil
}

// Handler returns the whole router with its middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// Start does the start-up work: the runs service takes back the runs this
// tier followed before a restart (and any whose tier stopped) and resumes
// them from their masters' journals; expired sessions are purged now and
// hourly, and the 安全审计 retention purge starts (when a retention is
// set). It does not listen: serve Handler() yourself, or use HTTPServer().
func (s *Server) Start(ctx context.Context) error {
	if err := s.runs.Start(ctx); err != nil {
		return fmt.Errorf("web: %w", err)
	}
	s.purgeSessions(ctx)
	go s.notifier.Run(s.base)
	go s.trail.Run(s.base)
	go s.sched.Run(s.base)
	s.omaudit.Start(s.base)
	go func() {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-s.base.Done():
				return
			case <-t.C:
				s.purgeSessions(s.base)
			}
		}
	}()
	return nil
}

func (s *Server) purgeSessions(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if n, err := s.st.PurgeExpiredSessions(ctx); err != nil {
		s.log.Warn().Err(err).Msg("purge expired sessions")
	} else if n > 0 {
		s.log.Info().Int64("sessions", n).Msg("expired sessions purged")
	}
}

// HTTPServer returns an http.Server for cfg.Listen serving Handler(), with
// sane timeouts (no write timeout: event streams last as long as a run) and
// a shutdown hook that ends the event streams, so that its Shutdown does
// not wait for them. Runs are not affected: call s.Shutdown for those.
func (s *Server) HTTPServer() *http.Server {
	srv := &http.Server{
		Addr:              s.cfg.Listen,
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	srv.RegisterOnShutdown(s.EndStreams)
	return srv
}

// EndStreams closes every open SSE stream (browsers reconnect and replay);
// runs are not affected. Register it with http.Server.RegisterOnShutdown
// when serving Handler() with your own server, so that its Shutdown does
// not wait for streams of long runs.
func (s *Server) EndStreams() { s.cancelStreams() }

// Shutdown refuses new runs, stops following runs (they go on on their
// masters, and the next tier to start resumes them) and ends the event
// streams. It does not stop an http.Server: the caller owns that.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.runs.Shutdown(ctx)
	s.cancelStreams()
	s.cancelBase()
	return err
}

func (s *Server) routes() (http.Handler, error) {
	cop, err := s.crossOrigin()
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(s.observe, s.recoverer, securityHeaders, s.limitBody, cop)
	r.Use(s.authenticate)

	staticFS := http.FileServerFS(static.FS())
	r.Handle("/static/*", http.StripPrefix("/static/", s.noListing(cacheStatic(staticFS))))
	r.Get("/i18n/{file}", s.h(s.serveCatalogue))
	r.Get("/healthz", s.handleHealth)
	r.Handle("/metrics", s.protectMetrics(s.MetricsHandler()))
	r.Post("/lang", s.h(s.pageLang))
	r.Get("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

	r.Get("/login", s.h(s.pageLogin))
	r.Post("/login", s.h(s.pageLoginPost))
	r.Post("/logout", s.h(s.pageLogout))

	// Pages: a browser without a session is sent to the login page.
	r.Group(func(r chi.Router) {
		r.Use(s.require(roleViewer))
		r.Get("/", s.h(s.pageDashboard))
		r.Get("/runs", s.h(s.pageRuns))
		r.Get("/runs/{id}", s.h(s.pageRun))
		r.Get("/runs/{id}/drift", s.h(s.pageDrift))
		r.Get("/diff", s.h(s.pageDiff))
		r.Get("/facts", s.h(s.pageFacts))
		r.Get("/schedules", s.h(s.pageSchedules))
		r.Get("/schedules/{id}", s.h(s.pageSchedules))
		r.Group(func(r chi.Router) {
			r.Use(s.require(roleOperator))
			r.Post("/schedules", s.h(s.pageScheduleSave))
			r.Post("/schedules/{id}", s.h(s.pageScheduleSave))
			r.Post("/schedules/{id}/pause", s.h(s.pageScheduleEnabled(false)))
			r.Post("/schedules/{id}/resume", s.h(s.pageScheduleEnabled(true)))
			r.Post("/schedules/{id}/delete", s.h(s.pageScheduleDelete))
		})
		r.Get("/runs/{id}/output.txt", s.h(s.pageRunDownload("txt")))
		r.Get("/runs/{id}/output.json", s.h(s.pageRunDownload("json")))
		r.Get("/modules", s.h(s.pageModules))
		r.Get("/inventory", s.h(s.pageInventory))
		r.Get("/tokens", s.h(s.pageTokens))
		r.Post("/tokens", s.h(s.pageTokenCreate))
		r.Post("/tokens/{id}/delete", s.h(s.pageTokenDelete))
		r.Get("/account", s.h(s.pageAccount))
		r.Post("/account/password", s.h(s.pageAccountPassword))
		r.Get("/omaudit/", s.h(s.pageOmaudit))
		r.Get("/omaudit/omaudit_run/", s.h(s.legacyOmauditRun))
		r.Group(func(r chi.Router) {
			r.Use(s.require(roleAdmin))
			r.Get("/modules/new", s.h(s.pageModuleNew))
			r.Post("/modules/new", s.h(s.pageModuleSave))
			r.Get("/modules/{id}/edit", s.h(s.pageModuleEdit))
			r.Post("/modules/{id}/edit", s.h(s.pageModuleSave))
			r.Post("/modules/{id}/delete", s.h(s.pageModuleDelete))
			r.Post("/modules/{id}/import", s.h(s.pageModuleImport))
			r.Post("/inventory/fun-categs", s.h(s.inventoryForm("created", s.formFunCreate)))
			r.Post("/inventory/fun-categs/{id}", s.h(s.inventoryForm("saved", s.formFunRename)))
			r.Post("/inventory/fun-categs/{id}/delete", s.h(s.inventoryForm("deleted", s.deleteFunCateg)))
			r.Post("/inventory/app-categs", s.h(s.inventoryForm("created", s.formAppCreate)))
			r.Post("/inventory/app-categs/{id}", s.h(s.inventoryForm("saved", s.formAppUpdate)))
			r.Post("/inventory/app-categs/{id}/delete", s.h(s.inventoryForm("deleted", s.deleteAppCateg)))
			r.Post("/inventory/servers", s.h(s.pageServerSave))
			r.Post("/inventory/servers/delete", s.h(s.inventoryForm("deleted", s.formServerDelete)))
			r.Post("/inventory/import", s.h(s.pageImport))
			r.Get("/users", s.h(s.pageUsers))
			r.Post("/users", s.h(s.pageUserCreate))
			r.Post("/users/{id}", s.h(s.pageUserUpdate))
			r.Get("/audit", s.h(s.pageAudit))
			r.Post("/audit/verify", s.h(s.pageChainVerify))
			r.Get("/notifications", s.h(s.pageNotify))
			r.Post("/notifications", s.h(s.pageNotifySave))
			r.Post("/notifications/{id}", s.h(s.pageNotifySave))
			r.Post("/notifications/{id}/delete", s.h(s.pageNotifyDelete))
			r.Post("/notifications/{id}/test", s.h(s.pageNotifyTest))
			r.Get("/omaudit/tokens", s.h(s.pageIngestTokens))
			r.Post("/omaudit/tokens", s.h(s.pageIngestTokenCreate))
			r.Post("/omaudit/tokens/{id}/delete", s.h(s.pageIngestTokenDelete))
		})
	})
	r.Get("/omaudit", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/omaudit/", http.StatusMovedPermanently)
	})
	// 安全审计 ingest: no login; the collector's ingest token (see omaudit).
	r.Get("/omaudit/omaudit_pull/", s.h(s.omauditPull))

	// Legacy text endpoints, same login (session or token) as everything else.
	r.Route("/autoadmin", func(r chi.Router) {
		r.Use(s.require(roleViewer))
		r.Get("/server_fun_categ/", s.h(s.legacyFunCateg))
		r.Get("/server_app_categ/", s.h(s.legacyAppCateg))
		r.Get("/server_list/", s.h(s.legacyServerList))
		r.Get("/module_list/", s.h(s.legacyModuleList))
		r.Get("/module_info/", s.h(s.legacyModuleInfo))
		// Runs something on a GET: API tokens only, never a cookie.
		r.With(s.tokenOnly, s.require(roleOperator)).Get("/module_run/", s.h(s.legacyModuleRun))
	})

	r.Route("/api/v1", func(r chi.Router) {
		r.Use(s.require(roleViewer))
		r.Get("/me", s.h(s.apiMe))
		r.Put("/me/password", s.h(s.apiPasswordChange))
		r.Get("/fun-categs", s.h(s.apiFunCategs))
		r.Get("/app-categs", s.h(s.apiAppCategs))
		r.Get("/servers", s.h(s.apiServers))
		r.Get("/modules", s.h(s.apiModules))
		r.Get("/modules/{id}", s.h(s.apiModule))
		r.Get("/runs", s.h(s.apiRuns))
		r.Get("/runs/{id}", s.h(s.apiRun))
		r.Get("/runs/{id}/hosts", s.h(s.apiRunHosts))
		r.Get("/runs/{id}/events", s.h(s.apiRunEvents))
		r.Get("/runs/{id}/drift", s.h(s.apiDrift))
		r.Get("/diff", s.h(s.apiDiff))
		r.Get("/facts", s.h(s.apiFacts))
		r.Get("/facts/{ip}", s.h(s.apiServerFacts))
		r.Get("/schedules", s.h(s.apiSchedules))
		r.Get("/schedules/{id}", s.h(s.apiSchedule))
		r.Get("/schedules/{id}/history", s.h(s.apiScheduleHistory))
		r.Get("/tokens", s.h(s.apiTokens))
		r.Post("/tokens", s.h(s.apiTokenCreate))
		r.Delete("/tokens/{id}", s.h(s.apiTokenDelete))
		r.Get("/omaudit/history", s.h(s.apiOmauditHistory))
		r.Get("/omaudit/events", s.h(s.apiOmauditEvents))
		r.Group(func(r chi.Router) {
			r.Use(s.require(roleOperator))
			r.Post("/runs", s.h(s.apiRunCreate))
			r.Post("/runs/{id}/cancel", s.h(s.apiRunCancel))
			r.Post("/runs/{id}/continue", s.h(s.apiRunContinue))
			r.Post("/schedules", s.h(s.apiScheduleSave))
			r.Put("/schedules/{id}", s.h(s.apiScheduleSave))
			r.Delete("/schedules/{id}", s.h(s.apiScheduleDelete))
			r.Post("/schedules/{id}/pause", s.h(s.apiSchedulePause))
			r.Post("/schedules/{id}/resume", s.h(s.apiScheduleResume))
			r.Post("/runs/{id}/rerun", s.h(s.apiRunRerun))
		})
		r.Group(func(r chi.Router) {
			r.Use(s.require(roleAdmin))
			r.Post("/fun-categs", s.h(s.apiFunCreate))
			r.Put("/fun-categs/{id}", s.h(s.apiFunUpdate))
			r.Delete("/fun-categs/{id}", s.h(s.apiFunDelete))
			r.Post("/app-categs", s.h(s.apiAppCreate))
			r.Put("/app-categs/{id}", s.h(s.apiAppUpdate))
			r.Delete("/app-categs/{id}", s.h(s.apiAppDelete))
			r.Post("/servers", s.h(s.apiServerUpsert))
			r.Delete("/servers/{ip}", s.h(s.apiServerDelete))
			r.Post("/servers/import", s.h(s.apiServerImport))
			r.Post("/modules", s.h(s.apiModuleCreate))
			r.Put("/modules/{id}", s.h(s.apiModuleUpdate))
			r.Delete("/modules/{id}", s.h(s.apiModuleDelete))
			r.Get("/users", s.h(s.apiUsers))
			r.Post("/users", s.h(s.apiUserCreate))
			r.Put("/users/{id}", s.h(s.apiUserUpdate))
			r.Get("/audit", s.h(s.apiAudit))
			r.Get("/audit/chain", s.h(s.apiChain))
			r.Post("/audit/chain/verify", s.h(s.apiChainVerify))
			r.Get("/notify/channels", s.h(s.apiChannels))
			r.Post("/notify/channels", s.h(s.apiChannelSave))
			r.Put("/notify/channels/{id}", s.h(s.apiChannelSave))
			r.Delete("/notify/channels/{id}", s.h(s.apiChannelDelete))
			r.Post("/notify/channels/{id}/test", s.h(s.apiChannelTest))
			r.Get("/notify/channels/{id}/deliveries", s.h(s.apiChannelDeliveries))
			r.Get("/omaudit/tokens", s.h(s.apiIngestTokens))
			r.Post("/omaudit/tokens", s.h(s.apiIngestTokenCreate))
			r.Delete("/omaudit/tokens/{id}", s.h(s.apiIngestTokenDelete))
		})
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			s.fail(w, r, apperr.Errorf(apperr.NotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path))
		})
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			s.answerError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
		})
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		// A browser gets the site's error page (with its navigation), a
		// script plain text.
		s.fail(w, r, apperr.Errorf(apperr.NotFound, "Page not found: %s", clipRunes(r.URL.Path, 200)))
	})
	return r, nil
}

// noListing answers 404 for a directory under /static/ instead of the
// file server's listing of it.
func (s *Server) noListing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		if p == "" || strings.HasSuffix(p, "/") {
			s.fail(w, r, notFoundf("not found: /static/%s", clipRunes(p, 100)))
			return
		}
		if st, err := fs.Stat(static.FS(), p); err == nil && st.IsDir() {
			s.fail(w, r, notFoundf("not found: /static/%s", clipRunes(p, 100)))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// cacheStatic lets browsers keep the embedded assets for an hour; they change
// only with a new binary.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}
