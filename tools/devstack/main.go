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
	"os"
	"os/signal"
	"syscall"
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
	switch cmd {
	case "up":
		return up(ctx, loadSettings())
	case "kafka":
		return kafkaOnly(ctx, loadSettings())
	case "receiver":
		return receiverOnly(ctx, loadSettings())
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

func loadSettings() settings {
	return settings{
		databaseURL:  env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dispatch?sslmode=disable"),
		kafkaBrokers: os.Getenv("KAFKA_BROKERS"),
		kafkaAddr:    env("KAFKA_ADDR", "127.0.0.1:9092"),
		topic:        env("KAFKA_TOPIC", "events.pending"),
		dataDir:      env("DATA_DIR", ".data"),
		apiAddr:      env("API_ADDR", "127.0.0.1:8080"),
		workerAddr:   env("WORKER_ADDR", "127.0.0.1:8081"),
		schedAddr:    env("SCHEDULER_ADDR", "127.0.0.1:8082"),
		dashAddr:     env("DASHBOARD_ADDR", "127.0.0.1:8083"),
		receiverAddr: env("RECEIVER_ADDR", "127.0.0.1:9000"),
		binDir:       env("BIN_DIR", "bin"),
	}
}
