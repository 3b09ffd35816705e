// Package config parses the retry scheduler's environment once, at start-up.
package config

import (
	"strconv"
	"strings"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/config"
)

// Config is the retry scheduler's settings.
type Config struct {
	config.Common
	PollInterval  time.Duration // RETRY_POLL_INTERVAL
	BatchSize     int           // RETRY_BATCH_SIZE
	StrandedAfter time.Duration // STRANDED_AFTER
	// RetentionPeriod is how long events are kept (RETENTION_PERIOD); zero
	// keeps them for ever.
	RetentionPeriod    time.Duration
	RetentionBatchSize int // RETENTION_BATCH_SIZE
}

// Bounds of the retention settings.
const (
	DefaultRetentionPeriod = 30 * 24 * time.Hour
	MinRetentionPeriod     = time.Hour
	MaxRetentionBatchSize  = 10000
)

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	c := Config{
		Common:             env.Common(5),
		PollInterval:       env.Duration("RETRY_POLL_INTERVAL", 5*time.Second),
		BatchSize:          env.Int("RETRY_BATCH_SIZE", 100, 1),
		StrandedAfter:      env.Duration("STRANDED_AFTER", 2*time.Minute),
		RetentionPeriod:    retentionPeriod(env),
		RetentionBatchSize: env.Int("RETENTION_BATCH_SIZE", 1000, 1),
	}
	if c.RetentionBatchSize > MaxRetentionBatchSize {
		env.Fail("RETENTION_BATCH_SIZE", "%d is above the maximum %d: batches are meant to be short", c.RetentionBatchSize, MaxRetentionBatchSize)
	}
	return c, env.Err()
}

// retentionPeriod reads RETENTION_PERIOD: a number of days ("30d"), a Go
// duration of at least an hour ("36h"), or "off" (or "0") to keep events
// for ever.
func retentionPeriod(env *config.Env) time.Duration {
	v := strings.ToLower(env.String("RETENTION_PERIOD", ""))
	if v == "" {
		return DefaultRetentionPeriod
	}
	if v == "off" || v == "0" {
		return 0
	}
	var (
		d   time.Duration
		err error
	)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
		if n > 100*365 {
			err = strconv.ErrRange
		}
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d < MinRetentionPeriod {
		env.Fail("RETENTION_PERIOD", "%q is not a period of at least 1h such as 30d or 36h, or off", v)
		return DefaultRetentionPeriod
	}
	return d
}
