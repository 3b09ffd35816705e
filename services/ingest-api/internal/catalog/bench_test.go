package catalog_test

import (
	"encoding/json"
	"testing"

	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/catalog"
)

// BenchmarkValidate times one event's data checked against a schema of
// typical size (orderSchema: 20 properties, two nested objects, a $ref).
func BenchmarkValidate(b *testing.B) {
	s, err := catalog.Compile(json.RawMessage(orderSchema))
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"id":"ord_1","amount":5,"currency":"EUR","customer":{"email":"a@b"},"shipping":{"city":"Paris","zip":"75001"},` +
		`"items":[{"sku":"a"},{"sku":"b"}],"p7":"a","p8":"b","p9":"c","p10":"d","p11":1.5,"p12":2,"p13":true,"p14":false,"p15":"e","p16":"f","p17":3,"p18":4,"p19":"g","p20":"h"}`)
	b.ReportAllocs()
	for b.Loop() {
		if fs := s.Validate(data, "/data"); fs != nil {
			b.Fatal(fs)
		}
	}
}
