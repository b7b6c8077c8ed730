// Package layout holds the test of the import walls between the tiers: the
// rules DESIGN.md's "house" sets, checked against what `go list -deps`
// reports, so a change that breaks one fails the build's tests.
package layout

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/omserver/omserver-go/"

// wall says that no package under From may depend, directly or through
// others, on any package under one of Never.
type wall struct {
	From  string
	Never []string
	Why   string
}

var walls = []wall{
	{"internal/web", []string{"internal/master", "internal/backend", "internal/module"},
		"the web tier never executes anything and never holds target credentials: it only asks a master over the relay"},
	{"internal/runs", []string{"internal/master", "internal/backend", "internal/relay", "internal/web"},
		"the run lifecycle dispatches through its Dispatcher interface, whatever carries it"},
	{"internal/relay", []string{"internal/master", "internal/module", "internal/backend"},
		"the relay is a neutral contract: it carries tasks and events, and runs them through the Executor interface"},
	{"internal/backend", []string{"internal/module", "internal/master"},
		"backends run expanded steps; modules expand into steps above them"},
	{"internal/task", []string{"internal/"},
		"the contract both tiers share depends on nothing of either (internal/apperr excepted)"},
	{"internal/store", []string{"internal/web", "internal/runs", "internal/relay", "internal/master", "internal/backend"},
		"the database layer serves the web tier and knows nothing above it"},
}

// allowed are dependencies a wall's Never prefixes would otherwise catch.
var allowed = map[string]bool{
	mod + "internal/apperr": true,
}

func TestImportWalls(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "../../...").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	deps := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			deps[f[0]] = f[1:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, w := range walls {
		for pkg, ds := range deps {
			if !under(pkg, mod+w.From) {
				continue
			}
			checked++
			for _, d := range ds {
				if allowed[d] {
					continue
				}
				for _, n := range w.Never {
					if under(d, mod+n) || (strings.HasSuffix(n, "/") && strings.HasPrefix(d, mod+n)) {
						t.Errorf("%s depends on %s: %s", strings.TrimPrefix(pkg, mod), strings.TrimPrefix(d, mod), w.Why)
					}
				}
			}
		}
	}
	// Each wall's own side must exist, or the test checks nothing.
	for _, w := range walls {
		if _, ok := deps[mod+w.From]; !ok {
			t.Errorf("package %s not found; update the walls", w.From)
		}
	}
	if checked < len(walls) {
		t.Fatalf("only %d packages checked", checked)
	}
}

// under reports whether pkg is base or inside it.
func under(pkg, base string) bool {
	return pkg == base || strings.HasPrefix(pkg, base+"/")
}

// TestWallCatchesAViolation proves the check works: a made-up package
// graph that breaks a wall is reported.
func TestWallCatchesAViolation(t *testing.T) {
	w := walls[0]
	bad := mod + "internal/master"
	hit := false
	for _, n := range w.Never {
		if under(bad, mod+n) {
			hit = true
		}
	}
	if !hit || under(mod+"internal/webx", mod+"internal/web") {
		t.Fatal("the prefix logic is wrong")
	}
}
