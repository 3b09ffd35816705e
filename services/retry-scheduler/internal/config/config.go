// Package config parses the retry scheduler's environment once, at start-up.
package config

import (
	"os"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/config"
)

// Config is the retry scheduler's settings.
type Config struct {
	Addr            string        // ADDR: health and metrics
	DatabaseURL     string        // DATABASE_URL
	DBMaxConns      int           // DB_MAX_CONNS
	KafkaBrokers    []string      // KAFKA_BROKERS
	KafkaTopic      string        // KAFKA_TOPIC
	InstanceID      string        // INSTANCE_ID
	PollInterval    time.Duration // RETRY_POLL_INTERVAL
	BatchSize       int           // RETRY_BATCH_SIZE
	StrandedAfter   time.Duration // STRANDED_AFTER
	LogFormat       string        // LOG_FORMAT
	LogLevel        string        // LOG_LEVEL
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT
}

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	host, _ := os.Hostname()
	c := Config{
		Addr:            env.String("ADDR", ":8080"),
		DatabaseURL:     env.String("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dispatch?sslmode=disable"),
		DBMaxConns:      env.Int("DB_MAX_CONNS", 5, 1),
		KafkaBrokers:    env.List("KAFKA_BROKERS", nil),
		KafkaTopic:      env.String("KAFKA_TOPIC", "events.pending"),
		InstanceID:      env.String("INSTANCE_ID", host),
		PollInterval:    env.Duration("RETRY_POLL_INTERVAL", 5*time.Second),
		BatchSize:       env.Int("RETRY_BATCH_SIZE", 100, 1),
		StrandedAfter:   env.Duration("STRANDED_AFTER", 2*time.Minute),
		LogFormat:       env.OneOf("LOG_FORMAT", "json", "json", "text"),
		LogLevel:        env.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		ShutdownTimeout: env.Duration("SHUTDOWN_TIMEOUT", 30*time.Second),
	}
	if len(c.KafkaBrokers) == 0 {
		env.Fail("KAFKA_BROKERS", "is required (comma-separated host:port list; `go tool task kafka` starts a local one on 127.0.0.1:9092)")
	}
	return c, env.Err()
}
