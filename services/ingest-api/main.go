// Command ingest-api serves Dispatch's HTTP API: it accepts events, fans
// them out to matching subscriptions and queues their deliveries.
//
// Run "ingest-api openapi [3.0]" to print the OpenAPI document ("ingest-api
// openapi catalog-example" prints an event-type catalog's document, which
// the OpenAPI tooling checks),
// "ingest-api keys create -name NAME -scopes SCOPES" to create an API key,
// "ingest-api secrets reseal" to seal every stored secret under the
// current key, "ingest-api topic ensure" to create the Kafka topic with
// KAFKA_PARTITIONS partitions (or add partitions up to it),
// "ingest-api configcheck" to check the settings without starting (exit 0
// when accepted, 1 with every bad one printed),
// and "ingest-api healthcheck" to ask the running service at ADDR whether
// it is ready (exit 0) or not (exit 1), as a container health check does.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
	"github.com/dispatch-webhooks/dispatch/libs/lifecycle"
	"github.com/dispatch-webhooks/dispatch/libs/observability"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/config"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/keys"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/secrets"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/topic"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "openapi":
			err = printSpec(os.Args[2:])
		case "healthcheck":
			os.Exit(observability.HealthcheckCommand(libconfig.FromEnv().String("ADDR", libconfig.DefaultAddr)))
		case "keys":
			databaseURL := libconfig.FromEnv().String("DATABASE_URL", libconfig.DefaultDatabaseURL)
			err = keys.Run(context.Background(), clock.Real(), databaseURL, os.Args[2:], os.Stdout)
		case "secrets":
			err = secrets.Run(context.Background(), libconfig.FromEnv(), os.Args[2:], os.Stdout)
		case "topic":
			err = topic.Run(context.Background(), libconfig.FromEnv(), os.Args[2:], os.Stdout)
		case "configcheck":
			os.Exit(libconfig.CheckCommand(config.Load, os.Stderr))
		default:
			err = fmt.Errorf("unknown command %q; run without arguments to serve, or: openapi [3.0], keys create, secrets reseal, topic ensure, configcheck, healthcheck", os.Args[1])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ingest-api:", err)
			os.Exit(1)
		}
		return
	}
	lifecycle.Main("ingest-api", run)
}

func run(ctx context.Context) error {
	cfg, err := config.Load(libconfig.FromEnv())
	if err != nil {
		return err
	}
	log, flush, err := observability.Start(ctx, observability.Service{
		Name: "ingest-api", Version: version, Instance: cfg.InstanceID, LogFormat: cfg.LogFormat, LogLevel: cfg.LogLevel,
	})
	if err != nil {
		return err
	}
	defer flush()

	// A third of the connections store events, in sessions that never plan
	// a sequential scan (store.WithIngestPool); the rest serve every other
	// request.
	ingestConns := max(1, cfg.DBMaxConns/3)
	pool, err := store.Connect(ctx, cfg.DatabaseURL, max(1, cfg.DBMaxConns-ingestConns))
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	ingestPool, err := store.Connect(ctx, cfg.DatabaseURL, ingestConns, store.KeyedReads())
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer ingestPool.Close()
	keys, err := cfg.Keyring()
	if err != nil {
		return fmt.Errorf("SECRETS_ENCRYPTION_KEY: %w", err)
	}
	st := store.New(pool, store.WithSecretKeys(keys), store.WithIngestPool(ingestPool))

	publishFailures := promauto.NewCounter(prometheus.CounterOpts{
		Name: "dispatch_publish_failures_total",
		Help: "Deliveries stored but not handed to Kafka; the retry scheduler republishes them.",
	})
	producer, err := queue.NewProducer(queue.ProducerConfig{
		Brokers: cfg.KafkaBrokers,
		Topic:   cfg.KafkaTopic,
		OnError: func(m queue.Message, err error) {
			publishFailures.Inc()
			log.Warn("publish failed; the retry scheduler will publish it", "event_id", m.EventID, "subscription_id", m.SubscriptionID, "err", err)
			// Let the scheduler publish it on its next pass rather than once it looks stale.
			markCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := st.MarkUnpublished(markCtx, m.DeliveryID); err != nil {
				log.Warn("could not flag unpublished delivery; it is republished once stale", "event_id", m.EventID, "err", err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS: %w", err)
	}

	redisOpts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(redisOpts)
	defer rdb.Close()
	// Only read here (circuit states); its throttling metrics belong to the workers.
	circuits := resilience.New(rdb, resilience.Config{Prefix: cfg.RedisKeyPrefix, OpenFor: cfg.CircuitOpenFor, Logger: log, Registerer: prometheus.NewRegistry()})

	mux := http.NewServeMux()
	observability.Register(mux, map[string]observability.Check{"database": st.Ping})
	defaults := domain.DeliverySettings{MaxAttempts: cfg.MaxAttempts, RetryBaseDelay: cfg.RetryBaseDelay, RetryMaxDelay: cfg.RetryMaxDelay,
		Timeout: cfg.DeliveryTimeout, RatePerSecond: cfg.RateLimit, MaxConcurrency: cfg.MaxConcurrency}
	//nolint:contextcheck // New registers handlers: each request brings its own context
	api.New(mux, api.Config{Store: st, Publisher: producer, Circuits: circuits, Defaults: defaults, Egress: egress.NewPolicy(cfg.AllowCIDRs), AdminKey: cfg.AdminKey,
		EventTypesRequired: cfg.EventTypesRequired, PortalURL: cfg.PortalURL, PortalReturnOrigins: cfg.PortalReturnOrigins,
		CursorKeys: append([][]byte{cfg.SecretsKey}, cfg.PreviousSecretsKeys...), Logger: log, Version: version})

	srv := newServer(cfg.Addr, api.WithRequestID(log, cfg.LogRequests, observability.TraceHTTP(api.AnswerUnrouted(mux), "ingest-api")))
	log.Info("ingest-api listening", "addr", cfg.Addr, "topic", cfg.KafkaTopic)
	err = lifecycle.Run(ctx, lifecycle.HTTP(srv, cfg.ShutdownTimeout))

	// Requests are finished; deliveries still buffered for Kafka get the
	// rest of the shutdown time, the scheduler publishes any left over.
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if perr := producer.Close(closeCtx); perr != nil {
		log.Warn("unpublished deliveries are left to the retry scheduler", "err", perr)
	}
	log.Info("stopped")
	return err
}

// Connection limits: slow or idle clients cannot hold the server's
// connections and goroutines for long. Requests are small (256 KiB at
// most), so 30 s to send one is generous; answers include at most a DNS
// check (2 s) and a database round trip with retries.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 32 << 10
)

// newServer is the API's HTTP server with the connection limits above.
func newServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

func printSpec(args []string) error {
	spec := api.Spec(version)
	var (
		b   []byte
		err error
	)
	switch {
	case len(args) > 0 && args[0] == "3.0":
		b, err = spec.Downgrade()
	case len(args) > 0 && args[0] == "catalog-example":
		b, err = json.MarshalIndent(api.CatalogDocument(api.ExampleCatalog), "", "  ")
	default:
		b, err = json.MarshalIndent(spec, "", "  ")
	}
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}
