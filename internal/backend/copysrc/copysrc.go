// Package copysrc reads the master-side file of a copy step for the backends
// that send the file's bytes inside one request (salt, func) instead of
// streaming them, after checking the step the same way for both.
package copysrc

import (
	"fmt"
	"io"
	"os"
	"path"
	"syscall"

	"github.com/omserver/omserver-go/internal/backend"
)

// Read checks c (a clean absolute destination, permission bits only) and
// returns the content of c.Src, a regular file of at most limit bytes.
func Read(c *backend.Copy, limit int64) ([]byte, error) {
	if !path.IsAbs(c.Dest) || path.Clean(c.Dest) != c.Dest || c.Dest == "/" {
		return nil, fmt.Errorf("copy destination %q must be a clean absolute file path", c.Dest)
	}
	if c.Mode&^os.ModePerm != 0 {
		return nil, fmt.Errorf("copy mode %v has bits beyond permissions", c.Mode)
	}
	// O_NONBLOCK: opening a FIFO put in place of the file must not hang
	// the run; for a regular file the flag changes nothing.
	f, err := os.OpenFile(c.Src, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("copy source: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("copy source: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("copy source %s is not a regular file", c.Src)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("copy source %s is %d bytes, more than the limit of %d", c.Src, st.Size(), limit)
	}
	// The file may grow between Stat and reading; never hold more than limit.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("copy source %s: %w", c.Src, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("copy source %s grew beyond the limit of %d bytes", c.Src, limit)
	}
	return data, nil
}
