// Package config parses the ingest API's environment once, at start-up.
package config

import (
	"os"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/config"
)

// Config is the ingest API's settings.
type Config struct {
	Addr            string        // ADDR
	DatabaseURL     string        // DATABASE_URL
	DBMaxConns      int           // DB_MAX_CONNS
	KafkaBrokers    []string      // KAFKA_BROKERS
	KafkaTopic      string        // KAFKA_TOPIC
	InstanceID      string        // INSTANCE_ID
	RedisURL        string        // REDIS_URL
	RedisKeyPrefix  string        // REDIS_KEY_PREFIX
	LogFormat       string        // LOG_FORMAT
	LogLevel        string        // LOG_LEVEL
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT
}

// DefaultDatabaseURL is used when DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/dispatch?sslmode=disable"

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	host, _ := os.Hostname()
	c := Config{
		Addr:            env.String("ADDR", ":8080"),
		DatabaseURL:     env.String("DATABASE_URL", DefaultDatabaseURL),
		DBMaxConns:      env.Int("DB_MAX_CONNS", 30, 1),
		KafkaBrokers:    env.List("KAFKA_BROKERS", nil),
		KafkaTopic:      env.String("KAFKA_TOPIC", "events.pending"),
		InstanceID:      env.String("INSTANCE_ID", host),
		RedisURL:        env.String("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisKeyPrefix:  env.String("REDIS_KEY_PREFIX", "dispatch"),
		LogFormat:       env.OneOf("LOG_FORMAT", "json", "json", "text"),
		LogLevel:        env.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		ShutdownTimeout: env.Duration("SHUTDOWN_TIMEOUT", 30*time.Second),
	}
	if len(c.KafkaBrokers) == 0 {
		env.Fail("KAFKA_BROKERS", "is required (comma-separated host:port list; `go tool task kafka` starts a local one on 127.0.0.1:9092)")
	}
	return c, env.Err()
}
