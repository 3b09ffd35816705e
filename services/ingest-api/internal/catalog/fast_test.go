package catalog_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/catalog"
)

// fastCases are each keyword's edge cases. fast is whether the fast path
// proves the data valid, lib the library's verdict; fast never without
// lib. A case with fast false and lib true is one the fast path leaves
// to the library on purpose (it cannot prove it without allocating).
var fastCases = []struct {
	name, schema, data string
	fast, lib          bool
}{
	{"integer", `{"type":"integer"}`, `1`, true, true},
	{"integer written 1.0", `{"type":"integer"}`, `1.0`, true, true},
	{"integer written -0.000", `{"type":"integer"}`, `-0.000`, true, true},
	{"not an integer", `{"type":"integer"}`, `1.5`, false, false},
	{"integer with an exponent", `{"type":"integer"}`, `1e2`, false, true},
	{"integer beyond int64", `{"type":"integer"}`, `123456789012345678901234567890`, true, true},
	{"number", `{"type":"number"}`, `1.5`, true, true},
	{"type list", `{"type":["string","null"]}`, `null`, true, true},
	{"wrong type", `{"type":"string"}`, `1`, false, false},
	{"minimum equal", `{"minimum":0}`, `0`, true, true},
	{"minimum below", `{"minimum":0}`, `-1`, false, false},
	{"minimum equal written 0.0", `{"minimum":0}`, `0.0`, false, true},
	{"minimum ignores strings", `{"minimum":0}`, `"a"`, true, true},
	{"maximum at 2^53+1", `{"maximum":9007199254740993}`, `9007199254740993`, true, true},
	{"maximum above 2^53+1", `{"maximum":9007199254740993}`, `9007199254740994`, false, false},
	{"maximum beyond int64", `{"maximum":1e30}`, `99999999999999999999999`, true, true},
	{"maximum beyond float64", `{"maximum":0}`, `1e400`, false, false},
	{"maximum decimal, same float, above", `{"maximum":0.1}`, `0.10000000000000000001`, false, false},
	{"maximum decimal, below", `{"maximum":0.1}`, `0.09`, true, true},
	{"exclusiveMinimum equal", `{"exclusiveMinimum":0}`, `0`, false, false},
	{"exclusiveMinimum above", `{"exclusiveMinimum":0}`, `1`, true, true},
	{"exclusiveMaximum below", `{"exclusiveMaximum":1.5}`, `1`, true, true},
	{"exclusiveMaximum equal", `{"exclusiveMaximum":1.5}`, `1.5`, false, false},
	{"multipleOf", `{"multipleOf":3}`, `9`, true, true},
	{"not a multipleOf", `{"multipleOf":3}`, `10`, false, false},
	{"multipleOf written 9.0", `{"multipleOf":3}`, `9.0`, false, true},
	{"multipleOf a decimal", `{"multipleOf":0.01}`, `1.23`, false, true},
	{"maxLength in code points", `{"maxLength":2}`, `"éé"`, true, true},
	{"maxLength exceeded", `{"maxLength":2}`, `"ééé"`, false, false},
	{"minLength of an emoji", `{"minLength":2}`, `"😀"`, false, false},
	{"minLength of two emoji", `{"minLength":2}`, `"😀😀"`, true, true},
	{"pattern", `{"pattern":"^a+$"}`, `"aaa"`, true, true},
	{"pattern unmatched", `{"pattern":"^a+$"}`, `"ab"`, false, false},
	{"pattern is not anchored", `{"pattern":"b"}`, `"abc"`, true, true},
	{"required", `{"required":["a","b"]}`, `{"a":1,"b":null}`, true, true},
	{"missing required", `{"required":["a","b"]}`, `{"a":1}`, false, false},
	{"required ignores arrays", `{"required":["a"]}`, `[1]`, true, true},
	{"additionalProperties false", `{"properties":{"a":{}},"additionalProperties":false}`, `{"a":1}`, true, true},
	{"additionalProperties false, extra", `{"properties":{"a":{}},"additionalProperties":false}`, `{"a":1,"b":2}`, false, false},
	{"patternProperties count as declared", `{"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false}`, `{"x-a":"s"}`, true, true},
	{"patternProperties checked", `{"patternProperties":{"^x-":{"type":"string"}}}`, `{"x-a":1}`, false, false},
	{"additionalProperties schema", `{"additionalProperties":{"type":"string"}}`, `{"a":"s"}`, true, true},
	{"additionalProperties schema, wrong", `{"additionalProperties":{"type":"string"}}`, `{"a":1}`, false, false},
	{"false property", `{"properties":{"a":false}}`, `{"a":1}`, false, false},
	{"min and maxProperties", `{"minProperties":1,"maxProperties":1}`, `{"a":1}`, true, true},
	{"maxProperties exceeded", `{"maxProperties":1}`, `{"a":1,"b":2}`, false, false},
	{"propertyNames", `{"propertyNames":{"maxLength":3}}`, `{"abc":1}`, true, true},
	{"propertyNames too long", `{"propertyNames":{"maxLength":3}}`, `{"abcd":1}`, false, false},
	{"dependentRequired", `{"dependentRequired":{"a":["b"]}}`, `{"a":1}`, false, false},
	{"dependentSchemas", `{"dependentSchemas":{"a":{"required":["b"]}}}`, `{"a":1,"b":2}`, true, true},
	{"draft-07 dependencies", `{"$schema":"http://json-schema.org/draft-07/schema#","dependencies":{"a":["b"]}}`, `{"a":1}`, false, false},
	{"enum", `{"enum":["a",1,null]}`, `"a"`, true, true},
	{"enum number", `{"enum":["a",1,null]}`, `1`, true, true},
	{"enum number written 1.0", `{"enum":["a",1,null]}`, `1.0`, false, true},
	{"not in enum", `{"enum":["a",1,null]}`, `"b"`, false, false},
	{"const object", `{"const":{"a":[1,"x"]}}`, `{"a":[1,"x"]}`, true, true},
	{"const object differs", `{"const":{"a":[1,"x"]}}`, `{"a":[1,"y"]}`, false, false},
	{"nested $ref", `{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"type":"string"}},"properties":{"x":{"$ref":"#/$defs/a"}}}`, `{"x":"s"}`, true, true},
	{"nested $ref, wrong", `{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"type":"string"}},"properties":{"x":{"$ref":"#/$defs/a"}}}`, `{"x":1}`, false, false},
	{"$ref and a sibling (2020-12)", `{"$defs":{"a":{"type":"string"}},"$ref":"#/$defs/a","maxLength":1}`, `"ab"`, false, false},
	{"$ref and a sibling (draft-07 ignores it)", `{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"a":{"type":"string"}},"properties":{"x":{"$ref":"#/definitions/a","maxLength":1}}}`, `{"x":"ab"}`, true, true},
	{"$anchor", `{"$defs":{"a":{"$anchor":"s","type":"string"}},"items":{"$ref":"#s"}}`, `["a"]`, true, true},
	{"recursive", `{"$defs":{"n":{"type":"object","properties":{"c":{"type":"array","items":{"$ref":"#/$defs/n"}}}}},"$ref":"#/$defs/n"}`, `{"c":[{"c":[{}]}]}`, true, true},
	{"recursive, deep failure", `{"$defs":{"n":{"type":"object","properties":{"c":{"type":"array","items":{"$ref":"#/$defs/n"}}}}},"$ref":"#/$defs/n"}`, `{"c":[{"c":[1]}]}`, false, false},
	{"format is an annotation in 2020-12", `{"format":"email"}`, `"nope"`, true, true},
	{"format is asserted in draft-07", `{"$schema":"http://json-schema.org/draft-07/schema#","format":"email"}`, `"nope"`, false, false},
	{"format in draft-07, valid", `{"$schema":"http://json-schema.org/draft-07/schema#","format":"email"}`, `"a@example.com"`, true, true},
	{"allOf", `{"allOf":[{"type":"string"},{"minLength":1}]}`, `"a"`, true, true},
	{"allOf, one fails", `{"allOf":[{"type":"string"},{"minLength":2}]}`, `"a"`, false, false},
	{"anyOf", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, `1`, true, true},
	{"anyOf, none", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, `true`, false, false},
	{"prefixItems and items", `{"prefixItems":[{"type":"string"}],"items":{"type":"integer"}}`, `["a",1,2]`, true, true},
	{"items false", `{"prefixItems":[{"type":"string"}],"items":false}`, `["a",1]`, false, false},
	{"draft-07 items list and additionalItems", `{"$schema":"http://json-schema.org/draft-07/schema#","items":[{"type":"string"}],"additionalItems":false}`, `["a",1]`, false, false},
	{"draft-07 items schema", `{"$schema":"http://json-schema.org/draft-07/schema#","items":{"type":"string"}}`, `["a","b"]`, true, true},
	{"minItems and maxItems", `{"minItems":1,"maxItems":2}`, `[1,2,3]`, false, false},
	{"uniqueItems", `{"uniqueItems":true}`, `["a","b",1,true,null]`, true, true},
	{"uniqueItems, duplicate", `{"uniqueItems":true}`, `["a","a"]`, false, false},
	{"uniqueItems, 1 and 1.0", `{"uniqueItems":true}`, `[1,1.0]`, false, false},
	{"uniqueItems, objects", `{"uniqueItems":true}`, `[{"a":1},{"a":2}]`, false, true},
	{"contains", `{"contains":{"type":"string"},"minContains":2}`, `["a",1,"b"]`, true, true},
	{"contains, too few", `{"contains":{"type":"string"},"minContains":2}`, `["a",1]`, false, false},
	{"minContains 0", `{"contains":{"type":"string"},"minContains":0}`, `[1]`, true, true},
	{"false schema", `false`, `1`, false, false},
	{"true schema", `true`, `1`, true, true},
}

func decode(t testing.TB, data string) any {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(data)))
	require.NoError(t, err)
	return v
}

func TestFastPath(t *testing.T) {
	t.Parallel()
	for _, tt := range fastCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := catalog.Compile(json.RawMessage(tt.schema))
			require.NoError(t, err)
			v := decode(t, tt.data)
			hasFast, fast := s.FastValid(v)
			require.True(t, hasFast, "the schema has a fast path")
			require.Equal(t, tt.lib, s.LibraryValid(v), "library")
			require.Equal(t, tt.fast, fast, "fast path")
			require.Equal(t, tt.lib, len(s.Validate([]byte(tt.data), "/data")) == 0, "Validate")
		})
	}
}

// TestNoFastPath: schemas with keywords the fast path does not prove are
// validated by the library alone.
func TestNoFastPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, schema string }{
		{"not", `{"not":{"type":"string"}}`},
		{"oneOf", `{"oneOf":[{"type":"string"},{"type":"integer"}]}`},
		{"if", `{"if":{"type":"string"},"then":{"minLength":1}}`},
		{"unevaluatedProperties", `{"properties":{"a":{}},"unevaluatedProperties":false}`},
		{"maxContains", `{"contains":{"type":"string"},"maxContains":1}`},
		{"$dynamicRef", `{"$dynamicAnchor":"n","items":{"$dynamicRef":"#n"}}`},
		{"nested", `{"properties":{"a":{"items":{"not":{}}}}}`},
		{"a $ref cycle on one value", `{"$defs":{"a":{"allOf":[{"$ref":"#"}]}},"$ref":"#/$defs/a"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := catalog.Compile(json.RawMessage(tt.schema))
			require.NoError(t, err)
			hasFast, _ := s.FastValid(decode(t, `"a"`))
			require.False(t, hasFast)
		})
	}
}

// TestFastPathAllocates: valid data of typical size is accepted without
// an allocation, where the library allocates about 129 times.
func TestFastPathAllocates(t *testing.T) {
	s, err := catalog.Compile(json.RawMessage(orderSchema))
	require.NoError(t, err)
	v := decode(t, typicalData)
	require.Zero(t, testing.AllocsPerRun(100, func() {
		if s.ValidateValue(v, "/data") != nil {
			t.Fatal("typical data refused")
		}
	}))
}

// FuzzFastPath is the fast path's differential test: for any schema that
// compiles and any data, the fast path proves the data valid only if the
// library finds it valid.
func FuzzFastPath(f *testing.F) {
	for _, tt := range fastCases {
		f.Add(tt.schema, tt.data)
	}
	f.Add(orderSchema, typicalData)
	f.Add(orderSchema, `{"id":"ord_1","amount":5.0,"currency":"EUR","customer":{"email":"a@b","x":[1,{}]},"shipping":{"zip":"ééééééééééé"}}`)
	f.Add(orderSchema, `{"id":"ord_","amount":-0,"currency":"USD","customer":{"email":""},"items":[{"sku":"a"},{}],"p11":1e308,"p17":1e2}`)
	for _, et := range api.ExampleCatalog {
		for _, ex := range et.Examples {
			f.Add(string(et.Schema), string(ex))
		}
	}
	f.Fuzz(func(t *testing.T, schema, data string) {
		s, err := catalog.Compile(json.RawMessage(schema))
		if err != nil {
			return
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(data)))
		if err != nil {
			return
		}
		if _, fast := s.FastValid(v); fast && !s.LibraryValid(v) {
			t.Fatalf("the fast path accepts what the library refuses: schema %s, data %s", schema, data)
		}
	})
}
