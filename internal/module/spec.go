package module

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/omserver/omserver-go/internal/task"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/omserver/omserver-go/internal/param"
)

// Spec is one loaded and checked module.
type Spec struct {
	ID      int           `json:"id"`
	Name    string        `json:"name"`
	Caption string        `json:"caption,omitempty"`
	Backend string        `json:"backend,omitempty"`
	Timeout time.Duration `json:"timeout_ns,omitempty"`
	// Risky: the module changes its targets (restarts, copies): the web
	// tier asks for a typed confirmation before running it.
	Risky  bool         `json:"risky,omitempty"`
	Params param.Schema `json:"params,omitempty"`
	Steps  []StepSpec   `json:"steps"`
	File   string       `json:"file"` // absolute path of the YAML file; copy sources are relative to its directory
	// ReadOnly modules change nothing on a host: runs of read-only modules
	// may share a host; any other run has it to itself (per-host lock).
	ReadOnly bool `json:"read_only,omitempty"`
	// Lock is what a host of this module's run does when another run holds
	// it: LockWait (the default) waits up to LockWait, LockRefuse fails
	// the host at once without running anything.
	Lock     string        `json:"lock,omitempty"`
	LockWait time.Duration `json:"lock_wait_ns,omitempty"`
	// MaxHosts is the most hosts one run of this module may have (0: no
	// module limit); the master refuses bigger tasks.
	MaxHosts int `json:"max_hosts,omitempty"`
	// Rollout is the module's default rollout (batches, canary, failure
	// threshold); a task may narrow it, never widen it.
	Rollout *task.Rollout `json:"rollout,omitempty"`
}

// Per-host lock behaviours.
const (
	LockWait   = "wait"
	LockRefuse = "refuse"
	// DefaultLockWait bounds how long a host waits for another run.
	DefaultLockWait = 10 * time.Minute
)

// StepSpec is one unexpanded step: copy a file, run a command, or both
// (copy first).
type StepSpec struct {
	Run  string    `json:"run,omitempty"`
	Copy *CopySpec `json:"copy,omitempty"`
}

// CopySpec is an unexpanded file copy.
type CopySpec struct {
	Src  string      `json:"src"`
	Dest string      `json:"dest"`
	Mode os.FileMode `json:"mode"`
}

// Param returns the declared parameter called name.
func (s *Spec) Param(name string) (*param.Param, bool) { return s.Params.Lookup(name) }

// Dir is the modules directory the spec was loaded from.
func (s *Spec) Dir() string { return filepath.Dir(s.File) }

// FieldError is one problem in a module file.
type FieldError struct {
	File  string // the file, as given to the loader
	Field string // e.g. "params[0].max", "steps[1].copy.src", "line 7"
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.File + ": " + e.Msg
	}
	return e.File + ": " + e.Field + ": " + e.Msg
}

// The YAML shapes. Pointers tell "absent" from "zero".
type rawSpec struct {
	ID      *int       `yaml:"id"`
	Name    string     `yaml:"name"`
	Caption string     `yaml:"caption"`
	Backend string     `yaml:"backend"`
	Timeout string     `yaml:"timeout"`
	Risky   bool       `yaml:"risky"`
	Params  []rawParam `yaml:"params"`
	Steps   []rawStep  `yaml:"steps"`
	// Safety on a fleet.
	ReadOnly bool        `yaml:"read_only"`
	Lock     string      `yaml:"lock"`
	LockWait string      `yaml:"lock_wait"`
	MaxHosts *int        `yaml:"max_hosts"`
	Rollout  *rawRollout `yaml:"rollout"`
}

// rawRollout is a module's default rollout: batch "10%" or "5", the
// failure threshold likewise.
type rawRollout struct {
	Batch         string `yaml:"batch"`
	Canary        bool   `yaml:"canary"`
	CanaryWait    string `yaml:"canary_wait"`
	CanaryConfirm bool   `yaml:"canary_confirm"`
	MaxFailures   string `yaml:"max_failures"`
}

type rawParam struct {
	Name      string      `yaml:"name"`
	Label     string      `yaml:"label"`
	Type      string      `yaml:"type"`
	Min       *int64      `yaml:"min"`
	Max       *int64      `yaml:"max"`
	Pattern   string      `yaml:"pattern"`
	MaxLength *int        `yaml:"max_length"`
	Multiline *bool       `yaml:"multiline"`
	Value     *string     `yaml:"value"`
	Default   *string     `yaml:"default"`
	Options   []rawOption `yaml:"options"`
}

type rawOption struct {
	Value *string           `yaml:"value"`
	Label string            `yaml:"label"`
	Vars  map[string]string `yaml:"vars"`
}

type rawStep struct {
	Run  *string  `yaml:"run"`
	Copy *rawCopy `yaml:"copy"`
}

type rawCopy struct {
	Src  string `yaml:"src"`
	Dest string `yaml:"dest"`
	Mode string `yaml:"mode"`
}

// idFromFileName returns the id of Mid_<id>.yaml, the only accepted module
// file name; the id has no leading zero.
func idFromFileName(base string) (int, bool) {
	digits, ok := strings.CutPrefix(base, "Mid_")
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, ".yaml")
	if !ok || digits == "" || len(digits) > 9 || digits[0] == '0' {
		return 0, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	id, err := strconv.Atoi(digits)
	return id, err == nil
}

// unknownKey recognises yaml.v3's KnownFields message
// "line N: field K not found in type module.rawX" so it can be reported as
// an unknown key on its field path.
func unknownKey(msg string) (line, key string, ok bool) {
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return "", "", false
	}
	line, rest, ok = strings.Cut(rest, ": field ")
	if !ok {
		return "", "", false
	}
	key, _, ok = strings.Cut(rest, " not found in type module.raw")
	return line, key, ok
}

// maxFileBytes bounds a module file; the real ones are a few kilobytes.
const maxFileBytes = 1 << 20

// LoadFile reads, parses and checks one module file.
func LoadFile(path string) (*Spec, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, &FieldError{File: path, Msg: err.Error()}
	}
	return Parse(path, data)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("file is larger than %d bytes", maxFileBytes)
	}
	return data, nil
}

// Parse parses and checks a module file's content. path names the file in
// errors, must be called Mid_<id>.yaml, and its directory is where copy
// sources are looked up. The error, when not nil, joins every problem found.
func Parse(path string, data []byte) (*Spec, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &FieldError{File: path, Msg: err.Error()}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var raw rawSpec
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{File: path, Msg: "empty module file"}
		}
		return nil, yamlError(path, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &FieldError{File: path, Msg: "more than one YAML document in the file"}
	}
	c := checker{file: path, dir: filepath.Dir(abs)}
	spec := c.spec(&raw)
	if base := filepath.Base(path); raw.ID != nil {
		if id, ok := idFromFileName(base); !ok {
			c.add("", "file name %q is not Mid_<id>.yaml (id without leading zeros)", base)
		} else if id != *raw.ID {
			c.add("id", "id %d does not match file name %s", *raw.ID, base)
		}
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	spec.File = abs
	return spec, nil
}

func yamlError(path string, data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &FieldError{File: path, Msg: "malformed YAML: " + err.Error()}
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // it parsed once already; only used to locate keys
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		if line, key, ok := unknownKey(msg); ok {
			n, _ := strconv.Atoi(line)
			field := keyPath(&root, "", n, key)
			if field == "" {
				field = key
			}
			errs = append(errs, &FieldError{File: path, Field: field, Msg: "unknown key (line " + line + ")"})
			continue
		}
		errs = append(errs, &FieldError{File: path, Msg: msg})
	}
	return errors.Join(errs...)
}

// keyPath finds the mapping key called key on the given line and returns
// its field path, like "params[1].maxlen"; "" when not found.
func keyPath(n *yaml.Node, prefix string, line int, key string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := keyPath(c, prefix, line, key); p != "" {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := keyPath(c, fmt.Sprintf("%s[%d]", prefix, i), line, key); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			if k.Line == line && k.Value == key {
				return path
			}
			if p := keyPath(n.Content[i+1], path, line, key); p != "" {
				return p
			}
		}
	}
	return ""
}

// LoadDir loads every Mid_*.yaml in dir. The error joins every problem of
// every file; on error the returned map holds the modules that were valid.
func LoadDir(dir string) (map[int]*Spec, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("modules directory: %w", err)
	}
	specs := make(map[int]*Spec)
	var errs []error
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "Mid_") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		if _, ok := idFromFileName(name); !ok {
			errs = append(errs, &FieldError{File: path, Msg: "file name is not Mid_<id>.yaml (id without leading zeros)"})
			continue
		}
		spec, err := LoadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		specs[spec.ID] = spec
	}
	if len(names) == 0 {
		errs = append(errs, fmt.Errorf("modules directory %s: no Mid_<id>.yaml files", dir))
	}
	return specs, errors.Join(errs...)
}

// CheckDir validates a modules directory offline (`omserver module check
// DIR`) and returns every problem, one error each, each naming its file.
func CheckDir(dir string) []error {
	_, err := LoadDir(dir)
	return flatten(err)
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
