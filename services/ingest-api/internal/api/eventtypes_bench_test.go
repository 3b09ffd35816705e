package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// benchSchema is an event type's schema of typical size: 20 properties,
// two of them nested objects, a $ref, a pattern and an enum.
const benchSchema = `{
	"type": "object",
	"required": ["order_id", "total", "currency", "customer"],
	"properties": {
		"order_id": {"type": "integer", "minimum": 1},
		"total": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"},
		"currency": {"enum": ["EUR", "USD", "GBP"]},
		"customer": {"$ref": "#/$defs/customer"},
		"shipping": {"type": "object", "required": ["city"], "properties": {"street": {"type": "string"}, "city": {"type": "string"}, "zip": {"type": "string", "maxLength": 10}, "country": {"type": "string", "minLength": 2, "maxLength": 2}}},
		"p6": {"type": "string"}, "p7": {"type": "string"}, "p8": {"type": "string"}, "p9": {"type": "string"}, "p10": {"type": "string"},
		"p11": {"type": "number"}, "p12": {"type": "number"}, "p13": {"type": "boolean"}, "p14": {"type": "boolean"}, "p15": {"type": "integer"},
		"p16": {"type": "integer"}, "p17": {"type": "string", "format": "date-time"}, "p18": {"type": "string"}, "p19": {"type": "array", "items": {"type": "string"}}, "p20": {"type": "string"}
	},
	"$defs": {"customer": {"type": "object", "required": ["id", "email"], "properties": {"id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"}}}}
}`

// benchData is data that follows benchSchema.
const benchData = `{"order_id":42,"total":"12.50","currency":"EUR","customer":{"id":"cus_1","email":"a@example.com","name":"Ada"},` +
	`"shipping":{"street":"1 Main St","city":"Paris","zip":"75001","country":"FR"},"p6":"a","p7":"b","p8":"c","p9":"d","p10":"e",` +
	`"p11":1.5,"p12":2,"p13":true,"p14":false,"p15":3,"p16":4,"p17":"2026-01-01T00:00:00Z","p18":"f","p19":["x","y"],"p20":"g"}`

// catalogModes are the two sides of the schema benchmarks: the same
// events, with order.created not in the catalog, and in it with benchSchema
// enforced.
var catalogModes = []string{"none", "enforced"}

func putBenchType(b *testing.B, post func(*http.Client, string, string) (*http.Response, error)) {
	body, _ := json.Marshal(map[string]any{"schema": json.RawMessage(benchSchema), "examples": []json.RawMessage{json.RawMessage(benchData)}, "validation": "enforce"})
	resp, err := post(http.DefaultClient, "PUT /event-types/order.created", string(body))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("PUT /event-types/order.created: %d", resp.StatusCode)
	}
}

// BenchmarkCreateEventSchema is BenchmarkCreateEvent with a payload of
// typical size (benchData), its type first not in the catalog, then
// enforced with benchSchema: what validation costs single posts.
func BenchmarkCreateEventSchema(b *testing.B) {
	for _, mode := range catalogModes {
		b.Run(mode, func(b *testing.B) {
			post := benchAPI(b)
			if mode == "enforced" {
				putBenchType(b, post)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var seq atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := fmt.Sprintf(`{"id":"evt_%d","type":"order.created","source":"bench","data":%s}`, seq.Add(1), benchData)
					resp, err := post(client, "/events", body)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkCreateEventsBatchSchema is BenchmarkCreateEventSchema through
// POST /events/batch, 100 events per batch from 8 concurrent clients.
func BenchmarkCreateEventsBatchSchema(b *testing.B) {
	const size = 100
	for _, mode := range catalogModes {
		b.Run(mode, func(b *testing.B) {
			post := benchAPI(b)
			if mode == "enforced" {
				putBenchType(b, post)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var seq atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var body strings.Builder
				for pb.Next() {
					body.Reset()
					body.WriteString(`{"events":[`)
					for i := range size {
						if i > 0 {
							body.WriteByte(',')
						}
						fmt.Fprintf(&body, `{"id":"evt_%d","type":"order.created","source":"bench","data":%s}`, seq.Add(1), benchData)
					}
					body.WriteString(`]}`)
					resp, err := post(client, "/events/batch", body.String())
					if err != nil {
						b.Error(err)
						return
					}
					var res struct{ Stored int }
					err = json.NewDecoder(resp.Body).Decode(&res)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK || res.Stored != size {
						b.Errorf("status %d, %d of %d stored (%v)", resp.StatusCode, res.Stored, size, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
