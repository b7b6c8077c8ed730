package module

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/task"
)

// Limits of a module file, beyond the original schema's column sizes.
const (
	maxNameRunes    = 20  // module_list.module_name char(20)
	maxCaptionRunes = 255 // module_list.module_caption char(255)
	maxLabelRunes   = 64
	maxOptions      = 256
	maxSteps        = 32
	maxVarBytes     = 8192
	maxTimeout      = 24 * time.Hour
	maxCombinations = 4096 // option combinations checked per template
)

// knownBackend reports whether a module may force the backend called name.
func knownBackend(name string) bool {
	switch name {
	case "ssh", "local", "ansible", "salt", "func":
		return true
	}
	return false
}

// checker converts a rawSpec into a Spec, collecting every problem.
type checker struct {
	file string
	dir  string // absolute modules directory
	errs []error
}

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{File: c.file, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) spec(raw *rawSpec) *Spec {
	s := &Spec{Name: raw.Name, Caption: raw.Caption, Backend: raw.Backend, Risky: raw.Risky}
	switch {
	case raw.ID == nil:
		c.add("id", "required")
	case *raw.ID <= 0:
		c.add("id", "%d is not a positive integer", *raw.ID)
	default:
		s.ID = *raw.ID
	}
	c.text("name", raw.Name, maxNameRunes, true)
	c.text("caption", raw.Caption, maxCaptionRunes, false)
	if raw.Backend != "" && !knownBackend(raw.Backend) {
		c.add("backend", "%q is not one of ssh, local, ansible, salt, func", raw.Backend)
	}
	if raw.Timeout != "" {
		d, err := time.ParseDuration(raw.Timeout)
		switch {
		case err != nil:
			c.add("timeout", "%q is not a duration like 60s or 5m", raw.Timeout)
		case d <= 0 || d > maxTimeout:
			c.add("timeout", "%s is outside (0, %s]", d, maxTimeout)
		default:
			s.Timeout = d
		}
	}
	s.ReadOnly = raw.ReadOnly
	switch raw.Lock {
	case "", LockWait:
		s.Lock = LockWait
	case LockRefuse:
		s.Lock = LockRefuse
	default:
		c.add("lock", "%q is not wait or refuse", raw.Lock)
	}
	s.LockWait = DefaultLockWait
	if raw.LockWait != "" {
		d, err := time.ParseDuration(raw.LockWait)
		switch {
		case err != nil:
			c.add("lock_wait", "%q is not a duration like 60s or 5m", raw.LockWait)
		case d <= 0 || d > maxTimeout:
			c.add("lock_wait", "%s is outside (0, %s]", d, maxTimeout)
		default:
			s.LockWait = d
		}
	}
	if raw.MaxHosts != nil {
		if *raw.MaxHosts < 1 || *raw.MaxHosts > task.MaxHosts {
			c.add("max_hosts", "%d is outside 1..%d", *raw.MaxHosts, task.MaxHosts)
		} else {
			s.MaxHosts = *raw.MaxHosts
		}
	}
	if raw.Rollout != nil {
		s.Rollout = c.rollout(raw.Rollout)
	}
	if len(raw.Params) > task.MaxParams {
		c.add("params", "%d parameters is more than the limit of %d", len(raw.Params), task.MaxParams)
	}
	declared := map[string]bool{}
	for _, rp := range raw.Params {
		declared[rp.Name] = true
	}
	seen := map[string]bool{}
	for i := range raw.Params {
		p, ok := c.param(fmt.Sprintf("params[%d]", i), &raw.Params[i])
		if !ok {
			continue
		}
		if seen[p.Name] {
			c.add(fmt.Sprintf("params[%d].name", i), "parameter %q declared twice", p.Name)
			continue
		}
		seen[p.Name] = true
		s.Params = append(s.Params, p)
	}
	if len(c.errs) == 0 {
		// The loader's own checks are stricter; this keeps every loaded
		// module within the schema the other tiers accept.
		if err := s.Params.Check(); err != nil {
			c.add("params", "%v", err)
		}
	}
	if len(raw.Steps) == 0 {
		c.add("steps", "at least one step is required")
	}
	if len(raw.Steps) > maxSteps {
		c.add("steps", "%d steps is more than the limit of %d", len(raw.Steps), maxSteps)
	}
	for i := range raw.Steps {
		if st, ok := c.step(fmt.Sprintf("steps[%d]", i), &raw.Steps[i], s, declared); ok {
			s.Steps = append(s.Steps, st)
		}
	}
	return s
}

// text checks a human-readable single-line field.
func (c *checker) text(field, v string, maxRunes int, required bool) {
	switch {
	case required && strings.TrimSpace(v) == "":
		c.add(field, "required")
	case !utf8.ValidString(v):
		c.add(field, "not valid UTF-8")
	case utf8.RuneCountInString(v) > maxRunes:
		c.add(field, "%d characters is more than the limit of %d", utf8.RuneCountInString(v), maxRunes)
	case hasControl(v):
		c.add(field, "contains a control character or line break")
	}
}

func (c *checker) param(field string, rp *rawParam) (param.Param, bool) {
	n := len(c.errs)
	typ, known := param.ParseType(rp.Type)
	p := param.Param{Name: rp.Name, Label: rp.Label, Type: typ, Min: rp.Min, Max: rp.Max, Pattern: rp.Pattern}
	if !isIdent(rp.Name) {
		c.add(field+".name", "%q is not a name like sys_param_1 ([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes)", rp.Name)
	}
	c.text(field+".label", rp.Label, maxLabelRunes, false)
	notFor := func(key string, present bool) {
		if present {
			c.add(field+"."+key, "not allowed for type %s", rp.Type)
		}
	}
	if typ != param.Text {
		notFor("multiline", rp.Multiline != nil)
	}
	if typ != param.Boolean && typ != param.Fixed {
		notFor("value", rp.Value != nil)
	}
	switch {
	case !known:
		c.add(field+".type", "%q is not number, text, choice, boolean or fixed", rp.Type)
	case typ == param.Number:
		notFor("pattern", rp.Pattern != "")
		notFor("max_length", rp.MaxLength != nil)
		notFor("options", rp.Options != nil)
		if rp.Min == nil {
			c.add(field+".min", "required for a number")
		}
		if rp.Max == nil {
			c.add(field+".max", "required for a number")
		}
		if rp.Min != nil && rp.Max != nil && *rp.Min > *rp.Max {
			c.add(field+".max", "max %d is less than min %d", *rp.Max, *rp.Min)
		}
	case typ == param.Text:
		notFor("min", rp.Min != nil)
		notFor("max", rp.Max != nil)
		notFor("options", rp.Options != nil)
		switch {
		case rp.MaxLength == nil:
			c.add(field+".max_length", "required for text")
		case *rp.MaxLength < 1 || *rp.MaxLength > param.MaxLength:
			c.add(field+".max_length", "%d is outside 1..%d", *rp.MaxLength, param.MaxLength)
		default:
			p.MaxLength = *rp.MaxLength
		}
		if _, err := param.CompilePattern(rp.Pattern); err != nil {
			c.add(field+".pattern", "%v", err)
		}
		p.Multiline = rp.Multiline != nil && *rp.Multiline
	case typ == param.Boolean || typ == param.Fixed:
		notFor("min", rp.Min != nil)
		notFor("max", rp.Max != nil)
		notFor("pattern", rp.Pattern != "")
		notFor("max_length", rp.MaxLength != nil)
		notFor("options", rp.Options != nil)
		switch {
		case rp.Value == nil:
			c.add(field+".value", "required for %s", rp.Type)
		case typ == param.Boolean && *rp.Value == "":
			c.add(field+".value", "empty: a boolean sends its value when checked and \"\" when not, so the value must not be empty")
		case !utf8.ValidString(*rp.Value) || len(*rp.Value) > param.MaxValueBytes || hasControl(*rp.Value):
			c.add(field+".value", "must be UTF-8 text of at most %d bytes without control characters or line breaks", param.MaxValueBytes)
		default:
			p.Value = *rp.Value
		}
		if typ == param.Fixed {
			notFor("default", rp.Default != nil)
			p.Default = p.Value
		}
	case typ == param.Choice:
		notFor("min", rp.Min != nil)
		notFor("max", rp.Max != nil)
		notFor("pattern", rp.Pattern != "")
		notFor("max_length", rp.MaxLength != nil)
		c.options(field, rp, &p)
	}
	switch {
	case typ == param.Fixed:
		// Its value is its default.
	case rp.Default == nil:
		// A boolean without default is unchecked; anything else is required.
		p.Required = typ != param.Boolean
	case *rp.Default == "":
		c.add(field+".default", "empty; omit default to make the parameter required (a boolean: unchecked)")
	case len(c.errs) == n:
		p.Default = *rp.Default
		if _, err := p.Normalise(p.Default); err != nil {
			c.add(field+".default", "%v", err)
		}
	}
	return p, len(c.errs) == n
}

func (c *checker) options(field string, rp *rawParam, p *param.Param) {
	if len(rp.Options) == 0 {
		c.add(field+".options", "a choice needs at least one option")
	}
	if len(rp.Options) > maxOptions {
		c.add(field+".options", "%d options is more than the limit of %d", len(rp.Options), maxOptions)
	}
	seen := map[string]bool{}
	for i, ro := range rp.Options {
		of := fmt.Sprintf("%s.options[%d]", field, i)
		if ro.Value == nil || *ro.Value == "" {
			c.add(of+".value", "required")
			continue
		}
		v := *ro.Value
		c.text(of+".value", v, maxLabelRunes, true)
		if seen[v] {
			c.add(of+".value", "%q listed twice", v)
		}
		seen[v] = true
		c.text(of+".label", ro.Label, maxLabelRunes, false)
		for k, val := range ro.Vars {
			if !isIdent(k) {
				c.add(of+".vars", "%q is not a var name ([A-Za-z_][A-Za-z0-9_]*)", k)
			}
			if len(val) > maxVarBytes || !utf8.ValidString(val) || strings.ContainsFunc(val, func(r rune) bool {
				// Also keeps NUL, SOH and STX, the loader's placeholders, out.
				return unicode.IsControl(r) && r != '\n' && r != '\t'
			}) {
				c.add(of+".vars."+k, "must be UTF-8 text of at most %d bytes without control characters other than newline and tab", maxVarBytes)
			}
		}
		p.Options = append(p.Options, param.Option{Value: v, Label: ro.Label, Vars: ro.Vars})
	}
}

func (c *checker) step(field string, rs *rawStep, s *Spec, declared map[string]bool) (StepSpec, bool) {
	n := len(c.errs)
	var st StepSpec
	if rs.Run == nil && rs.Copy == nil {
		c.add(field, "a step needs run, copy, or both")
		return st, false
	}
	if rs.Run != nil {
		st.Run = *rs.Run
		if strings.TrimSpace(st.Run) == "" {
			c.add(field+".run", "empty command")
		} else if strings.ContainsAny(st.Run, "\x00\x01\x02") {
			c.add(field+".run", "contains a NUL, SOH or STX byte")
		} else if segs, ok := c.template(field+".run", st.Run, s, declared, true); ok {
			c.combinations(field+".run", segs, s, func(cmd string) error {
				if err := checkPlacement(cmd); err != nil {
					return fmt.Errorf("%v", err)
				}
				return nil
			})
		}
	}
	if rs.Copy != nil {
		cp := &CopySpec{Src: rs.Copy.Src, Dest: rs.Copy.Dest, Mode: 0o644}
		st.Copy = cp
		if rs.Copy.Mode != "" {
			m, err := strconv.ParseUint(rs.Copy.Mode, 8, 32)
			if err != nil || m > 0o777 || !strings.HasPrefix(rs.Copy.Mode, "0") {
				c.add(field+".copy.mode", "%q is not an octal permission like \"0644\" (at most 0777)", rs.Copy.Mode)
			} else {
				cp.Mode = os.FileMode(m)
			}
		}
		if cp.Src == "" {
			c.add(field+".copy.src", "required")
		} else if segs, ok := c.template(field+".copy.src", cp.Src, s, declared, false); ok {
			c.combinations(field+".copy.src", segs, s, c.checkSrc)
		}
		if cp.Dest == "" {
			c.add(field+".copy.dest", "required")
		} else if segs, ok := c.template(field+".copy.dest", cp.Dest, s, declared, false); ok {
			c.combinations(field+".copy.dest", segs, s, checkDest)
		}
	}
	return st, len(c.errs) == n
}

// template parses t and checks every reference against the declared
// parameters; plain references are allowed only when plainOK.
func (c *checker) template(field, t string, s *Spec, declared map[string]bool, plainOK bool) ([]segment, bool) {
	segs, err := parseTemplate(t)
	if err != nil {
		c.add(field, "%v", err)
		return nil, false
	}
	ok := true
	for _, sg := range segs {
		if !sg.ref {
			continue
		}
		p, found := s.Param(sg.param)
		if !found {
			if !declared[sg.param] {
				c.add(field, "{{%s}} refers to an undeclared parameter", sg.param)
			}
			ok = false
			continue
		}
		if sg.vr == "" {
			if !plainOK {
				c.add(field, "{{%s}}: a parameter value cannot be used in a copy path; use a choice var like {{%s.file}}", sg.param, sg.param)
				ok = false
			}
			continue
		}
		if p.Type != param.Choice {
			c.add(field, "{{%s.%s}}: only a choice parameter has vars; %s is %s", sg.param, sg.vr, sg.param, p.Type)
			ok = false
			continue
		}
		for _, o := range p.Options {
			if _, has := o.Vars[sg.vr]; !has {
				c.add(field, "{{%s.%s}}: option %q has no var %q", sg.param, sg.vr, o.Value, sg.vr)
				ok = false
			}
		}
	}
	return segs, ok
}

// combinations renders segs for every combination of the options of the
// choice parameters whose vars it uses (plain references become
// placeholder) and reports what check says about each.
func (c *checker) combinations(field string, segs []segment, s *Spec, check func(string) error) {
	var choices []*param.Param
	seen := map[string]bool{}
	total := 1
	for _, sg := range segs {
		if sg.ref && sg.vr != "" && !seen[sg.param] {
			seen[sg.param] = true
			p, _ := s.Param(sg.param)
			choices = append(choices, p)
			total *= len(p.Options)
			if total > maxCombinations {
				c.add(field, "uses vars of more than %d option combinations; split the module", maxCombinations)
				return
			}
		}
	}
	values := map[string]string{}
	vars := map[string]map[string]string{}
	reported := map[string]bool{}
	var walk func(k int)
	walk = func(k int) {
		if k < len(choices) {
			for _, o := range choices[k].Options {
				values[choices[k].Name] = o.Value
				vars[choices[k].Name] = o.Vars
				walk(k + 1)
			}
			return
		}
		var b strings.Builder
		for _, sg := range segs {
			switch {
			case !sg.ref:
				b.WriteString(sg.lit)
			case sg.vr != "":
				b.WriteString(vars[sg.param][sg.vr])
			default:
				switch p, _ := s.Param(sg.param); {
				case p.Type == param.Text && p.Multiline:
					b.WriteRune(multiPlaceholder)
				case p.Type == param.Text:
					b.WriteRune(textPlaceholder)
				default:
					b.WriteRune(placeholder)
				}
			}
		}
		if err := check(b.String()); err != nil && !reported[err.Error()] {
			reported[err.Error()] = true
			where := ""
			if len(choices) > 0 {
				var parts []string
				for _, p := range choices {
					parts = append(parts, p.Name+"="+values[p.Name])
				}
				where = " (with " + strings.Join(parts, ", ") + ")"
			}
			c.add(field, "%v%s", err, where)
		}
	}
	walk(0)
}

// checkSrc requires a copy source to be a regular file inside the modules
// directory, symlinks resolved.
func (c *checker) checkSrc(src string) error {
	if !filepath.IsLocal(src) || strings.ContainsRune(src, '\\') {
		return fmt.Errorf("%q must be a relative path inside the modules directory (no absolute path, no ..)", src)
	}
	full := filepath.Join(c.dir, src)
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return fmt.Errorf("%q: %w", src, err)
	}
	realDir, err := filepath.EvalSymlinks(c.dir)
	if err != nil {
		return fmt.Errorf("modules directory: %w", err)
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("%q resolves to %s, outside the modules directory", src, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("%q: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%q is not a regular file", src)
	}
	return nil
}

// checkDest requires an absolute, clean POSIX path on the target.
func checkDest(dest string) error {
	if !path.IsAbs(dest) || path.Clean(dest) != dest || dest == "/" {
		return fmt.Errorf("%q must be an absolute, clean file path on the target", dest)
	}
	if hasControl(dest) {
		return fmt.Errorf("%q contains a control character", dest)
	}
	return nil
}

// hasControl reports control characters and Unicode line/paragraph
// separators: nothing a single-line value should hold.
func hasControl(s string) bool { return param.HasControl(s) }

// countOrPercent reads "5" or "10%".
func countOrPercent(v string) (n int, pct bool, err error) {
	v = strings.TrimSpace(v)
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, err = strconv.Atoi(strings.TrimSpace(p))
		return n, true, err
	}
	n, err = strconv.Atoi(v)
	return n, false, err
}

func (c *checker) rollout(r *rawRollout) *task.Rollout {
	out := &task.Rollout{Canary: r.Canary || r.CanaryConfirm, CanaryConfirm: r.CanaryConfirm}
	if r.Batch != "" {
		n, pct, err := countOrPercent(r.Batch)
		switch {
		case err != nil || n < 1 || (pct && n > 100):
			c.add("rollout.batch", "%q is not a host count or a percentage like 10%%", r.Batch)
		case pct:
			out.BatchPercent = n
		default:
			out.BatchSize = n
		}
	}
	if r.CanaryWait != "" {
		d, err := time.ParseDuration(r.CanaryWait)
		if err != nil || d < 0 || d > task.MaxCanaryWait {
			c.add("rollout.canary_wait", "%q is not a duration up to %s", r.CanaryWait, task.MaxCanaryWait)
		} else {
			out.CanaryWait = d
		}
	}
	if r.MaxFailures != "" {
		n, pct, err := countOrPercent(r.MaxFailures)
		switch {
		case err != nil || n < 0 || (pct && n > 100):
			c.add("rollout.max_failures", "%q is not a host count or a percentage like 10%%", r.MaxFailures)
		case pct:
			out.MaxFailurePercent = n
		default:
			out.MaxFailures = n
		}
	}
	return out
}
