package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// TestEventPagesShowAttemptHeaders: the operators' event page and the
// portal's show each attempt's request headers (derived from what was
// stored, never a secret) and the receiver's response headers, a cookie's
// value masked and markup a receiver sent shown as text, not run.
func TestEventPagesShowAttemptHeaders(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{})
	s.must(t, http.StatusCreated, "PUT", "/tenants/a", `{"name":"Tenant A"}`)
	s.must(t, http.StatusCreated, "POST", "/subscriptions", `{"id":"a_sub","tenant_id":"a","url":"http://127.0.0.1:9/a","event_types":["*"]}`)
	s.must(t, http.StatusAccepted, "POST", "/events", `{"id":"a_evt","type":"order.created","tenant_id":"a","data":{}}`)
	for _, q := range []string{
		`UPDATE deliveries SET status = 'failed', attempts = 2, next_attempt_at = NULL`,
		`INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, response_body, request_headers, response_headers)
			SELECT id, 1, now(), 5, 500, 'oops', E'User-Agent: Dispatch/9.9\nwebhook-timestamp: 1614265330\nwebhook-signature: v1,c2ln',
			       E'Set-Cookie: sid=********\nX-Evil: <script>alert("pwned")</script><img src=x onerror=alert(1)>' FROM deliveries
			UNION ALL SELECT id, 2, now(), 5, NULL, '', '', '' FROM deliveries`,
	} {
		if _, err := s.db.Pool.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *bundle
		path string
	}{
		{"dashboard", func(t *testing.T) *bundle {
			b := &bundle{url: s.dash, client: browserClient()}
			b.signIn(t, stackAdminKey)
			return b
		}, "/events/a_evt"},
		{"portal", func(t *testing.T) *bundle { return s.open(t, s.link(t, "a", `{}`)) }, "/portal/events/a_evt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.open(t)
			resp, err := b.client.Get(b.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", tc.path, resp.StatusCode)
			}
			html := string(raw)
			if strings.Contains(html, `<script>alert("pwned")`) || strings.Contains(html, `<img src=x`) {
				t.Error("a response header's markup reached the page unescaped")
			}
			if strings.Contains(html, "whsec_") {
				t.Error("a secret is on the page")
			}
			doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
			if err != nil {
				t.Fatal(err)
			}
			rows := testid(doc, "attempt-headers-row")
			if rows.Length() != 1 || rows.AttrOr("data-number", "") != "1" {
				t.Fatalf("%d header rows, want one, for attempt 1 (attempt 2 recorded none)", rows.Length())
			}
			header := func(list, name string) *goquery.Selection {
				return rows.Find(`[data-testid="` + list + `"] [data-testid="header"][data-name="` + name + `"] td`)
			}
			for _, want := range []struct{ list, name, value string }{
				{"request-headers", "Content-Type", "application/json"},
				{"request-headers", "User-Agent", "Dispatch/9.9"},
				{"request-headers", "X-Dispatch-Event-Type", "order.created"},
				{"request-headers", "webhook-id", "a_evt"},
				{"request-headers", "webhook-timestamp", "1614265330"},
				{"request-headers", "webhook-signature", "v1,c2ln"},
				{"response-headers", "Set-Cookie", "sid=********"},
				{"response-headers", "X-Evil", `<script>alert("pwned")</script><img src=x onerror=alert(1)>`},
			} {
				if got := header(want.list, want.name).Text(); got != want.value {
					t.Errorf("%s %s: %q, want %q", want.list, want.name, got, want.value)
				}
			}
			if header("response-headers", "Set-Cookie").Find("code.masked").Length() != 1 {
				t.Error("the masked cookie is not marked as masked")
			}
			if n := rows.Find(`[data-testid="request-headers"] [data-testid="header"]`).Length(); n != 10 {
				t.Errorf("%d request headers, want Dispatch's ten", n)
			}
		})
	}
}
