package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// headOf claims the delivery of eventID to subID as a worker would and,
// with code, records a failed attempt that leaves it retrying in an hour:
// its key is then blocked. Without code the claim stays, being attempted.
func (b *bundle) headOf(t *testing.T, eventID, subID string, code int) {
	t.Helper()
	ctx := context.Background()
	st := store.New(b.db.Pool)
	var id int64
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT id FROM deliveries WHERE event_id = $1 AND subscription_id = $2`, eventID, subID).Scan(&id))
	claims, err := st.ClaimDeliveries(ctx, []int64{id}, time.Minute, time.Minute)
	require.NoError(t, err)
	require.NoError(t, claims[0].Err)
	job := claims[0].Job
	if code == 0 {
		return
	}
	a := domain.Attempt{DeliveryID: id, Number: job.Attempt, StartedAt: time.Now(), StatusCode: &code, ErrorClass: domain.ErrorHTTPStatus, Error: "HTTP 500"}
	require.NoError(t, st.RecordAttempt(ctx, store.Retrying(a, time.Now().Add(time.Hour)).InOrder()))
}

func TestSubscriptionOrdering(t *testing.T) {
	b := setup(t)
	r := b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://127.0.0.1:9/x","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Equal(t, "none", r.body["ordering"], "unordered unless asked")

	r = b.do(t, "PATCH", "/subscriptions/s", `{"ordering":"per_key"}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "per_key", r.body["ordering"])
	require.Equal(t, "per_key", b.do(t, "GET", "/subscriptions/s", "").body["ordering"])

	for _, body := range []string{`{"ordering":"fifo"}`, `{"ordering":""}`} {
		r = b.do(t, "PATCH", "/subscriptions/s", body)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
		require.Contains(t, r.raw, "body.ordering")
	}
	r = b.do(t, "POST", "/subscriptions", `{"url":"http://127.0.0.1:9/x","event_types":["*"],"ordering":"total"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
}

func TestOrderingKeyValidation(t *testing.T) {
	b := setup(t)
	tests := []struct {
		name, key string
		want      int
	}{
		{"plain", `"order-1042"`, http.StatusAccepted},
		{"256 bytes", `"` + strings.Repeat("k", 256) + `"`, http.StatusAccepted},
		{"257 bytes", `"` + strings.Repeat("k", 257) + `"`, http.StatusUnprocessableEntity},
		{"empty", `""`, http.StatusUnprocessableEntity},
		{"a space", `"a b"`, http.StatusUnprocessableEntity},
		{"dot-dot", `".."`, http.StatusUnprocessableEntity},
		{"not a string", `7`, http.StatusUnprocessableEntity},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "e" + string(rune('a'+i))
			r := b.do(t, "POST", "/events", `{"id":"`+id+`","type":"t","ordering_key":`+tt.key+`,"data":{}}`)
			require.Equal(t, tt.want, r.status, r.raw)
			if tt.want != http.StatusAccepted {
				require.Contains(t, r.raw, "ordering_key")
				require.Zero(t, b.count(t, "events"+" WHERE id = '"+id+"'"), "nothing stored")
				return
			}
			require.Equal(t, strings.Trim(tt.key, `"`), b.do(t, "GET", "/events/"+id, "").body["ordering_key"])
		})
	}

	r := b.do(t, "POST", "/events/batch", `{"events":[{"id":"b1","type":"t","ordering_key":"k","data":{}},{"id":"b2","type":"t","ordering_key":"a b","data":{}}]}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	data := r.body["data"].([]any)
	require.Equal(t, "stored", data[0].(map[string]any)["status"])
	require.Equal(t, "invalid", data[1].(map[string]any)["status"])
	require.Contains(t, r.raw, "body.events[1].ordering_key")
}

func TestHeldDeliveriesShowAsHeld(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://127.0.0.1:9/x","event_types":["*"],"ordering":"per_key"}`).status)
	for _, id := range []string{"a1", "a2"} {
		require.Equal(t, http.StatusAccepted, b.do(t, "POST", "/events", `{"id":"`+id+`","type":"t","ordering_key":"a","data":{}}`).status)
	}
	held := func(id string) any {
		ds := b.do(t, "GET", "/events/"+id, "").body["deliveries"].([]any)
		return ds[0].(map[string]any)["held"]
	}
	require.Nil(t, held("a1"), "the head is not held")
	require.Equal(t, true, held("a2"))

	b.headOf(t, "a1", "s", http.StatusInternalServerError)
	r := b.do(t, "GET", "/subscriptions/s/ordering-keys", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 1, r.body["blocked_keys"])
	keys := r.body["data"].([]any)
	require.Len(t, keys, 1)
	k := keys[0].(map[string]any)
	require.Equal(t, "a", k["key"])
	require.Equal(t, "a1", k["head_event_id"])
	require.Equal(t, "retrying", k["status"])
	require.EqualValues(t, 1, k["waiting"])
	require.NotNil(t, k["next_attempt_at"])

	r = b.do(t, "POST", "/subscriptions/s/ordering-keys/a/skip", `{"reason":"poison"}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "a1", r.body["event_id"])
	require.Equal(t, "a2", r.body["next_event_id"])
	require.Nil(t, held("a2"), "released")
	require.EqualValues(t, 0, b.do(t, "GET", "/subscriptions/s/ordering-keys", "").body["blocked_keys"])
}
