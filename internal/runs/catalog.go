package runs

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/omserver/omserver-go/internal/param"
	"github.com/omserver/omserver-go/internal/task"
)

// CatalogSource is a dispatcher that also serves its master's module
// catalog (internal/relay's *Client does). The master owns the modules:
// with a catalog, runs are checked against the master's parameter schema
// and a module the master lacks is refused before anything is recorded.
type CatalogSource interface {
	Catalog(ctx context.Context) ([]task.ModuleInfo, error)
}

// catalogTTL is how long a fetched catalog is used before it is asked for
// again: short enough that a reloaded master is seen soon, long enough
// that pages and run requests do not each cost a relay call.
const catalogTTL = 10 * time.Second

// MasterModule is one module of the master's catalog with its parameter
// schema decoded.
type MasterModule struct {
	ID      int64        `json:"id"`
	Name    string       `json:"name"`
	Caption string       `json:"caption,omitempty"`
	Params  param.Schema `json:"params"`
	Risky   bool         `json:"risky,omitempty"`
	Version string       `json:"version"`
}

// catalogCache keeps the last catalog for catalogTTL.
type catalogCache struct {
	src     CatalogSource
	mu      sync.Mutex
	at      time.Time
	modules map[int64]MasterModule
	order   []int64
}

// ErrNoCatalog: the dispatcher serves no catalog (an older master).
var ErrNoCatalog = fmt.Errorf("this master does not serve its module catalog")

// Catalog returns the master's modules by id, and their ids in order; the
// answer is at most catalogTTL old. An error says the catalog could not be
// read now (the master is down, or serves none: ErrNoCatalog).
func (s *Service) Catalog(ctx context.Context) (map[int64]MasterModule, []int64, error) {
	c := s.catalog
	if c == nil || c.src == nil {
		return nil, nil, ErrNoCatalog
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.modules != nil && time.Since(c.at) < catalogTTL {
		return c.modules, c.order, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := c.src.Catalog(cctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read the master's module catalog: %w", err)
	}
	mods := make(map[int64]MasterModule, len(list))
	order := make([]int64, 0, len(list))
	for _, mi := range list {
		var ps param.Schema
		if len(mi.Params) > 0 {
			if err := json.Unmarshal(mi.Params, &ps); err != nil {
				return nil, nil, fmt.Errorf("master's module %d: parameter schema: %w", mi.ID, err)
			}
		}
		if ps == nil {
			ps = param.Schema{}
		}
		id := int64(mi.ID)
		mods[id] = MasterModule{ID: id, Name: mi.Name, Caption: mi.Caption, Params: ps, Risky: mi.Risky, Version: mi.Version}
		order = append(order, id)
	}
	c.modules, c.order, c.at = mods, order, time.Now()
	return mods, order, nil
}

// ForgetCatalog drops the cached catalog (after an import, or to see a
// reloaded master at once).
func (s *Service) ForgetCatalog() {
	if c := s.catalog; c != nil {
		c.mu.Lock()
		c.modules = nil
		c.mu.Unlock()
	}
}
