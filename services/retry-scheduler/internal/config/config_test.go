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
	if cfg.PollInterval != 5*time.Second || cfg.BatchSize != 100 || cfg.StrandedAfter != 2*time.Minute ||
		cfg.RetentionPeriod != 30*24*time.Hour || cfg.RetentionBatchSize != 1000 {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	_, err = config.Load(libconfig.FromMap(map[string]string{"KAFKA_BROKERS": "k:9092", "RETRY_POLL_INTERVAL": "often", "RETRY_BATCH_SIZE": "0"}))
	for _, name := range []string{"RETRY_POLL_INTERVAL", "RETRY_BATCH_SIZE"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		period string
		want   time.Duration
	}{
		{"", 30 * 24 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
		{" 90D ", 90 * 24 * time.Hour},
		{"36h", 36 * time.Hour},
		{"1h", time.Hour},
		{"off", 0},
		{"OFF", 0},
		{"0", 0},
	} {
		cfg, err := config.Load(libconfig.FromMap(map[string]string{"RETENTION_PERIOD": tt.period, "RETENTION_BATCH_SIZE": "500"}))
		if err != nil {
			t.Fatalf("%q: %v", tt.period, err)
		}
		if cfg.RetentionPeriod != tt.want || cfg.RetentionBatchSize != 500 {
			t.Errorf("%q: period %s, batch %d", tt.period, cfg.RetentionPeriod, cfg.RetentionBatchSize)
		}
	}
	for _, bad := range []map[string]string{
		{"RETENTION_PERIOD": "30"},
		{"RETENTION_PERIOD": "30m"},
		{"RETENTION_PERIOD": "0d"},
		{"RETENTION_PERIOD": "-3d"},
		{"RETENTION_PERIOD": "1w"},
		{"RETENTION_PERIOD": "99999999d"},
		{"RETENTION_PERIOD": "never"},
		{"RETENTION_BATCH_SIZE": "0"},
		{"RETENTION_BATCH_SIZE": "100000"},
	} {
		_, err := config.Load(libconfig.FromMap(bad))
		for name := range bad {
			if err == nil || !strings.Contains(err.Error(), name+":") {
				t.Errorf("%v: error %v does not name %s", bad, err, name)
			}
		}
	}
}

func TestOperationalEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env      map[string]string
		after    time.Duration
		bySub    bool
		interval time.Duration
		bad      string
	}{
		{env: map[string]string{}, after: 5 * 24 * time.Hour, interval: 5 * time.Second},
		{env: map[string]string{"AUTO_DISABLE_AFTER": "3s", "OPERATIONAL_EVENTS_TENANT": "subscription", "OPERATIONAL_CHECK_INTERVAL": "100ms"},
			after: 3 * time.Second, bySub: true, interval: 100 * time.Millisecond},
		{env: map[string]string{"AUTO_DISABLE_AFTER": "7d"}, after: 7 * 24 * time.Hour, interval: 5 * time.Second},
		{env: map[string]string{"AUTO_DISABLE_AFTER": "0"}, after: 0, interval: 5 * time.Second},
		{env: map[string]string{"AUTO_DISABLE_AFTER": "off"}, after: 0, interval: 5 * time.Second},
		{env: map[string]string{"AUTO_DISABLE_AFTER": "soon"}, bad: "AUTO_DISABLE_AFTER"},
		{env: map[string]string{"AUTO_DISABLE_AFTER": "500ms"}, bad: "AUTO_DISABLE_AFTER"},
		{env: map[string]string{"OPERATIONAL_EVENTS_TENANT": "acme"}, bad: "OPERATIONAL_EVENTS_TENANT"},
		{env: map[string]string{"OPERATIONAL_CHECK_INTERVAL": "0s"}, bad: "OPERATIONAL_CHECK_INTERVAL"},
	}
	for _, tt := range tests {
		cfg, err := config.Load(libconfig.FromMap(tt.env))
		if tt.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tt.bad+":") {
				t.Errorf("%v: error %v does not name %s", tt.env, err, tt.bad)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if cfg.AutoDisableAfter != tt.after || cfg.OperationalEventsBySubscriptionTenant != tt.bySub || cfg.OperationalCheckInterval != tt.interval {
			t.Errorf("%v: %+v", tt.env, cfg)
		}
	}
}
