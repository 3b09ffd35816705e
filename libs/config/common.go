package config

import (
	"os"
	"time"
)

// DefaultDatabaseURL is used when DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/dispatch?sslmode=disable"

// DefaultKafkaBrokers is used when KAFKA_BROKERS is unset: a broker on this
// machine, where `go tool task kafka` and a default Kafka install listen.
const DefaultKafkaBrokers = "localhost:9092"

// Common holds the settings every Dispatch service reads.
type Common struct {
	Addr            string        // ADDR
	DatabaseURL     string        // DATABASE_URL
	DBMaxConns      int           // DB_MAX_CONNS
	KafkaBrokers    []string      // KAFKA_BROKERS
	KafkaTopic      string        // KAFKA_TOPIC
	InstanceID      string        // INSTANCE_ID
	LogFormat       string        // LOG_FORMAT
	LogLevel        string        // LOG_LEVEL
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT
}

// Common reads the shared settings; maxConns is the service's default pool size.
func (e *Env) Common(maxConns int) Common {
	host, _ := os.Hostname()
	c := Common{
		Addr:            e.String("ADDR", ":8080"),
		DatabaseURL:     e.String("DATABASE_URL", DefaultDatabaseURL),
		DBMaxConns:      e.Int("DB_MAX_CONNS", maxConns, 1),
		KafkaBrokers:    e.List("KAFKA_BROKERS", []string{DefaultKafkaBrokers}),
		KafkaTopic:      e.String("KAFKA_TOPIC", "events.pending"),
		InstanceID:      e.String("INSTANCE_ID", host),
		LogFormat:       e.OneOf("LOG_FORMAT", "json", "json", "text"),
		LogLevel:        e.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 30*time.Second),
	}
	// Set but blank between the commas (","): a mistake, not a request for
	// the default.
	if len(c.KafkaBrokers) == 0 {
		e.Fail("KAFKA_BROKERS", "names no broker (want a comma-separated host:port list, default %s)", DefaultKafkaBrokers)
	}
	return c
}

// Redis holds the settings of services that use the shared limits.
type Redis struct {
	RedisURL       string // REDIS_URL
	RedisKeyPrefix string // REDIS_KEY_PREFIX
}

// Redis reads REDIS_URL and REDIS_KEY_PREFIX.
func (e *Env) Redis() Redis {
	return Redis{
		RedisURL:       e.String("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisKeyPrefix: e.String("REDIS_KEY_PREFIX", "dispatch"),
	}
}
