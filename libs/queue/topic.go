package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicSpec is the topic of queued deliveries as the project sets it up:
// its partitions bound how many workers share the work, so they are never
// left to the broker's default.
type TopicSpec struct {
	Name       string
	Partitions int32
	// ReplicationFactor is each partition's replicas; zero or less leaves
	// it to the broker's default.replication.factor.
	ReplicationFactor int16
}

// TopicResult says what EnsureTopic found and did.
type TopicResult struct {
	// Created is set when the topic did not exist.
	Created bool
	// Before is the partition count found (zero when Created), After the
	// count the topic has now; After exceeds Partitions when the topic
	// already had more, which Kafka cannot undo.
	Before, After int32
}

// EnsureTopic creates the topic with spec's partitions, or adds partitions
// to an existing topic that has fewer. It never removes any: Kafka cannot.
// Producers and consumers do not create topics themselves, so a mistyped
// topic name fails instead of creating a one-partition topic.
func EnsureTopic(ctx context.Context, brokers []string, spec TopicSpec) (TopicResult, error) {
	if spec.Partitions < 1 {
		return TopicResult{}, fmt.Errorf("topic %s: partitions must be at least 1, got %d", spec.Name, spec.Partitions)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return TopicResult{}, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	have, err := topicPartitions(ctx, cl, spec.Name)
	if err != nil {
		return TopicResult{}, err
	}
	if have == 0 {
		created, err := createTopic(ctx, cl, spec)
		if err != nil {
			return TopicResult{}, err
		}
		if created {
			return TopicResult{Created: true, After: spec.Partitions}, nil
		}
		// Created by someone else meanwhile: look again.
		if have, err = topicPartitions(ctx, cl, spec.Name); err != nil {
			return TopicResult{}, err
		}
	}
	res := TopicResult{Before: have, After: have}
	if have >= spec.Partitions {
		return res, nil
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 30_000
	t := kmsg.NewCreatePartitionsRequestTopic()
	t.Topic, t.Count = spec.Name, spec.Partitions
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return res, fmt.Errorf("add partitions to %s: %w", spec.Name, err)
	}
	for _, r := range resp.Topics {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return res, fmt.Errorf("add partitions to %s: %w", spec.Name, err)
		}
	}
	res.After = spec.Partitions
	return res, nil
}

// topicPartitions is the topic's partition count, zero when it does not exist.
func topicPartitions(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		err := kerr.ErrorForCode(t.ErrorCode)
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("describe topic %s: %w", topic, err)
		}
		return int32(len(t.Partitions)), nil //nolint:gosec // G115: Kafka counts a topic's partitions in an int32
	}
	return 0, nil
}

// createTopic creates the topic; false when it already exists.
func createTopic(ctx context.Context, cl *kgo.Client, spec TopicSpec) (bool, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30_000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = spec.Name
	t.NumPartitions = spec.Partitions
	t.ReplicationFactor = -1
	if spec.ReplicationFactor > 0 {
		t.ReplicationFactor = spec.ReplicationFactor
	}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return false, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	for _, r := range resp.Topics {
		err := kerr.ErrorForCode(r.ErrorCode)
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("create topic %s: %w", spec.Name, err)
		}
	}
	return true, nil
}
