package funcrpc

import (
	"testing"
)

// FuzzDecodeResponse feeds arbitrary bytes to the XML-RPC answer decoder and
// the command.run / copyfile interpreters. Seeds
// (testdata/fuzz/FuzzDecodeResponse) are answers laid out as Python's
// xmlrpclib writes them, faults, REMOTE_ERROR lists and broken variants.
func FuzzDecodeResponse(f *testing.F) {
	f.Add(pyResponse(pyArray(pyInt(0), pyString("hello\n"), pyString(""))))
	f.Fuzz(func(t *testing.T, body []byte) {
		v, fault, err := decodeResponse(body)
		if err != nil {
			if v != nil || fault != nil {
				t.Fatal("error together with a value or fault")
			}
			return
		}
		if fault != nil {
			if v != nil {
				t.Fatal("fault together with a value")
			}
			_ = fault.Error()
			return
		}
		code, _, _, rerr := runResult(v)
		if rerr != nil && code != -1 {
			t.Fatalf("error %v with exit code %d", rerr, code)
		}
		_ = copyResult(v)
	})
}
