package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/resilience"
)

// TestSubscriptionShowsSettingsInForce: GET /subscriptions/{id} gives
// every setting as the workers apply it (effective): the subscription's
// own, else its tenant's, else the workers' default; listings do not.
func TestSubscriptionShowsSettingsInForce(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "PUT", "/tenants/acme", `{"timeout_ms":9000,"max_attempts":4}`).status)
	r := b.do(t, "POST", "/subscriptions", `{"id":"s","tenant_id":"acme","url":"http://h/","event_types":["*"],"max_attempts":3}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)

	r = b.do(t, "GET", "/subscriptions/s", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, map[string]any{
		"max_attempts":          3.0,    // its own
		"timeout_ms":            9000.0, // its tenant's
		"retry_base_delay_ms":   5000.0, // the workers' defaults
		"retry_max_delay_ms":    86.4e6,
		"rate_limit_per_second": 100.0,
		"max_concurrency":       100.0,
	}, r.body["effective"])
	require.Nil(t, r.body["timeout_ms"], "its own settings stay as set")

	r = b.do(t, "GET", "/subscriptions", "")
	require.NotContains(t, r.raw, "effective")
}

// TestSubscriptionShowsItsFailures: with its circuit, a subscription
// shows when the circuit opened, its failed attempts in the last hour and
// its last failure, in GET /subscriptions/{id} and in listings asked for
// circuits; a subscription without failures shows 0 and no times.
func TestSubscriptionShowsItsFailures(t *testing.T) {
	b := setup(t)
	for _, id := range []string{"broken", "fine"} {
		r := b.do(t, "POST", "/subscriptions", `{"id":"`+id+`","url":"http://h/`+id+`","event_types":["*"]}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}
	r := b.do(t, "GET", "/subscriptions/broken", "")
	created, err := time.Parse(time.RFC3339Nano, r.body["created_at"].(string))
	require.NoError(t, err)
	before := time.Now().Add(-time.Second)
	ctx := context.Background()
	for range 6 { // five open the circuit; the sixth is refused, not counted
		failAttempt(ctx, b.workerGuard, resilience.TargetOf("broken", "http://h/broken", created))
	}
	after := time.Now().Add(time.Second)
	within := func(v any) {
		t.Helper()
		at, err := time.Parse(time.RFC3339Nano, v.(string))
		require.NoError(t, err)
		require.WithinRange(t, at, before, after)
	}

	r = b.do(t, "GET", "/subscriptions/broken", "")
	require.Equal(t, "open", r.body["circuit_state"])
	require.EqualValues(t, 5, r.body["failures_last_hour"])
	within(r.body["circuit_opened_at"])
	within(r.body["last_failure_at"])

	r = b.do(t, "GET", "/subscriptions?circuit=true", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	data := r.body["data"].([]any)
	require.Len(t, data, 2)
	broken, fine := data[0].(map[string]any), data[1].(map[string]any)
	require.Equal(t, "open", broken["circuit_state"])
	require.EqualValues(t, 5, broken["failures_last_hour"])
	within(broken["circuit_opened_at"])
	within(broken["last_failure_at"])
	require.Equal(t, "closed", fine["circuit_state"])
	require.EqualValues(t, 0, fine["failures_last_hour"])
	require.NotContains(t, fine, "circuit_opened_at")
	require.NotContains(t, fine, "last_failure_at")

	r = b.do(t, "GET", "/subscriptions", "")
	require.NotContains(t, r.raw, "failures_last_hour", "only when asked for")
}
