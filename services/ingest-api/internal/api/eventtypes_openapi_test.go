package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
)

func TestCatalogOpenAPIDocument(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "PUT", "/event-types/order.created", typeBody("enforce")).status)
	r := b.do(t, "PUT", "/event-types/order.old", `{"description":"Old.\nUse order.created.","schema":{"type":"object"},"examples":[{}],"deprecated":true}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "GET", "/event-types/openapi.json", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "3.1.0", r.body["openapi"])
	webhooks := r.body["webhooks"].(map[string]any)
	require.Len(t, webhooks, 2)
	post := webhooks["order.created"].(map[string]any)["post"].(map[string]any)
	require.Equal(t, "#/components/schemas/event-order.created", post["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)["$ref"])
	require.Contains(t, r.raw, `"name":"webhook-signature"`)
	schemas := r.body["components"].(map[string]any)["schemas"].(map[string]any)
	data := schemas["data-order.created"].(map[string]any)
	require.Equal(t, "#/components/schemas/data-order.created--customer",
		data["properties"].(map[string]any)["customer"].(map[string]any)["$ref"], "a schema's definitions are components of their own")
	require.NotContains(t, data, "$defs")
	require.Contains(t, schemas, "data-order.created--customer")
	old := webhooks["order.old"].(map[string]any)["post"].(map[string]any)
	require.Equal(t, true, old["deprecated"])
	require.Equal(t, "Old.", old["summary"])
}

// TestCommittedCatalogExampleIsCurrent keeps the example catalog document
// that the OpenAPI tooling checks equal to what the API writes.
func TestCommittedCatalogExampleIsCurrent(t *testing.T) {
	t.Parallel()
	want, err := json.MarshalIndent(api.CatalogDocument(api.ExampleCatalog), "", "  ")
	require.NoError(t, err)
	const file = "docs/event-types.example.openapi.json"
	got, err := readRepoFile(file)
	require.NoError(t, err)
	require.True(t, bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)), "%s is stale: run `go tool task gen`", file)
}
