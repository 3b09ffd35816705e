package domain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

func TestValidateJSONText(t *testing.T) {
	t.Parallel()
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	tests := []struct {
		name, raw string
		wantField string
	}{
		{"plain", `{"a":1,"b":[true,null,"x"]}`, ""},
		{"escapes", `{"q":"\"\\\/\b\f\n\r\t\u00e9"}`, ""},
		{"surrogate pair", `{"emoji":"\ud83d\ude00"}`, ""},
		{"non-ASCII", `{"clé":"värde"}`, ""},
		{"max depth", deep(domain.MaxJSONDepth), ""},
		{"too deep", deep(domain.MaxJSONDepth + 1), "data"},
		{"too deep in arrays", `{"a":` + strings.Repeat("[", domain.MaxJSONDepth) + strings.Repeat("]", domain.MaxJSONDepth) + "}", "data"},
		{"NUL escape", `{"a":{"b":"x\u0000y"}}`, "data.a.b"},
		{"NUL escape in array", `{"a":[1,2,"\u0000"]}`, "data.a[2]"},
		{"NUL escape in a name", `{"a":{"\u0000":1}}`, "data.a"},
		{"lone high surrogate", `{"a":"\ud800"}`, "data.a"},
		{"high surrogate then text", `{"a":"\ud800x"}`, "data.a"},
		{"high surrogate then high", `{"a":"\ud800\ud800"}`, "data.a"},
		{"lone low surrogate", `{"a":"\udc00"}`, "data.a"},
		{"surrogate in a name", `{"\ud800":1}`, "data"},
		{"invalid UTF-8", "{\"a\":\"\xc3\x28\"}", "data.a"},
		{"invalid UTF-8 in a name", "{\"\xff\":1}", "data"},
		{"escaped backslash before u", `{"a":"\\u0000"}`, ""},
		{"path after a sibling", `{"a":1,"b":{"c":[{},{"d":"\u0000"}]}}`, "data.b.c[1].d"},
		{"long name shortened", `{"` + strings.Repeat("k", 100) + `":"\u0000"}`, "data." + strings.Repeat("k", 64) + "…"},
		{"numbers", `{"a":-12.5e-3,"b":6.02E+23,"c":1e100,"d":[0,1e-100,true,false]}`, ""},
		{"exponent too large", `{"a":{"b":1e101}}`, "data.a.b"},
		{"exponent too small", `{"a":[1,2E-131000]}`, "data.a[1]"},
		{"exponent past int", `{"a":1e99999999999999999999999}`, "data.a"},
		{"number too long", `{"a":0.` + strings.Repeat("1", domain.MaxJSONNumberLength) + `}`, "data.a"},
		{"longest number", `{"a":` + strings.Repeat("9", domain.MaxJSONNumberLength) + `}`, ""},
		{"repeated name", `{"id":"a","id":"b"}`, "data.id"},
		{"repeated name, an escape spelling it", `{"a":1,"\u0061":2}`, "data.a"},
		{"repeated name, both escaped", `{"\u0061b":1,"a\u0062":2}`, "data.ab"},
		{"repeated name with a quote", `{"a\"b":1,"a\u0022b":2}`, `data.a"b`},
		{"repeated non-ASCII name", `{"é":1,"\u00e9":2}`, "data.é"},
		{"repeated name by a surrogate pair", `{"😀":1,"\ud83d\ude00":2}`, "data.😀"},
		{"repeated name after a nested object", `{"a":{"b":1},"a":2}`, "data.a"},
		{"repeated name in an array's object", `{"items":[{"name":1},{"name":2},{"x":0,"name":3,"name":4}]}`, "data.items[2].name"},
		{"repeated name deep down", `{"a":[[{"b":{"c":1,"d":2,"c":3}}]]}`, "data.a[0][0].b.c"},
		{"repeated name in many members", many(0, 40, `,"k0":1`), "data.k0"},
		{"repeated name in many members, escaped", many(0, 40, `,"\u006b39":1`), "data.k39"},
		{"repeated name after many members' object", `{"a":` + many(0, 40, "") + `,"a":1}`, "data.a"},
		{"repeated name around a nested object", many(0, 40, `,"z":{"k0":1,"k1":2},"k1":3`), "data.k1"},
		{"repeated name in a nested object, few outside", `{"k0":1,"z":` + many(0, 40, `,"k7":3`) + `}`, "data.z.k7"},
		{"names once each", `{"a":1,"A":2,"a ":3,"\u0041 ":4,"b":{"a":1},"c":[{"a":1},{"a":2}]}`, ""},
		{"names once each in many members", many(0, 40, `,"z":{"k0":1},"y":`+many(0, 40, "")), ""},
		{"escapes told apart, \\/ and / the same", `{"a\n":1,"a\\n":2,"a\/":3,"a/":4}`, "data.a/"},
		{"the same name in sibling objects", `{"a":{"x":1},"b":{"x":1},"c":[{"x":1}]}`, ""},
		{"repeated name past values that look like names", many(0, 40, `,"s":"}],{\"k0\":","w":["k3",{"k3":1}],"k3":1`), "data.k3"},
		{"names only in values and nested objects", many(0, 40, `,"s":"\"k40\":","w":["k40",{"k40":1}],"k40":1`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertField(t, domain.ValidateJSONText("data", []byte(tt.raw), domain.MaxJSONDepth), tt.wantField)
		})
	}
}

// many is an object of the members "k<from>" to "k<to-1>", then more.
func many(from, to int, more string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := from; i < to; i++ {
		if i > from {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	return b.String() + more + "}"
}

// repeatsName reports whether an object in the JSON text raw names a
// member twice, as Go's decoder reads the names.
func repeatsName(raw []byte) bool {
	type frame struct {
		names   map[string]bool // nil in an array
		wantKey bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{names: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if name, ok := tok.(string); ok && len(stack) > 0 && stack[len(stack)-1].wantKey {
				top := stack[len(stack)-1]
				if top.names[name] {
					return true
				}
				top.names[name], top.wantKey = true, false
				continue
			}
		}
		// A value ended: in an object, a name comes next.
		if len(stack) > 0 && stack[len(stack)-1].names != nil {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// FuzzValidateJSONText checks that the scanner never panics on valid JSON,
// that what it accepts is UTF-8 without NUL once decoded (text that
// PostgreSQL's jsonb takes as it is) and names no member twice, and that
// it refuses a repeated name only where Go's decoder sees one.
func FuzzValidateJSONText(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a":[1,{"b":"\u0000"}]}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":"\ud83d\ude00"}`, `[[[[]]]]`, `"x"`,
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"b":1},"b":{"a":1}}`, `[{"a":1},{"a":1,"b":[{"c":1,"c":2}]}]`,
		many(0, 20, `,"k3":0`), many(0, 20, `,"x":"\"k3\"","y":{"k3":1}`),
		`{"a":1e100,"b":[1E-101]}`, `[-0.5e+7,true,false,null]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		if err := domain.ValidateJSONText("data", raw, domain.MaxJSONDepth); err != nil {
			var ve *domain.ValidationError
			if errors.As(err, &ve) && ve.Reason == domain.RepeatedMember && !repeatsName(raw) {
				t.Fatalf("refused a repeated name where there is none (%v): %q", err, raw)
			}
			return
		}
		if repeatsName(raw) {
			t.Fatalf("accepted a repeated member name: %q", raw)
		}
		if !utf8.Valid(raw) {
			t.Fatalf("accepted text that is not UTF-8: %q", raw)
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // 1E700 is valid JSON, and jsonb keeps it
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("accepted text Go cannot decode: %v", err)
		}
		if b, _ := json.Marshal(v); strings.Contains(string(b), `\u0000`) {
			t.Fatalf("accepted a NUL: %q", raw)
		}
		if n, ok := unboundedNumber(v); ok {
			t.Fatalf("accepted the number %s: %q", n, raw)
		}
	})
}

// unboundedNumber finds a number in v, decoded with UseNumber, that is
// longer than domain.MaxJSONNumberLength or has an exponent beyond
// domain.MaxJSONExponent.
func unboundedNumber(v any) (json.Number, bool) {
	switch v := v.(type) {
	case json.Number:
		if len(v) > domain.MaxJSONNumberLength {
			return v, true
		}
		if at := strings.IndexAny(string(v), "eE"); at >= 0 {
			exp, err := strconv.Atoi(strings.TrimLeft(string(v[at+1:]), "+-"))
			if err != nil || exp > domain.MaxJSONExponent {
				return v, true
			}
		}
	case []any:
		for _, e := range v {
			if n, ok := unboundedNumber(e); ok {
				return n, true
			}
		}
	case map[string]any:
		for _, e := range v {
			if n, ok := unboundedNumber(e); ok {
				return n, true
			}
		}
	}
	return "", false
}

// BenchmarkValidateJSONText measures the scan every request body gets: a
// typical event, and a body of the largest size that is one object of
// small members (the most names to keep apart).
func BenchmarkValidateJSONText(b *testing.B) {
	event := []byte(`{"id":"evt_01J9Z3K4Q8","type":"order.created","source":"shop","data":{"order_id":12345,` +
		`"customer":{"id":"cus_42","name":"Zoë Example","email":"zoe@example.com","tags":["vip","eu"]},` +
		`"items":[{"sku":"A-1","name":"Widget","qty":2,"price":9.99},{"sku":"B-2","name":"Gadget \u00e9","qty":1,"price":24.5}],` +
		`"total":44.48,"currency":"EUR","paid":true,"notes":null}}`)
	var big strings.Builder
	big.WriteString(`{"id":"evt_big","type":"t","data":{`)
	for i := 0; big.Len() < domain.MaxRequestBodySize-32; i++ {
		if i > 0 {
			big.WriteByte(',')
		}
		fmt.Fprintf(&big, `"m%d":%d`, i, i)
	}
	big.WriteString("}}")
	for _, bb := range []struct {
		name string
		raw  []byte
	}{{"event", event}, {"many members", []byte(big.String())}} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if err := domain.ValidateJSONText("body", bb.raw, 10000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
