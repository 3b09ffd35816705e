package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
)

// canaries are stored in every field of seeded subscriptions and events:
// no answer to a key without read may hold any of them.
var canaries = []string{"stored-url.example", "stored.type", "stored-source", "stored-payload", "stored-secret-value", "3141592"}

// seedStored stores, as an admin, subscriptions id and id+"-2" and an
// event id+"-e" that both match, every field a canary.
func seedStored(t *testing.T, b *bundle, id string) {
	t.Helper()
	for _, sub := range []string{id, id + "-2"} {
		r := b.do(t, "POST", "/subscriptions", `{"id":"`+sub+`","url":"http://stored-url.example/hook","event_types":["stored.*"],"secret":"stored-secret-value","retry_base_delay_ms":3141592,"retry_max_delay_ms":3141592}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}
	r := b.do(t, "POST", "/events", `{"id":"`+id+`-e","type":"stored.type","source":"stored-source","data":{"canary":"stored-payload"}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
}

// finishAll makes every delivery failed, as if its attempts were spent:
// what redelivery sends again.
func (b *bundle) finishAll(t *testing.T) {
	t.Helper()
	_, err := b.db.Pool.Exec(context.Background(), `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL`)
	require.NoError(t, err)
}

// blind sends a request with a key that may not read and fails the test
// if the answer holds anything stored.
func (b *bundle) blind(t *testing.T, key, method, path, body string) response {
	t.Helper()
	r := b.doWithKey(t, key, method, path, body)
	for _, c := range canaries {
		require.NotContains(t, r.raw, c, "%s %s answered something stored: %s", method, path, r.raw)
	}
	return r
}

// jsonEq asserts that an answer's body is the JSON want.
func jsonEq(t *testing.T, want string, r response) {
	t.Helper()
	got, err := json.Marshal(r.body)
	require.NoError(t, err)
	require.JSONEq(t, want, string(got), r.raw)
}

// TestKeysWithoutReadLearnNothingStored walks the routes a key with write
// or publish but not read may call, in the combinations that would hand
// it stored events or subscriptions (an answer that shows them, or history
// sent to a URL of its own), and checks that no answer holds anything
// stored and no history goes to a URL it set; a key that may read still
// gets what it may see and may send history anywhere.
func TestKeysWithoutReadLearnNothingStored(t *testing.T) {
	b := setup(t)
	write, _ := b.newKey(t, `"write"`)
	publish, _ := b.newKey(t, `"publish"`)
	readWrite, _ := b.newKey(t, `"read","write"`)
	const attacker = "http://attacker.example/hook"
	pending := func(t *testing.T) int {
		t.Helper()
		return b.count(t, "deliveries WHERE status = 'pending'")
	}

	for _, key := range []struct{ name, key string }{{"write", write}, {"publish", publish}} {
		t.Run(key.name, func(t *testing.T) {
			id := key.name
			seedStored(t, b, id)
			sub, evt := "/subscriptions/"+id, "/events/"+id+"-e"

			// An idempotent repeat, with another body: the caller's own event back.
			sent := `{"id":"` + id + `-e","type":"other.type","data":{"mine":1}}`
			r := b.blind(t, key.key, "POST", "/events", sent)
			require.Equal(t, http.StatusOK, r.status, "a known id is still told apart from a new one")
			jsonEq(t, sent, r)
			sent = `{"id":"` + id + `-e","type":"stored.type","source":"stored-source","data":{"canary":"stored-payload"}}`
			r = b.doWithKey(t, key.key, "POST", "/events", sent)
			require.Equal(t, http.StatusOK, r.status)
			jsonEq(t, sent, r) // the same body again: what it sent, received_at left out
			r = b.blind(t, key.key, "POST", "/events/batch", `{"events":[{"id":"`+id+`-e","type":"t","data":{}},{"id":"`+id+`-new","type":"t","data":{}}]}`)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			jsonEq(t, `{"stored":1,"exists":1,"invalid":0,"data":[{"id":"`+id+`-e","status":"exists"},{"id":"`+id+`-new","status":"stored"}]}`, r)

			if key.key == publish {
				for _, c := range []struct{ method, path, body string }{
					{"PATCH", sub, `{}`}, {"PATCH", sub, `{"url":"` + attacker + `"}`}, {"POST", sub + "/secret/rotate", `{}`},
					{"POST", sub + "/redeliver", `{}`}, {"POST", evt + "/redeliver", `{}`}, {"DELETE", sub, ""},
				} {
					r := b.blind(t, publish, c.method, c.path, c.body)
					require.Equal(t, http.StatusForbidden, r.status, "%s %s: %s", c.method, c.path, r.raw)
				}
				return
			}

			// Changes answer the id and what was sent, nothing stored.
			r = b.blind(t, write, "PATCH", sub, `{}`)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			jsonEq(t, `{"id":"`+id+`"}`, r)
			r = b.blind(t, write, "PATCH", sub, `{"rate_limit_per_second":9,"state":"active"}`)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			jsonEq(t, `{"id":"`+id+`","rate_limit_per_second":9,"state":"active"}`, r)
			// One retry delay alone is refused whatever its value, so that no
			// answer compares it with the stored other one.
			var first string
			for _, delay := range []string{"1", "3141591", "3141592", "3141593", "604800000"} {
				r = b.blind(t, write, "PATCH", sub, `{"retry_max_delay_ms":`+delay+`}`)
				require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
				require.Equal(t, []string{"body.retry_base_delay_ms"}, r.locations(), "the missing delay is named: %s", r.raw)
				require.Contains(t, r.raw, "'read' scope", "and why")
				delete(r.body, "request_id")
				answer, err := json.Marshal(r.body)
				require.NoError(t, err)
				if first == "" {
					first = string(answer)
				} else {
					require.Equal(t, first, string(answer), "retry_max_delay_ms %s answered otherwise", delay)
				}
			}
			r = b.blind(t, write, "PATCH", sub, `{"retry_base_delay_ms":3141593}`)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
			require.Equal(t, []string{"body.retry_max_delay_ms"}, r.locations(), r.raw)
			r = b.blind(t, write, "PATCH", sub, `{"retry_base_delay_ms":20,"retry_max_delay_ms":10}`)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "the two sent are checked against each other: %s", r.raw)
			require.Equal(t, []string{"body.retry_max_delay_ms"}, r.locations(), r.raw)
			r = b.blind(t, write, "PATCH", sub, `{"retry_base_delay_ms":10,"retry_max_delay_ms":20}`)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			jsonEq(t, `{"id":"`+id+`","retry_base_delay_ms":10,"retry_max_delay_ms":20}`, r)
			r = b.blind(t, write, "POST", sub+"/secret/rotate", `{}`)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.ElementsMatch(t, []string{"secret", "previous_secret_expires_at"}, keys(r.body), "the new secret, made for this request")

			// Redelivered history waits for id-2; a new URL now would receive it.
			b.finishAll(t)
			r = b.blind(t, write, "POST", "/subscriptions/"+id+"-2/redeliver", `{}`)
			require.Equal(t, http.StatusAccepted, r.status, "its URL never changed: %s", r.raw)
			r = b.blind(t, write, "PATCH", "/subscriptions/"+id+"-2", `{"url":"`+attacker+`","state":"active"}`)
			require.Equal(t, http.StatusForbidden, r.status, r.raw)
			require.Contains(t, r.body["detail"], "'read' scope")
			require.Equal(t, "http://stored-url.example/hook", b.do(t, "GET", "/subscriptions/"+id+"-2", "").body["url"], "nothing changed")

			// A URL of its own, then history sent to it: refused, nothing queued.
			b.finishAll(t)
			r = b.blind(t, write, "PATCH", sub, `{"url":"`+attacker+`"}`)
			require.Equal(t, http.StatusOK, r.status, "no delivery waits: %s", r.raw)
			jsonEq(t, `{"id":"`+id+`","url":"`+attacker+`"}`, r)
			for _, c := range []struct{ path, body string }{
				{sub + "/redeliver", `{}`},
				{sub + "/redeliver", `{"statuses":["failed","delivered"],"from":"2000-01-01T00:00:00Z","limit":1}`},
				{evt + "/redeliver", `{}`},
				{evt + "/redeliver", `{"subscription_id":"` + id + `"}`},
			} {
				r := b.blind(t, write, "POST", c.path, c.body)
				require.Equal(t, http.StatusForbidden, r.status, "%s %s: %s", c.path, c.body, r.raw)
				require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
				require.Contains(t, r.body["detail"], "'read' scope")
				require.Zero(t, pending(t), "%s %s queued history for a URL the key set", c.path, c.body)
			}
			r = b.blind(t, write, "POST", evt+"/redeliver", `{"subscription_id":"`+id+`-2"}`)
			require.Equal(t, http.StatusAccepted, r.status, "the other subscription's URL did not change: %s", r.raw)
			jsonEq(t, `{"queued":1}`, r)

			r = b.blind(t, write, "DELETE", sub, "")
			require.Equal(t, http.StatusNoContent, r.status, r.raw)
			require.Empty(t, r.raw)
		})
	}

	for _, key := range []struct{ name, key string }{{"read and write", readWrite}, {"admin", adminKey}} {
		t.Run(key.name, func(t *testing.T) {
			id := strings.ReplaceAll(key.name, " ", "-")
			seedStored(t, b, id)
			sub, evt := "/subscriptions/"+id, "/events/"+id+"-e"
			r := b.doWithKey(t, key.key, "POST", "/events", `{"id":"`+id+`-e","type":"other.type","data":{}}`)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Equal(t, "stored.type", r.body["type"], "a key that may read gets the stored event")
			require.Equal(t, map[string]any{"canary": "stored-payload"}, r.body["data"])
			require.NotEmpty(t, r.body["received_at"])

			r = b.doWithKey(t, key.key, "PATCH", sub, `{}`)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Equal(t, "http://stored-url.example/hook", r.body["url"], "the subscription as changed")
			require.EqualValues(t, 3141592, r.body["retry_base_delay_ms"])
			require.Equal(t, "active", r.body["state"])
			require.NotEmpty(t, r.body["created_at"])

			r = b.doWithKey(t, key.key, "PATCH", sub, `{"retry_max_delay_ms":1}`)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "one delay is checked against the stored other: %s", r.raw)
			require.Equal(t, []string{"body.retry_max_delay_ms"}, r.locations(), r.raw)

			r = b.doWithKey(t, key.key, "PATCH", sub, `{"url":"`+attacker+`"}`)
			require.Equal(t, http.StatusOK, r.status, "with deliveries waiting: %s", r.raw)
			b.finishAll(t)
			r = b.doWithKey(t, key.key, "POST", sub+"/redeliver", `{}`)
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			require.EqualValues(t, 1, r.body["queued"])
			b.finishAll(t)
			r = b.doWithKey(t, key.key, "POST", evt+"/redeliver", `{"subscription_id":"`+id+`"}`)
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			require.EqualValues(t, 1, r.body["queued"])
		})
	}
}

// keys lists a JSON object's member names.
func keys(m map[string]any) []string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	return names
}

// TestDuplicateEventAnswerIsDocumented: the OpenAPI document describes the
// body of POST /events' 200, so generated clients decode it.
func TestDuplicateEventAnswerIsDocumented(t *testing.T) {
	t.Parallel()
	ok := api.Spec("dev").Paths["/events"].Post.Responses["200"]
	require.Contains(t, ok.Description, "read scope")
	require.Equal(t, "#/components/schemas/EventBody", ok.Content["application/json"].Schema.Ref)
}
