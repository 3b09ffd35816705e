package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

type catalogDocumentOutput struct {
	Body map[string]any
}

func (s *Server) registerCatalogDocument(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "get-event-types-openapi",
		Method:      http.MethodGet,
		Path:        "/event-types/openapi.json",
		Summary:     "The catalog as an OpenAPI 3.1 webhooks document",
		Description: "An OpenAPI 3.1 document with a webhooks entry per event type in the catalog: the body Dispatch posts (id, type, source, timestamp, and data following the type's latest schema), the signature headers, and the type's first example. Receivers generate types from it with their usual tools.",
		Tags:        []string{"Event types"},
	}, s.catalogDocument)
}

// catalogPageSize is how many event types the document reads per query.
const catalogPageSize = 250

func (s *Server) catalogDocument(ctx context.Context, _ *struct{}) (*catalogDocumentOutput, error) {
	var types []domain.EventType
	after := ""
	for {
		page, err := s.store.ListEventTypes(ctx, store.EventTypeFilter{After: after, Limit: catalogPageSize})
		if err != nil {
			return nil, s.problem(ctx, err, "")
		}
		types = append(types, page...)
		if len(page) < catalogPageSize {
			break
		}
		after = page[len(page)-1].Name
	}
	return &catalogDocumentOutput{Body: CatalogDocument(types)}, nil
}

// webhookHeaders are the headers every delivery carries (ADR 0001's
// delivery contract), as OpenAPI parameters.
var webhookHeaders = []map[string]any{
	header("webhook-id", "The event id (Standard Webhooks): the same on every attempt, so receivers can deduplicate.", true),
	header("webhook-timestamp", "Seconds since the Unix epoch when this attempt was signed (Standard Webhooks).", true),
	header("webhook-signature", "'v1,' + base64 of HMAC-SHA256 over '{webhook-id}.{webhook-timestamp}.{body}' with the subscription's secret; during a secret rotation two such signatures, space-separated (Standard Webhooks).", true),
	header("X-Dispatch-Event-ID", "The same as webhook-id.", true),
	header("X-Dispatch-Event-Type", "The event's type.", true),
	header("X-Dispatch-Timestamp", "The same as webhook-timestamp.", true),
	header("X-Dispatch-Signature", "The same as webhook-signature.", true),
}

func header(name, doc string, required bool) map[string]any {
	return map[string]any{"name": name, "in": "header", "required": required, "description": doc, "schema": map[string]any{"type": "string"}}
}

// CatalogDocument is the OpenAPI 3.1 document of the event types: a webhook
// per type, each with the envelope Dispatch delivers and the type's schema
// as its data. Each schema becomes the component "data-<name>", its
// internal refs rewritten to point there, and each envelope the component
// "event-<name>".
func CatalogDocument(types []domain.EventType) map[string]any {
	webhooks := map[string]any{}
	schemas := map[string]any{}
	for _, t := range types {
		dataName, eventName := "data-"+t.Name, "event-"+t.Name
		var schema any
		if err := json.Unmarshal(t.Schema, &schema); err != nil {
			schema = map[string]any{}
		}
		for k, def := range hoistDefs(schema, dataName) {
			schemas[k] = def
		}
		schemas[dataName] = rebase(schema, "#/components/schemas/"+dataName, dataName)
		schemas[eventName] = map[string]any{
			"type":     "object",
			"required": []string{"id", "type", "timestamp", "data"},
			"properties": map[string]any{
				"id":        map[string]any{"type": "string", "description": "The event's id: the producer's idempotency key."},
				"type":      map[string]any{"const": t.Name},
				"source":    map[string]any{"type": "string", "description": "Which system produced the event."},
				"timestamp": map[string]any{"type": "string", "format": "date-time", "description": "When Dispatch accepted the event."},
				"data":      map[string]any{"$ref": "#/components/schemas/" + dataName},
			},
		}
		summary, _, _ := strings.Cut(t.Description, "\n")
		if summary == "" {
			summary = t.Name
		}
		op := map[string]any{
			"operationId": t.Name,
			"summary":     summary,
			"description": t.Description,
			"parameters":  webhookHeaders,
			"requestBody": map[string]any{
				"required": true,
				"content": map[string]any{"application/json": map[string]any{
					"schema": map[string]any{"$ref": "#/components/schemas/" + eventName},
				}},
			},
			"responses": map[string]any{
				"2XX": map[string]any{"description": "Received. Any other answer, or none within the subscription's timeout, is retried."},
				"410": map[string]any{"description": "Gone: the subscription is disabled and receives nothing more."},
			},
		}
		if len(t.Examples) > 0 {
			op["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["example"] = map[string]any{
				"id": "evt_example", "type": t.Name, "timestamp": "2026-01-01T00:00:00Z", "data": t.Examples[0],
			}
		}
		if t.Deprecated {
			op["deprecated"] = true
		}
		webhooks[t.Name] = map[string]any{"post": op}
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Dispatch webhooks",
			"version":     "1",
			"description": "The events Dispatch delivers, one webhook per event type of the catalog.",
			"license":     map[string]any{"name": "MIT", "url": "https://opensource.org/license/mit"},
		},
		// Receivers serve the webhooks; the document names no host of theirs.
		"servers":  []map[string]any{{"url": "/", "description": "The receiver's endpoint: the URL of each subscription."}},
		"security": []map[string]any{{"standardWebhooks": []string{}}},
		"webhooks": webhooks,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{"standardWebhooks": map[string]any{
				"type": "apiKey", "in": "header", "name": "webhook-signature",
				"description": "Each delivery is signed as Standard Webhooks says: verify webhook-signature over webhook-id, webhook-timestamp and the body with the subscription's secret, e.g. with the Standard Webhooks libraries.",
			}},
		},
	}
}

// defsKeywords hold a schema's definitions: 2020-12's and draft-07's.
var defsKeywords = []string{"$defs", "definitions"}

// hoistable reports whether a definition's name can be part of a
// component's name.
func hoistable(name string) bool {
	return name != "" && domain.ValidateEventTypeName("", name) == nil
}

// hoistDefs takes the definitions at the root of a type's schema out of it,
// as components named dataName + "--" + name: generators such as
// openapi-typescript take a component's $defs for a property. It returns
// them with their refs rewritten; the schema keeps those whose names
// cannot be a component's.
func hoistDefs(schema any, dataName string) map[string]any {
	root, ok := schema.(map[string]any)
	if !ok {
		return nil
	}
	out := map[string]any{}
	for _, kw := range defsKeywords {
		defs, _ := root[kw].(map[string]any)
		for name, def := range defs {
			if !hoistable(name) {
				continue
			}
			out[dataName+"--"+name] = def
			delete(defs, name)
		}
		if defs != nil && len(defs) == 0 {
			delete(root, kw)
		}
	}
	for k, def := range out {
		out[k] = rebase(def, "#/components/schemas/"+dataName, dataName)
	}
	return out
}

// rebase rewrites the refs of a schema that is moved from a document's
// root to base: "#/$defs/x" becomes the hoisted component of x (see
// hoistDefs), any other "#/..." base + "/...".
func rebase(v any, base, dataName string) any {
	switch n := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(n))
		for k, child := range n {
			if ref, ok := child.(string); ok && (k == "$ref" || k == "$dynamicRef" || k == "$recursiveRef") {
				if ref == "#" || strings.HasPrefix(ref, "#/") {
					out[k] = rebasedRef(ref, base, dataName)
					continue
				}
			}
			out[k] = rebase(child, base, dataName)
		}
		return out
	case []any:
		out := make([]any, len(n))
		for i, child := range n {
			out[i] = rebase(child, base, dataName)
		}
		return out
	}
	return v
}

func rebasedRef(ref, base, dataName string) string {
	for _, kw := range defsKeywords {
		if rest, ok := strings.CutPrefix(ref, "#/"+kw+"/"); ok {
			name, tail, _ := strings.Cut(rest, "/")
			if hoistable(name) {
				if tail != "" {
					tail = "/" + tail
				}
				return "#/components/schemas/" + dataName + "--" + name + tail
			}
		}
	}
	return base + strings.TrimPrefix(ref, "#")
}

// ExampleCatalog is the catalog of docs/event-types.example.openapi.json,
// which tools/openapi-lint checks with Redocly and compiles to TypeScript
// types with openapi-typescript.
var ExampleCatalog = []domain.EventType{
	{Name: "order.created", Description: "An order was placed.", Examples: []json.RawMessage{json.RawMessage(`{"id":"ord_1","amount":1250,"currency":"EUR","customer":{"email":"ada@example.com"}}`)},
		Schema: json.RawMessage(`{"type":"object","required":["id","amount","currency","customer"],"properties":{"id":{"type":"string"},"amount":{"type":"integer","minimum":0},"currency":{"enum":["EUR","USD"]},"customer":{"$ref":"#/$defs/customer"}},"$defs":{"customer":{"type":"object","required":["email"],"properties":{"email":{"type":"string"},"name":{"type":"string"}}}}}`)},
	{Name: "order.cancelled", Description: "An order was cancelled.\n\nDeprecated: send order.updated.", Deprecated: true, Examples: []json.RawMessage{json.RawMessage(`{"id":"ord_1"}`)},
		Schema: json.RawMessage(`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","required":["id"],"properties":{"id":{"type":"string"}}}`)},
}
