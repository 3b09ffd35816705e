package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

func TestEnsureTopic(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := testkit.Kafka(t, 1).ListenAddrs()

	for _, tc := range []struct {
		name       string
		partitions int32
		want       queue.TopicResult
	}{
		{"a missing topic is created with the partitions asked for", 6, queue.TopicResult{Created: true, After: 6}},
		{"the same again changes nothing", 6, queue.TopicResult{Before: 6, After: 6}},
		{"more partitions are added", 9, queue.TopicResult{Before: 6, After: 9}},
		{"fewer are never taken away", 3, queue.TopicResult{Before: 9, After: 9}},
	} {
		got, err := queue.EnsureTopic(ctx, brokers, queue.TopicSpec{Name: topic, Partitions: tc.partitions})
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}

	_, err := queue.EnsureTopic(ctx, brokers, queue.TopicSpec{Name: topic, Partitions: 0})
	require.ErrorContains(t, err, "partitions must be at least 1")
}

// TestProducerCreatesNoTopic: publishing to a topic that does not exist
// fails rather than creating it with the broker's default partitions.
func TestProducerCreatesNoTopic(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := testkit.Kafka(t, 1).ListenAddrs()
	p, err := queue.NewProducer(queue.ProducerConfig{Brokers: brokers, Topic: "events.mistyped", DeliveryTimeout: 2 * time.Second})
	require.NoError(t, err)
	defer func() { _ = p.Close(ctx) }() // the publish below fails; what is left to flush does not matter
	require.Error(t, p.PublishSync(ctx, queue.Message{DeliveryID: 1, EventID: "evt_1", SubscriptionID: "sub_1"}))

	got, err := queue.EnsureTopic(ctx, brokers, queue.TopicSpec{Name: "events.mistyped", Partitions: 2})
	require.NoError(t, err)
	require.True(t, got.Created, "the producer created the topic")
}
