// Package web holds the operators' dashboard's pages: typed templ
// components, one per concept (StatusBadge, AttemptRow, Pager, …), the view
// models they render, and the static assets (style sheet, a small script)
// embedded in Static. Components only render what a handler gives them:
// they never call the API. Every element a test looks for carries a
// data-testid attribute.
//
// static/htmx.min.js is htmx 2.0.11 from npm's htmx.org, unchanged; its
// version, source and licence (Zero-Clause BSD) are in
// static/htmx.LICENSE.txt. Replace both together to upgrade it.
//
// Regenerate the *_templ.go files after changing a .templ file:
//
//	cd web && go tool templ generate
package web
