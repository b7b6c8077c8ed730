package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newEd25519(t *testing.T) gossh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The known_hosts file is parsed once, and again only when it changes:
// rewritten in place (same size, same inode), replaced by a rename, or
// removed.
func TestKnownHostsParsedOnceAndReloadedOnChange(t *testing.T) {
	file := filepath.Join(t.TempDir(), "known_hosts")
	const host = "127.0.0.2:22"
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 22}
	keyA, keyB := newEd25519(t), newEd25519(t)
	write := func(k gossh.PublicKey) {
		t.Helper()
		if err := os.WriteFile(file, []byte(knownhosts.Line([]string{host}, k)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hk := &hostKeys{policy: PolicyStrict, file: file, log: zerolog.Nop()}
	check := func(k gossh.PublicKey) error {
		t.Helper()
		var found error
		cb, _, err := hk.callback(host, remote, &found)
		if err != nil {
			return err
		}
		return cb(host, remote, k)
	}
	write(keyA)
	for i := 0; i < 50; i++ {
		if err := check(keyA); err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
	}
	if hk.parses != 1 {
		t.Fatalf("parsed %d times for 50 unchanged checks, want 1", hk.parses)
	}

	write(keyB) // in place: same size, same inode
	if err := check(keyA); err == nil || !strings.Contains(err.Error(), "HOST KEY MISMATCH") {
		t.Fatalf("after the key changed on file: %v", err)
	}
	if hk.parses != 2 {
		t.Fatalf("parses = %d, want 2", hk.parses)
	}

	tmp := file + ".new" // replaced by a rename: a new inode
	if err := os.WriteFile(tmp, []byte(knownhosts.Line([]string{host}, keyA)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	if err := check(keyA); err != nil {
		t.Fatalf("after the rename: %v", err)
	}

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := check(keyA); err == nil || !strings.Contains(err.Error(), "known_hosts") {
		t.Fatalf("strict with the file gone: %v", err)
	}
	if hk.parses != 3 {
		t.Fatalf("parses = %d, want 3", hk.parses)
	}
}
