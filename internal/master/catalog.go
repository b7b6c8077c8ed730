package master

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/omserver/omserver-go/internal/module"
	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/task"
)

// moduleSet is what one load of the modules directory produced: the specs
// and, per module, the version hash of the exact bytes they were parsed
// from. It is swapped whole, so a catalog never mixes two loads.
type moduleSet struct {
	specs    map[int]*module.Spec
	versions map[int]string
}

// maxModuleFileBytes matches the module loader's own bound.
const maxModuleFileBytes = 1 << 20

// loadModules loads and checks every module of dir (module.LoadDir, which
// reports every problem of every file), then reads each file once more and
// parses those bytes again, so that a module's version hash is the hash of
// exactly what is served and run even if a file is edited during the load.
func loadModules(dir string) (*moduleSet, error) {
	specs, err := module.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	set := &moduleSet{specs: make(map[int]*module.Spec, len(specs)), versions: make(map[int]string, len(specs))}
	var errs []error
	for id, s := range specs {
		data, err := readModuleFile(s.File)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.File, err))
			continue
		}
		again, err := module.Parse(s.File, data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s changed while loading: %w", s.File, err))
			continue
		}
		if again.ID != id {
			errs = append(errs, fmt.Errorf("%s changed its id while loading", s.File))
			continue
		}
		set.specs[id] = again
		set.versions[id] = moduleVersion(data)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

func readModuleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxModuleFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxModuleFileBytes {
		return nil, fmt.Errorf("file is larger than %d bytes", maxModuleFileBytes)
	}
	return data, nil
}

// moduleVersion is the hex SHA-256 of a module file's canonical content:
// the bytes with "\r\n" line endings made "\n", so that a file checked out
// on Windows and one checked out on Linux have the same version.
func moduleVersion(data []byte) string {
	sum := sha256.Sum256(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")))
	return hex.EncodeToString(sum[:])
}

// Catalog describes the loaded modules, ordered by id: what the relay's
// Catalog call answers. Params is the JSON the module's parameters encode
// to (param.Schema's own JSON form).
func (m *Master) Catalog() ([]task.ModuleInfo, error) {
	set := m.modules.Load()
	out := make([]task.ModuleInfo, 0, len(set.specs))
	for id, s := range set.specs {
		params := s.Params
		if params == nil {
			params = param.Schema{}
		}
		pj, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("master: module %d: encoding its parameters: %w", id, err)
		}
		out = append(out, task.ModuleInfo{ID: id, Name: s.Name, Caption: s.Caption, Params: pj, Risky: s.Risky, Version: set.versions[id]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
