// Package config parses the ingest API's environment once, at start-up.
package config

import (
	"net/netip"

	"github.com/dispatch-webhooks/dispatch/libs/config"
)

// Config is the ingest API's settings: the common ones and Redis, from
// which it reads live circuit states.
type Config struct {
	config.Common
	config.Redis
	// AllowCIDRs are the internal ranges a subscription's URL may point at,
	// the same DELIVERY_ALLOW_CIDRS the delivery workers dial under.
	AllowCIDRs []netip.Prefix
}

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	return Config{Common: env.Common(30), Redis: env.Redis(), AllowCIDRs: env.Prefixes("DELIVERY_ALLOW_CIDRS")}, env.Err()
}
