package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/omserver/omserver-go/internal/config"
	"github.com/omserver/omserver-go/internal/demo"
)

// cmdDemo runs web and master in one process on loopback (what `make run`
// starts): embedded SQLite under ./data, local backend, original modules.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "web address (loopback only)")
	dataDir := fs.String("data", "data", "directory for the SQLite database and generated files")
	modulesDir := fs.String("modules", "", "module directory (default: the modules built into the binary, extracted afresh to DATA/modules at each start)")
	resetAdmin := fs.Bool("reset-admin", false, "give the admin user a new password and print it")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(config.LogConfig{Level: *logLevel, Format: "console"}, stderr)
	if err != nil {
		return err
	}
	inst, err := demo.Start(ctx, demo.Options{
		Listen: *listen, DataDir: *dataDir, ModulesDir: *modulesDir, ResetAdmin: *resetAdmin, Log: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nOMServer demo is running at %s\n", inst.URL)
	if inst.AdminPassword != "" {
		fmt.Fprintf(stdout, "  log in as %q with password %s  (printed once; keep it)\n", demo.AdminUser, inst.AdminPassword)
	} else {
		fmt.Fprintf(stdout, "  log in as %q with the password printed when %s was created\n", demo.AdminUser, *dataDir)
		fmt.Fprintf(stdout, "  (forgot it? restart with: go run ./cmd/omserver demo --reset-admin)\n")
	}
	fmt.Fprintf(stdout, "  then pick Linux.Web -> www.domain.com -> 127.0.0.1 (localhost) -> 查看系统版本 (1003) -> Run\n")
	fmt.Fprintf(stdout, "  Ctrl-C stops it.\n\n")

	// SIGHUP reloads the modules, as for `omserver master`.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case runErr = <-inst.Err():
			break wait
		case <-hup:
			if err := inst.ReloadModules(); err != nil { // the master logs a success itself
				log.Error().Err(err).Msg("module reload refused; the loaded modules stay")
			}
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := inst.Close(stopCtx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}
