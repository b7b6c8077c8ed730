package main

import (
	"fmt"
	"io"

	"github.com/omserver/omserver-go/internal/module"
)

// cmdModule implements `omserver module check DIR`: the same validation the
// master does at start and on SIGHUP, offline.
func cmdModule(args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "check" {
		return usageError{"usage: omserver module check DIR"}
	}
	dir := args[1]
	if errs := module.CheckDir(dir); len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(stdout, err)
		}
		return fmt.Errorf("%s: %d problem(s) found", dir, len(errs))
	}
	specs, err := module.LoadDir(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d module(s) OK\n", dir, len(specs))
	return nil
}
