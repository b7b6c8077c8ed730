package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newEd25519(t testing.TB) gossh.PublicKey {
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

// BenchmarkHostKeyCheck is the master's host key work for one host when
// known_hosts lists the whole fleet: the callback (with the algorithms
// probe) and the check of the presented key.
func BenchmarkHostKeyCheck(b *testing.B) {
	for _, lines := range []int{500, 5000} {
		b.Run(strconv.Itoa(lines), func(b *testing.B) {
			key := newEd25519(b)
			var kh strings.Builder
			for i := 0; i < lines; i++ {
				kh.WriteString(knownhosts.Line([]string{fmt.Sprintf("127.0.%d.%d:2222", 1+i/250, 1+i%250)}, key) + "\n")
			}
			file := filepath.Join(b.TempDir(), "known_hosts")
			if err := os.WriteFile(file, []byte(kh.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			h := &hostKeys{policy: PolicyStrict, file: file, log: zerolog.Nop()}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n := i % lines
				host := fmt.Sprintf("127.0.%d.%d:2222", 1+n/250, 1+n%250)
				remote := &net.TCPAddr{IP: net.ParseIP(host[:len(host)-5]), Port: 2222}
				var found error
				cb, _, err := h.callback(host, remote, &found)
				if err != nil {
					b.Fatal(err)
				}
				if err := cb(host, remote, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The check that reuses the algorithms probe's key list decides exactly
// as x/crypto's knownhosts does, with and without @revoked lines in the
// file, for known, other, unknown and wildcard-matched hosts.
func TestHostKeyDecisionsMatchKnownhosts(t *testing.T) {
	keyA, keyA2, keyB, keyW, keyR := newEd25519(t), newEd25519(t), newEd25519(t), newEd25519(t), newEd25519(t)
	base := knownhosts.Line([]string{"[10.0.0.1]:2222"}, keyA) + "\n" +
		knownhosts.Line([]string{"[10.0.0.1]:2222", "web1"}, keyA2) + "\n" +
		knownhosts.Line([]string{"10.0.0.2"}, keyB) + "\n" +
		"*.example.com " + string(gossh.MarshalAuthorizedKey(keyW))
	for _, file := range []struct{ name, data string }{
		{"no revocations", base},
		{"revocations", base + "@revoked * " + string(gossh.MarshalAuthorizedKey(keyA2)) + "@revoked * " + string(gossh.MarshalAuthorizedKey(keyR))},
	} {
		t.Run(file.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(path, []byte(file.data), 0o600); err != nil {
				t.Fatal(err)
			}
			ref, err := knownhosts.New(path)
			if err != nil {
				t.Fatal(err)
			}
			h := &hostKeys{policy: PolicyStrict, file: path, log: zerolog.Nop()}
			for _, host := range []string{"10.0.0.1:2222", "10.0.0.2:22", "10.0.0.3:22", "db.example.com:22", "web1:22"} {
				remote := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 22}
				for name, key := range map[string]gossh.PublicKey{"A": keyA, "A2": keyA2, "B": keyB, "W": keyW, "R": keyR} {
					var found error
					cb, _, err := h.callback(host, remote, &found)
					if err != nil {
						t.Fatal(err)
					}
					got, want := cb(host, remote, key), ref(host, remote, key)
					if (got == nil) != (want == nil) {
						t.Errorf("%s with key %s: got %v, knownhosts says %v", host, name, got, want)
					}
				}
			}
		})
	}
}
