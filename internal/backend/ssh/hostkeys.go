package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys checks server host keys against a known_hosts file under one
// policy. The file is parsed once and parsed again only when it changes
// (its device, inode, size, modification or change time differ), so keys
// added by an operator (or by accept-new) are seen without a restart, and
// a run on a fleet costs one stat per host instead of one parse of a file
// that lists the whole fleet.
type hostKeys struct {
	policy string
	file   string
	log    zerolog.Logger
	// mu guards the cache, and keeps readers from seeing a half-appended
	// line: only accept-new writes, and only for a host seen for the
	// first time.
	mu     sync.RWMutex
	cached *knownFile
	stamp  fileStamp
	parses int // how many times the file was parsed, for tests
}

// knownFile is one parse of the known_hosts file.
type knownFile struct {
	check gossh.HostKeyCallback
	// revocations says the file has @revoked lines. Without any, a plain
	// key is accepted exactly when it is one of the keys on file for the
	// host, which the algorithms probe of the same connection already
	// listed: the check then needs no second pass over the file (a pass
	// is a scan of every line, so a fleet-sized file made it quadratic).
	revocations bool
}

// fileStamp identifies one version of a file.
type fileStamp struct {
	exists       bool
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

func stampOf(path string) (fileStamp, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return fileStamp{}, nil
		}
		return fileStamp{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return fileStamp{exists: true, dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}, nil
}

// load returns the checker of the file as it is now, parsing it only when
// it changed since the last parse.
func (h *hostKeys) load() (*knownFile, error) {
	stamp, err := stampOf(h.file)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts %s: %w", h.file, err)
	}
	h.mu.RLock()
	cb, same := h.cached, h.cached != nil && h.stamp == stamp
	h.mu.RUnlock()
	if same {
		return cb, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.loadLocked()
}

// loadLocked parses the file unless the cache matches it; h.mu is held
// for writing.
func (h *hostKeys) loadLocked() (*knownFile, error) {
	stamp, err := stampOf(h.file)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts %s: %w", h.file, err)
	}
	if h.cached != nil && h.stamp == stamp {
		return h.cached, nil
	}
	kf := &knownFile{}
	switch {
	case !stamp.exists && h.policy == PolicyAcceptNew:
		// Created on the first new host.
		kf.check, err = knownhosts.New()
	default:
		var data []byte
		if data, err = os.ReadFile(h.file); err == nil {
			kf.revocations = bytes.Contains(data, []byte("@revoked"))
			kf.check, err = knownhosts.New(h.file)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read known_hosts %s: %w", h.file, err)
	}
	h.cached, h.stamp = kf, stamp
	h.parses++
	return kf, nil
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
	want, probed := probe(known, hostname, remote)
	check := func(hostname string, remote net.Addr, key gossh.PublicKey) error {
		var err error
		if _, cert := key.(*gossh.Certificate); probed && !cert && !known.revocations {
			err = decide(want, key)
		} else {
			err = known.check(hostname, remote, key)
		}
		err = h.judge(err, hostname, remote, key)
		*found = err
		return err
	}
	return check, algorithmsOf(want), nil
}

// decide is knownhosts' decision for a plain key that is not revoked: it
// is accepted when it is one of the keys on file for the host (want),
// else refused with those keys (none: an unknown host).
func decide(want []knownhosts.KnownKey, key gossh.PublicKey) error {
	blob := key.Marshal()
	for _, w := range want {
		if bytes.Equal(w.Key.Marshal(), blob) {
			return nil
		}
	}
	return &knownhosts.KeyError{Want: want}
}

// recheck applies the file as it is now, and the policy, to the key a
// pooled connection's server showed at its handshake.
func (h *hostKeys) recheck(hostname string, remote net.Addr, key gossh.PublicKey) error {
	if h.policy == PolicyInsecureIgnore {
		return nil
	}
	if key == nil {
		return errors.New("no host key recorded for the connection")
	}
	known, err := h.load()
	if err != nil {
		return err
	}
	return h.judge(known.check(hostname, remote, key), hostname, remote, key)
}

// judge applies the policy to the file's verdict on one presented key.
func (h *hostKeys) judge(err error, hostname string, remote net.Addr, key gossh.PublicKey) error {
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
	err = known.check(hostname, remote, key)
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

// probe lists the keys on file for the host: it asks the checker about a
// key no host has and reads the known keys from the refusal. ok is false
// when the refusal was not a KeyError (then nothing is known).
func probe(known *knownFile, hostname string, remote net.Addr) (want []knownhosts.KnownKey, ok bool) {
	var keyErr *knownhosts.KeyError
	if err := known.check(hostname, remote, probeKey{}); !errors.As(err, &keyErr) {
		return nil, false
	}
	return keyErr.Want, true
}

// algorithmsOf returns the host key algorithms matching the key types on
// file for the host (nil when none, letting the client use its defaults).
func algorithmsOf(want []knownhosts.KnownKey) []string {
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
	for _, k := range want {
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
