// Package topic is the ingest-api's "topic ensure" command: it creates the
// topic of queued deliveries with KAFKA_PARTITIONS partitions, or adds
// partitions up to that number, before the services start. The services
// never create it themselves, so its partitions are the project's choice
// and not the broker's default.
package topic

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
)

// Usage describes the command.
const Usage = `usage: ingest-api topic ensure
Creates KAFKA_TOPIC (events.pending) on KAFKA_BROKERS with KAFKA_PARTITIONS
partitions (12) and KAFKA_REPLICATION_FACTOR replicas (the broker's
default), or adds partitions to an existing topic that has fewer. Kafka
cannot remove partitions: a topic with more is left as it is. Safe to run
again and from several places at once.`

// timeout bounds the whole command, waiting for the brokers included.
const timeout = 2 * time.Minute

// Run runs "topic" with its arguments (after the word "topic"), reading
// the Kafka settings from env and writing what it did to out.
func Run(ctx context.Context, env *libconfig.Env, args []string, out io.Writer) error {
	if len(args) != 1 || args[0] != "ensure" {
		return fmt.Errorf("%s", Usage)
	}
	t := env.Topic()
	if err := env.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The bounds were checked when the settings were read.
	spec := queue.TopicSpec{Name: t.Name, Partitions: int32(min(t.Partitions, math.MaxInt32)), ReplicationFactor: int16(min(t.ReplicationFactor, math.MaxInt16))} //nolint:gosec // G115: min bounds both
	res, err := queue.EnsureTopic(ctx, t.Brokers, spec)
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS %v: %w", t.Brokers, err)
	}
	switch {
	case res.Created:
		_, err = fmt.Fprintf(out, "created topic %s with %d partitions\n", t.Name, res.After)
	case res.Before < res.After:
		_, err = fmt.Fprintf(out, "topic %s had %d partitions, now %d\n", t.Name, res.Before, res.After)
	case res.After > spec.Partitions:
		_, err = fmt.Fprintf(out, "topic %s has %d partitions, more than KAFKA_PARTITIONS %d; Kafka cannot remove partitions, so it is left as it is\n", t.Name, res.After, spec.Partitions)
	default:
		_, err = fmt.Fprintf(out, "topic %s has its %d partitions\n", t.Name, res.After)
	}
	return err
}
