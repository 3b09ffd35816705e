package config_test

import (
	"strings"
	"testing"
	"time"

	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/config"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(libconfig.FromMap(map[string]string{"KAFKA_BROKERS": "k:9092"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PollInterval != 5*time.Second || cfg.BatchSize != 100 || cfg.StrandedAfter != 2*time.Minute {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	_, err = config.Load(libconfig.FromMap(map[string]string{"KAFKA_BROKERS": "k:9092", "RETRY_POLL_INTERVAL": "often", "RETRY_BATCH_SIZE": "0"}))
	for _, name := range []string{"RETRY_POLL_INTERVAL", "RETRY_BATCH_SIZE"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}
