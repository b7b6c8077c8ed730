package salt

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/task"
)

// How a host of the inventory names its minion (Config.MinionID).
const (
	// MinionIDHostname: the host's name as stored (the default).
	MinionIDHostname = "hostname"
	// MinionIDUpper: the host's name upper-cased, as the original OMServer
	// targeted minions (Public_lib.target_host(...).upper()), for fleets
	// whose minions were registered for it.
	MinionIDUpper = "upper"
	// MinionIDIP: the host's IP address.
	MinionIDIP = "ip"
)

// maxMinionID bounds a minion id: salt keeps one file per id in its pki
// directory, and file names stop at 255 bytes.
const maxMinionID = 255

// MinionID maps a host of the inventory to its salt minion id.
type MinionID struct {
	mode string
	tmpl *template.Template
}

// minionFields is what a template sees.
type minionFields struct{ IP, Name string }

// ParseMinionID reads a minion id setting: hostname (also the empty
// string), upper, ip, or a Go template over .Name and .IP with the
// functions upper and lower, e.g. {{.Name}}.example.com. A template is
// tried on an example host, so a bad one is refused here, at load.
func ParseMinionID(spec string) (*MinionID, error) {
	switch spec {
	case "", MinionIDHostname:
		return &MinionID{mode: MinionIDHostname}, nil
	case MinionIDUpper, MinionIDIP:
		return &MinionID{mode: spec}, nil
	}
	if !strings.Contains(spec, "{{") {
		return nil, fmt.Errorf("salt minion_id %q: want hostname, upper, ip or a template such as {{.Name}}.example.com", spec)
	}
	tmpl, err := template.New("minion_id").Option("missingkey=error").
		Funcs(template.FuncMap{"upper": strings.ToUpper, "lower": strings.ToLower}).Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("salt minion_id template: %w", err)
	}
	m := &MinionID{mode: "template", tmpl: tmpl}
	if _, err := m.For(task.Host{IP: "192.0.2.1", Name: "web01"}); err != nil {
		return nil, fmt.Errorf("salt minion_id template %q: %w", spec, err)
	}
	return m, nil
}

// For returns the minion id of h.
func (m *MinionID) For(h task.Host) (string, error) {
	var id string
	switch m.mode {
	case MinionIDHostname, MinionIDUpper:
		if h.Name == "" {
			return "", fmt.Errorf("salt targets minions by host name and host %s has none", h)
		}
		id = h.Name
		if m.mode == MinionIDUpper {
			id = upperASCII(id)
		}
	case MinionIDIP:
		if h.IP == "" {
			return "", fmt.Errorf("salt minion_id is ip and host %s has no IP", h)
		}
		id = h.IP
	default:
		var err error
		if id, err = m.execute(h); err != nil {
			return "", err
		}
	}
	if err := checkMinionID(id); err != nil {
		return "", fmt.Errorf("host %s: %w", h, err)
	}
	return id, nil
}

// execute runs the template for h, refusing a result that used a field h
// lacks (".example.com" would target nothing, silently).
func (m *MinionID) execute(h task.Host) (string, error) {
	run := func(f minionFields) (string, error) {
		var b strings.Builder
		if err := m.tmpl.Execute(&b, f); err != nil {
			return "", fmt.Errorf("salt minion_id template: %w", err)
		}
		return b.String(), nil
	}
	id, err := run(minionFields{IP: h.IP, Name: h.Name})
	if err != nil {
		return "", err
	}
	// A field the template uses changes its result; an empty one used
	// shows up as a difference once it is filled in.
	const mark = "\x00"
	filled := minionFields{IP: h.IP, Name: h.Name}
	if filled.IP == "" {
		filled.IP = mark
	}
	if filled.Name == "" {
		filled.Name = mark
	}
	if alt, err := run(filled); err != nil || alt != id {
		return "", fmt.Errorf("host %s lacks a field the salt minion_id template uses", h)
	}
	return id, nil
}

// upperASCII upper-cases ASCII letters only, as Python 2's str.upper did
// for the original's byte-string host names.
func upperASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// checkMinionID refuses what cannot be a minion id. Salt's own rule
// (salt.utils.verify.valid_id) refuses "/", "\\" and NUL, since it names a
// file in its pki directory after the id; control characters are refused
// too (no real minion has one: it would come from a template's mistake).
func checkMinionID(id string) error {
	switch {
	case id == "":
		return errors.New("empty salt minion id")
	case len(id) > maxMinionID:
		return fmt.Errorf("salt minion id of %d bytes is longer than %d", len(id), maxMinionID)
	case !utf8.ValidString(id):
		return fmt.Errorf("salt minion id %q is not valid UTF-8", id)
	case id == "." || id == "..":
		return fmt.Errorf("salt minion id %q is not a name", id)
	}
	for _, r := range id {
		if unicode.IsControl(r) || r == '/' || r == '\\' {
			return fmt.Errorf("salt minion id %q holds %U, which no minion id may", id, r)
		}
	}
	return nil
}
