package cipher

import (
	"crypto/rand"
	"crypto/rc4" // legacy compatibility only, see Legacy
	"crypto/sha1"
	"encoding/base64"
	"fmt"
)

// LegacySaltSize is the random salt length of the original scheme.
const LegacySaltSize = 16

// Legacy is the original OMServer tencode/tdecode scheme:
// base64(salt16 || RC4(SHA1(SECRET_KEY || salt), plaintext)).
//
// RC4 and SHA1 are here for legacy compatibility only: they let a migrated
// site exchange tasks with an original OMServer peer. RC4 provides no
// integrity, so Open cannot detect a wrong key or a tampered message (it
// returns garbage, not an error); callers must parse the plaintext strictly
// and reject anything unexpected, and must do their own replay checks
// (ReplayGuard). Prefer AEAD for everything else.
type Legacy struct {
	key []byte
}

// NewLegacy returns the legacy codec keyed by secretKey, used byte for byte
// as given (the original's key may contain HTML entities such as "&amp;";
// they are part of the key).
func NewLegacy(secretKey string) *Legacy {
	return &Legacy{key: []byte(secretKey)}
}

// Scheme returns "legacy".
func (l *Legacy) Scheme() string { return SchemeLegacy }

// Seal encrypts plaintext with a fresh random salt.
func (l *Legacy) Seal(plaintext []byte) (string, error) {
	var salt [LegacySaltSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", fmt.Errorf("cipher: reading random salt: %w", err)
	}
	return l.EncodeWithSalt(plaintext, salt), nil
}

// EncodeWithSalt encrypts plaintext with the given salt. Seal uses a random
// one; a fixed salt is only for test vectors.
func (l *Legacy) EncodeWithSalt(plaintext []byte, salt [LegacySaltSize]byte) string {
	out := make([]byte, LegacySaltSize+len(plaintext))
	copy(out, salt[:])
	l.stream(salt[:]).XORKeyStream(out[LegacySaltSize:], plaintext)
	return base64.StdEncoding.EncodeToString(out)
}

// Open decodes a legacy message. It returns ErrMalformed for bad base64 or
// fewer than 16 bytes and ErrVersion for an AEAD envelope. It cannot detect
// a wrong key: see the type's documentation.
func (l *Legacy) Open(message string) ([]byte, error) {
	if looksLikeEnvelope(message) {
		return nil, fmt.Errorf("%w: an authenticated (omv2) message given to the legacy codec", ErrVersion)
	}
	raw, err := base64.StdEncoding.DecodeString(message)
	if err != nil {
		return nil, fmt.Errorf("%w: legacy message is not valid base64: %v", ErrMalformed, err)
	}
	if len(raw) < LegacySaltSize {
		return nil, fmt.Errorf("%w: legacy message has %d bytes, fewer than the %d-byte salt", ErrMalformed, len(raw), LegacySaltSize)
	}
	plain := make([]byte, len(raw)-LegacySaltSize)
	l.stream(raw[:LegacySaltSize]).XORKeyStream(plain, raw[LegacySaltSize:])
	return plain, nil
}

func (l *Legacy) stream(salt []byte) *rc4.Cipher {
	h := sha1.New()
	h.Write(l.key)
	h.Write(salt)
	c, err := rc4.NewCipher(h.Sum(nil))
	if err != nil {
		// A 20-byte key is always within RC4's 1..256 byte range.
		panic(fmt.Sprintf("cipher: rc4 rejected a 20-byte key: %v", err))
	}
	return c
}
