package backend

import (
	"testing"

	"github.com/omserver/omserver-go/internal/task"
)

func TestNewResultAndFill(t *testing.T) {
	res, out := NewResult(task.Host{IP: "127.0.0.1"}, Options{OutputCap: 4})
	if res.ExitCode != -1 || res.Started.IsZero() || res.Host.IP != "127.0.0.1" {
		t.Fatalf("new result %+v", res)
	}
	_, _ = out.Stdout.Write([]byte("abcdef"))
	_, _ = out.Stderr.Write([]byte("e"))
	out.Fill(&res)
	if res.Stdout != "abcd" || !res.StdoutTruncated || res.Stderr != "e" || res.StderrTruncated || res.Duration <= 0 {
		t.Fatalf("filled result %+v", res)
	}
}
