package outdiff

import (
	"fmt"
	"strings"
	"testing"
)

func ops(d Diff) string {
	var b []string
	for _, r := range d.Rows {
		if r.Collapsed > 0 {
			b = append(b, fmt.Sprintf("~%d", r.Collapsed))
			continue
		}
		b = append(b, fmt.Sprintf("%s:%d:%d", r.Op[:1], r.LeftNo, r.RightNo))
	}
	return strings.Join(b, " ")
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name, a, b, want string
		added, deleted   int
	}{
		{"same", "a\nb\n", "a\nb\n", "e:1:1 e:2:2", 0, 0},
		{"changed line", "a\nb\nc\n", "a\nB\nc\n", "e:1:1 c:2:2 e:3:3", 1, 1},
		{"added", "a\nc\n", "a\nb\nc\n", "e:1:1 a:0:2 e:2:3", 1, 0},
		{"deleted", "a\nb\nc\n", "a\nc\n", "e:1:1 d:2:0 e:3:2", 0, 1},
		{"empty left", "", "x\ny\n", "a:0:1 a:0:2", 2, 0},
		{"no trailing newline", "a\nb", "a\nb\n", "e:1:1 e:2:2", 0, 0},
		{"more deleted than added", "a\nx\ny\nb\n", "a\nz\nb\n", "e:1:1 c:2:2 d:3:0 e:4:3", 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Compare(tt.a, tt.b)
			if got := ops(d); got != tt.want || d.Added != tt.added || d.Deleted != tt.deleted {
				t.Fatalf("ops %q +%d -%d, want %q +%d -%d", got, d.Added, d.Deleted, tt.want, tt.added, tt.deleted)
			}
		})
	}
}

func TestCompareCollapsesLongEqualRuns(t *testing.T) {
	var a, b strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&a, "line %d\n", i)
		if i == 50 {
			b.WriteString("changed\n")
		} else {
			fmt.Fprintf(&b, "line %d\n", i)
		}
	}
	d := Compare(a.String(), b.String())
	if got := ops(d); got != "~46 e:47:47 e:48:48 e:49:49 c:50:50 e:51:51 e:52:52 e:53:53 ~47" {
		t.Fatalf("ops %s", got)
	}
	if r := d.Rows[4]; r.Left != "line 50" || r.Right != "changed" {
		t.Fatalf("changed row %+v", r)
	}
}

func TestGrouper(t *testing.T) {
	g := NewGrouper()
	for i := 0; i < 7; i++ {
		g.Add(fmt.Sprintf("10.0.0.%d", i), "Linux 6.1\n")
	}
	g.Add("10.0.1.1", "Linux 5.10\n")
	g.Add("10.0.1.2", "Linux 5.10\n")
	g.Add("10.0.2.1", "")
	gs := g.Groups()
	if len(gs) != 3 || gs[0].Count != 7 || gs[0].Sample != "Linux 6.1\n" || gs[1].Count != 2 || gs[2].Count != 1 || gs[2].Hosts[0] != "10.0.2.1" {
		t.Fatalf("groups %+v", gs)
	}
	// Distinct outputs beyond MaxGroups are counted together.
	g = NewGrouper()
	for i := 0; i < MaxGroups+10; i++ {
		g.Add(fmt.Sprintf("h%d", i), fmt.Sprint(i))
	}
	gs = g.Groups()
	if len(gs) != MaxGroups+1 || gs[0].Key != "other" || gs[0].Count != 10 {
		t.Fatalf("%d groups, first %+v", len(gs), gs[0])
	}
}
