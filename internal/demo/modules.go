package demo

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/omserver/omserver-go/modules"
)

// extractModules writes the module files embedded in the binary to dir,
// replacing what a previous demo left there.
func extractModules(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("demo: clearing %s: %w", dir, err)
	}
	src := modules.FS()
	err := fs.WalkDir(src, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := fs.ReadFile(src, path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		return fmt.Errorf("demo: extracting modules to %s: %w", dir, err)
	}
	return nil
}
