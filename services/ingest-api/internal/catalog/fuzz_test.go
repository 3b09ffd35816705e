package catalog_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/catalog"
)

// FuzzValidate feeds the validator's entry points: any schema text either
// compiles or is refused with a validation error, and any data checked
// against a compiled schema answers at most MaxFailures failures, each a
// JSON pointer under the prefix, without panicking.
func FuzzValidate(f *testing.F) {
	f.Add(`{"required":["id"],"properties":{"id":{"type":"string"},"n":{"$ref":"#/$defs/n"}},"$defs":{"n":{"minimum":0}}}`, `{"id":"a","n":-1}`)
	f.Add(`{"type":"object","additionalProperties":{"type":"integer"}}`, `{"a":"b","c":[1,{"d":null}]}`)
	f.Add(`{"$defs":{"n":{"items":{"$ref":"#/$defs/n"}}},"$ref":"#/$defs/n"}`, `[[[[[]]]]]`)
	f.Add(`{"properties":{"a~b/c":{"type":"string","pattern":"^(a+)+$"}}}`, `{"a~b/c":"aaaa!"}`)
	f.Fuzz(func(t *testing.T, schema, data string) {
		s, err := catalog.Compile(json.RawMessage(schema))
		if err != nil {
			return
		}
		fs := s.Validate([]byte(data), "/data")
		if len(fs) > catalog.MaxFailures {
			t.Fatalf("%d failures, more than %d", len(fs), catalog.MaxFailures)
		}
		for _, f := range fs {
			if !strings.HasPrefix(f.Pointer, "/data") || f.Message == "" {
				t.Fatalf("failure %+v is not at a pointer under /data with a message", f)
			}
		}
	})
}
