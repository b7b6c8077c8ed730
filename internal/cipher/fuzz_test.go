package cipher

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// fuzzPlaintexts are sealed deterministically (fixed clock, fixed
// randomness) so the committed seed corpus holds valid messages too.
var fuzzPlaintexts = []string{"", "x", `{"run_id":"r1","module_id":1001}`, "主机 ok\n"}

// fuzzSealed returns the deterministic valid messages of the fuzz key,
// mapped to their plaintexts.
func fuzzSealed(t testing.TB) map[string]string {
	t.Helper()
	sealer := NewAEAD(testKey, WithClock(fixedClock(testEpoch)))
	sealer.rand = &detReader{seed: "fuzz"}
	out := make(map[string]string, len(fuzzPlaintexts))
	for _, pt := range fuzzPlaintexts {
		m, err := sealer.Seal([]byte(pt))
		if err != nil {
			t.Fatal(err)
		}
		out[m] = pt
	}
	return out
}

func FuzzLegacyOpen(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.Ciphertext)
	}
	f.Add("")
	f.Add("====")
	f.Add("omv2.AAAA")
	f.Add("AAECAwQFBgcICQoLDA0ODw\n==")
	l := NewLegacy(testKey)
	f.Fuzz(func(t *testing.T, msg string) {
		plain, err := l.Open(msg)
		if err != nil {
			if plain != nil {
				t.Fatalf("plaintext returned together with error %v", err)
			}
			return
		}
		// Accepted: re-encoding with the message's own salt must give the
		// same bytes back.
		raw, derr := base64.StdEncoding.DecodeString(msg)
		if derr != nil || len(raw) < LegacySaltSize {
			t.Fatalf("accepted a message that does not decode: %v", derr)
		}
		var salt [LegacySaltSize]byte
		copy(salt[:], raw)
		again, _ := base64.StdEncoding.DecodeString(l.EncodeWithSalt(plain, salt))
		if !bytes.Equal(again, raw) {
			t.Fatal("re-encoding the decoded plaintext does not reproduce the message")
		}
	})
}

func FuzzAEADOpen(f *testing.F) {
	sealed := fuzzSealed(f)
	for m := range sealed {
		f.Add(m)
		f.Add(m[:len(m)-1])
	}
	f.Add("")
	f.Add(AEADPrefix)
	f.Add("omv3.AAAA")
	f.Add(loadVectors(f)[0].Ciphertext)
	f.Fuzz(func(t *testing.T, msg string) {
		// A fresh opener each time: the replay cache must not hide an
		// accepted forgery behind ErrReplay.
		a := NewAEAD(testKey, WithClock(fixedClock(testEpoch)))
		plain, err := a.Open(msg)
		if err != nil {
			if plain != nil {
				t.Fatalf("plaintext returned together with error %v", err)
			}
			return
		}
		want, ok := sealed[msg]
		if !ok {
			t.Fatalf("accepted a message that was never sealed: %q", msg)
		}
		if string(plain) != want {
			t.Fatalf("opened %q, sealed %q", plain, want)
		}
		if _, err := a.Open(msg); err == nil {
			t.Fatal("second open of the same message accepted")
		}
	})
}
