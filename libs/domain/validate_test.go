package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

func TestValidateEvent(t *testing.T) {
	t.Parallel()
	ok := domain.Event{ID: "evt_1", Type: "order.created", Source: "shop", Data: []byte(`{"a":1}`)}
	tests := []struct {
		name      string
		mutate    func(*domain.Event)
		wantField string
	}{
		{"valid", func(*domain.Event) {}, ""},
		{"empty id", func(e *domain.Event) { e.ID = "" }, "id"},
		{"long id", func(e *domain.Event) { e.ID = strings.Repeat("a", 256) }, "id"},
		{"id 255", func(e *domain.Event) { e.ID = strings.Repeat("a", 255) }, ""},
		{"id with slash", func(e *domain.Event) { e.ID = "a/b" }, "id"},
		{"empty type", func(e *domain.Event) { e.Type = "" }, "type"},
		{"type with space", func(e *domain.Event) { e.Type = "order created" }, "type"},
		{"type with star", func(e *domain.Event) { e.Type = "order.*" }, "type"},
		{"operational subscription type", func(e *domain.Event) { e.Type = "dispatch.subscription.failing" }, "type"},
		{"operational delivery type", func(e *domain.Event) { e.Type = "dispatch.delivery.anything" }, "type"},
		{"test type", func(e *domain.Event) { e.Type = "dispatch.test" }, ""},
		{"operational id", func(e *domain.Event) { e.ID = domain.OperationalEventID(domain.OpDeliveryExhausted, "1") }, "id"},
		{"near the operational ids", func(e *domain.Event) { e.ID = "dispatch_opx" }, ""},
		{"near the reserved namespace", func(e *domain.Event) { e.Type = "dispatch.subscriptions" }, ""},
		{"data array", func(e *domain.Event) { e.Data = []byte(`[1]`) }, "data"},
		{"data string", func(e *domain.Event) { e.Data = []byte(`"x"`) }, "data"},
		{"data null", func(e *domain.Event) { e.Data = []byte(`null`) }, "data"},
		{"data missing", func(e *domain.Event) { e.Data = nil }, "data"},
		{"long source", func(e *domain.Event) { e.Source = strings.Repeat("s", 256) }, "source"},
		{"id dot", func(e *domain.Event) { e.ID = "." }, "id"},
		{"id dot dot", func(e *domain.Event) { e.ID = ".." }, "id"},
		{"id three dots", func(e *domain.Event) { e.ID = "..." }, ""},
		{"id with CR LF", func(e *domain.Event) { e.ID = "a\r\nX-Evil: 1" }, "id"},
		{"source with NUL", func(e *domain.Event) { e.Source = "sh\x00op" }, "source"},
		{"source with newline", func(e *domain.Event) { e.Source = "shop\n" }, "source"},
		{"source not UTF-8", func(e *domain.Event) { e.Source = "sh\xffop" }, "source"},
		{"source non-ASCII", func(e *domain.Event) { e.Source = "boutique-é" }, ""},
		{"data with NUL escape", func(e *domain.Event) { e.Data = []byte(`{"a":"x\u0000"}`) }, "data.a"},
		{"data not UTF-8", func(e *domain.Event) { e.Data = []byte("{\"a\":\"\xff\"}") }, "data.a"},
		{"data lone surrogate", func(e *domain.Event) { e.Data = []byte(`{"a":["\ud800"]}`) }, "data.a[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := ok
			tt.mutate(&e)
			assertField(t, domain.ValidateEvent(e), tt.wantField)
		})
	}
}

func TestValidateSubscription(t *testing.T) {
	t.Parallel()
	ok := domain.Subscription{ID: "sub_1", URL: "https://example.com/hook", EventTypes: []string{"order.*"}}
	tests := []struct {
		name      string
		mutate    func(*domain.Subscription)
		wantField string
	}{
		{"valid", func(*domain.Subscription) {}, ""},
		{"http ok", func(s *domain.Subscription) { s.URL = "http://127.0.0.1:9000/x" }, ""},
		{"relative url", func(s *domain.Subscription) { s.URL = "/hook" }, "url"},
		{"ftp url", func(s *domain.Subscription) { s.URL = "ftp://example.com" }, "url"},
		{"no host", func(s *domain.Subscription) { s.URL = "https:///x" }, "url"},
		{"credentials", func(s *domain.Subscription) { s.URL = "https://u:p@example.com" }, "url"},
		{"empty url", func(s *domain.Subscription) { s.URL = "" }, "url"},
		{"no event types", func(s *domain.Subscription) { s.EventTypes = nil }, "event_types"},
		{"empty pattern", func(s *domain.Subscription) { s.EventTypes = []string{"a", ""} }, "event_types[1]"},
		{"star inside", func(s *domain.Subscription) { s.EventTypes = []string{"a.*.b"} }, "event_types[0]"},
		{"star suffix without dot", func(s *domain.Subscription) { s.EventTypes = []string{"order*"} }, "event_types[0]"},
		{"bad id", func(s *domain.Subscription) { s.ID = "a b" }, "id"},
		{"id dot", func(s *domain.Subscription) { s.ID = "." }, "id"},
		{"id dot dot", func(s *domain.Subscription) { s.ID = ".." }, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := ok
			tt.mutate(&s)
			assertField(t, domain.ValidateSubscription(s), tt.wantField)
		})
	}
}

func TestDeriveEventStatus(t *testing.T) {
	t.Parallel()
	d, r, f, p := domain.DeliveryDelivered, domain.DeliveryRetrying, domain.DeliveryFailed, domain.DeliveryProcessing
	tests := []struct {
		in   []domain.DeliveryStatus
		want domain.EventStatus
	}{
		{nil, domain.EventUnmatched},
		{[]domain.DeliveryStatus{d, d}, domain.EventDelivered},
		{[]domain.DeliveryStatus{d, r}, domain.EventRetrying},
		{[]domain.DeliveryStatus{f, r}, domain.EventRetrying},
		{[]domain.DeliveryStatus{d, f}, domain.EventFailed},
		{[]domain.DeliveryStatus{f, p}, domain.EventPending},
	}
	for _, tt := range tests {
		if got := domain.DeriveEventStatus(tt.in); got != tt.want {
			t.Errorf("DeriveEventStatus(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func assertField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v, want a ValidationError on %q", err, field)
	}
	if ve.Field != field {
		t.Fatalf("error on field %q (%s), want %q", ve.Field, ve.Reason, field)
	}
}

func TestValidateAPIKey(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ok := domain.APIKey{Name: "billing-service", Scopes: []domain.Scope{domain.ScopePublish}}
	tests := []struct {
		name      string
		mutate    func(*domain.APIKey)
		wantField string
	}{
		{"valid", func(*domain.APIKey) {}, ""},
		{"name non-ASCII", func(k *domain.APIKey) { k.Name = "facturation-é" }, ""},
		{"empty name", func(k *domain.APIKey) { k.Name = "" }, "name"},
		{"long name", func(k *domain.APIKey) { k.Name = strings.Repeat("n", 256) }, "name"},
		{"name with newline", func(k *domain.APIKey) { k.Name = "ci\nadmin" }, "name"},
		{"name with escape", func(k *domain.APIKey) { k.Name = "ci\x1b[31m" }, "name"},
		{"name with NUL", func(k *domain.APIKey) { k.Name = "ci\x00" }, "name"},
		{"name with C1 control", func(k *domain.APIKey) { k.Name = "ci\u0085" }, "name"},
		{"name not UTF-8", func(k *domain.APIKey) { k.Name = "ci\xff" }, "name"},
		{"no scope", func(k *domain.APIKey) { k.Scopes = nil }, "scopes"},
		{"unknown scope", func(k *domain.APIKey) { k.Scopes = []domain.Scope{"root"} }, "scopes[0]"},
		{"expired", func(k *domain.APIKey) { past := now.Add(-time.Second); k.ExpiresAt = &past }, "expires_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := ok
			tt.mutate(&k)
			assertField(t, domain.ValidateAPIKey(k, now), tt.wantField)
		})
	}
}

func TestGrants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		held []domain.Scope
		want domain.Scope
		ok   bool
	}{
		{[]domain.Scope{domain.ScopeAdmin}, domain.ScopeRead, true},
		{[]domain.Scope{domain.ScopeAdmin}, domain.ScopeAdmin, true},
		{[]domain.Scope{domain.ScopeWrite}, domain.ScopePublish, true},
		{[]domain.Scope{domain.ScopeWrite}, domain.ScopeWrite, true},
		{[]domain.Scope{domain.ScopeWrite}, domain.ScopeRead, false},
		{[]domain.Scope{domain.ScopeWrite}, domain.ScopeAdmin, false},
		{[]domain.Scope{domain.ScopePublish}, domain.ScopePublish, true},
		{[]domain.Scope{domain.ScopePublish}, domain.ScopeRead, false},
		{[]domain.Scope{domain.ScopePublish}, domain.ScopeWrite, false},
		{[]domain.Scope{domain.ScopeRead}, domain.ScopeRead, true},
		{[]domain.Scope{domain.ScopeRead}, domain.ScopePublish, false},
		{[]domain.Scope{domain.ScopeRead, domain.ScopeWrite}, domain.ScopeRead, true},
		{nil, domain.ScopeRead, false},
	}
	for _, tt := range tests {
		if got := domain.Grants(tt.held, tt.want); got != tt.ok {
			t.Errorf("Grants(%v, %s) = %v, want %v", tt.held, tt.want, got, tt.ok)
		}
	}
}
