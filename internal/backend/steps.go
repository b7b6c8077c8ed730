package backend

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ValidateSteps checks what every backend needs of the steps before it
// contacts a host: at least one step, each a copy or a non-empty command,
// no NUL byte in a command (no shell or wire format can carry it), copy
// paths absolute and clean on both sides, and a mode of permission bits
// only (no setuid from a module file). Backends add their own checks.
func ValidateSteps(steps []Step) error {
	if len(steps) == 0 {
		return errors.New("no steps to run")
	}
	for i, s := range steps {
		if s.Copy == nil && strings.TrimSpace(s.Command) == "" {
			return fmt.Errorf("step %d: neither a copy nor a command", i+1)
		}
		if strings.ContainsRune(s.Command, 0) {
			return fmt.Errorf("step %d: command holds a NUL byte", i+1)
		}
		if c := s.Copy; c != nil {
			if !filepath.IsAbs(c.Src) || filepath.Clean(c.Src) != c.Src {
				return fmt.Errorf("step %d: copy source %q is not a clean absolute path", i+1, c.Src)
			}
			if !path.IsAbs(c.Dest) || path.Clean(c.Dest) != c.Dest || c.Dest == "/" {
				return fmt.Errorf("step %d: copy destination %q is not a clean absolute file path", i+1, c.Dest)
			}
			if c.Mode&^os.ModePerm != 0 {
				return fmt.Errorf("step %d: copy mode %v has bits beyond permissions (only permission bits are allowed)", i+1, c.Mode)
			}
		}
	}
	return nil
}
