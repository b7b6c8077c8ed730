package relay

import "testing"

// scriptedCodec returns the scripted Seal outputs in turn.
type scriptedCodec struct {
	scheme string
	out    []string
}

func (s *scriptedCodec) Seal([]byte) (string, error) {
	o := s.out[0]
	if len(s.out) > 1 {
		s.out = s.out[1:]
	}
	return o, nil
}
func (s *scriptedCodec) Open(string) ([]byte, error) { return nil, nil }
func (s *scriptedCodec) Scheme() string              { return s.scheme }

func TestSealAvoidsLegacyMessagesThatLookLikeAEAD(t *testing.T) {
	got, err := seal(&scriptedCodec{scheme: "legacy", out: []string{"omvAAAA", "omvBBBB", "QUJD"}}, nil)
	if err != nil || got != "QUJD" {
		t.Fatalf("seal = %q, %v; want the first output not starting with omv", got, err)
	}
	if _, err := seal(&scriptedCodec{scheme: "legacy", out: []string{"omvAAAA"}}, nil); err == nil {
		t.Fatal("endless omv outputs accepted")
	}
	got, err = seal(&scriptedCodec{scheme: "aead", out: []string{"omv2.xyz"}}, nil)
	if err != nil || got != "omv2.xyz" {
		t.Fatalf("aead seal = %q, %v", got, err)
	}
	// The real legacy opener refuses such a message, which is why.
	if _, err := mustCodec(t, "legacy", "k").Open("omvAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); err == nil {
		t.Log("the legacy opener now accepts messages starting with omv; seal's retry is no longer needed")
	}
}
