// Package config parses the ingest API's environment once, at start-up.
package config

import "github.com/dispatch-webhooks/dispatch/libs/config"

// Config is the ingest API's settings: the common ones and Redis, from
// which it reads live circuit states.
type Config struct {
	config.Common
	config.Redis
}

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	return Config{Common: env.Common(30), Redis: env.Redis()}, env.Err()
}
