package module

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/backend"
)

// TestPlacementSoundAgainstRealShell builds random commands from a small
// set of shell tokens (only echo and syntax, so they can run nothing but
// the payload), and runs every command checkPlacement accepts through the
// real /bin/sh with a hostile value: the value must never execute.
func TestPlacementSoundAgainstRealShell(t *testing.T) {
	tokens := []string{
		"echo ", " ", "'", `"`, "`", "$(", ")", "$((", "))", "1", "+", "(", ";", "\n",
		`\`, "<<E\n", "\nE\n", "#", "x=", "$x", "{", "}", "|", "&&", "${x:-", "${x#", "case x in x) ", " ;; esac", string(placeholder),
	}
	iterations := 1500
	if testing.Short() {
		iterations = 100
	}
	// A multi-line value also tries to break out of a comment with its
	// second line.
	for _, kind := range []struct {
		ph      rune
		payload string
	}{
		{placeholder, backend.ShellQuote("$(touch m1)`touch m2`;touch m3 ")},
		{multiPlaceholder, backend.ShellQuote("x\n$(touch m1)`touch m2`;touch m3 \ntouch m4 #")},
	} {
		rng := rand.New(rand.NewSource(1))
		dir := t.TempDir()
		accepted := 0
		for i := 0; i < iterations; i++ {
			var b strings.Builder
			b.WriteString("echo ")
			for n := 1 + rng.Intn(8); n > 0; n-- {
				b.WriteString(tokens[rng.Intn(len(tokens))])
			}
			b.WriteString(" " + string(kind.ph) + " ")
			for n := rng.Intn(4); n > 0; n-- {
				b.WriteString(tokens[rng.Intn(len(tokens))])
			}
			tmpl := b.String()
			if checkPlacement(tmpl) != nil {
				continue
			}
			accepted++
			cmd := strings.ReplaceAll(tmpl, string(kind.ph), kind.payload)
			c := exec.Command("/bin/sh", "-c", cmd)
			c.Dir = dir
			c.Env = []string{"PATH=/usr/bin:/bin"}
			_ = c.Run()
			if m, _ := filepath.Glob(filepath.Join(dir, "m*")); len(m) > 0 {
				t.Fatalf("checkPlacement accepted %q, and sh executed the value: %q", tmpl, cmd)
			}
			os.RemoveAll(filepath.Join(dir, "E"))
		}
		if accepted < iterations/20 {
			t.Fatalf("only %d of %d random commands accepted: the test exercises too little", accepted, iterations)
		}
	}
}
