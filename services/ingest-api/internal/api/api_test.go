package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
)

const topic = "events.pending"

type bundle struct {
	url     string
	db      *testkit.Database
	brokers []string
	// workerGuard shares the API's Redis prefix, as a delivery worker would.
	workerGuard *resilience.Guard
	// key is sent with every request b.do makes: ADMIN_API_KEY's.
	key string
	// api is the API as registered, whose OpenAPI document lists every
	// operation.
	api huma.API
}

// testDefaults are the delivery workers' defaults the tests' API is given.
var testDefaults = domain.DeliverySettings{MaxAttempts: 16, RetryBaseDelay: 5 * time.Second, RetryMaxDelay: 24 * time.Hour,
	Timeout: 30 * time.Second, RatePerSecond: 100, MaxConcurrency: 100}

// testPortalURL is the tests' PORTAL_URL.
const testPortalURL = "https://portal.example.com/portal"

// adminKey is the tests' ADMIN_API_KEY.
const adminKey = "test-admin-key-0123456789abcdef"

func setup(t *testing.T) *bundle {
	t.Helper()
	t.Parallel()
	return newBundle(t)
}

// newBundle starts the API as main serves it, on its own database, Kafka
// and Redis prefix.
func newBundle(t testing.TB, opts ...func(*api.Config)) *bundle {
	t.Helper()
	return newTracedBundle(t, queue.Tracing{}, opts...)
}

// newTracedBundle is newBundle with the API and its producer traced by
// tracing instead of the process's (off) tracing; opts change its
// configuration before it starts.
func newTracedBundle(t testing.TB, tracing queue.Tracing, opts ...func(*api.Config)) *bundle {
	t.Helper()
	db := testkit.Postgres(t)
	cluster := testkit.Kafka(t, 2, topic)
	producer, err := queue.NewProducer(queue.ProducerConfig{Brokers: cluster.ListenAddrs(), Topic: topic, Tracing: tracing})
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close(context.Background()) })
	rdb, prefix := testkit.Redis(t)
	circuits := resilience.New(rdb, resilience.Config{Prefix: prefix, Registerer: prometheus.NewRegistry()})
	mux := http.NewServeMux()
	cfg := api.Config{Store: store.New(db.Pool), Publisher: producer, Circuits: circuits, Registerer: prometheus.NewRegistry(), Version: "test", AdminKey: adminKey,
		Egress: egress.NewPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}), Resolver: names, TracerProvider: tracing.TracerProvider,
		PortalURL: testPortalURL, PortalReturnOrigins: []string{"https://app.example.com"}, Defaults: testDefaults}
	for _, o := range opts {
		o(&cfg)
	}
	registered := api.New(mux, cfg)
	srv := httptest.NewServer(api.WithRequestID(slog.New(slog.DiscardHandler), false, api.AnswerUnrouted(mux)))
	t.Cleanup(srv.Close)
	return &bundle{url: srv.URL, db: db, brokers: cluster.ListenAddrs(), key: adminKey, api: registered,
		workerGuard: resilience.New(rdb, resilience.Config{Prefix: prefix, Registerer: prometheus.NewRegistry()})}
}

// names is the DNS the API's destination check sees in these tests.
var names = fakeResolver{
	"internal.example": {netip.MustParseAddr("10.0.0.1")},
	"metadata.example": {netip.MustParseAddr("::ffff:169.254.169.254")},
	"public.example":   {netip.MustParseAddr("93.184.216.34")},
}

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request, with Content-Type: application/json when it has a
// body; header lists more headers as name, value pairs (an empty value
// removes the header).
func (b *bundle) do(t *testing.T, method, path, body string, header ...string) response {
	t.Helper()
	return b.doWithKey(t, b.key, method, path, body, header...)
}

// doWithKey is do with key as the bearer key ("" for none).
func (b *bundle) doWithKey(t *testing.T, key, method, path, body string, header ...string) response {
	t.Helper()
	r, err := b.try(key, method, path, body, header...)
	require.NoError(t, err)
	return r
}

// try is doWithKey for goroutines other than the test's own: it returns
// what went wrong instead of failing the test.
func (b *bundle) try(key, method, path, body string, header ...string) (response, error) {
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("read the answer: %w", err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 && (raw[0] == '{') {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			return r, fmt.Errorf("answer %s: %w", raw, err)
		}
	}
	return r, nil
}

func (b *bundle) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestEventLifecycleOverHTTP(t *testing.T) {
	b := setup(t)
	r := b.do(t, "POST", "/subscriptions", `{"id":"sub_orders","url":"https://example.com/h","event_types":["order.*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	secret, _ := r.body["secret"].(string)
	_, err := signing.ParseSecret(secret)
	require.NoError(t, err, "a generated secret is shown on create")

	r = b.do(t, "POST", "/events", `{"id":"evt_1","type":"order.created","source":"shop","data":{"total":12.5,"items":[1,2]}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.Equal(t, "evt_1", r.body["id"])
	require.NotEmpty(t, r.body["received_at"])

	r = b.do(t, "POST", "/events", `{"id":"evt_1","type":"order.updated","data":{}}`)
	require.Equal(t, http.StatusOK, r.status, "re-posting a known id is not an error")
	require.Equal(t, "order.created", r.body["type"], "and answers with the stored event")
	require.Equal(t, 1, b.count(t, "events"))
	require.Equal(t, 1, b.count(t, "deliveries"))

	r = b.do(t, "GET", "/events/evt_1", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "pending", r.body["status"])
	require.Equal(t, map[string]any{"total": 12.5, "items": []any{1.0, 2.0}}, r.body["data"])
	ds := r.body["deliveries"].([]any)
	require.Len(t, ds, 1)
	require.Equal(t, "sub_orders", ds[0].(map[string]any)["subscription_id"])

	r = b.do(t, "GET", "/events/evt_1/attempts", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Empty(t, r.body["data"])

	// The delivery was queued on Kafka, keyed by event.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fetches := cl.PollRecords(ctx, 10)
	require.NoError(t, fetches.Err())
	recs := fetches.Records()
	require.Len(t, recs, 1)
	require.Equal(t, "evt_1", string(recs[0].Key))
	m, err := queue.Decode(recs[0].Value)
	require.NoError(t, err)
	require.Equal(t, "evt_1", m.EventID)

	r = b.do(t, "POST", "/events", `{"id":"evt_2","type":"invoice.paid","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status)
	r = b.do(t, "GET", "/events/evt_2", "")
	require.Equal(t, "unmatched", r.body["status"])
}

func TestSubscriptionsOverHTTP(t *testing.T) {
	b := setup(t)
	secret := signing.GenerateSecret()
	r := b.do(t, "POST", "/subscriptions", `{"url":"http://127.0.0.1:9/x","event_types":["*"],"secret":"`+secret+`"}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	id := r.body["id"].(string)
	require.True(t, strings.HasPrefix(id, "sub_"))
	require.Equal(t, secret, r.body["secret"])

	r = b.do(t, "GET", "/subscriptions/"+id, "")
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, r.raw, secret, "the secret is shown on create only")
	require.Equal(t, "active", r.body["state"])

	r = b.do(t, "POST", "/subscriptions", `{"id":"`+id+`","url":"http://127.0.0.1:9/x","event_types":["*"]}`)
	require.Equal(t, http.StatusConflict, r.status)

	for _, sid := range []string{"a1", "a2", "a3"} {
		require.Equal(t, http.StatusCreated, b.do(t, "POST", "/subscriptions", `{"id":"`+sid+`","url":"http://h/","event_types":["x"]}`).status)
	}
	r = b.do(t, "GET", "/subscriptions?limit=2", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, r.body["data"], 2)
	require.Equal(t, "a2", r.body["next_cursor"])
	require.NotContains(t, r.raw, secret)
	r = b.do(t, "GET", "/subscriptions?limit=2&after=a2", "")
	require.Len(t, r.body["data"], 2)
	require.Nil(t, r.body["next_cursor"])

	require.Equal(t, http.StatusNoContent, b.do(t, "DELETE", "/subscriptions/a1", "").status)
	require.Equal(t, http.StatusNotFound, b.do(t, "DELETE", "/subscriptions/a1", "").status)
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", "/subscriptions/a1", "").status)
}

func TestBadInputIsAPreciseProblemAndWritesNothing(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://h/","event_types":["*"]}`).status)

	big := `{"id":"big","type":"t","data":{"x":"` + strings.Repeat("a", 256<<10) + `"}}`
	tests := []struct {
		name, method, path, body string
		status                   int
		field                    string // expected in the problem's errors[].location
	}{
		{"malformed json", "POST", "/events", `{"id":"e1","type":`, 400, ""},
		{"missing id", "POST", "/events", `{"type":"t","data":{}}`, 422, "body.id"},
		{"empty id", "POST", "/events", `{"id":"","type":"t","data":{}}`, 422, "body.id"},
		{"id too long", "POST", "/events", `{"id":"` + strings.Repeat("a", 256) + `","type":"t","data":{}}`, 422, "body.id"},
		{"missing type", "POST", "/events", `{"id":"e1","data":{}}`, 422, "body.type"},
		{"empty type", "POST", "/events", `{"id":"e1","type":"","data":{}}`, 422, "body.type"},
		{"type with bad characters", "POST", "/events", `{"id":"e1","type":"order created!","data":{}}`, 422, "body.type"},
		{"operational event type", "POST", "/events", `{"id":"e1","type":"dispatch.subscription.failing","data":{}}`, 422, "body.type"},
		{"operational delivery type", "POST", "/events", `{"id":"e1","type":"dispatch.delivery.exhausted","data":{}}`, 422, "body.type"},
		{"data not an object", "POST", "/events", `{"id":"e1","type":"t","data":[1,2]}`, 422, "body.data"},
		{"data a string", "POST", "/events", `{"id":"e1","type":"t","data":"x"}`, 422, "body.data"},
		{"data missing", "POST", "/events", `{"id":"e1","type":"t"}`, 422, "body.data"},
		{"body too large", "POST", "/events", big, 413, ""},
		{"relative url", "POST", "/subscriptions", `{"url":"/hook","event_types":["*"]}`, 422, "body.url"},
		{"ftp url", "POST", "/subscriptions", `{"url":"ftp://example.com/","event_types":["*"]}`, 422, "body.url"},
		{"missing url", "POST", "/subscriptions", `{"event_types":["*"]}`, 422, "body.url"},
		{"empty event_types", "POST", "/subscriptions", `{"url":"http://h/","event_types":[]}`, 422, "body.event_types"},
		{"missing event_types", "POST", "/subscriptions", `{"url":"http://h/"}`, 422, "body.event_types"},
		{"malformed pattern", "POST", "/subscriptions", `{"url":"http://h/","event_types":["order.*.x"]}`, 422, "body.event_types[0]"},
		{"empty pattern", "POST", "/subscriptions", `{"url":"http://h/","event_types":["a",""]}`, 422, "body.event_types[1]"},
		{"internal address", "POST", "/subscriptions", `{"url":"http://169.254.169.254/latest","event_types":["*"]}`, 422, "body.url"},
		{"zoned loopback", "POST", "/subscriptions", `{"url":"http://[::1%25lo]:8081/metrics","event_types":["*"]}`, 422, "body.url"},
		{"mapped metadata", "POST", "/subscriptions", `{"url":"http://[::ffff:a9fe:a9fe]/","event_types":["*"]}`, 422, "body.url"},
		{"NAT64", "POST", "/subscriptions", `{"url":"http://[64:ff9b::a00:1]/","event_types":["*"]}`, 422, "body.url"},
		{"decimal address", "POST", "/subscriptions", `{"url":"http://167772161/","event_types":["*"]}`, 422, "body.url"},
		{"name resolving inside", "POST", "/subscriptions", `{"url":"https://internal.example/h","event_types":["*"]}`, 422, "body.url"},
		{"name resolving to metadata", "PATCH", "/subscriptions/s", `{"url":"http://metadata.example/"}`, 422, "body.url"},
		{"port 0", "POST", "/subscriptions", `{"url":"http://public.example:0/","event_types":["*"]}`, 422, "body.url"},
		{"bad secret", "POST", "/subscriptions", `{"url":"http://h/","event_types":["*"],"secret":"hunter2"}`, 422, "body.secret"},
		{"bad subscription id", "POST", "/subscriptions", `{"id":"a b","url":"http://h/","event_types":["*"]}`, 422, "body.id"},
		{"unknown event", "GET", "/events/nope", "", 404, ""},
		{"unknown event attempts", "GET", "/events/nope/attempts", "", 404, ""},
		{"unknown subscription", "GET", "/subscriptions/nope", "", 404, ""},
		{"bad limit", "GET", "/subscriptions?limit=0", "", 422, "query.limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, tt.method, tt.path, tt.body)
			require.Equal(t, tt.status, r.status, r.raw)
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			require.EqualValues(t, tt.status, r.body["status"])
			if tt.field != "" {
				var locations []string
				errs, _ := r.body["errors"].([]any)
				for _, e := range errs {
					locations = append(locations, e.(map[string]any)["location"].(string))
				}
				require.Contains(t, locations, tt.field, r.raw)
			}
		})
	}
	require.Equal(t, 0, b.count(t, "events"), "no bad request wrote an event")
	require.Equal(t, 0, b.count(t, "deliveries"))
	require.Equal(t, 1, b.count(t, "subscriptions"), "no bad request wrote a subscription")
}

// TestSubscriptionSecretForms pins both secret forms: a valid one is stored
// as given, an invalid one is a 422 naming body.secret with the reason, and
// neither the answer nor the store holds an invalid secret.
func TestSubscriptionSecretForms(t *testing.T) {
	b := setup(t)
	tests := []struct {
		name   string
		secret string
		reason string // empty: the secret is accepted
	}{
		{"plain, as in the seed README", "my-secret-key", ""},
		{"whsec, generated", signing.GenerateSecret(), ""},
		{"plain, 8 characters", "8charsok", ""},
		{"plain, 256 characters", strings.Repeat("k", 256), ""},
		{"plain, every printable ASCII character", "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|} ~", ""},
		{"plain, too short", "hunter2", "must be 8 to 256 characters long, not 7"},
		{"plain, too long", strings.Repeat("k", 257), "must be 8 to 256 characters long, not 257"},
		{"plain, control character", "my-secret\u0001key", "must be printable ASCII, character 10 is a control character"},
		{"plain, non-printable", "my-secret\u200bkey", "must be printable ASCII, character 10 is not ASCII"},
		{"plain, non-ASCII letter", "clé-secrète", "must be printable ASCII, character 3 is not ASCII"},
		{"plain, leading space", " my-secret-key", "must not start or end with white space"},
		{"plain, trailing newline", "my-secret-key\n", "must not start or end with white space"},
		{"whsec, not base64, is not taken as plain", "whsec_my-secret-key", "a 'whsec_' secret must continue with standard base64"},
		{"whsec, 16 bytes", "whsec_" + strings.Repeat("A", 22) + "==", "a 'whsec_' secret must encode 24 to 64 bytes, not 16"},
		{"plain, starting as sealed values do", "sealed:v1:0badc0de:my-secret", "must not start with 'sealed:'"},
		{"plain, starting as a later sealed version would", "sealed:v2:my-secret", "must not start with 'sealed:'"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("sub_secret_%d", i)
			body, err := json.Marshal(map[string]any{"id": id, "url": "http://h/", "event_types": []string{"*"}, "secret": tt.secret})
			require.NoError(t, err)
			r := b.do(t, "POST", "/subscriptions", string(body))
			var stored int
			if tt.reason == "" {
				require.Equal(t, http.StatusCreated, r.status, r.raw)
				require.Equal(t, tt.secret, r.body["secret"], "the secret is kept as given")
				require.NoError(t, b.db.Pool.QueryRow(context.Background(),
					"SELECT count(*) FROM subscriptions WHERE id = $1 AND secret = $2", id, tt.secret).Scan(&stored))
				require.Equal(t, 1, stored)
				return
			}
			require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			errs, _ := r.body["errors"].([]any)
			require.Len(t, errs, 1, r.raw)
			detail := errs[0].(map[string]any)
			require.Equal(t, "body.secret", detail["location"])
			require.Contains(t, detail["message"], tt.reason)
			require.NotContains(t, r.raw, tt.secret, "an invalid secret is not echoed")
			require.NoError(t, b.db.Pool.QueryRow(context.Background(),
				"SELECT count(*) FROM subscriptions WHERE id = $1", id).Scan(&stored))
			require.Zero(t, stored, "nothing is written")
		})
	}
}

func TestOpenAPIDocuments(t *testing.T) {
	b := setup(t)
	for _, path := range []string{"/openapi.json", "/openapi-3.0.json"} {
		r := b.do(t, "GET", path, "")
		require.Equal(t, http.StatusOK, r.status, path)
		paths := r.body["paths"].(map[string]any)
		for p, item := range paths {
			for method, op := range item.(map[string]any) {
				o := op.(map[string]any)
				require.NotEmpty(t, o["operationId"], "%s %s has no operation id", method, p)
				require.NotEmpty(t, o["tags"], "%s %s has no tag", method, p)
			}
		}
	}
	require.True(t, strings.HasPrefix(b.do(t, "GET", "/openapi-3.0.json", "").body["openapi"].(string), "3.0"))
}

// TestCommittedSpecIsCurrent fails when docs/openapi*.json no longer match
// the code; `go tool task gen` rewrites them.
func TestCommittedSpecIsCurrent(t *testing.T) {
	t.Parallel()
	spec := api.Spec("dev")
	want31, err := json.MarshalIndent(spec, "", "  ")
	require.NoError(t, err)
	want30, err := spec.Downgrade()
	require.NoError(t, err)
	for file, want := range map[string][]byte{"openapi.json": want31, "openapi-3.0.json": want30} {
		got, err := readRepoFile("docs/" + file)
		require.NoError(t, err)
		require.True(t, bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)), "docs/%s is stale: run `go tool task gen`", file)
	}
}

// benchAPI starts the API for benchmarks on its own database and Kafka,
// with 10 subscriptions of which 2 match order.created, and returns a
// function that posts a body with a stored key, as producers do:
// authentication is part of the measured path. A path "METHOD /path" is
// sent with that method instead.
func benchAPI(b *testing.B) func(client *http.Client, path, body string) (*http.Response, error) {
	db := testkit.Postgres(b)
	cluster := testkit.Kafka(b, 8, topic)
	producer, err := queue.NewProducer(queue.ProducerConfig{Brokers: cluster.ListenAddrs(), Topic: topic})
	require.NoError(b, err)
	b.Cleanup(func() { _ = producer.Close(context.Background()) })
	mux := http.NewServeMux()
	// DB_MAX_CONNS's default, split as main does.
	pool, err := store.Connect(context.Background(), db.URL, 20)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	ingestPool, err := store.Connect(context.Background(), db.URL, 10, store.KeyedReads())
	require.NoError(b, err)
	b.Cleanup(ingestPool.Close)
	st := store.New(pool, store.WithIngestPool(ingestPool))
	api.New(mux, api.Config{Store: st, Publisher: producer, Registerer: prometheus.NewRegistry(), Version: "bench",
		Egress: egress.NewPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})})
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	key, hash := apikey.New()
	_, err = st.CreateAPIKey(context.Background(), domain.APIKey{ID: apikey.NewID(), Name: "bench", Scopes: []domain.Scope{domain.ScopeAdmin}, Prefix: apikey.Display(key)}, hash)
	require.NoError(b, err)
	post := func(client *http.Client, path, body string) (*http.Response, error) {
		method, target, ok := strings.Cut(path, " ")
		if !ok {
			method, target = http.MethodPost, path
		}
		req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		return client.Do(req)
	}
	for i := range 10 {
		body := fmt.Sprintf(`{"id":"s%d","url":"http://127.0.0.1:1/","event_types":["t%d.*"]}`, i, i)
		if i < 2 {
			body = fmt.Sprintf(`{"id":"s%d","url":"http://127.0.0.1:1/","event_types":["order.*"]}`, i)
		}
		resp, err := post(http.DefaultClient, "/subscriptions", body)
		require.NoError(b, err)
		resp.Body.Close()
		require.Equal(b, http.StatusCreated, resp.StatusCode)
	}
	return post
}

// BenchmarkCreateEvent measures the whole ingest path over HTTP: decoding,
// validation, the fan-out transaction (10 subscriptions, 2 matching) and
// handing the deliveries to Kafka.
func BenchmarkCreateEvent(b *testing.B) {
	post := benchAPI(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := fmt.Sprintf(`{"id":"evt_%d","type":"order.created","source":"bench","data":{"order_id":42,"total":"12.50"}}`, seq.Add(1))
			resp, err := post(client, "/events", body)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkCreateEventsBatch is BenchmarkCreateEvent through POST
// /events/batch, with the events of BenchmarkCreateEvent in batches of 10,
// 100 and 500 from 8 concurrent clients. ns/op is per request; events/s
// counts the events stored.
func BenchmarkCreateEventsBatch(b *testing.B) {
	post := benchAPI(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var seq atomic.Int64
	for _, size := range []int{10, 100, 500} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var body strings.Builder
				for pb.Next() {
					body.Reset()
					body.WriteString(`{"events":[`)
					for i := range size {
						if i > 0 {
							body.WriteByte(',')
						}
						fmt.Fprintf(&body, `{"id":"evt_%d","type":"order.created","source":"bench","data":{"order_id":42,"total":"12.50"}}`, seq.Add(1))
					}
					body.WriteString(`]}`)
					resp, err := post(client, "/events/batch", body.String())
					if err != nil {
						b.Error(err)
						return
					}
					var res struct{ Stored int }
					err = json.NewDecoder(resp.Body).Decode(&res)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK || res.Stored != size {
						b.Errorf("status %d, %d of %d stored (%v)", resp.StatusCode, res.Stored, size, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func TestSubscriptionSettingsAndRedelivery(t *testing.T) {
	b := setup(t)
	r := b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://h/","event_types":["*"],"max_attempts":3,"retry_base_delay_ms":1000,"retry_max_delay_ms":60000,"timeout_ms":5000,"rate_limit_per_second":20,"max_concurrency":4}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "GET", "/subscriptions/s", "")
	require.EqualValues(t, 20, r.body["rate_limit_per_second"])
	require.EqualValues(t, 4, r.body["max_concurrency"])
	require.Equal(t, "closed", r.body["circuit_state"])
	ctx := context.Background()
	created, err := time.Parse(time.RFC3339Nano, r.body["created_at"].(string))
	require.NoError(t, err)
	target := resilience.TargetOf("s", "http://h/", created)
	for range 5 { // a worker sees five failures in a row
		failAttempt(ctx, b.workerGuard, target)
	}
	require.Equal(t, "open", b.do(t, "GET", "/subscriptions/s", "").body["circuit_state"], "the live state is shown")

	r = b.do(t, "PATCH", "/subscriptions/s", `{"rate_limit_per_second":50,"state":"paused"}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 50, r.body["rate_limit_per_second"])
	require.EqualValues(t, 4, r.body["max_concurrency"], "absent fields stay")
	require.Equal(t, "paused", r.body["state"])
	r = b.do(t, "PATCH", "/subscriptions/s", `{"state":"active","event_types":["t","*"]}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "active", r.body["state"])
	for _, bad := range []struct{ body, field string }{
		{`{"url":"ftp://x"}`, "body.url"},
		{`{"event_types":["a.*.b"]}`, "body.event_types[0]"},
		{`{"event_types":[]}`, "body.event_types"},
		{`{"state":"disabled"}`, "body.state"},
		{`{"timeout_ms":1}`, "body.timeout_ms"},
		{`{"url":"http://10.0.0.8/"}`, "body.url"},
	} {
		r := b.do(t, "PATCH", "/subscriptions/s", bad.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
		require.Contains(t, r.raw, bad.field)
	}
	require.Equal(t, http.StatusNotFound, b.do(t, "PATCH", "/subscriptions/nope", `{"state":"active"}`).status)

	// Deleted and created again under the same id: no inherited circuit,
	// and attempts still in flight at the deletion write none back.
	for range 5 {
		failAttempt(ctx, b.workerGuard, target)
	}
	require.Equal(t, "open", b.do(t, "GET", "/subscriptions/s", "").body["circuit_state"])
	require.NoError(t, b.workerGuard.Forget(ctx, target)) // closed again, as after an operator's reset
	var inFlight []resilience.Admission
	for range 5 {
		inFlight = append(inFlight, b.workerGuard.AdmitBatch(ctx, []resilience.AdmitRequest{{Target: target, Timeout: time.Second}})[0])
	}
	require.Equal(t, http.StatusNoContent, b.do(t, "DELETE", "/subscriptions/s", "").status)
	for _, a := range inFlight {
		b.workerGuard.FinishBatch(ctx, []resilience.Finished{{Admission: a, Report: true}})
	}
	require.Equal(t, http.StatusCreated, b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://h/","event_types":["*"]}`).status)
	require.Equal(t, "closed", b.do(t, "GET", "/subscriptions/s", "").body["circuit_state"])
	state, err := b.workerGuard.CircuitState(ctx, target)
	require.NoError(t, err)
	require.Equal(t, resilience.Closed, state, "late outcomes wrote the deleted subscription's circuit")
	require.EqualValues(t, 3, r.body["max_attempts"])
	require.EqualValues(t, 1000, r.body["retry_base_delay_ms"])
	require.EqualValues(t, 60000, r.body["retry_max_delay_ms"])
	require.EqualValues(t, 5000, r.body["timeout_ms"])

	for _, bad := range []struct{ body, field string }{
		{`{"url":"http://h/","event_types":["*"],"max_attempts":0}`, "body.max_attempts"},
		{`{"url":"http://h/","event_types":["*"],"timeout_ms":10}`, "body.timeout_ms"},
		{`{"url":"http://h/","event_types":["*"],"retry_base_delay_ms":5000,"retry_max_delay_ms":1000}`, "body.retry_max_delay_ms"},
		{`{"url":"http://h/","event_types":["*"],"rate_limit_per_second":0}`, "body.rate_limit_per_second"},
		{`{"url":"http://h/","event_types":["*"],"max_concurrency":-1}`, "body.max_concurrency"},
	} {
		r := b.do(t, "POST", "/subscriptions", bad.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
		require.Contains(t, r.raw, bad.field)
	}

	require.Equal(t, http.StatusAccepted, b.do(t, "POST", "/events", `{"id":"e","type":"t","data":{}}`).status)
	r = b.do(t, "POST", "/events/e/redeliver", "")
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.EqualValues(t, 0, r.body["queued"], "a delivery still pending is not redelivered")
	_, err = b.db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL`)
	require.NoError(t, err)
	r = b.do(t, "POST", "/events/e/redeliver", `{"subscription_id":"s"}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.EqualValues(t, 1, r.body["queued"])
	require.Equal(t, http.StatusNotFound, b.do(t, "POST", "/events/nope/redeliver", "").status)

	_, err = b.db.Pool.Exec(context.Background(), `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL`)
	require.NoError(t, err)
	r = b.do(t, "POST", "/subscriptions/s/redeliver", `{"statuses":["failed"],"from":"2000-01-01T00:00:00Z"}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.EqualValues(t, 1, r.body["queued"])
	require.Equal(t, http.StatusNotFound, b.do(t, "POST", "/subscriptions/nope/redeliver", `{}`).status)
	r = b.do(t, "POST", "/subscriptions/s/redeliver", `{"from":"2030-01-01T00:00:00Z","to":"2020-01-01T00:00:00Z"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions/s/redeliver", `{"statuses":["pending"]}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
}

// TestBulkRedeliveryIsBounded: one request queues at most its limit (1000
// unless it says, at most 10000) and answers a cursor to continue with
// while more deliveries match, so that no single request queues a whole
// history.
func TestBulkRedeliveryIsBounded(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://h/","event_types":["*"]}`).status)
	_, err := b.db.Pool.Exec(context.Background(), `
		WITH e AS (
			INSERT INTO events (id, type, data, received_at)
			SELECT 'e' || i, 't', '{}', now() - i * interval '1 second' FROM generate_series(1, 1001) i
			RETURNING id, received_at
		)
		INSERT INTO deliveries (event_id, subscription_id, status, created_at) SELECT id, 's', 'failed', received_at FROM e`)
	require.NoError(t, err)

	r := b.do(t, "POST", "/subscriptions/s/redeliver", `{}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.EqualValues(t, 1000, r.body["queued"], "1000 by default")
	next, _ := r.body["next_cursor"].(string)
	require.NotEmpty(t, next, r.raw)
	r = b.do(t, "POST", "/subscriptions/s/redeliver", `{"after":"`+next+`"}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.EqualValues(t, 1, r.body["queued"])
	require.NotContains(t, r.body, "next_cursor", "none remain")
	require.Equal(t, 1001, b.count(t, "deliveries WHERE status = 'pending'"))

	_, err = b.db.Pool.Exec(context.Background(), `UPDATE deliveries SET status = 'failed'`)
	require.NoError(t, err)
	var queued []any
	for after := ""; ; {
		r := b.do(t, "POST", "/subscriptions/s/redeliver", `{"limit":400,"after":"`+after+`"}`)
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
		queued = append(queued, r.body["queued"])
		if after, _ = r.body["next_cursor"].(string); after == "" {
			break
		}
	}
	require.Equal(t, []any{400.0, 400.0, 201.0}, queued)

	for _, bad := range []struct{ body, field string }{
		{`{"limit":0}`, "body.limit"},
		{`{"limit":10001}`, "body.limit"},
		{`{"after":"not-a-cursor"}`, "body.after"},
		{`{"after":"` + strings.Repeat("a", 401) + `"}`, "body.after"},
	} {
		r := b.do(t, "POST", "/subscriptions/s/redeliver", bad.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
		require.Equal(t, []string{bad.field}, r.locations(), r.raw)
	}
}

// failAttempt is what a worker does for an attempt that failed: it is
// admitted, then reported as a failure to the circuit breaker.
func failAttempt(ctx context.Context, g *resilience.Guard, t resilience.Target) {
	a := g.AdmitBatch(ctx, []resilience.AdmitRequest{{Target: t, Timeout: time.Second}})[0]
	g.FinishBatch(ctx, []resilience.Finished{{Admission: a, Report: true}})
}
