package fanout

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(p, []byte("127.0.1.1\n\n  127.0.1.2  \n127.0.1.3"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if want := []string{"127.0.1.1", "127.0.1.2", "127.0.1.3"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Read = %q, %v; want %q", got, err, want)
	}
	if _, err := Read(p + ".missing"); err == nil {
		t.Fatal("a missing file read without error")
	}
}

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	tg := Flags(fs, 50)
	if err := fs.Parse([]string{"-hosts", "h", "-port", "2222", "-user", "u", "-key", "k", "-known-hosts", "kh"}); err != nil {
		t.Fatal(err)
	}
	if *tg != (Target{HostsFile: "h", Port: 2222, User: "u", Key: "k", KnownHosts: "kh", Forks: 50}) {
		t.Fatalf("parsed %+v", *tg)
	}
}
