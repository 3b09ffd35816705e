package config_test

import (
	"strings"
	"testing"
	"time"

	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/services/delivery-worker/internal/config"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(libconfig.FromMap(map[string]string{"SECRETS_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "KAFKA_BROKERS": "127.0.0.1:9092"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KafkaConsumerGroup != "dispatch-workers" || cfg.DeliveryTimeout != 30*time.Second || cfg.MaxAttempts != 16 ||
		cfg.Concurrency != 512 || cfg.DestinationSlots != 128 || cfg.MaxResponseHeaderBytes != 64<<10 || cfg.ProxyIgnored || cfg.Traceparent {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	cfg, err = config.Load(libconfig.FromMap(map[string]string{"SECRETS_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "KAFKA_BROKERS": "k:9092", "DELIVERY_CONCURRENCY": "10", "HTTPS_PROXY": "http://proxy:3128", "DELIVERY_TRACEPARENT": "true",
		"DELIVERY_PROXY_URL": "http://u:pw@egress.internal:4750"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DestinationSlots != 2 || !cfg.ProxyIgnored || !cfg.Traceparent || cfg.Proxy == nil || cfg.Proxy.Host != "egress.internal:4750" {
		t.Fatalf("slots a quarter of the concurrency, proxy noticed: %+v", cfg)
	}
	_, err = config.Load(libconfig.FromMap(map[string]string{
		"KAFKA_BROKERS": "x:1", "DELIVERY_TIMEOUT": "soon", "RETRY_BASE_DELAY": "1h", "RETRY_MAX_DELAY": "1m",
		"DELIVERY_ALLOW_CIDRS": "127.0.0.0/8, localhost", "DELIVERY_CONCURRENCY": "8", "DELIVERY_DESTINATION_SLOTS": "9",
		"DELIVERY_MAX_RESPONSE_HEADER_BYTES": "100", "DELIVERY_TRACEPARENT": "yes", "DELIVERY_PROXY_URL": "https://u:topsecret@egress.internal:4750",
	}))
	if err != nil && strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error %v repeats the proxy's password", err)
	}
	for _, name := range []string{"DELIVERY_TIMEOUT", "RETRY_MAX_DELAY", "DELIVERY_ALLOW_CIDRS", "DELIVERY_DESTINATION_SLOTS", "DELIVERY_MAX_RESPONSE_HEADER_BYTES", "DELIVERY_TRACEPARENT", "DELIVERY_PROXY_URL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}
