// Package config parses the retry scheduler's environment once, at start-up.
package config

import (
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/config"
)

// Config is the retry scheduler's settings.
type Config struct {
	config.Common
	PollInterval  time.Duration // RETRY_POLL_INTERVAL
	BatchSize     int           // RETRY_BATCH_SIZE
	StrandedAfter time.Duration // STRANDED_AFTER
}

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	c := Config{
		Common:        env.Common(5),
		PollInterval:  env.Duration("RETRY_POLL_INTERVAL", 5*time.Second),
		BatchSize:     env.Int("RETRY_BATCH_SIZE", 100, 1),
		StrandedAfter: env.Duration("STRANDED_AFTER", 2*time.Minute),
	}
	return c, env.Err()
}
