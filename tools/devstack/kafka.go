package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// startKafka starts kfake on addr, persisting its log under dataDir so
// queued deliveries survive a restart of the dev stack.
func startKafka(s settings) (*kfake.Cluster, error) {
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
		kfake.SeedTopics(8, s.topic),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		return nil, fmt.Errorf("start embedded Kafka on %s: %w", s.kafkaAddr, err)
	}
	return c, nil
}

func kafkaOnly(ctx context.Context, s settings) error {
	c, err := startKafka(s)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("embedded Kafka listening on %v (data in %s); Ctrl-C stops it\n", c.ListenAddrs(), filepath.Join(s.dataDir, "kafka"))
	<-ctx.Done()
	return nil
}
