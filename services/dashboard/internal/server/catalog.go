package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/web"
)

// catalogOffer is how many of the catalog's types the subscription form
// offers; the rest are typed in.
const catalogOffer = 100

// eventTypes lists the catalog, a page at a time, searched by the start of
// the names and by deprecation; the search lives in the query. The
// catalog is global: the portal shows the same types, read-only.
func (s *Server) eventTypes(w http.ResponseWriter, r *http.Request, rq *request) {
	q := r.URL.Query()
	v := web.EventTypesView{Page: rq.page, Prefix: q.Get("prefix"), Deprecated: q.Get("deprecated"), Errors: web.Errors{}}
	v.Title, v.Nav = "Event types", "event-types"
	limit := int64(50)
	params := client.ListEventTypesParams{Limit: &limit}
	if p := strings.TrimSpace(v.Prefix); p != "" {
		params.Prefix = &p
	}
	if v.Deprecated == "true" || v.Deprecated == "false" {
		d := client.ListEventTypesParamsDeprecated(v.Deprecated)
		params.Deprecated = &d
	} else {
		v.Deprecated = ""
	}
	if after := q.Get("after"); after != "" {
		params.After = &after
		v.First = pageURL(rq.path("/event-types"), q, "")
	}
	res, err := rq.api.ListEventTypesWithResponse(r.Context(), &params)
	status := http.StatusOK
	switch {
	case err != nil:
		s.fail(w, r, rq, unreachable(err))
		return
	case res.JSON200 != nil:
		for _, t := range items(res.JSON200.Data) {
			v.Types = append(v.Types, eventTypeRow(t))
		}
		if res.JSON200.NextCursor != nil {
			v.Next = pageURL(rq.path("/event-types"), q, *res.JSON200.NextCursor)
		}
	case res.StatusCode() == http.StatusUnprocessableEntity:
		v.Errors = problem(res.StatusCode(), res.Body).Fields
		status = http.StatusUnprocessableEntity
	default:
		s.fail(w, r, rq, problem(res.StatusCode(), res.Body))
		return
	}
	s.render(w, r, status, rq.ui.eventTypes(v))
}

func eventTypeRow(t client.EventTypeBody) web.EventTypeRow {
	row := web.EventTypeRow{Name: t.Name, Version: t.Version, UpdatedAt: t.UpdatedAt}
	row.Summary, _, _ = strings.Cut(str(t.Description), "\n")
	if t.Validation != nil {
		row.Validation = string(*t.Validation)
	}
	if t.Deprecated != nil {
		row.Deprecated = *t.Deprecated
	}
	return row
}

// indented is JSON text indented for reading, members in their order.
func indented(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// eventType is one type's page: the type as written (the API's own text,
// so the schema's members keep their order) and its versions.
func (s *Server) eventType(w http.ResponseWriter, r *http.Request, rq *request) {
	name := r.PathValue("name")
	v := web.EventTypeView{Page: rq.page}
	v.Title, v.Nav = "Event type "+name, "event-types"
	res, err := rq.api.GetEventTypeWithResponse(r.Context(), name)
	if err != nil {
		s.fail(w, r, rq, unreachable(err))
		return
	}
	if res.JSON200 == nil {
		e := problem(res.StatusCode(), res.Body)
		if e.Status == http.StatusNotFound || e.Status == http.StatusUnprocessableEntity {
			e.Status, e.Detail = http.StatusNotFound, "the catalog has no event type "+name+"."
		}
		s.fail(w, r, rq, e)
		return
	}
	t := res.JSON200
	v.Type, v.Description, v.ArchivedAt = eventTypeRow(*t), str(t.Description), t.ArchivedAt
	var raw struct {
		Schema   json.RawMessage   `json:"schema"`
		Examples []json.RawMessage `json:"examples"`
	}
	if json.Unmarshal(res.Body, &raw) == nil {
		v.Schema, v.Fields = indented(raw.Schema), schemaFields(raw.Schema)
		for _, ex := range raw.Examples {
			v.Examples = append(v.Examples, indented(ex))
		}
	}
	versions, err := rq.api.ListEventTypeVersionsWithResponse(r.Context(), name)
	if err != nil {
		s.fail(w, r, rq, unreachable(err))
		return
	}
	var rawVersions struct {
		Data []struct {
			Version   int64           `json:"version"`
			Schema    json.RawMessage `json:"schema"`
			CreatedAt time.Time       `json:"created_at"`
		} `json:"data"`
	}
	if versions.JSON200 == nil || json.Unmarshal(versions.Body, &rawVersions) != nil {
		s.fail(w, r, rq, problem(versions.StatusCode(), versions.Body))
		return
	}
	for _, ver := range rawVersions.Data {
		v.Versions = append(v.Versions, web.EventTypeVersionRow{Version: ver.Version, Schema: indented(ver.Schema), CreatedAt: ver.CreatedAt})
	}
	s.render(w, r, http.StatusOK, rq.ui.eventType(v))
}

// catalogNames are the first catalogOffer type names of the catalog, for
// the subscription form; none when the catalog cannot be read, since the
// form works without them.
func catalogNames(ctx context.Context, api *client.ClientWithResponses) []string {
	limit := int64(catalogOffer)
	res, err := api.ListEventTypesWithResponse(ctx, &client.ListEventTypesParams{Limit: &limit})
	if err != nil || res.JSON200 == nil {
		return nil
	}
	var names []string
	for _, t := range items(res.JSON200.Data) {
		names = append(names, t.Name)
	}
	return names
}

// Bounds of the field table: a schema may nest and refer to itself without
// end, the table stops.
const (
	maxFieldDepth = 6
	maxFields     = 200
)

// schemaNode is what the field table reads of a (sub)schema.
type schemaNode struct {
	Ref         string            `json:"$ref"`
	Type        json.RawMessage   `json:"type"`
	Enum        []json.RawMessage `json:"enum"`
	Const       json.RawMessage   `json:"const"`
	Format      string            `json:"format"`
	Description string            `json:"description"`
	Required    []string          `json:"required"`
	Properties  json.RawMessage   `json:"properties"`
	Items       json.RawMessage   `json:"items"`
}

// schemaFields are the fields a schema describes, in the order written,
// nested objects' and arrays' items' fields by their path, following
// $refs inside the schema: the schema for reading. A schema that is not
// an object describing properties has none.
func schemaFields(schema json.RawMessage) []web.SchemaField {
	var out []web.SchemaField
	var walk func(raw json.RawMessage, prefix string, depth int)
	walk = func(raw json.RawMessage, prefix string, depth int) {
		n, ok := resolveNode(schema, raw)
		if !ok || depth > maxFieldDepth {
			return
		}
		if len(n.Properties) == 0 && len(n.Items) > 0 {
			walk(n.Items, prefix+"[]", depth+1)
			return
		}
		keys, values := members(n.Properties)
		for i, name := range keys {
			if len(out) >= maxFields {
				return
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			p, _ := resolveNode(schema, values[i])
			out = append(out, web.SchemaField{Path: path, Type: typeWords(schema, p), Required: slices.Contains(n.Required, name), Description: p.Description})
			walk(values[i], path, depth+1)
		}
	}
	walk(schema, "", 0)
	return out
}

// resolveNode reads raw as a schema node, following a $ref into root
// (a "#/..." pointer) a few times at most.
func resolveNode(root, raw json.RawMessage) (schemaNode, bool) {
	var n schemaNode
	for range 8 {
		n = schemaNode{}
		if json.Unmarshal(raw, &n) != nil {
			return schemaNode{}, false
		}
		if !strings.HasPrefix(n.Ref, "#") {
			return n, true
		}
		target, ok := pointerInto(root, strings.TrimPrefix(n.Ref, "#"))
		if !ok {
			return n, true
		}
		raw = target
	}
	return n, true
}

// pointerInto follows a JSON pointer in doc.
func pointerInto(doc json.RawMessage, pointer string) (json.RawMessage, bool) {
	if pointer == "" {
		return doc, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		var obj map[string]json.RawMessage
		if json.Unmarshal(doc, &obj) != nil {
			return nil, false
		}
		next, ok := obj[tok]
		if !ok {
			return nil, false
		}
		doc = next
	}
	return doc, true
}

// members are an object's member names in the order written, and their
// values; none if raw is not an object.
func members(raw json.RawMessage) ([]string, []json.RawMessage) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil
	}
	var keys []string
	var values []json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil
		}
		key, _ := tok.(string)
		keys, values = append(keys, key), append(values, v)
	}
	return keys, values
}

// typeWords is a field's type for reading: "string (date-time)",
// "integer or null", "array of string", "one of \"EUR\", \"USD\"".
func typeWords(root json.RawMessage, n schemaNode) string {
	if len(n.Const) > 0 {
		return "always " + string(n.Const)
	}
	if len(n.Enum) > 0 {
		vals := make([]string, len(n.Enum))
		for i, v := range n.Enum {
			vals[i] = string(v)
		}
		return "one of " + strings.Join(vals, ", ")
	}
	var types []string
	var one string
	if json.Unmarshal(n.Type, &one) == nil {
		types = []string{one}
	} else {
		_ = json.Unmarshal(n.Type, &types)
	}
	if len(types) == 0 && len(n.Properties) > 0 {
		types = []string{"object"}
	}
	words := strings.Join(types, " or ")
	if words == "array" && len(n.Items) > 0 {
		if item, ok := resolveNode(root, n.Items); ok && len(item.Properties) == 0 {
			if w := typeWords(root, item); w != "" {
				words = "array of " + w
			}
		}
	}
	if n.Format != "" && words != "" {
		words += " (" + n.Format + ")"
	}
	return words
}
