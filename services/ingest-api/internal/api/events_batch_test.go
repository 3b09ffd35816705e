package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
)

// batch is a POST /events/batch body of events.
func batch(events ...string) string {
	return `{"events":[` + strings.Join(events, ",") + `]}`
}

// results are a batch answer's data[] as (id, status, first error's location).
func (r response) results(t *testing.T) [][3]string {
	t.Helper()
	data, ok := r.body["data"].([]any)
	require.True(t, ok, r.raw)
	out := make([][3]string, len(data))
	for i, d := range data {
		m := d.(map[string]any)
		id, _ := m["id"].(string)
		out[i] = [3]string{id, m["status"].(string), ""}
		if errs, ok := m["errors"].([]any); ok {
			out[i][2], _ = errs[0].(map[string]any)["location"].(string)
		}
	}
	return out
}

func TestCreateEventsBatch(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "POST", "/subscriptions", `{"id":"orders","url":"http://h/","event_types":["order.*"]}`).status)
	require.Equal(t, http.StatusAccepted, b.do(t, "POST", "/events", `{"id":"known","type":"order.created","data":{"v":1}}`).status)
	nested := strings.Repeat(`{"a":`, domain.MaxJSONDepth+1) + "1" + strings.Repeat("}", domain.MaxJSONDepth+1)

	r := b.do(t, "POST", "/events/batch", batch(
		`{"id":"e1","type":"order.created","source":"shop","data":{"n":1}}`,
		`{"id":"known","type":"order.updated","data":{"v":2}}`,
		`{"id":"e2","type":"order.paid","data":[1]}`,
		`{"id":"e3","data":{}}`,
		`{"id":"e1","type":"order.deleted","data":{}}`,
		`{"id":"a b","type":"t","data":{}}`,
		`{"id":"e4","type":"t","data":{"a":"x\u0000"}}`,
		`{"ID":"e5","type":"t","data":{}}`,
		`{"id":"e6","type":"t","data":`+nested+`}`,
		`{"id":"e7","type":"invoice.paid","data":{}}`,
		`"e8"`,
		`{"id":"e9","type":"order.created","data":{},"extra":1}`,
		`{"id":"e10","type":"order.created","source":"a\u001bb","data":{}}`,
		`{"id":"e2","type":"order.shipped","data":{}}`,
	))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, [][3]string{
		{"e1", "stored", ""},
		{"known", "exists", ""},
		{"e2", "invalid", "body.events[2].data"},
		{"e3", "invalid", "body.events[3].type"},
		{"e1", "exists", ""}, // the first of an id wins
		{"", "invalid", "body.events[5].id"},
		{"e4", "invalid", "body.events[6].data.a"},
		{"", "invalid", "body.events[7].id"}, // and body.events[7].ID, unexpected
		{"e6", "invalid", "body.events[8].data"},
		{"e7", "stored", ""},
		{"", "invalid", "body.events[10]"},
		{"e9", "invalid", "body.events[11].extra"},
		{"e10", "invalid", "body.events[12].source"},
		{"e2", "stored", ""}, // an earlier invalid event of the id does not count
	}, r.results(t), r.raw)
	require.EqualValues(t, 3, r.body["stored"])
	require.EqualValues(t, 2, r.body["exists"])
	require.EqualValues(t, 9, r.body["invalid"])
	require.NotContains(t, r.raw, `"value":{`, "errors name the place, without copying the event back")
	require.Contains(t, r.raw, `"value":"a b"`)

	require.Equal(t, 4, b.count(t, "events"))
	require.Equal(t, 3, b.count(t, "deliveries"), "known, e1 and e2 match orders; e7 matches nothing")
	e1 := b.do(t, "GET", "/events/e1", "")
	require.Equal(t, "order.created", e1.body["type"])
	require.Equal(t, "shop", e1.body["source"])
	require.Equal(t, map[string]any{"n": 1.0}, e1.body["data"])
	require.Len(t, e1.body["deliveries"], 1)
	require.Equal(t, map[string]any{"v": 1.0}, b.do(t, "GET", "/events/known", "").body["data"], "a known id is left as it was")
	require.Equal(t, "unmatched", b.do(t, "GET", "/events/e7", "").body["status"])

	// The new deliveries are on Kafka: the one of "known", then e1's and e2's.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var queued []string
	for len(queued) < 3 && ctx.Err() == nil {
		fetches := cl.PollRecords(ctx, 10)
		for _, rec := range fetches.Records() {
			m, err := queue.Decode(rec.Value)
			require.NoError(t, err)
			require.Equal(t, "orders", m.SubscriptionID)
			queued = append(queued, m.EventID)
		}
	}
	require.ElementsMatch(t, []string{"known", "e1", "e2"}, queued)

	// The same batch again stores nothing.
	again := b.do(t, "POST", "/events/batch", batch(`{"id":"e1","type":"order.created","data":{}}`, `{"id":"e7","type":"x","data":{}}`))
	require.Equal(t, http.StatusOK, again.status, again.raw)
	require.Equal(t, [][3]string{{"e1", "exists", ""}, {"e7", "exists", ""}}, again.results(t))
	require.Equal(t, 4, b.count(t, "events"))
}

// TestEventsBatchLimits pins the batch's own limits (500 events, 5 MiB)
// and that each event keeps a single event's limits.
func TestEventsBatchLimits(t *testing.T) {
	b := setup(t)
	events := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf(`{"id":"%s%d","type":"t","data":{}}`, prefix, i)
		}
		return out
	}
	r := b.do(t, "POST", "/events/batch", batch(events("a", domain.MaxBatchEvents)...))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, domain.MaxBatchEvents, r.body["stored"])
	require.Equal(t, domain.MaxBatchEvents, b.count(t, "events"))

	// Nineteen events of the single-event limit: far more than 256 KiB in all.
	big := make([]string, 19)
	for i := range big {
		big[i] = eventOfSize(fmt.Sprintf("big%d", i), domain.MaxRequestBodySize)
	}
	r = b.do(t, "POST", "/events/batch", batch(big...))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 19, r.body["stored"])

	// One byte more makes that event invalid, not its neighbours.
	r = b.do(t, "POST", "/events/batch", batch(`{"id":"small","type":"t","data":{}}`, eventOfSize("huge", domain.MaxRequestBodySize+1)))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, [][3]string{{"small", "stored", ""}, {"", "invalid", "body.events[1]"}}, r.results(t))

	before := b.count(t, "events")
	tests := []struct {
		name, body string
		header     []string
		status     int
		location   string
	}{
		{"too many events", batch(events("z", domain.MaxBatchEvents+1)...), nil, 413, ""},
		{"body over 5 MiB", batch(append(big, big[0])...), nil, 413, ""},
		{"no events", `{"events":[]}`, nil, 422, "body.events"},
		{"events missing", `{}`, nil, 422, "body.events"},
		{"events null", `{"events":null}`, nil, 422, "body.events"},
		{"events not an array", `{"events":{"id":"x","type":"t","data":{}}}`, nil, 422, "body.events"},
		{"an array for a body", `[{"id":"x","type":"t","data":{}}]`, nil, 422, "body"},
		{"another member", `{"events":[{"id":"x","type":"t","data":{}}],"mode":"all"}`, nil, 422, "body"},
		{"events in another case", `{"Events":[{"id":"x","type":"t","data":{}}]}`, nil, 422, "body"},
		{"malformed JSON", `{"events":[{"id":"x","type":"t","data":{}}]`, nil, 400, ""},
		{"not JSON", `{"events":[{"id":"x","type":"t","data":{}}]}`, []string{"Content-Type", "text/plain"}, 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, "POST", "/events/batch", tt.body, tt.header...)
			require.Equal(t, tt.status, r.status, r.raw)
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			require.Equal(t, r.header.Get("X-Request-ID"), r.body["request_id"])
			if tt.location != "" {
				require.Contains(t, r.locations(), tt.location, r.raw)
			}
			require.Less(t, len(r.raw), 4096, "the answer does not echo the body")
		})
	}
	require.Equal(t, before, b.count(t, "events"), "a refused batch stores nothing")
}

// TestEventsBatchNeedsPublish: a publish key may post a batch, a read key
// may not.
func TestEventsBatchNeedsPublish(t *testing.T) {
	b := setup(t)
	read, _ := b.newKey(t, `"read"`)
	publish, _ := b.newKey(t, `"publish"`)
	body := batch(`{"id":"p","type":"t","data":{}}`)
	r := b.doWithKey(t, read, "POST", "/events/batch", body)
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	require.Zero(t, b.count(t, "events"))
	require.Equal(t, http.StatusUnauthorized, b.doWithKey(t, "", "POST", "/events/batch", body).status)
	r = b.doWithKey(t, publish, "POST", "/events/batch", body)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, [][3]string{{"p", "stored", ""}}, r.results(t))
}

// TestEventsBatchIsDocumented: the operation and its answer are in the
// OpenAPI document, with events typed as POST /events takes them.
func TestEventsBatchIsDocumented(t *testing.T) {
	b := setup(t)
	doc := b.do(t, "GET", "/openapi.json", "")
	op := doc.body["paths"].(map[string]any)["/events/batch"].(map[string]any)["post"].(map[string]any)
	require.Equal(t, "create-events-batch", op["operationId"])
	for _, code := range []string{"200", "413", "422", "401", "403", "503"} {
		require.Contains(t, op["responses"], code)
	}
	raw, err := json.Marshal(doc.body["components"].(map[string]any)["schemas"].(map[string]any)["BatchRequest"])
	require.NoError(t, err)
	require.Contains(t, string(raw), `"$ref":"#/components/schemas/EventBody"`)
	require.Contains(t, string(raw), `"maxItems":500`)
}

// TestSlowBatchKeepsItsContext: a batch stored more than 5 s after its
// body was read (here it waits for a lock on one of its ids) is still
// stored and answered. Huma's read deadline on the connection used to end
// the server's background read at 5 s and cancel the request's context.
func TestSlowBatchKeepsItsContext(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO events (id, type, source, data) VALUES ('slow_0', 't', '', '{}')`)
	require.NoError(t, err)
	go func() {
		// Past the 5 s read deadline that net/http keeps on the real
		// clock: the deadline passing is what the test is about.
		time.Sleep(6 * time.Second)
		_ = tx.Rollback(ctx)
	}()
	r := b.do(t, "POST", "/events/batch", batch(`{"id":"slow_0","type":"t","data":{}}`, `{"id":"slow_1","type":"t","data":{}}`))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 2, r.body["stored"])
}
