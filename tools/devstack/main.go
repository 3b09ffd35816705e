// Command devstack runs Dispatch's whole stack on one machine without
// Docker: it prepares the database, starts an embedded Kafka (kfake) unless
// KAFKA_BROKERS is set, a demo receiver that verifies signatures, and every
// service from bin/; then it subscribes the receiver and sends a sample
// event. Ctrl-C stops everything.
//
//	devstack            the whole stack (what `go tool task dev` runs)
//	devstack kafka      only the embedded Kafka, on KAFKA_ADDR (127.0.0.1:9092)
//	devstack receiver   only the demo receiver, on RECEIVER_ADDR (127.0.0.1:9000)
package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"

	"github.com/dispatch-webhooks/dispatch/libs/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

// run runs the command named by the first argument until it ends or a
// signal stops it.
func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd := "up"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	s, err := loadSettings()
	if err != nil {
		return err
	}
	switch cmd {
	case "up":
		return up(ctx, s)
	case "kafka":
		return kafkaOnly(ctx, s)
	case "receiver":
		return receiverOnly(ctx, s)
	default:
		return fmt.Errorf("unknown command %q: use up, kafka or receiver", cmd)
	}
}

// settings come from the environment with local defaults.
type settings struct {
	databaseURL  string
	kafkaBrokers string
	kafkaAddr    string
	topic        string
	// partitions and replication are KAFKA_PARTITIONS and
	// KAFKA_REPLICATION_FACTOR, which the topic is made with.
	partitions   int32
	replication  int16
	dataDir      string
	apiAddr      string
	workerAddr   string
	schedAddr    string
	dashAddr     string
	receiverAddr string
	binDir       string
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// loadSettings reads the settings, failing on a bad KAFKA_PARTITIONS or
// KAFKA_REPLICATION_FACTOR as the services' own settings do.
func loadSettings() (settings, error) {
	vars := config.FromEnv()
	topic := vars.Topic()
	if err := vars.Err(); err != nil {
		return settings{}, err
	}
	return settings{
		databaseURL:  env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dispatch?sslmode=disable"),
		kafkaBrokers: os.Getenv("KAFKA_BROKERS"),
		kafkaAddr:    env("KAFKA_ADDR", "127.0.0.1:9092"),
		topic:        topic.Name,
		// Bounded by Topic.
		partitions:   int32(min(topic.Partitions, math.MaxInt32)),        //nolint:gosec // G115: min bounds it
		replication:  int16(min(topic.ReplicationFactor, math.MaxInt16)), //nolint:gosec // G115: min bounds it
		dataDir:      env("DATA_DIR", ".data"),
		apiAddr:      env("API_ADDR", "127.0.0.1:8080"),
		workerAddr:   env("WORKER_ADDR", "127.0.0.1:8081"),
		schedAddr:    env("SCHEDULER_ADDR", "127.0.0.1:8082"),
		dashAddr:     env("DASHBOARD_ADDR", "127.0.0.1:8083"),
		receiverAddr: env("RECEIVER_ADDR", "127.0.0.1:9000"),
		binDir:       env("BIN_DIR", "bin"),
	}, nil
}
