// Package static holds the dashboard's browser assets (CSS and vanilla JS),
// embedded in the binary so nothing is fetched at run time and no front-end
// build step exists.
package static

import (
	"embed"
	"io/fs"
)

//go:embed *.css *.js
var files embed.FS

// FS returns the embedded assets, served by the web tier under /static/.
func FS() fs.FS { return files }
