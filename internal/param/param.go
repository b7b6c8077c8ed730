// Package param is the one parameter schema of a task module: what the
// master's module files declare (internal/module), what a legacy
// module_extend form is parsed into (internal/legacyform), what the web
// tier stores, shows and checks a run request against, and what the master
// checks again before anything runs.
//
// A Schema is the ordered list of a module's parameters. Schema.Check says
// whether a declaration is self-consistent; Schema.Validate checks submitted
// values against it and returns them normalised, defaults filled in. Every
// refused value is an error wrapping task.ErrInvalidParams.
//
// The JSON form of Param is what the store persists (module_list.
// module_params) and what the JSON API sends: field names only ever grow.
// Option.Vars, module-authored command text, is never part of it.
package param

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/task"
)

// Type is the kind of a parameter.
type Type string

// The parameter types.
const (
	// Text is free text up to MaxLength characters, optionally matching
	// Pattern. Control characters are refused; with Multiline, line feeds
	// are allowed (a CR LF pair is normalised to LF).
	Text Type = "text"
	// Number is a base-10 integer within [Min, Max] (either may be open).
	Number Type = "number"
	// Choice is one of Options. Its name is "select", as stored rows and
	// API clients have always had it; module files may write "choice".
	Choice Type = "select"
	// Boolean is a checkbox: Value when checked, "" when not.
	Boolean Type = "boolean"
	// Fixed accepts only Value (a legacy form's hidden input).
	Fixed Type = "fixed"
)

// ParseType returns the type called s, accepting "choice" for Choice.
func ParseType(s string) (Type, bool) {
	switch t := Type(s); t {
	case Text, Number, Choice, Boolean, Fixed:
		return t, true
	case "choice":
		return Choice, true
	}
	return "", false
}

// TypeNames lists the type names for messages.
const TypeNames = "text, number, choice (or select), boolean or fixed"

// Limits of a schema and of the values submitted for it, shared with the
// task every tier checks.
const (
	MaxParams     = task.MaxParams     // parameters per module
	MaxValueBytes = task.MaxParamBytes // bytes of one submitted value
	MaxLength     = task.MaxParamBytes // the largest max_length, in characters
	MaxNameBytes  = 64                 // a parameter name, [A-Za-z_][A-Za-z0-9_]*
	MaxLabelRunes = 255                // a label or option label
	MaxOptions    = 1000               // options of one choice
	MaxPatternLen = 1024               // bytes of a text pattern
	maxDigits     = 19                 // any int64 in base 10
)

// Option is one value of a choice parameter.
type Option struct {
	Value string `json:"value"`
	Label string `json:"label"`
	// Vars are named pieces of command text the module author attached to
	// this option (module files only). Never sent to a client.
	Vars map[string]string `json:"-"`
}

// Param declares one parameter. The field order is the JSON order stored
// rows and API answers have; new fields go after Max, omitted when zero.
type Param struct {
	Name      string   `json:"name"`
	Label     string   `json:"label"`
	Type      Type     `json:"type"`
	MaxLength int      `json:"max_length,omitempty"` // Text: required; Number: optional bound on the digits
	Default   string   `json:"default,omitempty"`    // "" means none
	Options   []Option `json:"options,omitempty"`    // Choice only
	Min       *int64   `json:"min,omitempty"`        // Number only
	Max       *int64   `json:"max,omitempty"`        // Number only
	Multiline bool     `json:"multiline,omitempty"`  // Text only: line feeds allowed
	Pattern   string   `json:"pattern,omitempty"`    // Text only: RE2, anchored at both ends
	// Required: a request must give a value; without it a missing value
	// takes Default, or "" when there is none.
	Required bool `json:"required,omitempty"`
	// Value: Boolean's value when checked; Fixed's only value.
	Value string `json:"value,omitempty"`
}

// Schema is a module's parameters in form order.
type Schema []Param

// Lookup returns the parameter called name.
func (s Schema) Lookup(name string) (*Param, bool) {
	for i := range s {
		if s[i].Name == name {
			return &s[i], true
		}
	}
	return nil, false
}

// ValidName reports whether name can name a parameter:
// [A-Za-z_][A-Za-z0-9_]* of at most MaxNameBytes bytes.
func ValidName(name string) bool {
	if name == "" || len(name) > MaxNameBytes {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Check reports the first inconsistency of the declaration: bad or
// duplicate names, too many parameters, fields that do not belong to a
// type, limits out of range, a default or value its own parameter would
// refuse.
func (s Schema) Check() error {
	if len(s) > MaxParams {
		return fmt.Errorf("%d parameters is more than the limit of %d", len(s), MaxParams)
	}
	seen := make(map[string]bool, len(s))
	for i := range s {
		if err := s[i].checkDecl(); err != nil {
			return err
		}
		if seen[s[i].Name] {
			return fmt.Errorf("parameter %s declared twice", s[i].Name)
		}
		seen[s[i].Name] = true
	}
	return nil
}

// checkDecl reports the first inconsistency of one parameter's declaration.
func (p *Param) checkDecl() error {
	if !ValidName(p.Name) {
		return fmt.Errorf("parameter name %.64q is not a name like sys_param_1 ([A-Za-z_][A-Za-z0-9_]*, at most %d bytes)", p.Name, MaxNameBytes)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: "+format, append([]any{p.Name}, args...)...)
	}
	if utf8.RuneCountInString(p.Label) > MaxLabelRunes {
		return fail("label longer than %d characters", MaxLabelRunes)
	}
	has := map[string]bool{
		"max_length": p.MaxLength != 0, "options": len(p.Options) > 0, "min": p.Min != nil, "max": p.Max != nil,
		"multiline": p.Multiline, "pattern": p.Pattern != "", "value": p.Value != "",
	}
	allowed := map[Type][]string{
		Text:    {"max_length", "multiline", "pattern"},
		Number:  {"max_length", "min", "max"},
		Choice:  {"options"},
		Boolean: {"value"},
		Fixed:   {"value"},
	}
	fields, ok := allowed[p.Type]
	if !ok {
		return fail("unknown type %.32q (%s)", p.Type, TypeNames)
	}
	for _, f := range fields {
		delete(has, f)
	}
	for _, f := range []string{"max_length", "options", "min", "max", "multiline", "pattern", "value"} {
		if has[f] {
			return fail("a %s parameter has no %s", p.Type, f)
		}
	}
	switch p.Type {
	case Text:
		if p.MaxLength < 1 || p.MaxLength > MaxLength {
			return fail("max length %d outside 1..%d", p.MaxLength, MaxLength)
		}
		if _, err := compilePattern(p.Pattern); err != nil {
			return fail("pattern: %v", err)
		}
	case Number:
		if p.MaxLength < 0 || p.MaxLength > MaxLength {
			return fail("max length %d outside 0..%d (0: no limit)", p.MaxLength, MaxLength)
		}
		if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
			return fail("min %d is greater than max %d", *p.Min, *p.Max)
		}
	case Choice:
		if len(p.Options) == 0 {
			return fail("a choice has no options; it needs at least one")
		}
		if len(p.Options) > MaxOptions {
			return fail("%d options is more than the limit of %d", len(p.Options), MaxOptions)
		}
		seen := make(map[string]bool, len(p.Options))
		for _, o := range p.Options {
			if seen[o.Value] {
				return fail("option %.64q listed twice", o.Value)
			}
			seen[o.Value] = true
			if len(o.Value) > MaxValueBytes || !utf8.ValidString(o.Value) {
				return fail("option %.64q: a value must be valid UTF-8 of at most %d bytes", o.Value, MaxValueBytes)
			}
			if utf8.RuneCountInString(o.Label) > MaxLabelRunes {
				return fail("option %.64q: label longer than %d characters", o.Value, MaxLabelRunes)
			}
		}
	case Boolean, Fixed:
		if p.Type == Boolean && p.Value == "" {
			return fail("a boolean needs the value it carries when checked")
		}
		if !utf8.ValidString(p.Value) || len(p.Value) > MaxValueBytes {
			return fail("value: must be valid UTF-8 of at most %d bytes", MaxValueBytes)
		}
		if err := singleLine(p.Value); err != nil {
			return fail("value: %v", err)
		}
		if p.Type == Fixed && p.Default != p.Value {
			return fail("a fixed parameter's default must be its value %.64q", p.Value)
		}
	}
	if p.Required && p.Default != "" {
		return fail("a parameter with a default is not required")
	}
	if p.Default != "" {
		if _, err := p.normalise(p.Default); err != nil {
			return fail("default: %v", err)
		}
	}
	return nil
}

// ValueError is one refused value. It wraps task.ErrInvalidParams.
type ValueError struct {
	Param string // the parameter's name, or the undeclared name given
	Msg   string // why, for the person who sent it
}

func (e *ValueError) Error() string { return fmt.Sprintf("parameter %.64q: %s", e.Param, e.Msg) }

// Unwrap makes errors.Is(err, task.ErrInvalidParams) hold.
func (e *ValueError) Unwrap() error { return task.ErrInvalidParams }

// Validate checks submitted values against the schema and returns the
// normalised value of every declared parameter. A missing value takes the
// default; without one it is refused when the parameter is Required, and
// checked as "" otherwise (so a legacy text input without value may stay
// empty, as in a browser). The error, when not nil, wraps
// task.ErrInvalidParams and names each refused parameter and why.
func (s Schema) Validate(in map[string]string) (map[string]string, error) {
	if len(in) > MaxParams {
		return nil, fmt.Errorf("%w: %d parameters is more than the limit of %d", task.ErrInvalidParams, len(in), MaxParams)
	}
	var errs []error
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := s.Lookup(k); !ok {
			errs = append(errs, fmt.Errorf("unknown parameter %.64q: the module declares %s", k, s.names()))
		}
	}
	out := make(map[string]string, len(s))
	for i := range s {
		p := &s[i]
		v, given := in[p.Name]
		if !given {
			if p.Default == "" && p.Required {
				errs = append(errs, &ValueError{Param: p.Name, Msg: "missing and has no default"})
				continue
			}
			v = p.Default
		}
		norm, err := p.normalise(v)
		if err != nil {
			if !given && v == "" {
				err = errors.New("missing and has no default")
			}
			errs = append(errs, &ValueError{Param: p.Name, Msg: err.Error()})
			continue
		}
		out[p.Name] = norm
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", task.ErrInvalidParams, errors.Join(errs...))
	}
	return out, nil
}

func (s Schema) names() string {
	if len(s) == 0 {
		return "no parameters"
	}
	n := make([]string, len(s))
	for i, p := range s {
		n[i] = p.Name
	}
	return strings.Join(n, ", ")
}

// Check validates one submitted value. The error reads
// "<name>: invalid module parameters: <why>" and wraps
// task.ErrInvalidParams.
func (p *Param) Check(v string) error {
	if _, err := p.normalise(v); err != nil {
		return fmt.Errorf("%s: %w: %w", p.Name, task.ErrInvalidParams, err)
	}
	return nil
}

// Normalise validates one submitted value and returns it as it is passed
// on: a number in canonical form, a multi-line text with LF line ends. The
// error is a *ValueError.
func (p *Param) Normalise(v string) (string, error) {
	norm, err := p.normalise(v)
	if err != nil {
		return "", &ValueError{Param: p.Name, Msg: err.Error()}
	}
	return norm, nil
}

// Option returns the option whose value is v.
func (p *Param) Option(v string) (*Option, bool) {
	for i := range p.Options {
		if p.Options[i].Value == v {
			return &p.Options[i], true
		}
	}
	return nil, false
}

func (p *Param) normalise(v string) (string, error) {
	if !utf8.ValidString(v) {
		return "", errors.New("not valid UTF-8")
	}
	if len(v) > MaxValueBytes {
		return "", fmt.Errorf("%d bytes is more than the limit of %d", len(v), MaxValueBytes)
	}
	switch p.Type {
	case Text:
		if p.Multiline {
			v = strings.ReplaceAll(v, "\r\n", "\n")
			if err := multiLine(v); err != nil {
				return "", err
			}
		} else if err := singleLine(v); err != nil {
			return "", err
		}
		if n := utf8.RuneCountInString(v); n > p.MaxLength {
			return "", fmt.Errorf("%d characters is more than max_length %d", n, p.MaxLength)
		}
		re, err := compilePattern(p.Pattern)
		if err != nil {
			return "", err
		}
		if re != nil && !re.MatchString(v) {
			return "", fmt.Errorf("%.64q does not match the pattern %s", v, p.Pattern)
		}
		return v, nil
	case Number:
		if p.MaxLength > 0 && len(v) > p.MaxLength {
			return "", fmt.Errorf("%.64q is longer than %d characters", v, p.MaxLength)
		}
		n, ok := parseDecimal(v)
		if !ok {
			return "", fmt.Errorf("%.64q is not a base-10 integer", v)
		}
		if p.Min != nil && n < *p.Min {
			return "", fmt.Errorf("%d is less than the minimum %d", n, *p.Min)
		}
		if p.Max != nil && n > *p.Max {
			return "", fmt.Errorf("%d is more than the maximum %d", n, *p.Max)
		}
		return strconv.FormatInt(n, 10), nil
	case Choice:
		if _, ok := p.Option(v); !ok {
			return "", fmt.Errorf("%.64q is not one of the options %s", v, p.optionList())
		}
		return v, nil
	case Boolean:
		if v != "" && v != p.Value {
			return "", fmt.Errorf("%.64q is neither %.64q (checked) nor \"\" (not checked)", v, p.Value)
		}
		return v, nil
	case Fixed:
		if v != p.Value {
			return "", fmt.Errorf("%.64q is not the fixed value %.64q", v, p.Value)
		}
		return v, nil
	}
	return "", fmt.Errorf("unknown type %.32q", p.Type)
}

// singleLine refuses control characters and Unicode line and paragraph
// separators: nothing a one-line value holds.
func singleLine(v string) error {
	if HasControl(v) {
		return errors.New("contains a control character or line break")
	}
	return nil
}

// multiLine allows line feeds and refuses every other control character.
func multiLine(v string) error {
	if strings.ContainsFunc(v, func(r rune) bool { return r != '\n' && isControl(r) }) {
		return errors.New("contains a control character other than a line feed")
	}
	return nil
}

// HasControl reports control characters and Unicode line/paragraph
// separators in s.
func HasControl(s string) bool { return strings.ContainsFunc(s, isControl) }

func isControl(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }

// parseDecimal accepts an optional minus sign and 1..19 ASCII digits.
func parseDecimal(v string) (int64, bool) {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" || len(digits) > maxDigits {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

func (p *Param) optionList() string {
	vals := make([]string, 0, min(len(p.Options), 20))
	for i, o := range p.Options {
		if i == 20 {
			vals = append(vals, "…")
			break
		}
		vals = append(vals, o.Value)
	}
	return fmt.Sprintf("%q", vals)
}

// CompilePattern compiles a text pattern anchored at both ends; "" gives nil.
func CompilePattern(p string) (*regexp.Regexp, error) { return compilePattern(p) }

func compilePattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, nil
	}
	if len(p) > MaxPatternLen {
		return nil, fmt.Errorf("pattern longer than %d bytes", MaxPatternLen)
	}
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return nil, fmt.Errorf("not a valid RE2 pattern: %w", err)
	}
	return re, nil
}
