package web

import "embed"

// Static holds the dashboard's style sheet and scripts (its own and the
// vendored htmx), served under /static/.
//
//go:embed static
var Static embed.FS
