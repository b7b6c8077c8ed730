// Package modules ships the module files of the original OMServer
// (Mid_1001.yaml ... Mid_1007.yaml and the files module 1005 copies) and
// the host facts module Mid_1008.yaml inside the binary, so `omserver demo`
// runs from any directory. A production master reads its modules from
// master.modules_dir instead.
package modules

import (
	"embed"
	"io/fs"
)

//go:embed Mid_*.yaml files
var shipped embed.FS

// FS returns the shipped module tree.
func FS() fs.FS { return shipped }
