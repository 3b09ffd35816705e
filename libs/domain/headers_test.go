package domain_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

func TestResponseHeaderExcerpt(t *testing.T) {
	t.Parallel()
	many := http.Header{}
	for i := range 100 {
		many.Set("X-Header-"+strconv.Itoa(100+i), "v")
	}
	big := http.Header{}
	for i := range 10 {
		big.Set("X-Big-"+strconv.Itoa(i), strings.Repeat("é", 2000))
	}
	for _, tc := range []struct {
		name string
		h    http.Header
		want string
	}{
		{"none", nil, ""},
		{"sorted by name, one line per value", http.Header{"X-B": {"2"}, "Content-Type": {"text/plain"}, "X-A": {"1", "one more"}},
			"Content-Type: text/plain\nX-A: 1\nX-A: one more\nX-B: 2"},
		{"set-cookie keeps the cookie's name only", http.Header{"Set-Cookie": {"session=s3cr3t; Path=/; HttpOnly", "bare"}},
			"Set-Cookie: session=********\nSet-Cookie: bare=********"},
		{"control characters and bytes that are not UTF-8", http.Header{"X-Odd": {"a\x00b\rc\x7f\xff"}},
			"X-Odd: a b c \uFFFD"},
		{"HTML is kept as text", http.Header{"X-Html": {`<script>alert("x")</script>`}},
			`X-Html: <script>alert("x")</script>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := domain.ResponseHeaderExcerpt(tc.h); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("at most 32 lines", func(t *testing.T) {
		t.Parallel()
		got := domain.ResponseHeaderExcerpt(many)
		lines := strings.Split(got, "\n")
		if len(lines) != domain.MaxResponseHeaders || lines[0] != "X-Header-100: v" || lines[31] != "X-Header-131: v" {
			t.Errorf("%d lines, first %q, last %q: want the first 32 by name", len(lines), lines[0], lines[len(lines)-1])
		}
	})
	t.Run("at most 4 KiB, values cut on a rune boundary", func(t *testing.T) {
		t.Parallel()
		got := domain.ResponseHeaderExcerpt(big)
		if len(got) > domain.MaxResponseHeaderBytes || !utf8.ValidString(got) {
			t.Fatalf("%d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
		}
		lines := strings.Split(got, "\n")
		if len(lines) != 3 || !strings.HasSuffix(lines[0], "é…") || len(lines[0]) > len("X-Big-0: ")+1024 {
			t.Errorf("%d lines, the first %d bytes: want three values of at most 1 KiB, cut with an ellipsis", len(lines), len(lines[0]))
		}
	})
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	a := domain.Attempt{EventID: "evt_1", EventType: "order.created", SubscriptionID: "sub_1",
		RequestHeaders: "User-Agent: Dispatch/1.2.3\nwebhook-timestamp: 1614265330\nwebhook-signature: v1,abc v1,def\ntraceparent: 00-1-2-01"}
	got := domain.RequestHeaders(a, domain.Header{Name: "Authorization", Value: domain.MaskedValue, Masked: true})
	want := []domain.Header{
		{Name: "Authorization", Value: domain.MaskedValue, Masked: true},
		{Name: "Content-Type", Value: "application/json"},
		{Name: "User-Agent", Value: "Dispatch/1.2.3"},
		{Name: "X-Dispatch-Event-ID", Value: "evt_1"},
		{Name: "X-Dispatch-Event-Type", Value: "order.created"},
		{Name: "X-Dispatch-Subscription-ID", Value: "sub_1"},
		{Name: "X-Dispatch-Timestamp", Value: "1614265330"},
		{Name: "X-Dispatch-Signature", Value: "v1,abc v1,def"},
		{Name: "webhook-id", Value: "evt_1"},
		{Name: "webhook-timestamp", Value: "1614265330"},
		{Name: "webhook-signature", Value: "v1,abc v1,def"},
		{Name: "traceparent", Value: "00-1-2-01"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("header %d: got %v, want %v", i, got[i], want[i])
		}
	}
	a.RequestHeaders = ""
	if got := domain.RequestHeaders(a); got != nil {
		t.Errorf("an attempt that stored no request headers shows %v, want none", got)
	}
}

// BenchmarkResponseHeaderExcerpt renders a typical receiver's answer:
// eight headers, one of them a cookie.
func BenchmarkResponseHeaderExcerpt(b *testing.B) {
	h := http.Header{
		"Content-Type": {"application/json; charset=utf-8"}, "Content-Length": {"27"}, "Date": {"Mon, 07 Dec 2026 06:21:56 GMT"},
		"Server": {"nginx/1.27.1"}, "X-Request-Id": {"8f14e45fceea167a5a36dedd4bea2543"}, "Cache-Control": {"no-store"},
		"Strict-Transport-Security": {"max-age=63072000"}, "Set-Cookie": {"session=abc123; Path=/; HttpOnly; Secure"},
	}
	b.ReportAllocs()
	for b.Loop() {
		domain.ResponseHeaderExcerpt(h)
	}
}
