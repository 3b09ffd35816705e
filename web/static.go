package web

import "embed"

// Static holds the dashboard's style sheet and script, served under /static/.
//
//go:embed static
var Static embed.FS
