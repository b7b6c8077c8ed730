package task

import "encoding/json"

// ModuleInfo is one module of a master's catalog, as the relay's Catalog
// call carries it: enough for the web tier to offer the module, check its
// own module table against it, and tell when the master's file changed.
// Params is the parameter schema as the master's module package encodes
// it; it is passed through, not interpreted here, so a schema change on
// the master needs no change to this contract.
type ModuleInfo struct {
	ID      int             `json:"id"`
	Name    string          `json:"name"`
	Caption string          `json:"caption,omitempty"`
	Params  json.RawMessage `json:"params"`
	// Risky: the module changes its targets (restarts, copies files); the
	// web tier asks for a typed confirmation before running it.
	Risky bool `json:"risky,omitempty"`
	// Version is the hex SHA-256 of the module file's canonical content
	// (line endings as "\n"), so two masters with the same file agree and
	// any edit changes it.
	Version string `json:"version"`
}
