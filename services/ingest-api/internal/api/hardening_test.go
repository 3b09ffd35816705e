package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
)

// locations lists a problem's errors[].location values.
func (r response) locations() []string {
	var locs []string
	errs, _ := r.body["errors"].([]any)
	for _, e := range errs {
		if loc, ok := e.(map[string]any)["location"].(string); ok {
			locs = append(locs, loc)
		}
	}
	return locs
}

// eventOfSize is a valid event body of exactly n bytes.
func eventOfSize(id string, n int) string {
	head, tail := `{"id":"`+id+`","type":"t","data":{"pad":"`, `"}}`
	return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
}

// TestHostileInputIsAPreciseProblem sends what a hostile client would and
// expects a 4xx problem naming the place, and nothing written.
func TestHostileInputIsAPreciseProblem(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://h/","event_types":["*"],"retry_base_delay_ms":10000,"retry_max_delay_ms":60000}`).status)
	nested := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name, method, path, body string
		header                   []string
		status                   int
		location                 string
	}{
		{"NUL in data", "POST", "/events", `{"id":"e","type":"t","data":{"a":"x\u0000"}}`, nil, 422, "body.data.a"},
		{"lone surrogate in data", "POST", "/events", `{"id":"e","type":"t","data":{"a":["\ud800"]}}`, nil, 422, "body.data.a[0]"},
		{"lone low surrogate in a data name", "POST", "/events", `{"id":"e","type":"t","data":{"\udc00":1}}`, nil, 422, "body.data"},
		{"invalid UTF-8 in data", "POST", "/events", "{\"id\":\"e\",\"type\":\"t\",\"data\":{\"a\":\"\xff\xfe\"}}", nil, 422, "body.data.a"},
		{"NUL in source", "POST", "/events", `{"id":"e","type":"t","source":"\u0000","data":{}}`, nil, 422, "body.source"},
		{"lone surrogate in source", "POST", "/events", `{"id":"e","type":"t","source":"a\ud800","data":{}}`, nil, 422, "body.source"},
		{"control character in source", "POST", "/events", `{"id":"e","type":"t","source":"a\u001bb","data":{}}`, nil, 422, "body.source"},
		{"NUL in id", "POST", "/events", `{"id":"a\u0000","type":"t","data":{}}`, nil, 422, "body.id"},
		{"CR LF in id", "POST", "/events", `{"id":"a\r\nX-Injected: 1","type":"t","data":{}}`, nil, 422, "body.id"},
		{"NUL in a subscription's url", "POST", "/subscriptions", `{"url":"http://h/\u0000","event_types":["*"]}`, nil, 422, "body.url"},
		{"data nested too deep", "POST", "/events", `{"id":"e","type":"t","data":` + nested(domain.MaxJSONDepth+1) + `}`, nil, 422, "body.data"},
		{"event id .", "POST", "/events", `{"id":".","type":"t","data":{}}`, nil, 422, "body.id"},
		{"event id ..", "POST", "/events", `{"id":"..","type":"t","data":{}}`, nil, 422, "body.id"},
		{"subscription id .", "POST", "/subscriptions", `{"id":".","url":"http://h/","event_types":["*"]}`, nil, 422, "body.id"},
		{"subscription id ..", "POST", "/subscriptions", `{"id":"..","url":"http://h/","event_types":["*"]}`, nil, 422, "body.id"},
		{"field name in another case", "POST", "/events", `{"ID":"e","type":"t","data":{}}`, nil, 422, "body.ID"},
		{"settings name in another case", "PATCH", "/subscriptions/s", `{"STATE":"paused"}`, nil, 422, "body.STATE"},
		{"body over the limit", "POST", "/events", eventOfSize("e", domain.MaxRequestBodySize+1), nil, 413, ""},
		{"subscription body over the limit", "POST", "/subscriptions", `{"url":"http://h/","event_types":["*"],"secret":"` + strings.Repeat("k", 2<<20) + `"}`, nil, 413, ""},
		{"no content type", "POST", "/events", `{"id":"e","type":"t","data":{}}`, []string{"Content-Type", ""}, 415, ""},
		{"text/plain", "POST", "/events", `{"id":"e","type":"t","data":{}}`, []string{"Content-Type", "text/plain"}, 415, ""},
		{"form", "POST", "/subscriptions", `{"url":"http://h/","event_types":["*"]}`, []string{"Content-Type", form}, 415, ""},
		{"form patch", "PATCH", "/subscriptions/s", `{"state":"paused"}`, []string{"Content-Type", form}, 415, ""},
		{"form redelivery", "POST", "/events/e/redeliver", `{}`, []string{"Content-Type", form}, 415, ""},
		{"patch max below stored base", "PATCH", "/subscriptions/s", `{"retry_max_delay_ms":5000,"state":"paused"}`, nil, 422, "body.retry_max_delay_ms"},
		{"patch base above stored max", "PATCH", "/subscriptions/s", `{"retry_base_delay_ms":120000}`, nil, 422, "body.retry_base_delay_ms"},
	}
	// Every route with a path id or a cursor, with NUL and invalid UTF-8.
	for _, bad := range []string{"%00", "%FF", "a%0D%0Ab", "%C0%80"} {
		for _, r := range []struct{ method, path, body, location string }{
			{"GET", "/events/" + bad, "", "path.id"},
			{"GET", "/events/" + bad + "/attempts", "", "path.id"},
			{"GET", "/events/" + bad + "/deliveries", "", "path.id"},
			{"GET", "/events/e/attempts?after=" + bad, "", "query.after"},
			{"GET", "/events/e/attempts?subscription_id=" + bad, "", "query.subscription_id"},
			{"GET", "/events/e/deliveries?after=" + bad, "", "query.after"},
			{"POST", "/events/" + bad + "/redeliver", "", "path.id"},
			{"GET", "/subscriptions/" + bad, "", "path.id"},
			{"PATCH", "/subscriptions/" + bad, `{"state":"active"}`, "path.id"},
			{"DELETE", "/subscriptions/" + bad, "", "path.id"},
			{"POST", "/subscriptions/" + bad + "/redeliver", `{}`, "path.id"},
			{"GET", "/subscriptions?after=" + bad, "", "query.after"},
		} {
			tests = append(tests, struct {
				name, method, path, body string
				header                   []string
				status                   int
				location                 string
			}{r.method + " " + r.path, r.method, r.path, r.body, nil, 422, r.location})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, tt.method, tt.path, tt.body, tt.header...)
			require.Equal(t, tt.status, r.status, r.raw)
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			require.EqualValues(t, tt.status, r.body["status"])
			require.Equal(t, r.header.Get("X-Request-ID"), r.body["request_id"])
			if tt.location != "" {
				require.Contains(t, r.locations(), tt.location, r.raw)
			}
		})
	}
	require.Equal(t, 0, b.count(t, "events"), "no hostile request wrote an event")
	require.Equal(t, 1, b.count(t, "subscriptions"))
	r := b.do(t, "GET", "/subscriptions/s", "")
	require.Equal(t, "active", r.body["state"], "a refused patch changes nothing")
	require.EqualValues(t, 10000, r.body["retry_base_delay_ms"])
	require.EqualValues(t, 60000, r.body["retry_max_delay_ms"])
}

// TestLimitsHoldExactly pins the edges: what the spec allows is accepted.
func TestLimitsHoldExactly(t *testing.T) {
	b := setup(t)
	nested := strings.Repeat(`{"a":`, domain.MaxJSONDepth-1) + "1" + strings.Repeat("}", domain.MaxJSONDepth-1)
	tests := []struct {
		name, method, path, body string
		header                   []string
		status                   int
	}{
		{"body of exactly the limit", "POST", "/events", eventOfSize("max", domain.MaxRequestBodySize), nil, 202},
		{"data nested to the limit", "POST", "/events", `{"id":"deep","type":"t","data":{"x":` + nested + `}}`, nil, 202},
		{"surrogate pair and non-ASCII", "POST", "/events", `{"id":"u","type":"t","source":"boutique-é","data":{"e":"\ud83d\ude00","k":"clé"}}`, nil, 202},
		{"json with a charset", "POST", "/events", `{"id":"cs","type":"t","data":{}}`, []string{"Content-Type", "application/json; charset=utf-8"}, 202},
		{"redelivery without a body", "POST", "/events/cs/redeliver", "", nil, 202},
		{"id of three dots", "POST", "/subscriptions", `{"id":"...","url":"http://h/","event_types":["*"]}`, nil, 201},
		{"patch max equal to stored base", "PATCH", "/subscriptions/...", `{"retry_base_delay_ms":1000}`, nil, 200},
		{"then max at base", "PATCH", "/subscriptions/...", `{"retry_max_delay_ms":1000}`, nil, 200},
	}
	for _, tt := range tests { // in order: later cases use earlier ones
		r := b.do(t, tt.method, tt.path, tt.body, tt.header...)
		require.Equal(t, tt.status, r.status, "%s: %s", tt.name, r.raw)
	}
	r := b.do(t, "GET", "/events/u", "")
	require.Equal(t, map[string]any{"e": "😀", "k": "clé"}, r.body["data"])
	require.Equal(t, "boutique-é", r.body["source"])
}

// TestRepeatedMembersAreRefused: a member name that appears twice in one
// object, at any depth of any body, is a 422 at that member and nothing is
// written. Decoding keeps the last of them, so the event or settings
// stored would not be those the client sent or that it is shown.
func TestRepeatedMembersAreRefused(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://h/","event_types":["*"]}`).status)
	tests := []struct {
		name, method, path, body string
		location                 string
	}{
		{"event id", "POST", "/events", `{"id":"a","id":"b","type":"t","data":{}}`, "body.id"},
		{"event id, spelt with an escape", "POST", "/events", `{"id":"a","type":"t","\u0069d":"b","data":{}}`, "body.id"},
		{"event data", "POST", "/events", `{"id":"a","type":"t","data":{"x":1},"data":{"y":2}}`, "body.data"},
		{"in data", "POST", "/events", `{"id":"a","type":"t","data":{"amount":1,"amount":1000}}`, "body.data.amount"},
		{"deep in data", "POST", "/events", `{"id":"a","type":"t","data":{"items":[{"name":"x"},{"name":"y"},{"qty":1,"name":"z","name":"w"}]}}`, "body.data.items[2].name"},
		{"two events arrays", "POST", "/events/batch", `{"events":[{"id":"a","type":"t","data":{}}],"events":[{"id":"b","type":"t","data":{}}]}`, "body.events"},
		{"events null, then an array", "POST", "/events/batch", `{"events":null,"events":[{"id":"b","type":"t","data":{}}]}`, "body.events"},
		{"subscription url", "POST", "/subscriptions", `{"url":"http://h/","event_types":["*"],"url":"http://other/"}`, "body.url"},
		{"subscription id", "POST", "/subscriptions", `{"id":"s2","url":"http://h/","event_types":["*"],"id":"s3"}`, "body.id"},
		{"patched state", "PATCH", "/subscriptions/s", `{"state":"active","state":"paused"}`, "body.state"},
		{"patched rate limit", "PATCH", "/subscriptions/s", `{"rate_limit_per_second":5,"rate_limit_per_second":50}`, "body.rate_limit_per_second"},
		{"redelivery statuses", "POST", "/subscriptions/s/redeliver", `{"statuses":["failed"],"statuses":["delivered"]}`, "body.statuses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, tt.method, tt.path, tt.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			require.Equal(t, []string{tt.location}, r.locations(), r.raw)
			require.Contains(t, r.raw, domain.RepeatedMember)
		})
	}
	require.Equal(t, 0, b.count(t, "events"), "no event stored")
	require.Equal(t, 1, b.count(t, "subscriptions"), "no subscription created")
	r := b.do(t, "GET", "/subscriptions/s", "")
	require.Equal(t, "active", r.body["state"], "a refused patch changes nothing")
	require.Nil(t, r.body["rate_limit_per_second"], r.raw)

	// In a batch, an event that repeats a member fails alone; an id named
	// twice is not reported as the event's.
	r = b.do(t, "POST", "/events/batch", batch(
		`{"id":"ok","type":"t","data":{}}`,
		`{"id":"d1","type":"t","data":{"a":{"b":1,"\u0062":2}}}`,
		`{"id":"d2","id":"d3","type":"t","data":{}}`,
	))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, [][3]string{
		{"ok", "stored", ""},
		{"d1", "invalid", "body.events[1].data.a.b"},
		{"", "invalid", "body.events[2].id"},
	}, r.results(t), r.raw)
	require.Equal(t, 1, b.count(t, "events"))
}

// TestRequestIDs pins that every answer carries an id: the client's when it
// is safe, a fresh one otherwise, and the same id in problem bodies.
func TestRequestIDs(t *testing.T) {
	b := setup(t)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"none", "", false},
		{"uuid", "0b5c7d1e-8f0a-4c43-9a61-2f8d6e9b1a70", true},
		{"with dots and colons", "web:req.42_a", true},
		{"at the length limit", strings.Repeat("r", api.MaxRequestIDLength), true},
		{"too long", strings.Repeat("r", api.MaxRequestIDLength+1), false},
		{"with a space", "a b", false},
		{"with a quote", `a"b`, false},
		{"non-ASCII", "réq", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, path := range []string{"/events/nope", "/subscriptions", "/openapi.json", "/no-such-route"} {
				r := b.do(t, "GET", path, "", "X-Request-ID", tt.sent)
				got := r.header.Get("X-Request-ID")
				require.NotEmpty(t, got, path)
				if tt.kept {
					require.Equal(t, tt.sent, got, path)
				} else {
					require.NotEqual(t, tt.sent, got, path)
					require.LessOrEqual(t, len(got), api.MaxRequestIDLength)
				}
				if r.status >= 400 && r.body != nil {
					require.Equal(t, got, r.body["request_id"], path)
				}
			}
		})
	}
	one := b.do(t, "GET", "/subscriptions", "").header.Get("X-Request-ID")
	require.NotEqual(t, one, b.do(t, "GET", "/subscriptions", "").header.Get("X-Request-ID"), "generated ids differ")
}

func opID(op *huma.Operation) string {
	if op == nil {
		return ""
	}
	return op.OperationID
}

// TestDatabaseOutageIsA503OnEveryRoute points the API at a port where no
// database listens and calls every operation of its OpenAPI document: each
// answers 503 problem+json with Retry-After and the request id, which the
// log lines carry too.
func TestDatabaseOutageIsA503OnEveryRoute(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+addr+"/dispatch?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	producer, err := queue.NewProducer(queue.ProducerConfig{Brokers: []string{"127.0.0.1:1"}, Topic: topic})
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close(context.Background()) })
	logs := &testkit.Logs{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	mux := http.NewServeMux()
	humaAPI := api.New(mux, api.Config{Store: store.New(pool), Publisher: producer, Registerer: prometheus.NewRegistry(), Logger: log,
		Egress: egress.NewPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}), Resolver: names, AdminKey: adminKey})
	srv := httptest.NewServer(api.WithRequestID(log, false, mux))
	t.Cleanup(srv.Close)
	b := &bundle{url: srv.URL, key: adminKey}

	// A body that passes validation, for each operation that takes one.
	bodies := map[string]string{
		"create-event":               `{"id":"e","type":"t","data":{}}`,
		"create-events-batch":        `{"events":[{"id":"e","type":"t","data":{}}]}`,
		"create-subscription":        `{"id":"s","url":"http://127.0.0.1/","event_types":["*"]}`,
		"update-subscription":        `{"state":"paused"}`,
		"redeliver-event":            `{"subscription_id":"s"}`,
		"redeliver-subscription":     `{}`,
		"rotate-subscription-secret": `{}`,
		"send-test-event":            `{}`,
		"import-event-types":         `{"document":{"openapi":"3.1.0","webhooks":{"a":{"post":{"requestBody":{"content":{"application/json":{"schema":{},"example":{}}}}}}}}}`,
		"create-api-key":             `{"name":"k","scopes":["read"]}`,
		"put-tenant":                 `{}`,
		"put-event-type":             `{"schema":{},"examples":[{}]}`,
		"create-portal-link":         `{}`,
		"exchange-portal-link":       `{"token":"dpl_` + strings.Repeat("x", 52) + `"}`, // well formed, so looked up
		"skip-ordering-key-head":     `{}`,
	}
	// Operations that need no database: the key in use is known from the request.
	noDatabase := map[string]bool{"get-current-key": true}
	ids := map[string]bool{}
	calls := 0
	for path, item := range humaAPI.OpenAPI().Paths {
		for _, op := range []struct {
			method string
			id     string
			body   bool
		}{
			{"GET", opID(item.Get), item.Get != nil && item.Get.RequestBody != nil},
			{"POST", opID(item.Post), item.Post != nil && item.Post.RequestBody != nil},
			{"PUT", opID(item.Put), item.Put != nil && item.Put.RequestBody != nil},
			{"PATCH", opID(item.Patch), item.Patch != nil && item.Patch.RequestBody != nil},
			{"DELETE", opID(item.Delete), item.Delete != nil && item.Delete.RequestBody != nil},
		} {
			if op.id == "" || noDatabase[op.id] {
				continue
			}
			body, ok := bodies[op.id]
			if op.body && !ok {
				t.Fatalf("operation %s takes a body: add a valid one to this test", op.id)
			}
			url := strings.NewReplacer("{id}", "x", "{name}", "x", "{key}", "x").Replace(path)
			r := b.do(t, op.method, url, body)
			require.Equal(t, http.StatusServiceUnavailable, r.status, "%s %s: %s", op.method, url, r.raw)
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			require.Equal(t, "5", r.header.Get("Retry-After"))
			id := r.header.Get("X-Request-ID")
			require.Equal(t, id, r.body["request_id"])
			ids[id] = true
			calls++
		}
	}
	require.GreaterOrEqual(t, calls, 9, "every operation was called")
	require.Len(t, ids, calls, "each answer has its own request id")

	warned := map[string]bool{}
	for _, l := range logs.JSONLines(t) {
		require.NotEqual(t, "ERROR", l["level"], "an outage is not an error of the API: %v", l)
		if l["msg"] == "database unavailable" {
			warned[l["request_id"].(string)] = true
		}
	}
	require.Equal(t, ids, warned, "each outage is logged with its request id")
}

// TestStoredKeysUnreadableIsA503: when a stored key cannot be checked
// because the database is away, the answer is a 503, not a 401 that would
// make a client drop a good key.
func TestStoredKeysUnreadableIsA503(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+addr+"/dispatch?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	mux := http.NewServeMux()
	api.New(mux, api.Config{Store: store.New(pool), Registerer: prometheus.NewRegistry()})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r := (&bundle{url: srv.URL, key: "dsp_" + strings.Repeat("k", 52)}).do(t, "GET", "/subscriptions", "")
	require.Equal(t, http.StatusServiceUnavailable, r.status, r.raw)
	require.Equal(t, "5", r.header.Get("Retry-After"))
}

// Each request's line is at a level that follows its answer: what went as
// asked is debug (a line each would cost a tenth of the API's
// throughput), a client's error info, the API's own a warning.
func TestRequestLineLevelFollowsTheAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		// logRequests is LOG_REQUESTS: an access log at info.
		logRequests bool
		level       string
	}{
		{http.StatusAccepted, false, "DEBUG"},
		{http.StatusOK, false, "DEBUG"},
		{http.StatusNotFound, false, "INFO"},
		{http.StatusUnprocessableEntity, false, "INFO"},
		{http.StatusServiceUnavailable, false, "WARN"},
		{http.StatusInternalServerError, false, "WARN"},
		{http.StatusAccepted, true, "INFO"},
		{http.StatusOK, true, "INFO"},
		{http.StatusNotFound, true, "INFO"},
		{http.StatusInternalServerError, true, "WARN"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/log_requests=%v", tt.status, tt.logRequests), func(t *testing.T) {
			t.Parallel()
			logs := &testkit.Logs{}
			log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			srv := httptest.NewServer(api.WithRequestID(log, tt.logRequests, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
			})))
			t.Cleanup(srv.Close)
			resp, err := http.Get(srv.URL + "/events")
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			lines := logs.JSONLines(t)
			require.Len(t, lines, 1)
			require.Equal(t, "request", lines[0]["msg"])
			require.Equal(t, tt.level, lines[0]["level"])
			require.EqualValues(t, tt.status, lines[0]["status"])
		})
	}
}
