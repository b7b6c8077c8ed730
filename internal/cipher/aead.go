package cipher

import (
	stdcipher "crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// Envelope layout of the AEAD scheme:
//
//	"omv2." + base64url-nopad( header || ciphertext+tag )
//	header = version(1) || issued unix seconds(8, big endian) || salt(16) || nonce(24)
//
// The prefix and the whole header are the AEAD associated data, so the
// version, issue time, salt and nonce cannot be changed without failing
// authentication. The salt is also the message id for replay detection.
const (
	aeadPrefixStem = "omv"
	// AEADPrefix starts every AEAD message.
	AEADPrefix  = aeadPrefixStem + "2."
	aeadVersion = 2

	aeadSaltSize   = 16
	aeadNonceSize  = chacha20poly1305.NonceSizeX
	aeadHeaderSize = 1 + 8 + aeadSaltSize + aeadNonceSize
	// AEADOverhead is the number of bytes an AEAD message adds to the
	// plaintext before base64 and the prefix.
	AEADOverhead = aeadHeaderSize + chacha20poly1305.Overhead

	// hkdfInfo binds derived keys to this scheme and version.
	hkdfInfo = "omserver-go cipher v2 xchacha20poly1305"
)

// AEAD is the default, authenticated scheme (see the package doc). Safe for
// concurrent use; each AEAD has its own replay guard, so one AEAD value
// should open all messages of a given stream.
type AEAD struct {
	secret []byte
	now    func() time.Time
	guard  *ReplayGuard
	rand   io.Reader // crypto/rand.Reader; replaced only by tests
}

// AEADOption configures NewAEAD.
type AEADOption func(*aeadConfig)

type aeadConfig struct {
	window     time.Duration
	maxEntries int
	now        func() time.Time
}

// WithReplayWindow sets how far a message's issue time may be from now,
// either way (default DefaultReplayWindow). Non-positive keeps the default.
func WithReplayWindow(d time.Duration) AEADOption {
	return func(c *aeadConfig) { c.window = d }
}

// WithReplayMaxEntries caps the number of message ids remembered for replay
// detection (default DefaultReplayMaxEntries). Non-positive keeps the default.
func WithReplayMaxEntries(n int) AEADOption {
	return func(c *aeadConfig) { c.maxEntries = n }
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) AEADOption {
	return func(c *aeadConfig) {
		if now != nil {
			c.now = now
		}
	}
}

// NewAEAD returns the authenticated codec keyed by secretKey. New checks
// that the key is not empty; NewAEAD trusts its caller.
func NewAEAD(secretKey string, opts ...AEADOption) *AEAD {
	cfg := aeadConfig{now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	return &AEAD{
		secret: []byte(secretKey),
		now:    cfg.now,
		guard:  NewReplayGuard(cfg.window, cfg.maxEntries),
		rand:   rand.Reader,
	}
}

// Scheme returns "aead".
func (a *AEAD) Scheme() string { return SchemeAEAD }

// Seal encrypts plaintext under a fresh salt and nonce, stamped with the
// current time.
func (a *AEAD) Seal(plaintext []byte) (string, error) {
	header := make([]byte, aeadHeaderSize, aeadHeaderSize+len(plaintext)+chacha20poly1305.Overhead)
	header[0] = aeadVersion
	binary.BigEndian.PutUint64(header[1:9], uint64(a.now().Unix()))
	if _, err := io.ReadFull(a.rand, header[9:]); err != nil {
		return "", fmt.Errorf("cipher: reading random salt and nonce: %w", err)
	}
	salt, nonce := header[9:9+aeadSaltSize], header[9+aeadSaltSize:]
	aead, err := a.cipherFor(salt)
	if err != nil {
		return "", err
	}
	sealed := aead.Seal(header, nonce, plaintext, associatedData(header))
	return AEADPrefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Open authenticates and decrypts message, then checks its issue time and
// that it was not opened before. Errors wrap ErrMalformed, ErrVersion,
// ErrAuth, ErrExpired, ErrReplay or ErrReplayCacheFull; the plaintext is nil
// whenever the error is not.
func (a *AEAD) Open(message string) ([]byte, error) {
	raw, err := parseEnvelope(message)
	if err != nil {
		return nil, err
	}
	header := raw[:aeadHeaderSize]
	salt, nonce := header[9:9+aeadSaltSize], header[9+aeadSaltSize:]
	aead, err := a.cipherFor(salt)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nonce, raw[aeadHeaderSize:], associatedData(header))
	if err != nil {
		return nil, ErrAuth
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(header[1:9])), 0)
	if err := a.guard.Check(string(salt), issued, a.now()); err != nil {
		return nil, err
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// parseEnvelope checks the prefix, base64 and length and version of an AEAD
// message and returns its raw bytes (header || ciphertext+tag).
func parseEnvelope(message string) ([]byte, error) {
	if !strings.HasPrefix(message, AEADPrefix) {
		return nil, classifyForeign(message)
	}
	body := message[len(AEADPrefix):]
	// The base64 decoder skips CR and LF; refuse them so that exactly one
	// text form of a message is accepted.
	if strings.ContainsAny(body, "\r\n") {
		return nil, fmt.Errorf("%w: line breaks inside the message", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: not valid base64url: %v", ErrMalformed, err)
	}
	if len(raw) < AEADOverhead {
		return nil, fmt.Errorf("%w: %d bytes, fewer than the minimum %d (truncated?)", ErrMalformed, len(raw), AEADOverhead)
	}
	if raw[0] != aeadVersion {
		return nil, fmt.Errorf("%w: envelope version byte %d, want %d", ErrVersion, raw[0], aeadVersion)
	}
	return raw, nil
}

// looksLikeEnvelope reports whether message is a versioned envelope
// ("omv<version>."). A legacy message never is: '.' is not in the standard
// base64 alphabet, though one in 2^18 legacy messages starts with "omv".
func looksLikeEnvelope(message string) bool {
	if !strings.HasPrefix(message, aeadPrefixStem) {
		return false
	}
	i := strings.IndexByte(message, '.')
	return i > len(aeadPrefixStem) && i <= len(aeadPrefixStem)+4
}

// classifyForeign says why a message without the AEAD prefix is refused:
// another envelope version, a legacy message, or garbage.
func classifyForeign(message string) error {
	if looksLikeEnvelope(message) {
		i := strings.IndexByte(message, '.')
		return fmt.Errorf("%w: envelope %q, this codec opens %q", ErrVersion, message[:i+1], AEADPrefix)
	}
	if raw, err := base64.StdEncoding.DecodeString(message); err == nil && len(raw) >= LegacySaltSize {
		return fmt.Errorf("%w: looks like a legacy (RC4) message given to the authenticated codec", ErrVersion)
	}
	return fmt.Errorf("%w: missing %q prefix", ErrMalformed, AEADPrefix)
}

func associatedData(header []byte) []byte {
	ad := make([]byte, 0, len(AEADPrefix)+len(header))
	ad = append(ad, AEADPrefix...)
	return append(ad, header...)
}

// cipherFor derives this message's key: HKDF-SHA256(SECRET_KEY, salt, info).
func (a *AEAD) cipherFor(salt []byte) (stdcipher.AEAD, error) {
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, a.secret, salt, []byte(hkdfInfo)), key); err != nil {
		return nil, fmt.Errorf("cipher: deriving message key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("cipher: creating XChaCha20-Poly1305: %w", err)
	}
	return aead, nil
}
