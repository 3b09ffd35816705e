package web

import (
	"strings"
	"testing"
	"time"
)

func TestDeliveriesTableMarksTestDeliveries(t *testing.T) {
	now := time.Now()
	v := SubscriptionView{Page: page(true), Subscription: SubscriptionRow{ID: "s1"}, Deliveries: []DeliveryRow{
		{EventID: "evt_1", EventType: "order.created", Status: "delivered", CreatedAt: now, UpdatedAt: now},
		{EventID: "test_1", EventType: "order.created", Test: true, Status: "delivered", CreatedAt: now, UpdatedAt: now},
	}}
	doc := render(t, DeliveriesTable(v))
	if got := testid(doc, "test-delivery").Length(); got != 1 {
		t.Errorf("%d deliveries marked as tests, want 1", got)
	}
}

func TestEventTypePage(t *testing.T) {
	v := EventTypeView{Page: page(true), Type: EventTypeRow{Name: "order.created", Validation: "warn", Version: 3, Deprecated: true},
		Description: "Line one.\nLine two.", Schema: "{\n  \"type\": \"object\"\n}", Examples: []string{"{}", "{\"a\": 1}"},
		Versions: []EventTypeVersionRow{{Version: 3}, {Version: 2}, {Version: 1}}}
	doc := render(t, EventType(v))
	for id, n := range map[string]int{"schema": 1, "example": 2, "version": 3, "deprecated": 1, "description": 1} {
		if got := testid(doc, id).Length(); got != n {
			t.Errorf("%d %s, want %d", got, id, n)
		}
	}
	if got := testid(doc, "validation").Text(); got != "warn" {
		t.Errorf("validation %q", got)
	}
}

// TestPortalEventTypePage: the portal's type page is titled like its
// other pages ("Event type" and the name), and a field's type reads as
// code on the line of its name.
func TestPortalEventTypePage(t *testing.T) {
	t.Parallel()
	v := EventTypeView{Page: portalPage(false), Type: EventTypeRow{Name: "invoice.paid", Version: 1},
		Description: "An invoice was paid.", Schema: "{}", Fields: []SchemaField{{Path: "amount", Type: "integer", Required: true}}}
	doc := render(t, PortalEventType(v))
	if got := strings.Join(strings.Fields(doc.Find("h1").Text()), " "); got != "Event type invoice.paid" {
		t.Errorf("the page's title reads %q", got)
	}
	if got := doc.Find(`[data-path="amount"] td:nth-child(2) code`).Text(); got != "integer" {
		t.Errorf("the field's type cell holds code %q", got)
	}
}
