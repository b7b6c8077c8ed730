package module

import (
	"fmt"
	"path/filepath"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/param"
)

// ValidateParams checks in against the declared parameters and returns the
// normalised values of every parameter, defaults filled in. The error,
// when not nil, wraps task.ErrInvalidParams and names each refused
// parameter and why (see param.Schema.Validate).
func (s *Spec) ValidateParams(in map[string]string) (map[string]string, error) {
	return s.Params.Validate(in)
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
		if p.Type == param.Choice {
			o, _ := p.Option(values[p.Name])
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
