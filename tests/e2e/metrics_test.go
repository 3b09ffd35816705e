package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServicesExportTheSeedMetrics checks every documented metric name is on
// the /metrics of the service that owns it once there was traffic.
func TestServicesExportTheSeedMetrics(t *testing.T) {
	s := newStack(t)
	workerAddr := freeAddr(t)
	s.start("delivery-worker", "ADDR="+workerAddr, "CIRCUIT_FAILURE_THRESHOLD=1")
	s.waitReady("http://" + workerAddr)
	schedAddr := freeAddr(t)
	s.start("retry-scheduler", "ADDR="+schedAddr, "RETRY_POLL_INTERVAL=100ms")
	s.waitReady("http://" + schedAddr)
	ok := newReceiver(t, http.StatusOK)
	failing := newReceiver(t, http.StatusInternalServerError)
	s.subscribeWith("ok", ok, map[string]any{"rate_limit_per_second": 1}, "*")
	s.subscribeWith("failing", failing, nil, "*")
	s.postMany("evt", 3)
	eventually(t, 30*time.Second, func() bool { return len(ok.deliveries()) == 3 }, "deliveries did not arrive")

	want := map[string][]string{
		s.apiURL: {"dispatch_events_received_total", "dispatch_publish_failures_total"},
		"http://" + workerAddr: {
			"dispatch_events_delivered_total", "dispatch_events_failed_total", "dispatch_events_retrying_total",
			"dispatch_events_throttled_total", "dispatch_delivery_duration_seconds", "dispatch_circuit_breaker_state",
			"dispatch_circuit_breaker_trips_total", "dispatch_rate_limiter_rejections_total", "dispatch_resilience_fallback",
		},
		"http://" + schedAddr: {"dispatch_scheduler_claimed_total", "dispatch_scheduler_republished_total", "dispatch_scheduler_publish_failures_total", "dispatch_backlog_deliveries", "dispatch_backlog_oldest_due_seconds", "dispatch_retention_deleted_total"},
	}
	for base, names := range want {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, name := range names {
			if !strings.Contains(string(body), "\n"+name) {
				t.Errorf("%s/metrics lacks %s", base, name)
			}
		}
	}
}
