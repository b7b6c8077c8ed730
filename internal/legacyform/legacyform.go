// Package legacyform turns the raw HTML the original OMServer stored in
// module_list.module_extend into a declared parameter schema, and renders a
// schema back into equivalent, safely escaped legacy HTML.
//
// The stored HTML is never shown to a browser: it is parsed once with a real
// HTML parser, only <input> and <select> controls named sys_param_N are kept,
// and everything else (scripts, styles, frames, event handlers, unknown
// attributes) is dropped.
package legacyform

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/omserver/omserver-go/internal/param"
)

// Limits applied while parsing; the schema's own limits (parameters,
// options, lengths, labels) are param's.
const (
	// MaxInputBytes is the largest module_extend accepted (the widened column
	// is a TEXT, 64 KiB).
	MaxInputBytes = 64 << 10
	// DefaultMaxLength is the length limit of a text input that declares none.
	DefaultMaxLength = 255
	// numberMaxLength is the length limit of a number input without maxlength:
	// enough for any int64.
	numberMaxLength = 20
)

var nameRE = regexp.MustCompile(`^sys_param_[1-9][0-9]{0,2}$`)

// ValidName reports whether name is a legacy parameter name (sys_param_N).
func ValidName(name string) bool { return nameRE.MatchString(name) }

// skipped elements: their content is never a label and never a control.
func skipped(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Iframe, atom.Textarea, atom.Template,
		atom.Noscript, atom.Noframes, atom.Object, atom.Embed, atom.Svg,
		atom.Math, atom.Title, atom.Head, atom.Xmp, atom.Noembed, atom.Plaintext:
		return true
	}
	return false
}

// Parse reads legacy module_extend HTML and returns its parameters in
// document order. An empty string declares no parameters.
//
// Rules:
//   - Only <input> (type text or number, or no type) and <select> controls
//     named sys_param_N become parameters; other controls are ignored.
//   - A parameter's label is the text between the previous control (or the
//     start) and this one, whitespace collapsed.
//   - Number heuristic: the original has no numeric type; modules 1001 and
//     1002 ask for a line count with a text input of maxlength="3" and
//     value="50". A text input whose maxlength is 1..3 and whose value is a
//     non-empty string of ASCII digits is therefore typed number, with
//     Min = 1 (0 if the default is 0) and Max = 10^maxlength - 1, so 1..999
//     for 1001/1002. Render marks its text inputs with inputmode="text",
//     which turns the heuristic off, so rendered text stays text.
//   - Select options are de-duplicated by value (the first label wins);
//     disabled options are dropped. The default is what a browser preselects
//     in a single select: the LAST option carrying the selected attribute, or
//     the first option when none does. (Module 1005 marks seven options
//     selected; browsers show "resinjar", and so do we.)
func Parse(s string) ([]param.Param, error) {
	if len(s) > MaxInputBytes {
		return nil, fmt.Errorf("legacyform: input is %d bytes, more than the limit of %d", len(s), MaxInputBytes)
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	body := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	nodes, err := html.ParseFragment(strings.NewReader(s), body)
	if err != nil {
		return nil, fmt.Errorf("legacyform: parse html: %w", err)
	}
	p := &parser{seen: map[string]bool{}}
	for _, n := range nodes {
		if err := p.walk(n); err != nil {
			return nil, err
		}
	}
	return p.params, nil
}

type parser struct {
	params []param.Param
	seen   map[string]bool
	label  strings.Builder
}

func (p *parser) walk(n *html.Node) error {
	switch n.Type {
	case html.TextNode:
		// The input is at most MaxInputBytes, so this stays bounded.
		p.label.WriteString(n.Data)
		p.label.WriteByte(' ')
		return nil
	case html.ElementNode:
		if skipped(n.DataAtom) {
			return nil
		}
		switch n.DataAtom {
		case atom.Input:
			return p.input(n)
		case atom.Select:
			return p.selectControl(n)
		case atom.Button, atom.Keygen, atom.Output:
			p.label.Reset()
			return nil
		}
	case html.CommentNode, html.DoctypeNode:
		return nil
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if err := p.walk(c); err != nil {
			return err
		}
	}
	return nil
}

// takeLabel returns the text collected since the last control and resets
// it. A longer text keeps its end: the words next to the control are the
// label ("...说明 返回信息行数：").
func (p *parser) takeLabel() string {
	l := collapse(p.label.String())
	p.label.Reset()
	if r := []rune(l); len(r) > param.MaxLabelRunes {
		l = strings.TrimSpace(string(r[len(r)-param.MaxLabelRunes:]))
	}
	return l
}

func collapse(s string) string {
	return strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func (p *parser) add(pm param.Param) error {
	if p.seen[pm.Name] {
		return fmt.Errorf("legacyform: parameter %s declared twice", pm.Name)
	}
	if len(p.params) >= param.MaxParams {
		return fmt.Errorf("legacyform: more than %d parameters", param.MaxParams)
	}
	p.seen[pm.Name] = true
	p.params = append(p.params, pm)
	return nil
}

func (p *parser) input(n *html.Node) error {
	label := p.takeLabel()
	name, _ := attr(n, "name")
	if !ValidName(name) {
		return nil // not a module parameter: ignored, never preserved
	}
	typ, _ := attr(n, "type")
	typ = strings.ToLower(strings.TrimSpace(typ))
	value, _ := attr(n, "value")
	value = strings.ToValidUTF8(value, "\uFFFD")
	pm := param.Param{Name: name, Label: label, Default: value}
	ml, hasML := attr(n, "maxlength")
	maxLen, mlErr := strconv.Atoi(strings.TrimSpace(ml))
	if !hasML || mlErr != nil || maxLen <= 0 {
		maxLen = 0
	}
	if maxLen > param.MaxLength {
		maxLen = param.MaxLength
	}
	switch typ {
	case "", "text":
		_, explicitText := attr(n, "inputmode")
		if !explicitText && maxLen >= 1 && maxLen <= 3 && isDigits(value) {
			v, _ := strconv.ParseInt(value, 10, 64)
			lo, hi := int64(1), pow10(maxLen)-1
			if v < lo {
				lo = v
			}
			pm.Type, pm.MaxLength, pm.Min, pm.Max = param.Number, maxLen, &lo, &hi
			break
		}
		if maxLen == 0 {
			maxLen = DefaultMaxLength
		}
		pm.Type, pm.MaxLength = param.Text, maxLen
	case "number":
		if maxLen == 0 {
			maxLen = numberMaxLength
		}
		pm.Type, pm.MaxLength = param.Number, maxLen
		var err error
		if pm.Min, err = intAttr(n, "min"); err != nil {
			return fmt.Errorf("legacyform: %s: %w", name, err)
		}
		if pm.Max, err = intAttr(n, "max"); err != nil {
			return fmt.Errorf("legacyform: %s: %w", name, err)
		}
	default:
		return fmt.Errorf("legacyform: %s: input type %q is not supported (text or number)", name, typ)
	}
	if err := checkParam(pm); err != nil {
		return err
	}
	return p.add(pm)
}

func intAttr(n *html.Node, key string) (*int64, error) {
	s, ok := attr(n, key)
	if !ok || strings.TrimSpace(s) == "" {
		return nil, nil
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s=%q is not an integer", key, s)
	}
	return &v, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func pow10(n int) int64 {
	v := int64(1)
	for range n {
		v *= 10
	}
	return v
}

func (p *parser) selectControl(n *html.Node) error {
	label := p.takeLabel()
	name, _ := attr(n, "name")
	if !ValidName(name) {
		return nil
	}
	if _, multi := attr(n, "multiple"); multi {
		return fmt.Errorf("legacyform: %s: multiple selects are not supported", name)
	}
	pm := param.Param{Name: name, Label: label, Type: param.Choice}
	seen := map[string]bool{}
	selected := ""
	hasSelected := false
	var collect func(*html.Node) error
	collect = func(c *html.Node) error {
		for ; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode {
				continue
			}
			switch c.DataAtom {
			case atom.Optgroup:
				if err := collect(c.FirstChild); err != nil {
					return err
				}
			case atom.Option:
				if _, dis := attr(c, "disabled"); dis {
					continue
				}
				text := collapse(textOf(c))
				value, ok := attr(c, "value")
				if !ok {
					value = text // a browser submits the text when value is absent
				}
				value = strings.ToValidUTF8(value, "\uFFFD")
				if _, sel := attr(c, "selected"); sel {
					selected, hasSelected = value, true
				}
				if seen[value] {
					continue
				}
				if len(pm.Options) >= param.MaxOptions {
					return fmt.Errorf("legacyform: %s: more than %d options", name, param.MaxOptions)
				}
				seen[value] = true
				pm.Options = append(pm.Options, param.Option{Value: value, Label: text})
			}
		}
		return nil
	}
	if err := collect(n.FirstChild); err != nil {
		return err
	}
	if len(pm.Options) == 0 {
		return fmt.Errorf("legacyform: %s: select has no options", name)
	}
	pm.Default = pm.Options[0].Value
	if hasSelected {
		pm.Default = selected
	}
	if err := checkParam(pm); err != nil {
		return err
	}
	return p.add(pm)
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.TextNode {
				b.WriteString(c.Data)
			} else if c.Type == html.ElementNode && !skipped(c.DataAtom) {
				rec(c)
			}
		}
	}
	rec(n)
	return b.String()
}

// checkParam verifies one parameter is self-consistent and named as the
// legacy forms name their controls.
func checkParam(p param.Param) error {
	if !ValidName(p.Name) {
		return fmt.Errorf("legacyform: parameter name %q is not sys_param_N", p.Name)
	}
	if err := param.Schema([]param.Param{p}).Check(); err != nil {
		return fmt.Errorf("legacyform: %w", err)
	}
	return nil
}

// Validate checks a whole schema of a legacy form: every parameter named
// sys_param_N, and the schema as param.Schema.Check wants it.
func Validate(params []param.Param) error {
	for _, p := range params {
		if !ValidName(p.Name) {
			return fmt.Errorf("legacyform: parameter name %q is not sys_param_N", p.Name)
		}
	}
	if err := param.Schema(params).Check(); err != nil {
		return fmt.Errorf("legacyform: %w", err)
	}
	return nil
}

// Render produces legacy HTML for params, every text and attribute escaped,
// so that the legacy module_info endpoint can serve modules created in the
// new interface. Parse(Render(ps)) returns ps for any schema Parse returned.
func Render(params []param.Param) string {
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(html.EscapeString(p.Label))
		name := html.EscapeString(p.Name)
		switch p.Type {
		case param.Choice:
			fmt.Fprintf(&b, `<select name="%s" id="%s">`, name, name)
			for _, o := range p.Options {
				sel := ""
				if o.Value == p.Default {
					sel = " selected"
				}
				fmt.Fprintf(&b, ` <option value="%s"%s>%s</option>`, html.EscapeString(o.Value), sel, html.EscapeString(o.Label))
			}
			b.WriteString(` </select>`)
		case param.Number:
			fmt.Fprintf(&b, `<input name="%s" id="%s" type="number" size="5"`, name, name)
			if p.MaxLength > 0 {
				fmt.Fprintf(&b, ` maxlength="%d"`, p.MaxLength)
			}
			if p.Min != nil {
				fmt.Fprintf(&b, ` min="%d"`, *p.Min)
			}
			if p.Max != nil {
				fmt.Fprintf(&b, ` max="%d"`, *p.Max)
			}
			fmt.Fprintf(&b, ` value="%s">`, html.EscapeString(p.Default))
		default:
			fmt.Fprintf(&b, `<input name="%s" id="%s" type="text" inputmode="text" size="20" maxlength="%d" value="%s">`,
				name, name, p.MaxLength, html.EscapeString(p.Default))
		}
	}
	return b.String()
}
