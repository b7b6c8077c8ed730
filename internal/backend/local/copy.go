package local

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/omserver/omserver-go/internal/backend"
)

// copyFile copies c.Src to c.Dest with c.Mode, through a temporary file in
// the destination directory renamed into place, so readers never see a
// half-written file. The destination directory must exist.
func copyFile(c *backend.Copy) error {
	in, err := os.Open(c.Src)
	if err != nil {
		return err
	}
	defer in.Close()
	dir, base := filepath.Split(c.Dest)
	tmp, err := os.CreateTemp(dir, "."+base+".omserver-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, in); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := tmp.Chmod(c.Mode.Perm()); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), c.Dest); err != nil {
		return err
	}
	ok = true
	return nil
}
