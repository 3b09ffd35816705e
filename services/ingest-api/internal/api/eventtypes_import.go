package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// Bounds of POST /event-types/import.
const (
	maxImportBytes = 2 << 20
	maxImportTypes = 500
)

type importEventTypesInput struct {
	Body struct {
		Document   JSONObject `json:"document" doc:"An OpenAPI 3.x document, as JSON."`
		From       string     `json:"from,omitempty" enum:"webhooks,components" default:"webhooks" doc:"webhooks: a type per entry of the document's webhooks, named by its key, its data the body's data member when the body is an envelope with type and data, else the whole body. components: a type per entry of components.schemas, named by naming."`
		Naming     string     `json:"naming,omitempty" enum:"exact,dotted" default:"exact" doc:"With from=components, how a schema's name becomes a type's: exact (as written) or dotted (OrderCreated and order_created become order.created)."`
		Prefix     string     `json:"prefix,omitempty" maxLength:"128" doc:"Put before every imported type's name, e.g. 'billing.'."`
		Validation string     `json:"validation,omitempty" enum:"off,warn,enforce" default:"enforce" doc:"The validation mode of the types created; updated types keep theirs."`
	}
}

// ImportSkipped is a type the import left alone, and why.
type ImportSkipped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// ImportResultBody is the answer to POST /event-types/import.
type ImportResultBody struct {
	Created []string        `json:"created" doc:"Types created, each at version 1."`
	Updated []string        `json:"updated" doc:"Types changed: a new schema (a new version), examples or description."`
	Skipped []ImportSkipped `json:"skipped" doc:"Types not imported: unchanged, archived, without a usable example, or not valid as the catalog needs them."`
}

type importEventTypesOutput struct {
	Body ImportResultBody
}

func (s *Server) registerImport(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID:  "import-event-types",
		Method:       http.MethodPost,
		Path:         "/event-types/import",
		Summary:      "Import event types from an OpenAPI document",
		Description:  "Creates or updates a type per webhook (or per component schema) of an OpenAPI 3.x document, each checked as PUT /event-types/{name} checks it; refs to the document's components are copied into the schema's $defs. Each needs an example (the request body's example, or the schema's example or examples). Answers what was created, updated and skipped, and why. The types are stored all at once or, if one cannot be stored (archived or created while the document was checked: a 409), none is. At most 500 types and 2 MiB. Needs the write scope and a key bound to no tenant.",
		Tags:         []string{"Event types"},
		MaxBodyBytes: maxImportBytes + 1,
		Metadata:     map[string]any{operatorOnlyKey: true, bodyLimitKey: maxImportBytes},
		Errors:       []int{http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity},
	}, s.importEventTypes)
}

// importCandidate is one type a document describes.
type importCandidate struct {
	name        string
	description string
	schema      any
	example     any
}

func (s *Server) importEventTypes(ctx context.Context, in *importEventTypesInput) (*importEventTypesOutput, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(in.Body.Document))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{Location: "body.document", Message: "must be a JSON object"})
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		return nil, huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{Location: "body.document.openapi", Message: "must be an OpenAPI 3.x document"})
	}
	var candidates []importCandidate
	if in.Body.From == "components" {
		candidates = componentCandidates(doc, in.Body.Naming)
	} else {
		candidates = webhookCandidates(doc)
	}
	if len(candidates) > maxImportTypes {
		return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf("an import holds at most %d types; this document describes %d", maxImportTypes, len(candidates)))
	}
	out := &importEventTypesOutput{Body: ImportResultBody{Created: []string{}, Updated: []string{}, Skipped: []ImportSkipped{}}}
	skip := func(name, reason string) {
		out.Body.Skipped = append(out.Body.Skipped, ImportSkipped{Name: name, Reason: reason})
	}
	var puts []domain.EventType
	for _, c := range candidates {
		name := in.Body.Prefix + c.name
		if c.example == nil {
			skip(name, "no example: the request body's example, or the schema's example or examples, must give one")
			continue
		}
		schema, err := json.Marshal(inlineComponents(c.schema, doc))
		if err != nil {
			skip(name, "schema: "+err.Error())
			continue
		}
		example, err := json.Marshal(c.example)
		if err != nil {
			skip(name, "example: "+err.Error())
			continue
		}
		input := EventTypeInput{Description: c.description, Schema: JSONValue(schema), Examples: []JSONObject{JSONObject(example)}, Validation: in.Body.Validation}
		existing, err := s.store.GetEventType(ctx, name)
		switch {
		case errors.Is(err, domain.ErrNotFound):
		case err != nil:
			return nil, s.problem(ctx, err, "")
		case existing.ArchivedAt != nil:
			skip(name, "archived: its name stays reserved")
			continue
		default:
			input.Validation, input.Deprecated = string(existing.Validation), existing.Deprecated
			if existing.Description == c.description && jsonEqual(existing.Schema, schema) && len(existing.Examples) == 1 && jsonEqual(existing.Examples[0], example) {
				skip(name, "unchanged")
				continue
			}
		}
		t, err := eventTypeOf(name, input)
		if err != nil {
			skip(name, problemText(err))
			continue
		}
		puts = append(puts, t)
	}
	if len(puts) == 0 {
		return out, nil
	}
	// All or nothing: a type that cannot be stored (archived or created
	// since it was checked) leaves the catalog as it was, and the answer
	// says so, rather than a half-imported document.
	created, err := s.store.PutEventTypes(ctx, puts)
	if err != nil {
		if errors.Is(err, domain.ErrConflict) {
			return nil, huma.Error409Conflict("nothing was imported: " + err.Error() + "; the catalog changed while the document was checked, import it again")
		}
		return nil, s.problem(ctx, err, "")
	}
	for i, t := range puts {
		if created[i] {
			out.Body.Created = append(out.Body.Created, t.Name)
		} else {
			out.Body.Updated = append(out.Body.Updated, t.Name)
		}
	}
	s.refreshCatalog(ctx)
	return out, nil
}

// problemText is a problem answer's detail and errors as one line.
func problemText(err error) string {
	var m *ErrorModel
	if !errors.As(err, &m) {
		return err.Error()
	}
	parts := []string{m.Detail}
	for _, d := range m.Errors {
		parts = append(parts, d.Location+": "+d.Message)
	}
	return strings.Join(parts, "; ")
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// webhookCandidates are the types of a document's webhooks: each POST's
// JSON request body, its data member when it is an envelope.
func webhookCandidates(doc map[string]any) []importCandidate {
	hooks, _ := doc["webhooks"].(map[string]any)
	var out []importCandidate
	for _, name := range sortedKeys(hooks) {
		item, _ := hooks[name].(map[string]any)
		op, _ := item["post"].(map[string]any)
		body, _ := deref(doc, op["requestBody"]).(map[string]any)
		content, _ := body["content"].(map[string]any)
		media, _ := content["application/json"].(map[string]any)
		schema := deref(doc, media["schema"])
		example := media["example"]
		if data, ok := envelopeData(doc, schema); ok {
			schema = data
			if ex, ok := example.(map[string]any); ok {
				example = ex["data"]
			}
		}
		if example == nil {
			example = schemaExample(schema)
		}
		desc, _ := op["description"].(string)
		if desc == "" {
			desc, _ = op["summary"].(string)
		}
		out = append(out, importCandidate{name: name, description: desc, schema: schema, example: example})
	}
	return out
}

// componentCandidates are the types of a document's component schemas.
func componentCandidates(doc map[string]any, naming string) []importCandidate {
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	var out []importCandidate
	for _, key := range sortedKeys(schemas) {
		schema := schemas[key]
		name := key
		if naming == "dotted" {
			name = dotted(key)
		}
		m, _ := schema.(map[string]any)
		desc, _ := m["description"].(string)
		out = append(out, importCandidate{name: name, description: desc, schema: schema, example: schemaExample(schema)})
	}
	return out
}

// envelopeData is the data member of an envelope schema (one with type and
// data properties), resolved.
func envelopeData(doc map[string]any, schema any) (any, bool) {
	m, _ := schema.(map[string]any)
	props, _ := m["properties"].(map[string]any)
	data, hasData := props["data"]
	_, hasType := props["type"]
	if !hasData || !hasType {
		return nil, false
	}
	return deref(doc, data), true
}

// schemaExample is a schema's example or first of its examples.
func schemaExample(schema any) any {
	m, _ := schema.(map[string]any)
	if ex, ok := m["example"]; ok {
		return ex
	}
	if exs, ok := m["examples"].([]any); ok && len(exs) > 0 {
		return exs[0]
	}
	return nil
}

// deref follows a "#/..." $ref in doc, a few levels at most.
func deref(doc map[string]any, v any) any {
	for range 8 {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		ref, ok := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") {
			return v
		}
		v = pointerIn(doc, ref)
	}
	return v
}

func pointerIn(doc any, ref string) any {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[tok]
	}
	return cur
}

const componentPrefix = "#/components/schemas/"

// inlineComponents copies the components a schema refers to into its
// $defs, refs rewritten, so that the schema stands alone.
func inlineComponents(schema any, doc map[string]any) any {
	defs := map[string]any{}
	var rewrite func(v any) any
	rewrite = func(v any) any {
		switch n := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(n))
			for k, child := range n {
				if ref, ok := child.(string); ok && k == "$ref" && strings.HasPrefix(ref, componentPrefix) {
					name, rest, _ := strings.Cut(strings.TrimPrefix(ref, componentPrefix), "/")
					if _, seen := defs[name]; !seen {
						defs[name] = true // placeholder against cycles
						defs[name] = rewrite(pointerIn(doc, componentPrefix+name))
					}
					if rest != "" {
						rest = "/" + rest
					}
					out[k] = "#/$defs/" + name + rest
					continue
				}
				out[k] = rewrite(child)
			}
			return out
		case []any:
			out := make([]any, len(n))
			for i, child := range n {
				out[i] = rewrite(child)
			}
			return out
		}
		return v
	}
	out := rewrite(schema)
	m, ok := out.(map[string]any)
	if !ok || len(defs) == 0 {
		return out
	}
	own, _ := m["$defs"].(map[string]any)
	if own == nil {
		own = map[string]any{}
	}
	for k, d := range defs {
		if _, taken := own[k]; !taken {
			own[k] = d
		}
	}
	m["$defs"] = own
	// OpenAPI 3.0's nullable and example are not JSON Schema; the
	// validator ignores unknown keywords, so they stay as annotations.
	return m
}

// dotted turns a schema name into a dotted type name: OrderCreated,
// order_created and order-created become order.created.
func dotted(name string) string {
	var b strings.Builder
	for i, r := range name {
		switch {
		case r == '_' || r == '-' || r == '.':
			b.WriteByte('.')
		case unicode.IsUpper(r):
			if i > 0 && !strings.HasSuffix(b.String(), ".") {
				b.WriteByte('.')
			}
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
