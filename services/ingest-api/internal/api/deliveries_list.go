package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

type listDeliveriesInput struct {
	ID     string    `path:"id" maxLength:"255"`
	Status string    `query:"status" enum:"pending,processing,delivered,retrying,failed" doc:"Only deliveries in this status."`
	Since  time.Time `query:"since" doc:"Only deliveries created (their event received) at or after this time (RFC 3339)."`
	Until  time.Time `query:"until" doc:"Only deliveries created before this time (RFC 3339)."`
	After  string    `query:"after" maxLength:"400" doc:"Cursor: the next_cursor of the previous page."`
	Limit  int       `query:"limit" minimum:"1" maximum:"250" default:"50"`
}

// DeliveryListItem is one delivery of a subscription's listing.
type DeliveryListItem struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Test      bool   `json:"test,omitempty" doc:"A delivery of a test event (POST /subscriptions/{id}/test)."`
	DeliveryBody
	CreatedAt time.Time `json:"created_at" doc:"When the delivery was created: when its event was received."`
}

type listDeliveriesOutput struct {
	Body struct {
		Data       []DeliveryListItem `json:"data"`
		NextCursor string             `json:"next_cursor,omitempty" doc:"Pass as 'after' for the next page; absent on the last page."`
	}
}

func (s *Server) registerDeliveriesList(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "list-subscription-deliveries",
		Method:      http.MethodGet,
		Path:        "/subscriptions/{id}/deliveries",
		Summary:     "List a subscription's deliveries",
		Description: "The subscription's deliveries newest first (by creation, then event id), filtered by status and time; keyset pages.",
		Tags:        []string{"Subscriptions"},
		Errors:      []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, s.listDeliveries)
}

func (s *Server) listDeliveries(ctx context.Context, in *listDeliveriesInput) (*listDeliveriesOutput, error) {
	if err := checkTimeRange(in.Since, in.Until); err != nil {
		return nil, err
	}
	after, err := decodeCursor(in.After)
	if err != nil {
		return nil, err
	}
	ds, err := s.store.ListDeliveries(ctx, scopeOf(ctx), store.DeliveryFilter{
		SubscriptionID: in.ID, Status: domain.DeliveryStatus(in.Status),
		Since: in.Since, Until: in.Until, After: after, Limit: in.Limit + 1,
	})
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	out := &listDeliveriesOutput{}
	ds, out.Body.NextCursor = keysetPage(ds, in.Limit, func(d store.DeliverySummary) string { return encodeCursor(d.Position()) })
	out.Body.Data = make([]DeliveryListItem, len(ds))
	for i, d := range ds {
		out.Body.Data[i] = DeliveryListItem{EventID: d.EventID, EventType: d.EventType, Test: d.Test, DeliveryBody: deliveryBody(d.Delivery), CreatedAt: d.CreatedAt}
	}
	return out, nil
}
