package topic_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/topic"
)

func TestEnsure(t *testing.T) {
	t.Parallel()
	brokers := testkit.Kafka(t, 1).ListenAddrs()[0]
	run := func(env map[string]string, args ...string) (string, error) {
		env["KAFKA_BROKERS"] = brokers
		var out bytes.Buffer
		err := topic.Run(context.Background(), libconfig.FromMap(env), args, &out)
		return out.String(), err
	}

	for _, tc := range []struct {
		partitions, want string
	}{
		{"", "created topic events.pending with 12 partitions\n"},
		{"12", "topic events.pending has its 12 partitions\n"},
		{"16", "topic events.pending had 12 partitions, now 16\n"},
		{"8", "topic events.pending has 16 partitions, more than KAFKA_PARTITIONS 8; Kafka cannot remove partitions, so it is left as it is\n"},
	} {
		out, err := run(map[string]string{"KAFKA_PARTITIONS": tc.partitions}, "ensure")
		require.NoError(t, err, "KAFKA_PARTITIONS=%q", tc.partitions)
		require.Equal(t, tc.want, out, "KAFKA_PARTITIONS=%q", tc.partitions)
	}

	// A bad value fails before Kafka is asked, naming the variable.
	_, err := run(map[string]string{"KAFKA_PARTITIONS": "0", "KAFKA_TOPIC": "other"}, "ensure")
	require.ErrorContains(t, err, "KAFKA_PARTITIONS: 0 is below the minimum 1")
	out, err := run(map[string]string{"KAFKA_TOPIC": "other"}, "ensure")
	require.NoError(t, err)
	require.Equal(t, "created topic other with 12 partitions\n", out, "the bad value created nothing")

	_, err = run(map[string]string{}, "create")
	require.ErrorContains(t, err, "usage: ingest-api topic ensure")
}
