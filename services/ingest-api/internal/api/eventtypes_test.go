package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
)

// orderType is a PUT /event-types body: an order with an id and an amount.
const orderType = `{
	"description": "An order was **placed**.",
	"schema": {"type": "object", "required": ["id", "amount"], "properties": {"id": {"type": "string"}, "amount": {"type": "integer", "minimum": 0}, "customer": {"$ref": "#/$defs/customer"}},
		"$defs": {"customer": {"type": "object", "required": ["email"]}}},
	"examples": [{"id": "ord_1", "amount": 100}],
	"validation": "%s"
}`

func typeBody(mode string) string { return strings.Replace(orderType, "%s", mode, 1) }

// instance starts another API on b's database and Kafka, configured by
// change, and returns a bundle that talks to it.
func (b *bundle) instance(t *testing.T, change func(*api.Config)) *bundle {
	t.Helper()
	producer, err := queue.NewProducer(queue.ProducerConfig{Brokers: b.brokers, Topic: topic})
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close(context.Background()) })
	cfg := api.Config{Store: store.New(b.db.Pool), Publisher: producer, Registerer: prometheus.NewRegistry(), Version: "test", AdminKey: adminKey,
		Egress: egress.NewPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}), Resolver: names}
	change(&cfg)
	mux := http.NewServeMux()
	registered := api.New(mux, cfg)
	srv := httptest.NewServer(api.WithRequestID(slog.New(slog.DiscardHandler), false, api.AnswerUnrouted(mux)))
	t.Cleanup(srv.Close)
	return &bundle{url: srv.URL, db: b.db, brokers: b.brokers, key: adminKey, api: registered}
}

func TestEventTypeCatalog(t *testing.T) {
	b := setup(t)
	r := b.do(t, "PUT", "/event-types/order.created", typeBody("enforce"))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.EqualValues(t, 1, r.body["version"])
	require.Equal(t, "enforce", r.body["validation"])
	require.Equal(t, "An order was **placed**.", r.body["description"])

	// The same schema again: no new version. Another: version 2.
	r = b.do(t, "PUT", "/event-types/order.created", typeBody("warn"))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 1, r.body["version"])
	r = b.do(t, "PUT", "/event-types/order.created", `{"schema": {"type": "object"}, "examples": [{}], "deprecated": true}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 2, r.body["version"])
	require.Equal(t, "enforce", r.body["validation"], "enforce is the default")
	r = b.do(t, "GET", "/event-types/order.created/versions", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	versions := r.body["data"].([]any)
	require.Len(t, versions, 2)
	require.EqualValues(t, 2, versions[0].(map[string]any)["version"])

	require.Equal(t, http.StatusCreated, b.do(t, "PUT", "/event-types/order.paid", typeBody("off")).status)
	require.Equal(t, http.StatusCreated, b.do(t, "PUT", "/event-types/user.created", typeBody("off")).status)
	names := func(query string) []string {
		r := b.do(t, "GET", "/event-types"+query, "")
		require.Equal(t, http.StatusOK, r.status, r.raw)
		var out []string
		for _, d := range r.body["data"].([]any) {
			out = append(out, d.(map[string]any)["name"].(string))
		}
		return out
	}
	require.Equal(t, []string{"order.created", "order.paid", "user.created"}, names(""))
	require.Equal(t, []string{"order.created", "order.paid"}, names("?prefix=order."))
	require.Equal(t, []string{"order.created"}, names("?deprecated=true"))
	require.Equal(t, []string{"order.paid", "user.created"}, names("?deprecated=false"))
	r = b.do(t, "GET", "/event-types?limit=2", "")
	require.Equal(t, "order.paid", r.body["next_cursor"])
	require.Equal(t, []string{"user.created"}, names("?limit=2&after=order.paid"))

	require.Equal(t, http.StatusNoContent, b.do(t, "DELETE", "/event-types/user.created", "").status)
	require.Equal(t, []string{"order.created", "order.paid"}, names(""))
	require.Equal(t, []string{"user.created"}, names("?archived=true"))
	r = b.do(t, "GET", "/event-types/user.created", "")
	require.Equal(t, http.StatusOK, r.status, "an archived type stays readable")
	require.NotEmpty(t, r.body["archived_at"])
	r = b.do(t, "PUT", "/event-types/user.created", typeBody("off"))
	require.Equal(t, http.StatusConflict, r.status, "an archived name stays reserved: %s", r.raw)
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", "/event-types/nope", "").status)
	require.Equal(t, http.StatusNotFound, b.do(t, "DELETE", "/event-types/nope", "").status)
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", "/event-types/nope/versions", "").status)

	// Tenant-bound keys read the catalog but do not change it.
	b.putTenant(t, "acme", `{}`)
	key, _ := b.tenantKey(t, "acme", `"read","write"`)
	require.Equal(t, http.StatusOK, b.doWithKey(t, key, "GET", "/event-types", "").status)
	require.Equal(t, http.StatusOK, b.doWithKey(t, key, "GET", "/event-types/order.paid", "").status)
	require.Equal(t, http.StatusForbidden, b.doWithKey(t, key, "PUT", "/event-types/x", typeBody("off")).status)
	require.Equal(t, http.StatusForbidden, b.doWithKey(t, key, "DELETE", "/event-types/order.paid", "").status)
}

func TestEventTypeRefusedAtPut(t *testing.T) {
	b := setup(t)
	deep := strings.Repeat(`{"items":`, 40) + `{}` + strings.Repeat(`}`, 40)
	tests := []struct {
		name, path, body, location, message string
	}{
		{"invalid schema", "t", `{"schema": {"type": "nope"}, "examples": [{}]}`, "body.schema.type", "is not a valid JSON Schema"},
		{"remote ref", "t", `{"schema": {"$ref": "http://169.254.169.254/latest"}, "examples": [{}]}`, "body.schema.$ref", "never does"},
		{"too deep", "t", `{"schema": ` + deep + `, "examples": [{}]}`, "body.schema", "nest"},
		{"too large", "t", `{"schema": {"description": "` + strings.Repeat("x", 70_000) + `"}, "examples": [{}]}`, "body.schema", "at most 65536 bytes"},
		{"example does not validate", "t", `{"schema": {"required": ["id"]}, "examples": [{"id": 1}, {}]}`, "/examples/1", "missing property 'id'"},
		{"no example", "t", `{"schema": {}, "examples": []}`, "body.examples", ""},
		{"bad name", "a%20b", `{"schema": {}, "examples": [{}]}`, "path.name", "may contain only"},
		{"reserved name", "openapi.json", `{"schema": {}, "examples": [{}]}`, "path.name", "reserved"},
		{"bad mode", "t", `{"schema": {}, "examples": [{}], "validation": "strict"}`, "body.validation", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, "PUT", "/event-types/"+tt.path, tt.body)
			if tt.name == "reserved name" {
				// The document's own route answers the PUT's path first.
				require.NotEqual(t, http.StatusCreated, r.status, r.raw)
				return
			}
			require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
			require.Contains(t, r.raw, `"location":"`+tt.location)
			require.Contains(t, r.raw, tt.message)
		})
	}
	require.Zero(t, b.count(t, "event_types"), "nothing refused was stored")
}

func TestSchemaValidationAtIngest(t *testing.T) {
	b := setup(t)
	reg := prometheus.NewRegistry()
	b = b.instance(t, func(c *api.Config) { c.Registerer = reg })
	for mode, name := range map[string]string{"enforce": "order.enforced", "warn": "order.warned", "off": "order.unchecked"} {
		require.Equal(t, http.StatusCreated, b.do(t, "PUT", "/event-types/"+name, typeBody(mode)).status)
	}
	bad := `{"id":"ord_1","amount":"ten","customer":{}}`

	// enforce: refused with a pointer per failure; nothing stored.
	r := b.do(t, "POST", "/events", `{"id":"e1","type":"order.enforced","data":`+bad+`}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Contains(t, r.raw, `{"message":"got string, want integer","location":"/data/amount"}`)
	require.Contains(t, r.raw, `{"message":"missing property 'email'","location":"/data/customer"}`)
	require.Contains(t, r.raw, `version 1`)
	require.Zero(t, b.count(t, "events"))
	r = b.do(t, "POST", "/events", `{"id":"e2","type":"order.enforced","data":{"id":"o","amount":3}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	r = b.do(t, "GET", "/events/e2", "")
	require.EqualValues(t, 1, r.body["schema_version"])
	require.Equal(t, true, r.body["schema_valid"])

	// warn: stored, marked, listed by the filter, counted.
	r = b.do(t, "POST", "/events", `{"id":"e3","type":"order.warned","data":`+bad+`}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	r = b.do(t, "GET", "/events/e3", "")
	require.Equal(t, false, r.body["schema_valid"])
	require.EqualValues(t, 1, r.body["schema_version"])

	// off, and types not in the catalog: as before.
	for id, typ := range map[string]string{"e4": "order.unchecked", "e5": "not.in.catalog"} {
		r = b.do(t, "POST", "/events", `{"id":"`+id+`","type":"`+typ+`","data":`+bad+`}`)
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
		r = b.do(t, "GET", "/events/"+id, "")
		require.NotContains(t, r.body, "schema_valid")
		require.NotContains(t, r.body, "schema_version")
	}

	// A batch: the invalid enforced event fails alone.
	r = b.do(t, "POST", "/events/batch", `{"events":[
		{"id":"b1","type":"order.enforced","data":{"id":"o","amount":1}},
		{"id":"b2","type":"order.enforced","data":`+bad+`},
		{"id":"b3","type":"order.warned","data":`+bad+`}]}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 2, r.body["stored"])
	require.EqualValues(t, 1, r.body["invalid"])
	item := r.body["data"].([]any)[1].(map[string]any)
	require.Equal(t, "invalid", item["status"])
	require.Contains(t, r.raw, `"location":"/events/1/data/amount"`)

	r = b.do(t, "GET", "/events?schema_valid=false", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	var invalid []string
	for _, e := range r.body["data"].([]any) {
		invalid = append(invalid, e.(map[string]any)["id"].(string))
	}
	require.ElementsMatch(t, []string{"e3", "b3"}, invalid)

	counted := func(mode string) float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "dispatch_events_schema_invalid_total" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == mode {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	require.Equal(t, 2.0, counted("warn"))
	require.Equal(t, 2.0, counted("enforce"))

	// A change to the schema applies to the next event on this instance.
	require.Equal(t, http.StatusOK, b.do(t, "PUT", "/event-types/order.enforced", `{"schema": {"type": "object"}, "examples": [{}]}`).status)
	r = b.do(t, "POST", "/events", `{"id":"e6","type":"order.enforced","data":`+bad+`}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	r = b.do(t, "GET", "/events/e6", "")
	require.EqualValues(t, 2, r.body["schema_version"])

	// Archived: no longer validated.
	require.Equal(t, http.StatusNoContent, b.do(t, "DELETE", "/event-types/order.warned", "").status)
	r = b.do(t, "POST", "/events", `{"id":"e7","type":"order.warned","data":`+bad+`}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	r = b.do(t, "GET", "/events/e7", "")
	require.NotContains(t, r.body, "schema_valid")
}

func TestEventTypesRequired(t *testing.T) {
	b := setup(t).instance(t, func(c *api.Config) { c.EventTypesRequired = true })
	require.Equal(t, http.StatusCreated, b.do(t, "PUT", "/event-types/order.created", typeBody("off")).status)
	r := b.do(t, "POST", "/events", `{"id":"e1","type":"order.typo","data":{}}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Contains(t, r.raw, `"location":"body.type"`)
	require.Contains(t, r.raw, "GET /event-types")
	r = b.do(t, "POST", "/events", `{"id":"e2","type":"order.created","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	r = b.do(t, "POST", "/events/batch", `{"events":[{"id":"b1","type":"order.typo","data":{}},{"id":"b2","type":"order.created","data":{}}]}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 1, r.body["stored"])
	require.Contains(t, r.raw, `"location":"body.events[0].type"`)
}

func TestSubscriptionCatalogWarnings(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "PUT", "/event-types/order.created", typeBody("off")).status)
	r := b.do(t, "PUT", "/event-types/order.old", `{"schema": {}, "examples": [{}], "deprecated": true}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions", `{"id":"s1","url":"http://127.0.0.1:9/h","event_types":["order.created","order.old","order.typo","user.*","*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Equal(t, []any{
		`event type "order.old" is deprecated; it is still delivered`,
		`event type "order.typo" is not in the catalog (GET /event-types); the subscription receives it if it is ever posted`,
	}, r.body["warnings"])
	r = b.do(t, "PATCH", "/subscriptions/s1", `{"event_types":["order.created"]}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.NotContains(t, r.body, "warnings")
	r = b.do(t, "PATCH", "/subscriptions/s1", `{"event_types":["order.nope"]}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Len(t, r.body["warnings"], 1)

	required := b.instance(t, func(c *api.Config) { c.EventTypesRequired = true })
	r = required.do(t, "POST", "/subscriptions", `{"url":"http://127.0.0.1:9/h","event_types":["order.*","order.typo"]}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Contains(t, r.raw, `"location":"body.event_types[1]"`)
	r = required.do(t, "PATCH", "/subscriptions/s1", `{"event_types":["order.typo"]}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	r = required.do(t, "POST", "/subscriptions", `{"url":"http://127.0.0.1:9/h","event_types":["order.*","order.old"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Len(t, r.body["warnings"], 1, "a deprecated type is a warning")
}

func TestSendTestEvent(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "PUT", "/event-types/order.created", typeBody("enforce")).status)
	for _, id := range []string{"s1", "s2"} {
		r := b.do(t, "POST", "/subscriptions", `{"id":"`+id+`","url":"http://127.0.0.1:9/h","event_types":["*"]}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}

	r := b.do(t, "POST", "/subscriptions/s1/test", `{"event_type":"order.created"}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	id := r.body["id"].(string)
	require.Equal(t, "order.created", r.body["type"])
	require.Equal(t, map[string]any{"id": "ord_1", "amount": float64(100)}, r.body["data"], "the type's first example")
	r = b.do(t, "GET", "/events/"+id, "")
	require.Equal(t, true, r.body["test"])
	deliveries := r.body["deliveries"].([]any)
	require.Len(t, deliveries, 1, "to that subscription only, though s2 matches every type")
	require.Equal(t, "s1", deliveries[0].(map[string]any)["subscription_id"])
	r = b.do(t, "GET", "/subscriptions/s1/deliveries", "")
	require.Equal(t, true, r.body["data"].([]any)[0].(map[string]any)["test"], "visible as a test in the subscription's history")

	r = b.do(t, "POST", "/subscriptions/s2/test", `{}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.Equal(t, "dispatch.test", r.body["type"])
	require.Equal(t, 1, b.count(t, "deliveries WHERE subscription_id = 's2'"))

	require.Equal(t, http.StatusUnprocessableEntity, b.do(t, "POST", "/subscriptions/s1/test", `{"event_type":"nope"}`).status)
	require.Equal(t, http.StatusNotFound, b.do(t, "POST", "/subscriptions/nope/test", `{}`).status)
	require.Equal(t, 2, b.count(t, "events"), "nothing stored for the refused ones")
}

func TestImportEventTypes(t *testing.T) {
	b := setup(t)
	doc, err := json.Marshal(api.CatalogDocument(api.ExampleCatalog))
	require.NoError(t, err)
	body := `{"document":` + string(doc) + `}`
	r := b.do(t, "POST", "/event-types/import", body)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, []any{"order.cancelled", "order.created"}, r.body["created"])
	require.Empty(t, r.body["skipped"])
	r = b.do(t, "GET", "/event-types/order.created", "")
	require.Equal(t, "An order was placed.", r.body["description"])
	// The imported schema works: the component it referred to came along.
	r = b.do(t, "POST", "/events", `{"id":"e1","type":"order.created","data":{"id":"o","amount":1,"currency":"EUR","customer":{}}}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Contains(t, r.raw, `"location":"/data/customer"`)

	r = b.do(t, "POST", "/event-types/import", body)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Empty(t, r.body["created"])
	require.Len(t, r.body["skipped"], 2, "unchanged: %s", r.raw)

	// Components, dotted names, with a prefix; one without an example and
	// one whose example does not validate are skipped with the reason.
	r = b.do(t, "POST", "/event-types/import", `{"from":"components","naming":"dotted","prefix":"billing.","document":{"openapi":"3.0.3","components":{"schemas":{
		"InvoicePaid":{"type":"object","required":["id"],"properties":{"id":{"type":"string"},"lines":{"type":"array","items":{"$ref":"#/components/schemas/Line"}}},"example":{"id":"inv_1"}},
		"Line":{"type":"object","properties":{"amount":{"type":"integer"}}},
		"Refund":{"type":"object","required":["id"],"example":{}}}}}}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, []any{"billing.invoice.paid"}, r.body["created"])
	require.Contains(t, r.raw, `{"name":"billing.line","reason":"no example`)
	require.Contains(t, r.raw, `{"name":"billing.refund","reason":"an example does not validate against the schema; /examples/0: missing property 'id'"}`)
	r = b.do(t, "POST", "/events", `{"id":"e2","type":"billing.invoice.paid","data":{"id":"i","lines":[{"amount":"x"}]}}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Contains(t, r.raw, `"location":"/data/lines/0/amount"`)

	r = b.do(t, "POST", "/event-types/import", `{"document":{"swagger":"2.0"}}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
}

// checkedBeforeArchive is a store whose reads miss that a type is
// archived: as if it were archived after the import checked it.
type checkedBeforeArchive struct {
	api.Store
	name string
}

func (s checkedBeforeArchive) GetEventType(ctx context.Context, name string) (domain.EventType, error) {
	if name == s.name {
		return domain.EventType{}, domain.ErrNotFound
	}
	return s.Store.GetEventType(ctx, name)
}

// TestImportIsAllOrNothing: when one of an import's types cannot be
// stored (archived since it was checked), the import answers 409 and
// stores none of them.
func TestImportIsAllOrNothing(t *testing.T) {
	t.Parallel()
	b := newBundle(t, func(c *api.Config) { c.Store = checkedBeforeArchive{Store: c.Store, name: "order.cancelled"} })
	require.Equal(t, http.StatusCreated, b.do(t, "PUT", "/event-types/order.cancelled", typeBody("enforce")).status)
	require.Equal(t, http.StatusNoContent, b.do(t, "DELETE", "/event-types/order.cancelled", "").status)
	doc, err := json.Marshal(api.CatalogDocument(api.ExampleCatalog))
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, b.url+"/event-types/import", strings.NewReader(`{"document":`+string(doc)+`}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, resp.StatusCode, string(raw))
	require.Contains(t, string(raw), "nothing was imported")
	newDocumentChecker(t, b).check(t, req, resp.StatusCode, resp.Header, raw)
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", "/event-types/order.created", "").status, "a type of the failed import was stored")
}
