// Package outdiff compares host outputs: two texts side by side, line by
// line (sergi/go-diff's Myers diff over lines), and the hosts of a run
// grouped by identical output with the majority first, so drift stands
// out.
package outdiff

import (
	"crypto/sha256"
	"sort"
	"strings"
	"time"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// Op says how a side-by-side row differs.
type Op string

const (
	Equal   Op = "equal"
	Changed Op = "changed" // a line on each side, different
	Deleted Op = "deleted" // only on the left
	Added   Op = "added"   // only on the right
)

// Row is one line of a side-by-side view. Line numbers are 1-based; 0 is
// "no line on this side".
type Row struct {
	Op        Op     `json:"op"`
	LeftNo    int    `json:"left_no,omitempty"`
	Left      string `json:"left,omitempty"`
	RightNo   int    `json:"right_no,omitempty"`
	Right     string `json:"right,omitempty"`
	Collapsed int    `json:"collapsed,omitempty"` // equal lines left out here
}

// Diff is the comparison of two texts.
type Diff struct {
	Rows      []Row `json:"rows"`
	Same      bool  `json:"same"`
	Added     int   `json:"added"`
	Deleted   int   `json:"deleted"`
	Truncated bool  `json:"truncated,omitempty"` // more rows than MaxRows
}

// MaxRows bounds a diff's rows (outputs are capped per host, but a page
// must stay small).
const MaxRows = 5000

// context is how many equal lines are kept around each change.
const context = 3

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Compare returns a side-by-side diff of a and b by lines; long runs of
// equal lines are collapsed to the context around the changes.
func Compare(a, b string) Diff {
	d := Diff{Same: a == b}
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = time.Second
	// A missing newline at the end is not a changed line.
	ca, cb, lines := dmp.DiffLinesToChars(withNewline(a), withNewline(b))
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(ca, cb, false), lines)
	var rows []Row
	ln, rn := 0, 0
	var dels, adds []string
	flush := func() {
		n := max(len(dels), len(adds))
		for i := 0; i < n; i++ {
			r := Row{}
			if i < len(dels) {
				ln++
				r.LeftNo, r.Left = ln, dels[i]
				d.Deleted++
			}
			if i < len(adds) {
				rn++
				r.RightNo, r.Right = rn, adds[i]
				d.Added++
			}
			switch {
			case r.LeftNo > 0 && r.RightNo > 0:
				r.Op = Changed
			case r.LeftNo > 0:
				r.Op = Deleted
			default:
				r.Op = Added
			}
			rows = append(rows, r)
		}
		dels, adds = nil, nil
	}
	for _, df := range diffs {
		ls := splitLines(df.Text)
		switch df.Type {
		case diffmatchpatch.DiffDelete:
			dels = append(dels, ls...)
		case diffmatchpatch.DiffInsert:
			adds = append(adds, ls...)
		case diffmatchpatch.DiffEqual:
			flush()
			for _, l := range ls {
				ln++
				rn++
				rows = append(rows, Row{Op: Equal, LeftNo: ln, Left: l, RightNo: rn, Right: l})
			}
		}
	}
	flush()
	d.Rows = collapse(rows)
	if len(d.Rows) > MaxRows {
		d.Rows, d.Truncated = d.Rows[:MaxRows], true
	}
	return d
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// collapse keeps context equal lines around changes and replaces longer
// runs of equal lines by one row counting them.
func collapse(rows []Row) []Row {
	keep := make([]bool, len(rows))
	changed := false
	for i, r := range rows {
		if r.Op != Equal {
			changed = true
			for j := max(0, i-context); j <= min(len(rows)-1, i+context); j++ {
				keep[j] = true
			}
		}
	}
	if !changed {
		// Identical: show the start, say how much more is the same.
		if len(rows) <= 2*context {
			return rows
		}
		return append(rows[:2*context:2*context], Row{Op: Equal, Collapsed: len(rows) - 2*context})
	}
	var out []Row
	skipped := 0
	for i, r := range rows {
		if keep[i] {
			if skipped > 0 {
				out = append(out, Row{Op: Equal, Collapsed: skipped})
				skipped = 0
			}
			out = append(out, r)
			continue
		}
		skipped++
	}
	if skipped > 0 {
		out = append(out, Row{Op: Equal, Collapsed: skipped})
	}
	return out
}

// Group is the hosts of a run whose outputs are identical.
type Group struct {
	Key    string   `json:"key"` // hex prefix of the output's SHA-256
	Count  int      `json:"count"`
	Hosts  []string `json:"hosts"` // the first MaxGroupHosts addresses
	Sample string   `json:"-"`     // the output itself
	Lines  int      `json:"lines"`
}

// MaxGroupHosts bounds the addresses listed per group.
const MaxGroupHosts = 50

// Grouper groups outputs as they are fed, keeping one sample per group:
// memory grows with the number of distinct outputs, not with hosts.
type Grouper struct {
	groups map[[32]byte]*Group
}

// NewGrouper returns an empty grouper.
func NewGrouper() *Grouper { return &Grouper{groups: map[[32]byte]*Group{}} }

// MaxGroups bounds distinct outputs tracked; beyond it outputs are counted
// in an "other" group without a sample.
const MaxGroups = 200

// Add puts one host's output in its group.
func (g *Grouper) Add(ip, output string) {
	sum := sha256.Sum256([]byte(output))
	grp, ok := g.groups[sum]
	if !ok {
		if len(g.groups) >= MaxGroups {
			sum = [32]byte{}
			if grp, ok = g.groups[sum]; !ok {
				grp = &Group{Key: "other"}
				g.groups[sum] = grp
			}
		} else {
			grp = &Group{Key: hexPrefix(sum), Sample: output, Lines: len(splitLines(output))}
			g.groups[sum] = grp
		}
	}
	grp.Count++
	if len(grp.Hosts) < MaxGroupHosts {
		grp.Hosts = append(grp.Hosts, ip)
	}
}

func hexPrefix(sum [32]byte) string {
	const hx = "0123456789abcdef"
	b := make([]byte, 12)
	for i := range 6 {
		b[2*i], b[2*i+1] = hx[sum[i]>>4], hx[sum[i]&15]
	}
	return string(b)
}

// Groups returns the groups, largest (the majority) first, then by key.
func (g *Grouper) Groups() []Group {
	out := make([]Group, 0, len(g.groups))
	for _, grp := range g.groups {
		out = append(out, *grp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out
}
