package backend

import (
	"fmt"
	"io"
)

// ReadBody reads all of r, up to limit bytes: a peer's answer (salt-api,
// funcd) that is longer is refused rather than held in memory.
func ReadBody(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than the limit of %d bytes", limit)
	}
	return data, nil
}
