package cipher

import (
	"errors"
	"fmt"
)

// Scheme names accepted by New and returned by Codec.Scheme.
const (
	SchemeAEAD   = "aead"
	SchemeLegacy = "legacy"
)

// Codec seals and opens messages. Implementations are safe for concurrent
// use.
type Codec interface {
	// Seal encrypts plaintext into a printable message.
	Seal(plaintext []byte) (string, error)
	// Open decrypts a message. On any error the plaintext is nil.
	Open(message string) ([]byte, error)
	// Scheme is "aead" or "legacy".
	Scheme() string
}

// New returns the codec for scheme ("" or "aead": AEAD with default options;
// "legacy": the original RC4 scheme) keyed by secretKey.
func New(scheme, secretKey string) (Codec, error) {
	if secretKey == "" {
		return nil, errors.New("cipher: SECRET_KEY is empty")
	}
	switch scheme {
	case "", SchemeAEAD:
		return NewAEAD(secretKey), nil
	case SchemeLegacy:
		return NewLegacy(secretKey), nil
	default:
		return nil, fmt.Errorf("cipher: unknown scheme %q (want %q or %q)", scheme, SchemeAEAD, SchemeLegacy)
	}
}
