package server

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCustomHeadersForm pins the custom headers on the subscription page
// (beside them, the client certificate's expiry):
// names shown with masked values, the form that replaces or removes them
// sending the set to the API, and refusals shown next to the field
// without any value typed written back into the page.
func TestCustomHeadersForm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	_, page := b.get(t, "/subscriptions/orders")
	if got := testid(page, "custom-header").Text(); got != "X-Api-Key: ********" {
		t.Fatalf("custom header shown as %q", got)
	}
	if !strings.HasPrefix(testid(page, "client-certificate").Text(), "expires") || testid(page, "expires-soon").Length() != 1 {
		t.Errorf("client certificate shown as %q", testid(page, "client-certificate").Text())
	}
	if testid(page, "headers-form").Length() != 1 || testid(page, "headers-remove").Length() != 1 {
		t.Fatal("no headers form with a remove button")
	}
	token := csrf(page)

	tests := []struct {
		name     string
		form     url.Values
		status   int
		location string
		sent     string // the PATCH's body, "" for none
		errText  string
	}{
		{"replaced", url.Values{"headers": {"X-Api-Key: k-secret-1\r\n\r\nAuthorization: Basic dTpw\r\n"}}, http.StatusSeeOther,
			"/subscriptions/orders?done=headers", `{"headers":{"Authorization":"Basic dTpw","X-Api-Key":"k-secret-1"}}`, ""},
		{"removed", url.Values{"headers": {"ignored: x"}, "remove": {"1"}}, http.StatusSeeOther,
			"/subscriptions/orders?done=headers-removed", `{"headers":{}}`, ""},
		{"a line without a colon", url.Values{"headers": {"X-Api-Key k-secret-2"}}, http.StatusUnprocessableEntity, "", "", "Name: value"},
		{"nothing typed", url.Values{"headers": {" \r\n"}}, http.StatusUnprocessableEntity, "", "", "at least one header"},
	}
	for _, tt := range tests {
		b.api.mu.Lock()
		b.api.posts = nil
		b.api.mu.Unlock()
		tt.form.Set("csrf", token)
		resp, doc := b.post(t, "/subscriptions/orders/headers", tt.form)
		if resp.StatusCode != tt.status || resp.Header.Get("Location") != tt.location {
			t.Fatalf("%s: %d %q", tt.name, resp.StatusCode, resp.Header.Get("Location"))
		}
		switch {
		case tt.sent == "" && len(b.api.posts) != 0:
			t.Errorf("%s: sent %v", tt.name, b.api.posts)
		case tt.sent != "" && (len(b.api.posts) != 1 || b.api.posts[0] != "PATCH /subscriptions/orders "+tt.sent):
			t.Errorf("%s: sent %v, want %s", tt.name, b.api.posts, tt.sent)
		}
		if tt.errText != "" {
			html, _ := doc.Html()
			if !strings.Contains(testid(doc, "error-headers").Text(), tt.errText) || strings.Contains(html, "k-secret") {
				t.Errorf("%s: error %q, or a value written back into the page", tt.name, testid(doc, "error-headers").Text())
			}
		}
	}

	// The API's refusal shows next to the field; the names typed come
	// back, the values do not.
	b.api.setAnswer(func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, `{"status":422,"detail":"validation failed","errors":[{"location":"body.headers.Host","message":"is a header Dispatch sets itself"}]}`)
		return true
	})
	resp, doc := b.post(t, "/subscriptions/orders/headers", url.Values{"csrf": {token}, "headers": {"Host: k-secret-3.example\nX-Key: k-secret-4"}})
	html, _ := doc.Html()
	if resp.StatusCode != http.StatusUnprocessableEntity || testid(doc, "error-headers").Text() != "is a header Dispatch sets itself" {
		t.Fatalf("%d error %q", resp.StatusCode, testid(doc, "error-headers").Text())
	}
	if strings.Contains(html, "k-secret") || doc.Find("textarea#headers").Text() != "Host: \nX-Key: " {
		t.Errorf("values written back, or names lost: %q", doc.Find("textarea#headers").Text())
	}
}
