package config

import (
	"math"
	"os"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/retry"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
)

// DefaultDatabaseURL is used when DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/dispatch?sslmode=disable"

// DefaultAddr is used when ADDR is unset.
const DefaultAddr = ":8080"

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
		Addr:            e.String("ADDR", DefaultAddr),
		DatabaseURL:     e.String("DATABASE_URL", DefaultDatabaseURL),
		DBMaxConns:      e.Int("DB_MAX_CONNS", maxConns, 1),
		KafkaBrokers:    e.kafkaBrokers(),
		KafkaTopic:      e.String("KAFKA_TOPIC", "events.pending"),
		InstanceID:      e.String("INSTANCE_ID", host),
		LogFormat:       e.OneOf("LOG_FORMAT", "json", "json", "text"),
		LogLevel:        e.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 30*time.Second),
	}
	return c
}

// kafkaBrokers reads KAFKA_BROKERS.
func (e *Env) kafkaBrokers() []string {
	b := e.List("KAFKA_BROKERS", []string{DefaultKafkaBrokers})
	// Set but blank between the commas (","): a mistake, not a request for
	// the default.
	if len(b) == 0 {
		e.Fail("KAFKA_BROKERS", "names no broker (want a comma-separated host:port list, default %s)", DefaultKafkaBrokers)
	}
	return b
}

// Bounds of KAFKA_PARTITIONS.
const (
	// DefaultKafkaPartitions leaves room for a dozen delivery workers.
	DefaultKafkaPartitions = 12
	// MaxKafkaPartitions is far beyond any number of workers; more is
	// taken for a typo.
	MaxKafkaPartitions = 10000
)

// Topic holds the settings of what creates the topic of queued
// deliveries: the project sets its partitions, which bound how many
// delivery workers share the work, rather than the broker's default.
type Topic struct {
	Brokers    []string // KAFKA_BROKERS
	Name       string   // KAFKA_TOPIC
	Partitions int      // KAFKA_PARTITIONS
	// ReplicationFactor is each partition's replicas
	// (KAFKA_REPLICATION_FACTOR); zero leaves it to the broker's
	// default.replication.factor.
	ReplicationFactor int
}

// Topic reads KAFKA_BROKERS, KAFKA_TOPIC, KAFKA_PARTITIONS and
// KAFKA_REPLICATION_FACTOR.
func (e *Env) Topic() Topic {
	t := Topic{
		Brokers:           e.kafkaBrokers(),
		Name:              e.String("KAFKA_TOPIC", "events.pending"),
		Partitions:        e.Int("KAFKA_PARTITIONS", DefaultKafkaPartitions, 1),
		ReplicationFactor: e.Int("KAFKA_REPLICATION_FACTOR", 0, 1),
	}
	if t.Partitions > MaxKafkaPartitions {
		e.Fail("KAFKA_PARTITIONS", "%d is above the maximum %d", t.Partitions, MaxKafkaPartitions)
		t.Partitions = DefaultKafkaPartitions
	}
	if t.ReplicationFactor > math.MaxInt16 {
		e.Fail("KAFKA_REPLICATION_FACTOR", "%d is above the maximum %d", t.ReplicationFactor, math.MaxInt16)
		t.ReplicationFactor = 0
	}
	return t
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

// SecretKeys holds the keys that seal subscription secrets at rest, for
// the services that write or read them (ADR 15).
type SecretKeys struct {
	// SecretsKey seals new secrets and opens them (SECRETS_ENCRYPTION_KEY).
	SecretsKey []byte
	// PreviousSecretsKeys still open secrets sealed before the key was
	// replaced (SECRETS_ENCRYPTION_PREVIOUS_KEYS, comma-separated).
	PreviousSecretsKeys [][]byte
}

// SecretKeys reads SECRETS_ENCRYPTION_KEY, which is required, and
// SECRETS_ENCRYPTION_PREVIOUS_KEYS.
func (e *Env) SecretKeys() SecretKeys {
	var k SecretKeys
	if v, ok := e.get("SECRETS_ENCRYPTION_KEY"); !ok {
		e.Fail("SECRETS_ENCRYPTION_KEY", "is required: it seals subscription secrets in the database; make one with `openssl rand -base64 %d`", seal.KeySize)
	} else if key, err := seal.ParseKey(v); err != nil {
		e.Fail("SECRETS_ENCRYPTION_KEY", "%s", err)
	} else {
		k.SecretsKey = key
	}
	for _, v := range e.List("SECRETS_ENCRYPTION_PREVIOUS_KEYS", nil) {
		key, err := seal.ParseKey(v)
		if err != nil {
			e.Fail("SECRETS_ENCRYPTION_PREVIOUS_KEYS", "%s", err)
			continue
		}
		k.PreviousSecretsKeys = append(k.PreviousSecretsKeys, key)
	}
	return k
}

// Keyring returns the keyring of the keys read.
func (k SecretKeys) Keyring() (*seal.Keyring, error) {
	return seal.NewKeyring(k.SecretsKey, k.PreviousSecretsKeys...)
}

// Delivery holds the delivery defaults, which a delivery gets when
// neither its subscription nor its tenant sets a value, and the circuit
// breaker's settings. The delivery workers deliver under them; the ingest
// API reads the same variables, with the same defaults, to show the
// values in force and to judge when an open circuit half-opens, so every
// service that reads them must be given the same values.
type Delivery struct {
	MaxAttempts      int           // RETRY_MAX_ATTEMPTS
	RetryBaseDelay   time.Duration // RETRY_BASE_DELAY
	RetryMaxDelay    time.Duration // RETRY_MAX_DELAY
	DeliveryTimeout  time.Duration // DELIVERY_TIMEOUT
	RateLimit        int           // RATE_LIMIT_PER_SECOND
	MaxConcurrency   int           // MAX_CONCURRENCY
	CircuitThreshold int           // CIRCUIT_FAILURE_THRESHOLD
	CircuitOpenFor   time.Duration // CIRCUIT_OPEN_DURATION
	CircuitTrials    int           // CIRCUIT_HALF_OPEN_TRIALS
}

// Delivery reads the delivery defaults and the circuit breaker's settings.
func (e *Env) Delivery() Delivery {
	d := Delivery{
		MaxAttempts:      e.Int("RETRY_MAX_ATTEMPTS", retry.DefaultMaxAttempts, 1),
		RetryBaseDelay:   e.Duration("RETRY_BASE_DELAY", retry.DefaultBaseDelay),
		RetryMaxDelay:    e.Duration("RETRY_MAX_DELAY", retry.DefaultMaxDelay),
		DeliveryTimeout:  e.Duration("DELIVERY_TIMEOUT", 30*time.Second),
		RateLimit:        e.Int("RATE_LIMIT_PER_SECOND", 100, 1),
		MaxConcurrency:   e.Int("MAX_CONCURRENCY", 100, 1),
		CircuitThreshold: e.Int("CIRCUIT_FAILURE_THRESHOLD", 5, 1),
		CircuitOpenFor:   e.Duration("CIRCUIT_OPEN_DURATION", 30*time.Second),
		CircuitTrials:    e.Int("CIRCUIT_HALF_OPEN_TRIALS", 3, 1),
	}
	if d.RetryMaxDelay < d.RetryBaseDelay {
		e.Fail("RETRY_MAX_DELAY", "%s is shorter than RETRY_BASE_DELAY %s", d.RetryMaxDelay, d.RetryBaseDelay)
	}
	return d
}
