// Package copysrc reads the master-side file of a copy step for the backends
// that send the file's bytes inside one request (salt, func) instead of
// streaming them. The step itself (a clean absolute destination, permission
// bits only) was checked by the step runner before any host was contacted.
package copysrc

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// Read returns the content of src, a regular file of at most limit bytes.
func Read(src string, limit int64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO put in place of the file must not hang
	// the run; for a regular file the flag changes nothing.
	f, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("copy source: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("copy source: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("copy source %s is not a regular file", src)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("copy source %s is %d bytes, more than the limit of %d", src, st.Size(), limit)
	}
	// The file may grow between Stat and reading; never hold more than limit.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("copy source %s: %w", src, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("copy source %s grew beyond the limit of %d bytes", src, limit)
	}
	return data, nil
}
