package web

import (
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
