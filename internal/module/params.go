package module

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/backend"
)

// ValidateParams checks in against the declared parameters and returns the
// normalised values of every parameter, defaults filled in. The error,
// when not nil, wraps ErrInvalidParams and names each refused parameter
// and why.
func (s *Spec) ValidateParams(in map[string]string) (map[string]string, error) {
	var errs []error
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := s.Param(k); !ok {
			errs = append(errs, fmt.Errorf("unknown parameter %.64q: module %d does not declare it", k, s.ID))
		}
	}
	out := make(map[string]string, len(s.Params))
	for i := range s.Params {
		p := &s.Params[i]
		v, ok := in[p.Name]
		if !ok {
			if p.Default == "" {
				errs = append(errs, fmt.Errorf("parameter %q: missing and has no default", p.Name))
				continue
			}
			v = p.Default
		}
		norm, err := p.validate(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[p.Name] = norm
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidParams, errors.Join(errs...))
	}
	return out, nil
}

// validate checks one value and returns it normalised.
func (p *Param) validate(v string) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("parameter %q: "+format, append([]any{p.Name}, args...)...)
	}
	switch p.Type {
	case TypeChoice:
		if _, ok := p.option(v); !ok {
			return fail("%.64q is not one of the options %s", v, p.optionList())
		}
		return v, nil
	case TypeNumber:
		n, ok := parseDecimal(v)
		if !ok {
			return fail("%.64q is not a base-10 integer", v)
		}
		if (p.Min != nil && n < *p.Min) || (p.Max != nil && n > *p.Max) {
			return fail("%d is outside %s", n, p.rangeText())
		}
		return strconv.FormatInt(n, 10), nil
	case TypeText:
		if !utf8.ValidString(v) {
			return fail("not valid UTF-8")
		}
		if hasControl(v) {
			return fail("contains a control character or line break")
		}
		if n := utf8.RuneCountInString(v); p.MaxLength <= 0 || n > p.MaxLength {
			return fail("%d characters is more than max_length %d", n, p.MaxLength)
		}
		re, err := compilePattern(p.Pattern)
		if err != nil {
			return fail("%v", err)
		}
		if re != nil && !re.MatchString(v) {
			return fail("%.64q does not match the pattern %s", v, p.Pattern)
		}
		return v, nil
	}
	return fail("unknown type %q", p.Type)
}

// parseDecimal accepts an optional minus sign and 1..19 ASCII digits.
func parseDecimal(v string) (int64, bool) {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" || len(digits) > 19 {
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

func (p *Param) option(v string) (*Option, bool) {
	for i := range p.Options {
		if p.Options[i].Value == v {
			return &p.Options[i], true
		}
	}
	return nil, false
}

func (p *Param) optionList() string {
	vals := make([]string, len(p.Options))
	for i, o := range p.Options {
		vals[i] = o.Value
	}
	return fmt.Sprintf("%q", vals)
}

func (p *Param) rangeText() string {
	lo, hi := "-inf", "+inf"
	if p.Min != nil {
		lo = strconv.FormatInt(*p.Min, 10)
	}
	if p.Max != nil {
		hi = strconv.FormatInt(*p.Max, 10)
	}
	return "[" + lo + ", " + hi + "]"
}

// Expand validates params and expands the module's steps. Parameter values
// reach commands only single-quoted; copy sources become absolute paths in
// the modules directory. On any error no step is returned.
func (s *Spec) Expand(params map[string]string) ([]backend.Step, error) {
	values, err := s.ValidateParams(params)
	if err != nil {
		return nil, err
	}
	vars := make(map[string]map[string]string)
	for i := range s.Params {
		p := &s.Params[i]
		if p.Type == TypeChoice {
			o, _ := p.option(values[p.Name])
			vars[p.Name] = o.Vars
		}
	}
	steps := make([]backend.Step, 0, len(s.Steps))
	for i, st := range s.Steps {
		var out backend.Step
		if st.Run != "" {
			segs, err := parseTemplate(st.Run)
			if err != nil {
				return nil, fmt.Errorf("module %d step %d run: %w", s.ID, i, err)
			}
			if out.Command, err = render(segs, values, vars, true); err != nil {
				return nil, fmt.Errorf("module %d step %d run: %w", s.ID, i, err)
			}
		}
		if st.Copy != nil {
			src, err := renderPath(st.Copy.Src, values, vars)
			if err != nil {
				return nil, fmt.Errorf("module %d step %d copy src: %w", s.ID, i, err)
			}
			if !filepath.IsLocal(src) {
				return nil, fmt.Errorf("module %d step %d copy src: %q leaves the modules directory", s.ID, i, src)
			}
			dest, err := renderPath(st.Copy.Dest, values, vars)
			if err != nil {
				return nil, fmt.Errorf("module %d step %d copy dest: %w", s.ID, i, err)
			}
			if err := checkDest(dest); err != nil {
				return nil, fmt.Errorf("module %d step %d copy dest: %w", s.ID, i, err)
			}
			out.Copy = &backend.Copy{Src: filepath.Join(s.Dir(), src), Dest: dest, Mode: st.Copy.Mode}
		}
		steps = append(steps, out)
	}
	return steps, nil
}

func renderPath(t string, values map[string]string, vars map[string]map[string]string) (string, error) {
	segs, err := parseTemplate(t)
	if err != nil {
		return "", err
	}
	return render(segs, values, vars, false)
}
