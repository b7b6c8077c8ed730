package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The section is replaced in place, keeping what other benchmarks wrote
// around it, or appended when the file has none yet.
func TestReplaceSection(t *testing.T) {
	section := beginMark + "\nnew figures\n" + endMark + "\n"
	for _, tc := range []struct{ name, before, want string }{
		{"no file", "", section},
		{"appended", "# Benchmarks\n\nfan-out\n", "# Benchmarks\n\nfan-out\n\n" + section},
		{"replaced", "# B\n\n" + beginMark + "\nold\n" + endMark + "\n\n## after\n", "# B\n\n" + beginMark + "\nnew figures\n" + endMark + "\n\n## after\n"},
		{"unterminated is appended", "x\n" + beginMark + "\nold\n", "x\n" + beginMark + "\nold\n\n" + section},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "B.md")
			if tc.before != "" {
				if err := os.WriteFile(path, []byte(tc.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := replaceSection(path, section); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if string(got) != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("p%d = %v; want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(d[:3], 50); got != 99*time.Millisecond {
		t.Errorf("p50 of 100,99,98 ms = %v", got)
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}
