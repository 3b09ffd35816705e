// Package config parses the delivery worker's environment once, at start-up.
package config

import (
	"os"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/retry"
)

// Config is the delivery worker's settings.
type Config struct {
	Addr                string        // ADDR: health and metrics
	DatabaseURL         string        // DATABASE_URL
	DBMaxConns          int           // DB_MAX_CONNS
	KafkaBrokers        []string      // KAFKA_BROKERS
	KafkaTopic          string        // KAFKA_TOPIC
	KafkaConsumerGroup  string        // KAFKA_CONSUMER_GROUP
	KafkaSessionTimeout time.Duration // KAFKA_SESSION_TIMEOUT
	InstanceID          string        // INSTANCE_ID
	Concurrency         int           // DELIVERY_CONCURRENCY
	DeliveryTimeout     time.Duration // DELIVERY_TIMEOUT
	LeaseMargin         time.Duration // DELIVERY_LEASE_MARGIN
	MaxAttempts         int           // RETRY_MAX_ATTEMPTS
	RetryBaseDelay      time.Duration // RETRY_BASE_DELAY
	RetryMaxDelay       time.Duration // RETRY_MAX_DELAY
	RedisURL            string        // REDIS_URL
	RedisKeyPrefix      string        // REDIS_KEY_PREFIX
	RateLimit           int           // RATE_LIMIT_PER_SECOND
	MaxConcurrency      int           // MAX_CONCURRENCY
	CircuitThreshold    int           // CIRCUIT_FAILURE_THRESHOLD
	CircuitOpenFor      time.Duration // CIRCUIT_OPEN_DURATION
	CircuitTrials       int           // CIRCUIT_HALF_OPEN_TRIALS
	LogFormat           string        // LOG_FORMAT
	LogLevel            string        // LOG_LEVEL
	ShutdownTimeout     time.Duration // SHUTDOWN_TIMEOUT
}

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	host, _ := os.Hostname()
	c := Config{
		Addr:                env.String("ADDR", ":8080"),
		DatabaseURL:         env.String("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dispatch?sslmode=disable"),
		DBMaxConns:          env.Int("DB_MAX_CONNS", 30, 1),
		KafkaBrokers:        env.List("KAFKA_BROKERS", nil),
		KafkaTopic:          env.String("KAFKA_TOPIC", "events.pending"),
		KafkaConsumerGroup:  env.String("KAFKA_CONSUMER_GROUP", "dispatch-workers"),
		KafkaSessionTimeout: env.Duration("KAFKA_SESSION_TIMEOUT", 45*time.Second),
		InstanceID:          env.String("INSTANCE_ID", host),
		Concurrency:         env.Int("DELIVERY_CONCURRENCY", 256, 1),
		DeliveryTimeout:     env.Duration("DELIVERY_TIMEOUT", 30*time.Second),
		LeaseMargin:         env.Duration("DELIVERY_LEASE_MARGIN", 30*time.Second),
		MaxAttempts:         env.Int("RETRY_MAX_ATTEMPTS", retry.DefaultMaxAttempts, 1),
		RetryBaseDelay:      env.Duration("RETRY_BASE_DELAY", retry.DefaultBaseDelay),
		RetryMaxDelay:       env.Duration("RETRY_MAX_DELAY", retry.DefaultMaxDelay),
		RedisURL:            env.String("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisKeyPrefix:      env.String("REDIS_KEY_PREFIX", "dispatch"),
		RateLimit:           env.Int("RATE_LIMIT_PER_SECOND", 100, 1),
		MaxConcurrency:      env.Int("MAX_CONCURRENCY", 100, 1),
		CircuitThreshold:    env.Int("CIRCUIT_FAILURE_THRESHOLD", 5, 1),
		CircuitOpenFor:      env.Duration("CIRCUIT_OPEN_DURATION", 30*time.Second),
		CircuitTrials:       env.Int("CIRCUIT_HALF_OPEN_TRIALS", 3, 1),
		LogFormat:           env.OneOf("LOG_FORMAT", "json", "json", "text"),
		LogLevel:            env.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		ShutdownTimeout:     env.Duration("SHUTDOWN_TIMEOUT", 30*time.Second),
	}
	if len(c.KafkaBrokers) == 0 {
		env.Fail("KAFKA_BROKERS", "is required (comma-separated host:port list; `go tool task kafka` starts a local one on 127.0.0.1:9092)")
	}
	if c.RetryMaxDelay < c.RetryBaseDelay {
		env.Fail("RETRY_MAX_DELAY", "%s is shorter than RETRY_BASE_DELAY %s", c.RetryMaxDelay, c.RetryBaseDelay)
	}
	return c, env.Err()
}
