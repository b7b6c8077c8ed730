package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog"

	"github.com/omserver/omserver-go/internal/config"
	"github.com/omserver/omserver-go/internal/ledger"
	"github.com/omserver/omserver-go/internal/trail"
)

// errChainBroken is a verification that found a broken row (exit status 1).
var errChainBroken = errors.New("the tamper-evident record does not verify")

// cmdAudit: `omserver audit verify` checks the hash chains (and the
// masters' result signatures) and names the first broken row; `omserver
// audit keygen` makes a master's result-signing key.
func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"audit: verify or keygen"}
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, args[1:], stdout, stderr)
	case "keygen":
		return auditKeygen(args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("audit: unknown subcommand %q (verify or keygen)", args[0])}
}

func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit verify", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	pub := fs.String("public-key", "", "the masters' result-signing public key (base64); default web.result_public_key")
	require := fs.Bool("require-signed", false, "an unsigned result is a break (default web.require_signed_results)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *pub != "" {
		cfg.Web.ResultPublicKey = *pub
	}
	if *require {
		cfg.Web.RequireSignedResults = true
	}
	tc, err := trailConfig(cfg.Web)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.Web.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	o := trail.New(tc, st, zerolog.New(stderr).With().Timestamp().Logger()).Verify(ctx)
	if o.Error != "" {
		return fmt.Errorf("audit verify: %s", o.Error)
	}
	for _, c := range o.Chains {
		fmt.Fprintf(stdout, "%s chain: %d rows checked, head seq %d hash %s", c.Chain, c.Rows, c.HeadSeq, c.HeadHash)
		if c.Legacy > 0 {
			fmt.Fprintf(stdout, ", %d rows from before the chain began", c.Legacy)
		}
		if c.Chain == ledger.ChainResults {
			if tc.PublicKey != nil {
				fmt.Fprintf(stdout, ", %d signatures verified, %d unsigned", c.Signed, c.Unsigned)
			}
			if c.Unsealed > 0 {
				fmt.Fprintf(stdout, ", %d results of finished runs not sealed yet (the web tier seals them within a minute)", c.Unsealed)
			}
		}
		fmt.Fprintln(stdout)
		if c.Break != nil {
			fmt.Fprintf(stdout, "BROKEN: %s\n", c.Break)
		}
	}
	if !o.OK {
		return errChainBroken
	}
	fmt.Fprintln(stdout, "OK: the record verifies")
	return nil
}

// trailConfig reads the web tier's signature settings.
func trailConfig(wc config.WebConfig) (trail.Config, error) {
	var tc trail.Config
	if wc.ResultPublicKey != "" {
		pk, err := ledger.ParsePublicKey(wc.ResultPublicKey)
		if err != nil {
			return tc, fmt.Errorf("web.result_public_key: %w", err)
		}
		tc.PublicKey = pk
	}
	if wc.RequireSignedResults && tc.PublicKey == nil {
		return tc, errors.New("web.require_signed_results needs web.result_public_key")
	}
	tc.RequireSigned = wc.RequireSignedResults
	return tc, nil
}

func auditKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit keygen", stderr)
	out := fs.String("out", "", "file to write the private key to (created with mode 0600; must not exist)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"audit keygen: --out FILE is required"}
	}
	priv, pub, err := ledger.GenerateKey()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit keygen: %w", err)
	}
	if _, err := f.WriteString(priv + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("audit keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit keygen: %w", err)
	}
	fmt.Fprintf(stdout, "private key written to %s (master.result_signing_key)\npublic key (web.result_public_key): %s\n", *out, pub)
	return nil
}
