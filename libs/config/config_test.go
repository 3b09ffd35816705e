package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
)

func TestEnv(t *testing.T) {
	t.Parallel()
	env := config.FromMap(map[string]string{
		"A": "x", "N": "12", "D": "5s", "L": "a, b,,c", "BAD_N": "many", "LOW_N": "0", "BAD_D": "-1s", "MODE": "json", "BAD_MODE": "xml",
	})
	if got := env.String("A", "d"); got != "x" {
		t.Errorf("String = %q", got)
	}
	if got := env.String("UNSET", "d"); got != "d" {
		t.Errorf("String default = %q", got)
	}
	if got := env.Int("N", 1, 1); got != 12 {
		t.Errorf("Int = %d", got)
	}
	if got := env.Duration("D", time.Second); got != 5*time.Second {
		t.Errorf("Duration = %v", got)
	}
	if got := strings.Join(env.List("L", nil), "|"); got != "a|b|c" {
		t.Errorf("List = %q", got)
	}
	if got := env.OneOf("MODE", "text", "json", "text"); got != "json" {
		t.Errorf("OneOf = %q", got)
	}
	if err := env.Err(); err != nil {
		t.Fatalf("no error expected yet: %v", err)
	}
	env.Int("BAD_N", 1, 1)
	env.Int("LOW_N", 1, 1)
	env.Duration("BAD_D", time.Second)
	env.OneOf("BAD_MODE", "text", "json", "text")
	env.Required("MISSING")
	err := env.Err()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"BAD_N", "LOW_N", "BAD_D", "BAD_MODE", "MISSING"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestCommonKafkaBrokers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    []string
		wantErr bool
	}{
		{"unset: the local broker, as the seed README says", map[string]string{}, []string{"localhost:9092"}, false},
		{"empty: the default too", map[string]string{"KAFKA_BROKERS": " "}, []string{"localhost:9092"}, false},
		{"one", map[string]string{"KAFKA_BROKERS": "kafka:9092"}, []string{"kafka:9092"}, false},
		{"several", map[string]string{"KAFKA_BROKERS": "a:9092, b:9092,"}, []string{"a:9092", "b:9092"}, false},
		{"only commas", map[string]string{"KAFKA_BROKERS": ", ,"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := config.FromMap(tt.env)
			c := env.Common(30)
			err := env.Err()
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "KAFKA_BROKERS:") {
					t.Fatalf("error %v does not name KAFKA_BROKERS", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.KafkaBrokers, tt.want) {
				t.Fatalf("KafkaBrokers = %q, want %q", c.KafkaBrokers, tt.want)
			}
		})
	}
}

func TestSecretKeys(t *testing.T) {
	t.Parallel()
	current, previous := seal.NewKey(), seal.NewKey()
	env := config.FromMap(map[string]string{"SECRETS_ENCRYPTION_KEY": current, "SECRETS_ENCRYPTION_PREVIOUS_KEYS": previous})
	keys := env.SecretKeys()
	if err := env.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys.PreviousSecretsKeys) != 1 {
		t.Fatalf("previous keys: %d", len(keys.PreviousSecretsKeys))
	}
	if _, err := keys.Keyring(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]string{
		{},
		{"SECRETS_ENCRYPTION_KEY": "too-short"},
		{"SECRETS_ENCRYPTION_KEY": current, "SECRETS_ENCRYPTION_PREVIOUS_KEYS": "nope"},
	} {
		env := config.FromMap(m)
		env.SecretKeys()
		if err := env.Err(); err == nil || !strings.Contains(err.Error(), "SECRETS_ENCRYPTION_") {
			t.Errorf("%v: error %v does not name the variable", m, err)
		}
	}
}

func TestTopic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    config.Topic
		wantErr string
	}{
		{"defaults: twelve partitions, the broker's replication", map[string]string{},
			config.Topic{Brokers: []string{"localhost:9092"}, Name: "events.pending", Partitions: 12}, ""},
		{"set", map[string]string{"KAFKA_BROKERS": "k:9092", "KAFKA_TOPIC": "t", "KAFKA_PARTITIONS": " 48 ", "KAFKA_REPLICATION_FACTOR": "3"},
			config.Topic{Brokers: []string{"k:9092"}, Name: "t", Partitions: 48, ReplicationFactor: 3}, ""},
		{"no partitions", map[string]string{"KAFKA_PARTITIONS": "0"}, config.Topic{}, "KAFKA_PARTITIONS: 0 is below the minimum 1"},
		{"negative", map[string]string{"KAFKA_PARTITIONS": "-4"}, config.Topic{}, "KAFKA_PARTITIONS: -4 is below the minimum 1"},
		{"not a number", map[string]string{"KAFKA_PARTITIONS": "twelve"}, config.Topic{}, `KAFKA_PARTITIONS: "twelve" is not a whole number`},
		{"too many", map[string]string{"KAFKA_PARTITIONS": "100000"}, config.Topic{}, "KAFKA_PARTITIONS: 100000 is above the maximum 10000"},
		{"replication zero", map[string]string{"KAFKA_REPLICATION_FACTOR": "0"}, config.Topic{}, "KAFKA_REPLICATION_FACTOR: 0 is below the minimum 1"},
		{"replication too large", map[string]string{"KAFKA_REPLICATION_FACTOR": "40000"}, config.Topic{}, "KAFKA_REPLICATION_FACTOR: 40000 is above the maximum 32767"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := config.FromMap(tt.env)
			got := env.Topic()
			err := env.Err()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Brokers, tt.want.Brokers) || got.Name != tt.want.Name || got.Partitions != tt.want.Partitions || got.ReplicationFactor != tt.want.ReplicationFactor {
				t.Fatalf("Topic() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCheckCommand(t *testing.T) {
	t.Setenv("DISPATCH_CHECK_TEST", "bad")
	load := func(e *config.Env) (int, error) {
		n := e.Int("DISPATCH_CHECK_TEST", 1, 1)
		return n, e.Err()
	}
	var out strings.Builder
	if code := config.CheckCommand(load, &out); code != 1 || !strings.Contains(out.String(), `DISPATCH_CHECK_TEST: "bad" is not a whole number`) {
		t.Fatalf("exit %d, %q", code, out.String())
	}
	t.Setenv("DISPATCH_CHECK_TEST", "3")
	out.Reset()
	if code := config.CheckCommand(load, &out); code != 0 || out.String() != "configuration accepted\n" {
		t.Fatalf("exit %d, %q", code, out.String())
	}
}
