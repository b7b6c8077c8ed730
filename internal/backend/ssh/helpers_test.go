package ssh

import (
	"os"
	"syscall"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/omserver/omserver-go/internal/testutil/sshdtest"
)

func marshal(k gossh.PublicKey) []byte { return gossh.MarshalAuthorizedKey(k) }

// ownerOf returns the uid and gid owning path.
func ownerOf(t *testing.T, path string) (int, int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

// writeKey writes a fresh unencrypted private key and returns its path.
func writeKey(t *testing.T) string {
	t.Helper()
	path, _ := sshdtest.NewKeyFile(t, t.TempDir())
	return path
}
