package catalog_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/catalog"
)

// orderSchema is a typical schema: 20 properties, two nested objects, a
// $ref inside the schema.
const orderSchema = `{
	"type": "object",
	"required": ["id", "amount", "currency", "customer"],
	"properties": {
		"id": {"type": "string", "pattern": "^ord_[a-z0-9]+$"},
		"amount": {"type": "integer", "minimum": 0},
		"currency": {"enum": ["EUR", "USD"]},
		"customer": {"$ref": "#/$defs/customer"},
		"shipping": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string", "maxLength": 10}}},
		"items": {"type": "array", "items": {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}}}},
		"p7": {"type": "string"}, "p8": {"type": "string"}, "p9": {"type": "string"}, "p10": {"type": "string"},
		"p11": {"type": "number"}, "p12": {"type": "number"}, "p13": {"type": "boolean"}, "p14": {"type": "boolean"},
		"p15": {"type": "string"}, "p16": {"type": "string"}, "p17": {"type": "integer"}, "p18": {"type": "integer"},
		"p19": {"type": "string"}, "p20": {"type": "string"}
	},
	"$defs": {"customer": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}}
}`

func TestValidate(t *testing.T) {
	t.Parallel()
	s, err := catalog.Compile(json.RawMessage(orderSchema))
	require.NoError(t, err)
	deep := `{"id":"ord_1","amount":1,"currency":"EUR","customer":{"email":"a"},"items":[` + strings.Repeat(`{"sku":"x"},`, 2000) + `{"sku":"y"}]}`
	tests := []struct {
		name string
		data string
		want []catalog.Failure
	}{
		{"valid", `{"id":"ord_1","amount":5,"currency":"EUR","customer":{"email":"a@b"}}`, nil},
		{"large valid", deep, nil},
		{"wrong type", `{"id":"ord_1","amount":"5","currency":"EUR","customer":{"email":"a"}}`,
			[]catalog.Failure{{"/data/amount", "got string, want integer"}}},
		{"missing required", `{"id":"ord_1","amount":5,"currency":"EUR"}`,
			[]catalog.Failure{{"/data", "missing property 'customer'"}}},
		{"pattern", `{"id":"x","amount":5,"currency":"EUR","customer":{"email":"a"}}`,
			[]catalog.Failure{{"/data/id", "'x' does not match pattern '^ord_[a-z0-9]+$'"}}},
		{"enum", `{"id":"ord_1","amount":5,"currency":"GBP","customer":{"email":"a"}}`,
			[]catalog.Failure{{"/data/currency", "value must be one of 'EUR', 'USD'"}}},
		{"minimum", `{"id":"ord_1","amount":-1,"currency":"EUR","customer":{"email":"a"}}`,
			[]catalog.Failure{{"/data/amount", "minimum: got -1, want 0"}}},
		{"through $ref", `{"id":"ord_1","amount":1,"currency":"EUR","customer":{}}`,
			[]catalog.Failure{{"/data/customer", "missing property 'email'"}}},
		{"deep in an array", `{"id":"ord_1","amount":1,"currency":"EUR","customer":{"email":"a"},"items":[{"sku":"a"},{"sku":1}]}`,
			[]catalog.Failure{{"/data/items/1/sku", "got number, want string"}}},
		{"maxLength nested", `{"id":"ord_1","amount":1,"currency":"EUR","customer":{"email":"a"},"shipping":{"zip":"12345678901"}}`,
			[]catalog.Failure{{"/data/shipping/zip", "maxLength: got 11, want 10"}}},
		{"pointer escaping", `{"id":"ord_1","amount":1,"currency":"EUR","customer":{"email":"a"},"items":[{"sku":"a/b~c","x":1},{}]}`,
			[]catalog.Failure{{"/data/items/1", "missing property 'sku'"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, s.Validate([]byte(tt.data), "/data"))
		})
	}
}

func TestValidateCapsFailures(t *testing.T) {
	t.Parallel()
	s, err := catalog.Compile(json.RawMessage(`{"type":"object","additionalProperties":{"type":"integer"}}`))
	require.NoError(t, err)
	var b strings.Builder
	b.WriteString("{")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":"s"`, i)
	}
	b.WriteString("}")
	fs := s.Validate([]byte(b.String()), "/data")
	require.Len(t, fs, catalog.MaxFailures)
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	nested := strings.Repeat(`{"properties":{"a":`, 40) + `{}` + strings.Repeat(`}}`, 40)
	var doubling strings.Builder
	doubling.WriteString(`{"$ref":"#/$defs/d0","$defs":{`)
	for i := range 20 {
		fmt.Fprintf(&doubling, `"d%d":{"anyOf":[{"$ref":"#/$defs/d%d"},{"$ref":"#/$defs/d%d"}]},`, i, i+1, i+1)
	}
	doubling.WriteString(`"d20":{"type":"string"}}}`)
	tests := []struct {
		name, schema, field, reason string
	}{
		{"not a schema", `{"type": 5}`, "schema.type", "is not a valid JSON Schema"},
		{"not an object", `[1]`, "schema", "must be a JSON object or boolean"},
		{"remote ref", `{"$ref": "https://example.com/s.json"}`, "schema.$ref", "would make the API fetch a document"},
		{"file ref", `{"properties": {"a": {"$ref": "file:///etc/passwd"}}}`, "schema.properties.a.$ref", "would make the API fetch a document"},
		{"relative ref", `{"$ref": "other.json#/x"}`, "schema.$ref", "must point inside the schema"},
		{"dangling ref", `{"$ref": "#/$defs/nope"}`, "schema.$ref", "points at nothing"},
		{"unknown meta-schema", `{"$schema": "https://example.com/meta"}`, "schema.$schema", "must be"},
		{"$id", `{"$id": "https://example.com/x"}`, "schema.$id", "not allowed"},
		{"invalid regex", `{"pattern": "(a"}`, "schema.pattern", "is not a valid JSON Schema"},
		{"lookahead (not RE2)", `{"pattern": "(?=a)"}`, "schema.pattern", "is not a valid JSON Schema"},
		{"exponential $refs", doubling.String(), "schema", "expands to more than"},
		{"too deep", nested, "schema", "nest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := domain.ValidateEventType(domain.EventType{Name: "x", Schema: json.RawMessage(tt.schema), Examples: []json.RawMessage{json.RawMessage(`{}`)}, Validation: domain.ValidationEnforce})
			if err == nil {
				_, err = catalog.Compile(json.RawMessage(tt.schema))
			}
			var ve *domain.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tt.field, ve.Field)
			require.Contains(t, ve.Reason, tt.reason)
		})
	}
}

// TestCatastrophicPatternIsLinear checks that a pattern that backtracks
// exponentially in engines with backtracking is accepted and answers: Go's
// regexp (RE2) runs in time linear in the input.
func TestCatastrophicPatternIsLinear(t *testing.T) {
	t.Parallel()
	s, err := catalog.Compile(json.RawMessage(`{"properties":{"s":{"type":"string","pattern":"^(a+)+$"}}}`))
	require.NoError(t, err)
	fs := s.Validate([]byte(`{"s":"`+strings.Repeat("a", 50_000)+`!"}`), "/data")
	require.Len(t, fs, 1)
	require.Equal(t, "/data/s", fs[0].Pointer)
}

func TestDraft07(t *testing.T) {
	t.Parallel()
	s, err := catalog.Compile(json.RawMessage(`{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"n":{"type":"integer"}},"properties":{"n":{"$ref":"#/definitions/n"}}}`))
	require.NoError(t, err)
	require.Empty(t, s.Validate([]byte(`{"n":1}`), "/data"))
	require.Equal(t, []catalog.Failure{{"/data/n", "got string, want integer"}}, s.Validate([]byte(`{"n":"1"}`), "/data"))
}

func TestRecursiveSchemaCompiles(t *testing.T) {
	t.Parallel()
	s, err := catalog.Compile(json.RawMessage(`{"$defs":{"node":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}`))
	require.NoError(t, err)
	require.Empty(t, s.Validate([]byte(`{"children":[{"children":[{}]}]}`), "/data"))
	require.Len(t, s.Validate([]byte(`{"children":[{"children":[1]}]}`), "/data"), 1)
}

// TestLargeSchemaCompiles: a schema near the size limit, of many plain
// properties, stays within the expansion bound.
func TestLargeSchemaCompiles(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"type":"object","properties":{`)
	for i := range 1400 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"p%d":{"type":"string","maxLength":10}`, i)
	}
	b.WriteString(`}}`)
	require.Less(t, b.Len(), domain.MaxSchemaBytes)
	require.Greater(t, b.Len(), domain.MaxSchemaBytes*3/4)
	s, err := catalog.Compile(json.RawMessage(b.String()))
	require.NoError(t, err)
	require.Len(t, s.Validate([]byte(`{"p7":1}`), "/data"), 1)
}
