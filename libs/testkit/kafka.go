package testkit

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka starts an in-process Kafka cluster on a random 127.0.0.1 port with
// the given topics (partitions each) and closes it when the test ends. The
// cluster is reached over real TCP by the same franz-go client production uses.
func Kafka(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	return KafkaWith(t, partitions, topics)
}

// KafkaWith is Kafka with extra kfake options, such as kfake.Ports to bring
// a stopped cluster back on the same address.
func KafkaWith(t testing.TB, partitions int32, topics []string, extra ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation()}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(append(opts, extra...)...)
	if err != nil {
		t.Fatalf("testkit: start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}
