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
	// AutoDisableAfter is how long every attempt of a subscription may
	// fail before it is disabled, and the span whose shares are the
	// failing thresholds (AUTO_DISABLE_AFTER); zero turns both off.
	AutoDisableAfter time.Duration
	// OperationalEventsBySubscriptionTenant stores operational events in
	// the tenant of the subscription they are about rather than the
	// default tenant (OPERATIONAL_EVENTS_TENANT=subscription).
	OperationalEventsBySubscriptionTenant bool
	// OperationalCheckInterval is the wait between the operational
	// events' passes (OPERATIONAL_CHECK_INTERVAL).
	OperationalCheckInterval time.Duration
}

// Bounds of the retention settings.
const (
	DefaultRetentionPeriod = 30 * 24 * time.Hour
	// DefaultAutoDisableAfter is AUTO_DISABLE_AFTER's default: 5 days.
	DefaultAutoDisableAfter = 5 * 24 * time.Hour
	MinRetentionPeriod      = time.Hour
	MaxRetentionBatchSize   = 10000
)

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	c := Config{
		Common:                                env.Common(5),
		PollInterval:                          env.Duration("RETRY_POLL_INTERVAL", 5*time.Second),
		BatchSize:                             env.Int("RETRY_BATCH_SIZE", 100, 1),
		StrandedAfter:                         env.Duration("STRANDED_AFTER", 2*time.Minute),
		RetentionPeriod:                       retentionPeriod(env),
		RetentionBatchSize:                    env.Int("RETENTION_BATCH_SIZE", 1000, 1),
		AutoDisableAfter:                      period(env, "AUTO_DISABLE_AFTER", DefaultAutoDisableAfter, time.Second),
		OperationalEventsBySubscriptionTenant: env.OneOf("OPERATIONAL_EVENTS_TENANT", "default", "default", "subscription") == "subscription",
		OperationalCheckInterval:              env.Duration("OPERATIONAL_CHECK_INTERVAL", 5*time.Second),
	}
	if c.OperationalCheckInterval <= 0 {
		env.Fail("OPERATIONAL_CHECK_INTERVAL", "%s must be above zero", c.OperationalCheckInterval)
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
	return period(env, "RETENTION_PERIOD", DefaultRetentionPeriod, MinRetentionPeriod)
}

// period reads a period: a number of days ("30d"), a Go duration of at
// least minimum ("36h"), or "off" (or "0") for none (zero).
func period(env *config.Env, name string, def, minimum time.Duration) time.Duration {
	v := strings.ToLower(env.String(name, ""))
	if v == "" {
		return def
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
	if err != nil || d < minimum {
		env.Fail(name, "%q is not a period of at least %s such as 30d or 36h, or off", v, minimum)
		return def
	}
	return d
}
