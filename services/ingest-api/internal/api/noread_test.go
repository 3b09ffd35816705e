package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/store"
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
// if the answer holds anything stored: a canary, or in a cursor, once
// base64 is undone, a canary or a stored event's id.
func (b *bundle) blind(t *testing.T, key, method, path, body string) response {
	t.Helper()
	r := b.doWithKey(t, key, method, path, body)
	for _, c := range canaries {
		require.NotContains(t, r.raw, c, "%s %s answered something stored: %s", method, path, r.raw)
	}
	cursor, _ := r.body["next_cursor"].(string)
	decoded, _ := base64.RawURLEncoding.DecodeString(cursor)
	for _, c := range append(canaries, b.eventIDs(t)...) {
		require.NotContains(t, string(decoded), c, "%s %s answered a cursor that holds something stored: %q", method, path, decoded)
	}
	return r
}

// eventIDs are the ids of the stored events.
func (b *bundle) eventIDs(t *testing.T) []string {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `SELECT id FROM events`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
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

			// Walking id-2's history a delivery at a time: the cursors are
			// sealed, and taken back.
			r = b.do(t, "POST", "/events", `{"id":"`+id+`-e2","type":"stored.type","data":{"canary":"stored-payload"}}`)
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			b.finishAll(t)
			r = b.blind(t, write, "POST", "/subscriptions/"+id+"-2/redeliver", `{"limit":1}`)
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			next, _ := r.body["next_cursor"].(string)
			require.NotEmpty(t, next, "one more matches: %s", r.raw)
			r = b.blind(t, write, "POST", "/subscriptions/"+id+"-2/redeliver", `{"limit":1,"after":"`+next+`"}`)
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			jsonEq(t, `{"queued":1}`, r)

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

// TestRedeliveryCursorsOfKeysWithoutRead: the cursor that continues a bulk
// redelivery for a key without read holds nothing stored, even once
// base64 is undone, and fits the after parameter for the longest event
// id. Every instance sharing the cursor keys takes it back, one that has
// them only as previous keys too; an instance without them, another
// subscription's redelivery and a key without read sending a cursor of
// its own making (the plain form a key that may read is given) are
// refused with 422 and queue nothing. A key that may read takes both.
func TestRedeliveryCursorsOfKeysWithoutRead(t *testing.T) {
	b := setup(t)
	write, _ := b.newKey(t, `"write"`)
	oldKey, newKey := []byte(strings.Repeat("o", 32)), []byte(strings.Repeat("n", 32))
	instance := func(keys ...[]byte) *bundle {
		mux := http.NewServeMux()
		api.New(mux, api.Config{Store: store.New(b.db.Pool), Registerer: prometheus.NewRegistry(), Version: "test", AdminKey: adminKey, CursorKeys: keys})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return &bundle{url: srv.URL, db: b.db, key: adminKey}
	}
	old, rotated, renewed := instance(oldKey), instance(newKey, oldKey), instance(newKey)
	for _, sub := range []string{"s", "t"} {
		r := b.do(t, "POST", "/subscriptions", `{"id":"`+sub+`","url":"http://h/","event_types":["*"]}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}
	longest := strings.Repeat("x", 255)
	for _, id := range []string{"event-0001", "event-0002", "event-0003", longest} { // the longest newest: the first cursor is its
		r := b.do(t, "POST", "/events", `{"id":"`+id+`","type":"t","data":{}}`)
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
	}
	b.finishAll(t)
	walk := func(t *testing.T, at *bundle, key, sub, after string, status int) string {
		t.Helper()
		pending := b.count(t, "deliveries WHERE status = 'pending'")
		body := `{"limit":1,"after":"` + after + `"}`
		var r response
		if key == write {
			r = at.blind(t, key, "POST", "/subscriptions/"+sub+"/redeliver", body)
		} else {
			r = at.doWithKey(t, key, "POST", "/subscriptions/"+sub+"/redeliver", body)
		}
		require.Equal(t, status, r.status, r.raw)
		if status != http.StatusAccepted {
			require.Equal(t, []string{"body.after"}, r.locations(), r.raw)
			require.Equal(t, pending, b.count(t, "deliveries WHERE status = 'pending'"), "a refused cursor queued something")
			return ""
		}
		require.EqualValues(t, 1, r.body["queued"], r.raw)
		next, _ := r.body["next_cursor"].(string)
		require.LessOrEqual(t, len(next), 400, "the after parameter's bound")
		return next
	}

	first := walk(t, old, write, "s", "", http.StatusAccepted)
	require.NotEmpty(t, first)
	second := walk(t, rotated, write, "s", first, http.StatusAccepted) // opened with a previous key
	walk(t, old, write, "s", second, http.StatusUnprocessableEntity)   // sealed with a key it lacks
	walk(t, b, write, "s", second, http.StatusUnprocessableEntity)     // an instance with a key of its own
	walk(t, renewed, write, "s", first, http.StatusUnprocessableEntity)
	walk(t, renewed, write, "t", second, http.StatusUnprocessableEntity) // another subscription's
	third := walk(t, renewed, write, "s", second, http.StatusAccepted)

	// A key that may read: plain cursors, given and taken, and sealed ones taken.
	b.finishAll(t)
	r := renewed.do(t, "POST", "/subscriptions/s/redeliver", `{"limit":1}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	plain, _ := r.body["next_cursor"].(string)
	decoded, err := base64.RawURLEncoding.DecodeString(plain)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(decoded), ":"+longest), "a key that may read gets the position as listings write it: %q", decoded)
	walk(t, renewed, write, "s", plain, http.StatusUnprocessableEntity)
	require.NotEmpty(t, walk(t, renewed, adminKey, "s", plain, http.StatusAccepted))
	walk(t, renewed, adminKey, "s", third, http.StatusAccepted)
}
