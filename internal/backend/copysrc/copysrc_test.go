package copysrc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/backend"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	tests := []struct {
		name    string
		c       backend.Copy
		limit   int64
		errPart string
	}{
		{"ok", backend.Copy{Src: small, Dest: "/etc/app.conf", Mode: 0o644}, 10, ""},
		{"missing", backend.Copy{Src: filepath.Join(dir, "none"), Dest: "/x", Mode: 0o644}, 10, "no such file"},
		{"directory", backend.Copy{Src: dir, Dest: "/x", Mode: 0o644}, 10, "not a regular file"},
		{"too big", backend.Copy{Src: small, Dest: "/x", Mode: 0o644}, 9, "more than the limit of 9"},
		{"fifo", backend.Copy{Src: fifo, Dest: "/x", Mode: 0o644}, 10, "not a regular file"},
	}
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Read(tc.c.Src, tc.limit)
			if tc.errPart == "" {
				if err != nil || !bytes.Equal(data, []byte("0123456789")) {
					t.Fatalf("Read = %q, %v", data, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errPart) || data != nil {
				t.Fatalf("Read = %q, %v; want error with %q", data, err, tc.errPart)
			}
		})
	}
}
