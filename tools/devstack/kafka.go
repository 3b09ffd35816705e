package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dispatch-webhooks/dispatch/libs/queue"
)

// startKafka starts kfake on addr, persisting its log under dataDir so
// queued deliveries survive a restart of the dev stack, with the topic.
func startKafka(ctx context.Context, s settings) (*kfake.Cluster, error) {
	_, portStr, err := net.SplitHostPort(s.kafkaAddr)
	if err != nil {
		return nil, fmt.Errorf("KAFKA_ADDR %q: %w", s.kafkaAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("KAFKA_ADDR %q: %w", s.kafkaAddr, err)
	}
	dir := filepath.Join(s.dataDir, "kafka")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(dir),
	)
	if err != nil {
		return nil, fmt.Errorf("start embedded Kafka on %s: %w", s.kafkaAddr, err)
	}
	if err := ensureTopic(ctx, s, c.ListenAddrs()); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ensureTopic creates the topic with KAFKA_PARTITIONS partitions, or adds
// partitions to the one a previous run left, as `ingest-api topic ensure`
// does for the other deployments.
func ensureTopic(ctx context.Context, s settings, brokers []string) error {
	res, err := queue.EnsureTopic(ctx, brokers, queue.TopicSpec{Name: s.topic, Partitions: s.partitions, ReplicationFactor: s.replication})
	if err != nil {
		return fmt.Errorf("topic %s on %v: %w", s.topic, brokers, err)
	}
	if res.After > s.partitions {
		fmt.Printf("topic %s has %d partitions, more than KAFKA_PARTITIONS %d (Kafka cannot remove partitions)\n", s.topic, res.After, s.partitions)
	}
	return nil
}

func kafkaOnly(ctx context.Context, s settings) error {
	c, err := startKafka(ctx, s)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("embedded Kafka listening on %v (data in %s); Ctrl-C stops it\n", c.ListenAddrs(), filepath.Join(s.dataDir, "kafka"))
	<-ctx.Done()
	return nil
}
