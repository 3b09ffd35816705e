package config_test

import (
	"strings"
	"testing"
	"time"

	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/config"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(libconfig.FromMap(map[string]string{"SECRETS_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "KAFKA_BROKERS": "a:9092, b:9092"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8080" || cfg.KafkaTopic != "events.pending" || cfg.DBMaxConns != 30 || cfg.ShutdownTimeout != 30*time.Second || len(cfg.KafkaBrokers) != 2 ||
		cfg.PortalURL != config.DefaultPortalURL || cfg.PortalReturnOrigins != nil || cfg.LogRequests ||
		cfg.MaxAttempts != 16 || cfg.DeliveryTimeout != 30*time.Second || cfg.RateLimit != 100 || cfg.CircuitOpenFor != 30*time.Second {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	_, err = config.Load(libconfig.FromMap(map[string]string{"KAFKA_BROKERS": ",", "DB_MAX_CONNS": "lots", "LOG_FORMAT": "yaml", "DELIVERY_ALLOW_CIDRS": "10.0.0.0", "ADMIN_API_KEY": "short", "LOG_REQUESTS": "yes",
		"PORTAL_URL": "portal.example.com", "PORTAL_RETURN_ORIGINS": "https://app.example.com/settings",
		"RETRY_MAX_ATTEMPTS": "0", "RETRY_BASE_DELAY": "1m", "RETRY_MAX_DELAY": "1s"}))
	for _, name := range []string{"KAFKA_BROKERS", "DB_MAX_CONNS", "LOG_FORMAT", "DELIVERY_ALLOW_CIDRS", "ADMIN_API_KEY", "SECRETS_ENCRYPTION_KEY", "PORTAL_URL", "PORTAL_RETURN_ORIGINS",
		"RETRY_MAX_ATTEMPTS", "RETRY_MAX_DELAY", "LOG_REQUESTS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func TestLogRequests(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(libconfig.FromMap(map[string]string{"SECRETS_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "LOG_REQUESTS": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.LogRequests {
		t.Fatal("LOG_REQUESTS=true did not turn the access log on")
	}
}
