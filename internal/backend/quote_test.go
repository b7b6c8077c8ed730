package backend

import (
	"os/exec"
	"testing"
)

// ShellQuote's output must come back unchanged through the real /bin/sh.
func TestShellQuoteRoundTripsThroughSh(t *testing.T) {
	for _, s := range []string{
		"", "plain", "it's", "'", "''", `'\''`, `"`, `\`, `\'`, "$(id)", "`id`", "${HOME}", "$HOME",
		"; rm -rf /", "a && b || c", "a | b", "> /etc/passwd", "*", "~", "#comment", "a@@b",
		"\t", "\n", "line1\nline2", "日本語 '引用'", "!", "$'\\x41'", "-n", "--", "%s %d", "glob * ?",
	} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+ShellQuote(s)).Output()
		if err != nil {
			t.Fatalf("sh for %q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("round trip of %q gave %q (quoted %s)", s, out, ShellQuote(s))
		}
	}
}
