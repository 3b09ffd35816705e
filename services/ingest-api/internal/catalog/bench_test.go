package catalog_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/catalog"
)

// typicalData follows orderSchema: 20 members, two nested objects.
const typicalData = `{"id":"ord_1","amount":5,"currency":"EUR","customer":{"email":"a@b"},"shipping":{"city":"Paris","zip":"75001"},` +
	`"items":[{"sku":"a"},{"sku":"b"}],"p7":"a","p8":"b","p9":"c","p10":"d","p11":1.5,"p12":2,"p13":true,"p14":false,"p15":"e","p16":"f","p17":3,"p18":4,"p19":"g","p20":"h"}`

// BenchmarkValidate times one event's data checked against a schema of
// typical size (orderSchema: 20 properties, two nested objects, a $ref).
func BenchmarkValidate(b *testing.B) {
	s, err := catalog.Compile(json.RawMessage(orderSchema))
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(typicalData)
	b.ReportAllocs()
	for b.Loop() {
		if fs := s.Validate(data, "/data"); fs != nil {
			b.Fatal(fs)
		}
	}
}

// BenchmarkValidateValue is BenchmarkValidate for data already decoded, as
// a batch's events are: the validator's own cost.
func BenchmarkValidateValue(b *testing.B) {
	s, err := catalog.Compile(json.RawMessage(orderSchema))
	if err != nil {
		b.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(typicalData))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if fs := s.ValidateValue(v, "/data"); fs != nil {
			b.Fatal(fs)
		}
	}
}
