package cipher

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

type vector struct {
	Key        string `json:"key"`
	SaltHex    string `json:"salt_hex"`
	Plaintext  string `json:"plaintext"`
	Ciphertext string `json:"ciphertext_b64"`
}

// loadVectors reads the original OMServer tencode vectors (a copy of
// shared/reference/cipher-vectors.json).
func loadVectors(t testing.TB) []vector {
	t.Helper()
	data, err := os.ReadFile("testdata/cipher-vectors.json")
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var file struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("parsing vectors: %v", err)
	}
	if len(file.Vectors) == 0 {
		t.Fatal("no vectors in testdata/cipher-vectors.json")
	}
	return file.Vectors
}

func TestLegacyVectors(t *testing.T) {
	for i, v := range loadVectors(t) {
		t.Run(v.SaltHex, func(t *testing.T) {
			saltBytes, err := hex.DecodeString(v.SaltHex)
			if err != nil || len(saltBytes) != LegacySaltSize {
				t.Fatalf("vector %d: bad salt %q", i, v.SaltHex)
			}
			var salt [LegacySaltSize]byte
			copy(salt[:], saltBytes)
			l := NewLegacy(v.Key)

			if got := l.EncodeWithSalt([]byte(v.Plaintext), salt); got != v.Ciphertext {
				t.Errorf("encode: got %s, want %s", got, v.Ciphertext)
			}
			plain, err := l.Open(v.Ciphertext)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if string(plain) != v.Plaintext {
				t.Errorf("decode: got %q, want %q", plain, v.Plaintext)
			}
		})
	}
}

// The vectors' key holds the literal text "&amp;"; decoding with the
// unescaped "&" must not give the plaintext back.
func TestLegacyKeyIsUsedVerbatim(t *testing.T) {
	v := loadVectors(t)[0]
	l := NewLegacy(string(bytes.ReplaceAll([]byte(v.Key), []byte("&amp;"), []byte("&"))))
	plain, err := l.Open(v.Ciphertext)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if string(plain) == v.Plaintext {
		t.Fatal("unescaped key decoded the vector: key is not used byte for byte")
	}
}

func TestLegacyOpenRejects(t *testing.T) {
	l := NewLegacy("k")
	short := base64.StdEncoding.EncodeToString(make([]byte, LegacySaltSize-1))
	aeadMsg, err := NewAEAD("k").Seal([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, msg string
		want      error
	}{
		{"empty", "", ErrMalformed},
		{"not base64", "!!!not base64!!!", ErrMalformed},
		{"bad padding", "AAAAAAAAAAAAAAAAAAAAAA=", ErrMalformed},
		{"shorter than salt", short, ErrMalformed},
		{"aead message", aeadMsg, ErrVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain, err := l.Open(tc.msg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if plain != nil {
				t.Fatalf("plaintext %q returned with an error", plain)
			}
		})
	}
}

// RC4 has no integrity: a wrong key yields garbage, not an error. This test
// pins that documented limitation so nobody mistakes Legacy.Open for a check.
func TestLegacyWrongKeyIsUndetectable(t *testing.T) {
	msg, err := NewLegacy("right").Seal([]byte("1001@@host@@50@@"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewLegacy("wrong").Open(msg)
	if err != nil {
		t.Fatalf("legacy open with the wrong key errored (%v); RC4 cannot detect it", err)
	}
	if string(plain) == "1001@@host@@50@@" {
		t.Fatal("wrong key produced the plaintext")
	}
}

func TestLegacySealUsesFreshSalt(t *testing.T) {
	l := NewLegacy("k")
	a, _ := l.Seal([]byte("same"))
	b, _ := l.Seal([]byte("same"))
	if a == b {
		t.Fatal("two seals of the same plaintext are identical: salt is not random")
	}
}

// TestLegacyOpensMessagesStartingLikeAnEnvelope: about one legacy message in
// 2^18 starts with "omv" by chance (salt bytes 0xa2 0x6b 0xef...); it is
// still a legacy message and must open.
func TestLegacyOpensMessagesStartingLikeAnEnvelope(t *testing.T) {
	l := NewLegacy("k")
	var salt [16]byte
	copy(salt[:], []byte{0xa2, 0x6b, 0xef})
	msg := l.EncodeWithSalt([]byte("1003@@127.0.0.1@@"), salt)
	if msg[:3] != "omv" {
		t.Fatalf("test salt does not give an omv prefix: %q", msg)
	}
	got, err := l.Open(msg)
	if err != nil || string(got) != "1003@@127.0.0.1@@" {
		t.Fatalf("Open(%q) = %q, %v", msg, got, err)
	}
	if _, err := l.Open("omv2.AAAAAAAAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, ErrVersion) {
		t.Fatalf("an AEAD envelope given to the legacy codec: err = %v, want ErrVersion", err)
	}
}
