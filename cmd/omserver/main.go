// Command omserver is the one binary of OMServer-Go: the web tier, the master
// daemon, the zero-setup demo and the administrative commands.
//
//	omserver demo [--listen 127.0.0.1:8080] [--data ./data]
//	omserver web --config FILE
//	omserver master --config FILE [--insecure-relay]
//	omserver migrate --config FILE
//	omserver user add|passwd|list|disable --config FILE [--role ROLE] NAME
//	omserver module check DIR
//	omserver audit verify --config FILE [--public-key KEY] [--require-signed]
//	omserver audit keygen --out FILE
//	omserver version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `omserver: fleet operations platform (a Go port of OMServer)

Usage:
  omserver demo    [--listen ADDR] [--data DIR] [--modules DIR]   web + master in one process, embedded SQLite
  omserver web     --config FILE                                 the web tier (dashboard, JSON API)
  omserver master  --config FILE [--insecure-relay]              the master daemon (modules, backends)
  omserver migrate --config FILE                                 apply database migrations and exit
  omserver user    add|passwd|list|disable --config FILE [--role admin|operator|viewer] NAME
  omserver module  check DIR                                     validate module files offline
  omserver audit   verify --config FILE [--public-key KEY]       check the tamper-evident record; names the first broken row
  omserver audit   keygen --out FILE                             make a master's result-signing key
  omserver version

Secrets come from the environment: OMSERVER_SECRET_KEY, OMSERVER_RELAY_PASSWORD,
OMSERVER_DB_DSN, OMSERVER_SALT_PASSWORD. See etc/omserver.example.yaml.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintln(os.Stderr, "omserver:", err)
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "omserver:", err)
		os.Exit(1)
	}
}

// usageError is a command line that does not parse.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "web":
		return cmdWeb(ctx, rest, stderr)
	case "master":
		return cmdMaster(ctx, rest, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, stdout, stderr)
	case "user":
		return cmdUser(ctx, rest, stdin, stdout, stderr)
	case "module":
		return cmdModule(rest, stdout)
	case "audit":
		return cmdAudit(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "omserver", version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}
