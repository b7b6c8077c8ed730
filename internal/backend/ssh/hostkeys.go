package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys checks server host keys against a known_hosts file under one
// policy. The file is read at each connection, so keys added by an operator
// (or by accept-new) are seen without a restart.
type hostKeys struct {
	policy string
	file   string
	log    zerolog.Logger
	// mu keeps readers from seeing a half-appended line; only accept-new
	// writes, and only for a host seen for the first time.
	mu sync.RWMutex
}

// load parses the known_hosts file. A missing file is empty under
// accept-new (it is created on the first new host).
func (h *hostKeys) load() (gossh.HostKeyCallback, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.loadLocked()
}

func (h *hostKeys) loadLocked() (gossh.HostKeyCallback, error) {
	cb, err := knownhosts.New(h.file)
	if errors.Is(err, fs.ErrNotExist) && h.policy == PolicyAcceptNew {
		return knownhosts.New()
	}
	if err != nil {
		return nil, fmt.Errorf("read known_hosts %s: %w", h.file, err)
	}
	return cb, nil
}

// callback returns the host key check for one connection and the host key
// algorithms to ask the server for: the types known for this host, so that
// a server with several keys shows the one on file instead of one that
// would look like a changed key. found receives the check's own error, which
// the handshake would otherwise bury under its own wording.
func (h *hostKeys) callback(hostname string, remote net.Addr, found *error) (gossh.HostKeyCallback, []string, error) {
	if h.policy == PolicyInsecureIgnore {
		return gossh.InsecureIgnoreHostKey(), nil, nil
	}
	known, err := h.load()
	if err != nil {
		return nil, nil, err
	}
	check := func(hostname string, remote net.Addr, key gossh.PublicKey) error {
		err := h.check(known, hostname, remote, key)
		*found = err
		return err
	}
	return check, knownAlgorithms(known, hostname, remote), nil
}

// check applies the policy to one presented key.
func (h *hostKeys) check(known gossh.HostKeyCallback, hostname string, remote net.Addr, key gossh.PublicKey) error {
	err := known(hostname, remote, key)
	if err == nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	if errors.As(err, &keyErr) {
		if len(keyErr.Want) > 0 {
			return mismatchError(hostname, key, keyErr.Want)
		}
		if h.policy == PolicyAcceptNew {
			return h.addNew(hostname, remote, key)
		}
		return fmt.Errorf("unknown host key for %s (not in known_hosts; add it or use accept-new)", hostname)
	}
	var revoked *knownhosts.RevokedError
	if errors.As(err, &revoked) {
		return fmt.Errorf("host key for %s is revoked (%s:%d)", hostname, revoked.Revoked.Filename, revoked.Revoked.Line)
	}
	return fmt.Errorf("check host key for %s: %w", hostname, err)
}

// addNew records key for hostname, unless another connection did so (or
// recorded a different key) since this one read the file.
func (h *hostKeys) addNew(hostname string, remote net.Addr, key gossh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	known, err := h.loadLocked()
	if err != nil {
		return err
	}
	err = known(hostname, remote, key)
	var keyErr *knownhosts.KeyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		return mismatchError(hostname, key, keyErr.Want)
	case !errors.As(err, &keyErr):
		return fmt.Errorf("check host key for %s: %w", hostname, err)
	}

	f, err := os.OpenFile(h.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("accept-new: open known_hosts: %w", err)
	}
	line := knownhosts.Line([]string{hostname}, key) + "\n"
	if needsNewline(h.file) {
		line = "\n" + line
	}
	_, werr := f.WriteString(line)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("accept-new: append to known_hosts: %w", err)
	}
	h.log.Info().Str("host", hostname).Str("key", gossh.FingerprintSHA256(key)).
		Str("known_hosts", h.file).Msg("accept-new: recorded the key of a new host")
	return nil
}

// needsNewline reports whether the file is non-empty and lacks a final
// newline (hand-edited files), so an appended line would be glued on.
func needsNewline(path string) bool {
	data, err := os.ReadFile(path)
	return err == nil && len(data) > 0 && !bytes.HasSuffix(data, []byte("\n"))
}

func mismatchError(hostname string, key gossh.PublicKey, want []knownhosts.KnownKey) error {
	w := want[0]
	return fmt.Errorf("HOST KEY MISMATCH for %s: it offered %s %s but %s:%d has %s %s; refusing to connect (possible man-in-the-middle, or the host was reinstalled: fix known_hosts)",
		hostname, key.Type(), gossh.FingerprintSHA256(key), w.Filename, w.Line, w.Key.Type(), gossh.FingerprintSHA256(w.Key))
}

// knownAlgorithms returns the host key algorithms matching the key types on
// file for the host (nil when none, letting the client use its defaults). It
// asks the checker about a key no host has and reads the known keys from the
// refusal.
func knownAlgorithms(known gossh.HostKeyCallback, hostname string, remote net.Addr) []string {
	var keyErr *knownhosts.KeyError
	if err := known(hostname, remote, probeKey{}); !errors.As(err, &keyErr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, s := range a {
			if !seen[s] {
				seen[s] = true
				algos = append(algos, s)
			}
		}
	}
	for _, k := range keyErr.Want {
		switch t := k.Key.Type(); t {
		case gossh.KeyAlgoRSA:
			add(gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

// probeKey is a public key that matches nothing on file.
type probeKey struct{}

func (probeKey) Type() string    { return "omserver-probe" }
func (probeKey) Marshal() []byte { return []byte("omserver-probe") }
func (probeKey) Verify([]byte, *gossh.Signature) error {
	return errors.New("probe key verifies nothing")
}
