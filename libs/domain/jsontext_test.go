package domain_test

import (
	"bytes"
	"encoding/json"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertField(t, domain.ValidateJSONText("data", []byte(tt.raw), domain.MaxJSONDepth), tt.wantField)
		})
	}
}

// FuzzValidateJSONText checks that the scanner never panics on valid JSON
// and that what it accepts is UTF-8 without NUL once decoded: text that
// PostgreSQL's jsonb takes as it is.
func FuzzValidateJSONText(f *testing.F) {
	for _, seed := range []string{`{}`, `{"a":[1,{"b":"\u0000"}]}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":"\ud83d\ude00"}`, `[[[[]]]]`, `"x"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		if domain.ValidateJSONText("data", raw, domain.MaxJSONDepth) != nil {
			return
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
	})
}
