// Package config reads service settings from environment variables. Each
// service parses its variables once at start-up into a typed struct; every
// bad value is collected and reported together, each naming its variable,
// so a misconfigured deploy fails fast with one clear message.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env reads typed values from the environment and collects parse errors.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// FromEnv reads the process environment.
func FromEnv() *Env { return &Env{lookup: os.LookupEnv} }

// FromMap reads a fixed set of variables, for tests.
func FromMap(m map[string]string) *Env {
	return &Env{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

func (e *Env) get(name string) (string, bool) {
	v, ok := e.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// Fail records a problem with a variable's value.
func (e *Env) Fail(name, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// String returns the variable or def when it is unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	return def
}

// Required returns the variable, recording an error when it is unset.
func (e *Env) Required(name string) string {
	v, ok := e.get(name)
	if !ok {
		e.Fail(name, "is required")
	}
	return v
}

// Int returns the variable as an integer of at least minimum, or def.
func (e *Env) Int(name string, def, minimum int) int {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.Fail(name, "%q is not a whole number", v)
		return def
	}
	if n < minimum {
		e.Fail(name, "%d is below the minimum %d", n, minimum)
		return def
	}
	return n
}

// Duration returns the variable as a positive Go duration ("5s", "1m30s"), or def.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.Fail(name, "%q is not a positive duration such as 5s or 2m", v)
		return def
	}
	return d
}

// List returns the comma-separated variable with blanks dropped, or def.
func (e *Env) List(name string, def []string) []string {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Prefixes returns the comma-separated CIDRs (such as 127.0.0.0/8,::1/128)
// of the variable, or none.
func (e *Env) Prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, cidr := range e.List(name, nil) {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			e.Fail(name, "%q is not a CIDR such as 127.0.0.0/8", cidr)
			continue
		}
		out = append(out, p)
	}
	return out
}

// Set reports whether any of the variables is set to a non-empty value.
func (e *Env) Set(names ...string) bool {
	for _, n := range names {
		if _, ok := e.get(n); ok {
			return true
		}
	}
	return false
}

// OneOf returns the variable if it is one of allowed, or def.
func (e *Env) OneOf(name, def string, allowed ...string) string {
	v := e.String(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	e.Fail(name, "%q must be one of %s", v, strings.Join(allowed, ", "))
	return def
}

// Err returns every problem found, or nil.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration: %w", errors.Join(e.errs...))
}

// AnswerConfigcheck runs CheckCommand and exits with its code when the
// process was started as `<service> configcheck`. Otherwise it returns at
// once.
func AnswerConfigcheck[C any](load func(*Env) (C, error)) {
	if len(os.Args) > 1 && os.Args[1] == "configcheck" {
		os.Exit(CheckCommand(load, os.Stderr))
	}
}

// CheckCommand is a service's "configcheck" subcommand: it reads the
// process environment with the service's own load function and reports
// every bad variable, so that a deployment's settings can be checked
// without starting the service or reaching what it connects to. It
// returns the exit code: 0 when the settings are accepted, 1 when not.
func CheckCommand[C any](load func(*Env) (C, error), out io.Writer) int {
	if _, err := load(FromEnv()); err != nil {
		fmt.Fprintln(out, err)
		return 1
	}
	fmt.Fprintln(out, "configuration accepted")
	return 0
}
