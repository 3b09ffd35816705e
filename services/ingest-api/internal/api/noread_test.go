package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
)

// canaries are stored in every field of seeded subscriptions and events:
// no answer to a key without read may hold any of them.
var canaries = []string{"stored-url.example", "stored.type", "stored-source", "stored-payload", "stored-secret-value", "3141592"}

// seedStored stores, as an admin, a subscription id and an event id+"-e"
// that it matches, every field of both a canary.
func seedStored(t *testing.T, b *bundle, id string) {
	t.Helper()
	r := b.do(t, "POST", "/subscriptions", `{"id":"`+id+`","url":"http://stored-url.example/hook","event_types":["stored.*"],"secret":"stored-secret-value","retry_base_delay_ms":3141592,"retry_max_delay_ms":3141592}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/events", `{"id":"`+id+`-e","type":"stored.type","source":"stored-source","data":{"canary":"stored-payload"}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
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
// it stored events or subscriptions, and checks that no answer holds
// anything stored; a key that may read still gets what it may see.
func TestKeysWithoutReadLearnNothingStored(t *testing.T) {
	b := setup(t)
	write, _ := b.newKey(t, `"write"`)
	publish, _ := b.newKey(t, `"publish"`)
	readWrite, _ := b.newKey(t, `"read","write"`)

	for _, key := range []struct{ name, key string }{{"write", write}, {"publish", publish}} {
		t.Run(key.name, func(t *testing.T) {
			id := key.name
			seedStored(t, b, id)

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
		})
	}

	t.Run("read and write", func(t *testing.T) {
		seedStored(t, b, "rw")
		r := b.doWithKey(t, readWrite, "POST", "/events", `{"id":"rw-e","type":"other.type","data":{}}`)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.Equal(t, "stored.type", r.body["type"], "a key that may read gets the stored event")
		require.Equal(t, map[string]any{"canary": "stored-payload"}, r.body["data"])
		require.NotEmpty(t, r.body["received_at"])
	})
}

// TestDuplicateEventAnswerIsDocumented: the OpenAPI document describes the
// body of POST /events' 200, so generated clients decode it.
func TestDuplicateEventAnswerIsDocumented(t *testing.T) {
	t.Parallel()
	ok := api.Spec("dev").Paths["/events"].Post.Responses["200"]
	require.Contains(t, ok.Description, "read scope")
	require.Equal(t, "#/components/schemas/EventBody", ok.Content["application/json"].Schema.Ref)
}
