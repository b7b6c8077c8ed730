// Package legacyform turns the raw HTML the original OMServer stored in
// module_list.module_extend into a declared parameter schema (param.Param),
// and renders a schema back into equivalent, safely escaped legacy HTML.
//
// The stored HTML is never shown to a browser: it is parsed once with a real
// HTML parser, only the form controls named sys_param_N are kept (inputs,
// selects and textareas), and everything else (scripts, styles, frames,
// event handlers, unknown attributes) is dropped.
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
	// DefaultTextareaMaxLength is the length limit of a textarea that
	// declares none: as long as a parameter value may be.
	DefaultTextareaMaxLength = param.MaxLength
	// numberMaxLength is the length limit of a number input without maxlength:
	// enough for any int64.
	numberMaxLength = 20
	// checkboxOn is what a browser sends for a checked checkbox or radio
	// without a value attribute.
	checkboxOn = "on"
)

var nameRE = regexp.MustCompile(`^sys_param_[1-9][0-9]{0,2}$`)

// ValidName reports whether name is a legacy parameter name (sys_param_N).
func ValidName(name string) bool { return nameRE.MatchString(name) }

// skipped elements: their content is never a label and never a control.
func skipped(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Iframe, atom.Template,
		atom.Noscript, atom.Noframes, atom.Object, atom.Embed, atom.Svg,
		atom.Math, atom.Title, atom.Head, atom.Xmp, atom.Noembed, atom.Plaintext:
		return true
	}
	return false
}

// breaks end the text that labels a radio button or checkbox after it.
func breaks(a atom.Atom) bool {
	switch a {
	case atom.Br, atom.Hr, atom.P, atom.Div, atom.Li, atom.Ul, atom.Ol, atom.Dl, atom.Dt, atom.Dd,
		atom.Table, atom.Tbody, atom.Thead, atom.Tfoot, atom.Tr, atom.Td, atom.Th,
		atom.Fieldset, atom.Legend, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		return true
	}
	return false
}

// Parse reads legacy module_extend HTML and returns its parameters in
// document order. An empty string declares no parameters.
//
// Rules:
//   - Controls named sys_param_N become parameters; others are ignored.
//     A name may be used by one control only, except by the radio buttons
//     of one group.
//   - A parameter's label is the text between the previous control (or the
//     start) and this one, whitespace collapsed. Hidden inputs have no label
//     and leave the text to the next control.
//   - <input> of type text (or none, or one a browser does not know, or
//     search, tel, url, email) is text; type number is a number (min, max
//     kept). Number heuristic: the original has no numeric type; modules
//     1001 and 1002 ask for a line count with a text input of maxlength="3"
//     and value="50". A text input whose maxlength is 1..3 and whose value
//     is a non-empty string of ASCII digits is therefore typed number, with
//     Min = 1 (0 if the default is 0) and Max = 10^maxlength - 1, so 1..999
//     for 1001/1002. Render marks its text inputs with inputmode="text",
//     which turns the heuristic off, so rendered text stays text.
//   - <textarea> is multi-line text: its content is the default, its
//     maxlength the limit (DefaultTextareaMaxLength when absent).
//   - <select> is a choice. Options are de-duplicated by value (the first
//     label wins); disabled options are dropped. The default is what a
//     browser preselects in a single select: the LAST option carrying the
//     selected attribute, or the first option when none does. (Module 1005
//     marks seven options selected; browsers show "resinjar", and so do
//     we.)
//   - Radio buttons sharing a name are one choice, wherever they stand;
//     each button's value (or "on") is an option, de-duplicated as in a
//     select, disabled ones dropped. The last checked button is the
//     default; with none checked there is none (a browser sends nothing, so
//     a request must choose). An option's label is the text right after
//     its button, up to the next control, line break or block, or the end
//     of the element holding the button (<label><input type=radio> A</label>).
//   - A checkbox is a boolean: its value (or "on") when checked, "" when
//     not; checked in the form means checked by default. The text right
//     after it (taken as for a radio) is added to its label.
//   - A hidden input is a fixed value: its value attribute.
//   - Refused, with an error naming the element: file, password, button,
//     date/time, color and range inputs, multiple selects, several
//     checkboxes sharing a name, a checkbox with an empty value, a name used
//     by two controls, and anything the schema cannot hold.
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
	p := &parser{index: map[string]int{}, radios: map[int]bool{}}
	for _, n := range nodes {
		if err := p.walk(n); err != nil {
			return nil, err
		}
	}
	p.endCapture()
	for i := range p.params {
		if err := checkParam(p.params[i]); err != nil {
			return nil, fmt.Errorf("%w (%s)", err, p.elems[i])
		}
	}
	return p.params, nil
}

type parser struct {
	params []param.Param
	elems  []string       // per parameter, the element it came from, for errors
	index  map[string]int // name -> index in params
	radios map[int]bool   // the parameters that are radio groups
	label  strings.Builder
	// capture, when set, collects the text after a radio button or
	// checkbox, which labels it.
	capture *capture
}

// capture is text being collected after a radio button or checkbox.
type capture struct {
	parent *html.Node // the capture ends with this element
	param  int        // index in params
	option int        // the radio's option, or -1 for a checkbox; -2: discard
	text   strings.Builder
}

func (p *parser) walk(n *html.Node) error {
	switch n.Type {
	case html.TextNode:
		// The input is at most MaxInputBytes, so this stays bounded.
		b := &p.label
		if p.capture != nil {
			b = &p.capture.text
		}
		b.WriteString(n.Data)
		b.WriteByte(' ')
		return nil
	case html.ElementNode:
		if skipped(n.DataAtom) {
			return nil
		}
		if breaks(n.DataAtom) {
			p.endCapture()
		}
		switch n.DataAtom {
		case atom.Input:
			return p.input(n)
		case atom.Select:
			p.endCapture()
			return p.selectControl(n)
		case atom.Textarea:
			p.endCapture()
			return p.textarea(n)
		case atom.Button, atom.Keygen, atom.Output:
			p.endCapture()
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
	if p.capture != nil && p.capture.parent == n {
		p.endCapture()
	}
	return nil
}

// startCapture collects the text after the control n as its label.
func (p *parser) startCapture(n *html.Node, param, option int) {
	p.endCapture()
	p.capture = &capture{parent: n.Parent, param: param, option: option}
}

// endCapture gives the collected text to the radio option or checkbox it
// labels.
func (p *parser) endCapture() {
	c := p.capture
	if c == nil {
		return
	}
	p.capture = nil
	text := collapse(c.text.String())
	switch {
	case c.option >= 0:
		p.params[c.param].Options[c.option].Label = clipStart(text)
	case c.option == -1 && text != "":
		pm := &p.params[c.param]
		pm.Label = clipEnd(strings.TrimSpace(pm.Label + " " + text))
	}
}

// takeLabel returns the text collected since the last control and resets
// it. A longer text keeps its end: the words next to the control are the
// label ("...说明 返回信息行数：").
func (p *parser) takeLabel() string {
	l := collapse(p.label.String())
	p.label.Reset()
	return clipEnd(l)
}

func clipEnd(l string) string {
	if r := []rune(l); len(r) > param.MaxLabelRunes {
		l = strings.TrimSpace(string(r[len(r)-param.MaxLabelRunes:]))
	}
	return l
}

func clipStart(l string) string {
	if r := []rune(l); len(r) > param.MaxLabelRunes {
		l = strings.TrimSpace(string(r[:param.MaxLabelRunes]))
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

func has(n *html.Node, key string) bool {
	_, ok := attr(n, key)
	return ok
}

// describe names an element in errors: <input type="radio" name="sys_param_1">.
func describe(n *html.Node) string {
	var b strings.Builder
	b.WriteString("<" + n.Data)
	for _, k := range []string{"type", "name"} {
		if v, ok := attr(n, k); ok {
			fmt.Fprintf(&b, " %s=%q", k, clipStart(strings.ToValidUTF8(v, "\uFFFD")))
		}
	}
	b.WriteString(">")
	return b.String()
}

func (p *parser) add(pm param.Param, n *html.Node) error {
	if i, dup := p.index[pm.Name]; dup {
		return fmt.Errorf("legacyform: %s: parameter %s declared twice (first by %s); a parameter has one control", describe(n), pm.Name, p.elems[i])
	}
	if len(p.params) >= param.MaxParams {
		return fmt.Errorf("legacyform: %s: more than %d parameters", describe(n), param.MaxParams)
	}
	p.index[pm.Name] = len(p.params)
	p.params = append(p.params, pm)
	p.elems = append(p.elems, describe(n))
	return nil
}

// maxLength returns the element's maxlength, 0 when absent or not a
// positive integer, capped at param.MaxLength.
func maxLength(n *html.Node) int {
	ml, _ := attr(n, "maxlength")
	v, err := strconv.Atoi(strings.TrimSpace(ml))
	if err != nil || v <= 0 {
		return 0
	}
	return min(v, param.MaxLength)
}

func (p *parser) input(n *html.Node) error {
	typ, _ := attr(n, "type")
	typ = strings.ToLower(strings.TrimSpace(typ))
	if typ == "hidden" {
		return p.hidden(n) // no label of its own; the text stays for the next control
	}
	p.endCapture()
	label := p.takeLabel()
	name, _ := attr(n, "name")
	if !ValidName(name) {
		return nil // not a module parameter: ignored, never preserved
	}
	value, _ := attr(n, "value")
	value = strings.ToValidUTF8(value, "\uFFFD")
	switch typ {
	case "radio":
		return p.radio(n, name, label, value)
	case "checkbox":
		return p.checkbox(n, name, label, value)
	case "number":
		return p.number(n, name, label, value)
	case "file":
		return fmt.Errorf("legacyform: %s: a file cannot be passed to a module", describe(n))
	case "password":
		return fmt.Errorf("legacyform: %s: a password input is not supported: parameter values are recorded with the run and shown in its history", describe(n))
	case "submit", "reset", "button", "image":
		return fmt.Errorf("legacyform: %s: a button is not a parameter; rename it or remove it", describe(n))
	case "date", "time", "datetime-local", "month", "week", "color", "range":
		return fmt.Errorf("legacyform: %s: input type %q is not supported (text, number, checkbox, radio and hidden inputs, textareas and selects are)", describe(n), typ)
	}
	// text, search, tel, url, email, and any type a browser does not know
	// (which it shows as text).
	pm := param.Param{Name: name, Label: label, Default: value}
	maxLen := maxLength(n)
	if (typ == "" || typ == "text") && !has(n, "inputmode") && maxLen >= 1 && maxLen <= 3 && isDigits(value) {
		v, _ := strconv.ParseInt(value, 10, 64)
		lo, hi := int64(1), pow10(maxLen)-1
		if v < lo {
			lo = v
		}
		pm.Type, pm.MaxLength, pm.Min, pm.Max = param.Number, maxLen, &lo, &hi
		return p.add(pm, n)
	}
	if maxLen == 0 {
		maxLen = DefaultMaxLength
	}
	pm.Type, pm.MaxLength = param.Text, maxLen
	return p.add(pm, n)
}

func (p *parser) number(n *html.Node, name, label, value string) error {
	pm := param.Param{Name: name, Label: label, Type: param.Number, Default: value, MaxLength: maxLength(n)}
	if pm.MaxLength == 0 {
		pm.MaxLength = numberMaxLength
	}
	var err error
	if pm.Min, err = intAttr(n, "min"); err != nil {
		return fmt.Errorf("legacyform: %s: %w", describe(n), err)
	}
	if pm.Max, err = intAttr(n, "max"); err != nil {
		return fmt.Errorf("legacyform: %s: %w", describe(n), err)
	}
	return p.add(pm, n)
}

func (p *parser) hidden(n *html.Node) error {
	name, _ := attr(n, "name")
	if !ValidName(name) {
		return nil
	}
	value, _ := attr(n, "value")
	value = strings.ToValidUTF8(value, "\uFFFD")
	return p.add(param.Param{Name: name, Type: param.Fixed, Value: value, Default: value}, n)
}

func (p *parser) checkbox(n *html.Node, name, label, value string) error {
	if !has(n, "value") {
		value = checkboxOn
	}
	if i, dup := p.index[name]; dup && p.params[i].Type == param.Boolean {
		return fmt.Errorf("legacyform: %s: several checkboxes named %s send several values; a parameter holds one", describe(n), name)
	}
	if value == "" {
		return fmt.Errorf("legacyform: %s: a checkbox with value=\"\" cannot be told from an unchecked one", describe(n))
	}
	pm := param.Param{Name: name, Label: label, Type: param.Boolean, Value: value}
	if has(n, "checked") {
		pm.Default = value
	}
	if err := p.add(pm, n); err != nil {
		return err
	}
	p.startCapture(n, len(p.params)-1, -1)
	return nil
}

func (p *parser) radio(n *html.Node, name, label, value string) error {
	if !has(n, "value") {
		value = checkboxOn
	}
	i, seen := p.index[name]
	if !seen {
		if err := p.add(param.Param{Name: name, Label: label, Type: param.Choice}, n); err != nil {
			return err
		}
		i = len(p.params) - 1
		p.radios[i] = true
	} else if !p.radios[i] {
		return fmt.Errorf("legacyform: %s: parameter %s declared twice (first by %s); only radio buttons may share a name", describe(n), name, p.elems[i])
	}
	pm := &p.params[i]
	option := -2 // a disabled or repeated button: its text labels nothing
	if !has(n, "disabled") {
		if has(n, "checked") {
			pm.Default = value
		}
		if _, dup := pm.Option(value); !dup {
			if len(pm.Options) >= param.MaxOptions {
				return fmt.Errorf("legacyform: %s: more than %d options", describe(n), param.MaxOptions)
			}
			pm.Options = append(pm.Options, param.Option{Value: value})
			option = len(pm.Options) - 1
		}
	}
	p.startCapture(n, i, option)
	return nil
}

func (p *parser) textarea(n *html.Node) error {
	label := p.takeLabel()
	name, _ := attr(n, "name")
	if !ValidName(name) {
		return nil
	}
	// The parser has dropped a newline right after <textarea> and turned
	// CR LF and CR into LF, as a browser does.
	pm := param.Param{Name: name, Label: label, Type: param.Text, Multiline: true,
		MaxLength: maxLength(n), Default: strings.ToValidUTF8(textOf(n), "\uFFFD")}
	if pm.MaxLength == 0 {
		pm.MaxLength = DefaultTextareaMaxLength
	}
	return p.add(pm, n)
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
	if has(n, "multiple") {
		return fmt.Errorf("legacyform: %s: a multiple select sends several values; a parameter holds one", describe(n))
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
				if has(c, "disabled") {
					continue
				}
				text := collapse(textOf(c))
				value, ok := attr(c, "value")
				if !ok {
					value = text // a browser submits the text when value is absent
				}
				value = strings.ToValidUTF8(value, "\uFFFD")
				if has(c, "selected") {
					selected, hasSelected = value, true
				}
				if seen[value] {
					continue
				}
				if len(pm.Options) >= param.MaxOptions {
					return fmt.Errorf("legacyform: %s: more than %d options", describe(n), param.MaxOptions)
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
		return fmt.Errorf("legacyform: %s: select has no options", describe(n))
	}
	pm.Default = pm.Options[0].Value
	if hasSelected {
		pm.Default = selected
	}
	return p.add(pm, n)
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
// Text, number and select controls render as they always have; a choice
// without default renders as a radio group, so that it stays without one.
func Render(params []param.Param) string {
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteString(" ")
		}
		name := html.EscapeString(p.Name)
		label := html.EscapeString(p.Label)
		switch p.Type {
		case param.Fixed:
			// A hidden input has no label.
			fmt.Fprintf(&b, `<input type="hidden" name="%s" id="%s" value="%s">`, name, name, html.EscapeString(p.Value))
			continue
		case param.Boolean:
			// Inside <label>, so that the text after it labels the next control.
			checked := ""
			if p.Default != "" {
				checked = " checked"
			}
			fmt.Fprintf(&b, `<label>%s<input type="checkbox" name="%s" id="%s" value="%s"%s></label>`, label, name, name, html.EscapeString(p.Value), checked)
			continue
		}
		b.WriteString(label)
		switch {
		case p.Type == param.Choice && p.Default == "" && !hasOption(p, ""):
			for _, o := range p.Options {
				fmt.Fprintf(&b, `<label><input type="radio" name="%s" value="%s"> %s</label>`, name, html.EscapeString(o.Value), html.EscapeString(o.Label))
			}
		case p.Type == param.Choice:
			fmt.Fprintf(&b, `<select name="%s" id="%s">`, name, name)
			for _, o := range p.Options {
				sel := ""
				if o.Value == p.Default {
					sel = " selected"
				}
				fmt.Fprintf(&b, ` <option value="%s"%s>%s</option>`, html.EscapeString(o.Value), sel, html.EscapeString(o.Label))
			}
			b.WriteString(` </select>`)
		case p.Type == param.Number:
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
		case p.Multiline:
			// The newline after the start tag is dropped by any parser, so a
			// default that starts with one keeps it.
			fmt.Fprintf(&b, `<textarea name="%s" id="%s" rows="4" cols="60" maxlength="%d">`+"\n"+`%s</textarea>`,
				name, name, p.MaxLength, html.EscapeString(p.Default))
		default:
			fmt.Fprintf(&b, `<input name="%s" id="%s" type="text" inputmode="text" size="20" maxlength="%d" value="%s">`,
				name, name, p.MaxLength, html.EscapeString(p.Default))
		}
	}
	return b.String()
}

func hasOption(p param.Param, v string) bool {
	_, ok := p.Option(v)
	return ok
}
