package domain_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

func TestValidateHeaders(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for i := range domain.MaxCustomHeaders + 1 {
		many[fmt.Sprintf("X-H%d", i)] = "v"
	}
	tests := []struct {
		name      string
		headers   map[string]string
		wantField string
	}{
		{"none", nil, ""},
		{"api key", map[string]string{"X-Api-Key": "k3y", "Authorization": "Basic dTpw"}, ""},
		{"tab inside value", map[string]string{"X-A": "a\tb"}, ""},
		{"non-ASCII value", map[string]string{"X-A": "clé"}, ""},
		{"empty value", map[string]string{"X-A": ""}, ""},
		{"too many", many, "headers"},
		{"name with CR LF", map[string]string{"X-A\r\nX-B": "v"}, "headers"},
		{"name with NUL", map[string]string{"X-A\x00": "v"}, "headers"},
		{"name with space", map[string]string{"X A": "v"}, "headers"},
		{"empty name", map[string]string{"": "v"}, "headers"},
		{"long name", map[string]string{strings.Repeat("a", domain.MaxCustomHeaderName+1): "v"}, "headers"},
		{"value with CR LF", map[string]string{"X-A": "v\r\nX-B: 1"}, "headers.X-A"},
		{"value with NUL", map[string]string{"X-A": "v\x00"}, "headers.X-A"},
		{"value of 1 MB", map[string]string{"X-A": strings.Repeat("v", 1<<20)}, "headers.X-A"},
		{"value at the bound", map[string]string{"X-A": strings.Repeat("v", domain.MaxCustomHeaderValue)}, ""},
		{"value padded", map[string]string{"X-A": " v"}, "headers.X-A"},
		{"value not UTF-8", map[string]string{"X-A": "\xff"}, "headers.X-A"},
		{"host", map[string]string{"host": "evil.example"}, "headers.host"},
		{"content length", map[string]string{"Content-Length": "1"}, "headers.Content-Length"},
		{"transfer encoding", map[string]string{"Transfer-Encoding": "chunked"}, "headers.Transfer-Encoding"},
		{"connection", map[string]string{"Connection": "close"}, "headers.Connection"},
		{"webhook signature", map[string]string{"webhook-signature": "v1,x"}, "headers.webhook-signature"},
		{"future webhook header", map[string]string{"Webhook-Other": "x"}, "headers.Webhook-Other"},
		{"dispatch header", map[string]string{"X-Dispatch-Event-ID": "x"}, "headers.X-Dispatch-Event-ID"},
		{"content type", map[string]string{"content-type": "text/plain"}, "headers.content-type"},
		{"user agent", map[string]string{"User-Agent": "x"}, "headers.User-Agent"},
		{"same name twice", map[string]string{"X-Key": "a", "x-key": "b"}, "headers.x-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := domain.ValidateHeaders(tt.headers)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.wantField {
				t.Fatalf("want a validation error on %q, got %v", tt.wantField, err)
			}
			if strings.ContainsAny(ve.Reason, "\r\n\x00") {
				t.Fatalf("reason %q carries raw control characters", ve.Reason)
			}
		})
	}
}
