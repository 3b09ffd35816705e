package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

type listEventsInput struct {
	Type           string    `query:"type" maxLength:"257" example:"order.*" doc:"An exact event type, or a pattern: 'order.*' for every type under 'order.', '*' for all."`
	Status         string    `query:"status" enum:"unmatched,pending,retrying,failed,delivered" doc:"The event's status as GET /events/{id} derives it from its deliveries; with subscription_id, the status of the event's delivery to that subscription."`
	SubscriptionID string    `query:"subscription_id" maxLength:"255" pattern:"^[A-Za-z0-9_.-]+$" doc:"Only events with a delivery to this subscription."`
	TenantID       string    `query:"tenant_id" maxLength:"255" pattern:"^[A-Za-z0-9_.-]+$" doc:"Only this tenant's events (with subscription_id, also the events sent to every tenant that reached it)."`
	SchemaValid    string    `query:"schema_valid" enum:"true,false" doc:"Only events whose data was validated against their type's schema with this verdict: false lists the events a type in warn mode accepted although they did not validate."`
	Since          time.Time `query:"since" doc:"Only events received at or after this time (RFC 3339)."`
	Until          time.Time `query:"until" doc:"Only events received before this time (RFC 3339)."`
	After          string    `query:"after" maxLength:"400" doc:"Cursor: the next_cursor of the previous page."`
	Limit          int       `query:"limit" minimum:"1" maximum:"250" default:"50"`
}

// EventListItem is an event in a listing: its payload left out (GET
// /events/{id} has it), its status derived from its deliveries.
type EventListItem struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Source      string    `json:"source,omitempty"`
	TenantID    string    `json:"tenant_id" doc:"The event's tenant; '*' for an event sent to every tenant."`
	ReceivedAt  time.Time `json:"received_at"`
	Status      string    `json:"status" enum:"unmatched,pending,retrying,failed,delivered"`
	SchemaValid *bool     `json:"schema_valid,omitempty" doc:"The verdict of the event's schema validation; absent when it was not validated."`
	Test        bool      `json:"test,omitempty" doc:"A test event sent by POST /subscriptions/{id}/test."`
}

type listEventsOutput struct {
	Body struct {
		Data       []EventListItem `json:"data"`
		NextCursor string          `json:"next_cursor,omitempty" doc:"Pass as 'after' for the next page; absent on the last page."`
	}
}

func (s *Server) registerEventsList(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "list-events",
		Method:      http.MethodGet,
		Path:        "/events",
		Summary:     "List and search events",
		Description: "Events newest first (by received_at, then id), filtered by type or type pattern, derived status, subscription, tenant and time; keyset pages.",
		Tags:        []string{"Events"},
		Errors:      []int{http.StatusUnprocessableEntity},
	}, s.listEvents)
}

func (s *Server) listEvents(ctx context.Context, in *listEventsInput) (*listEventsOutput, error) {
	f := store.EventFilter{
		Type: in.Type, Status: domain.EventStatus(in.Status), SubscriptionID: in.SubscriptionID,
		Since: in.Since, Until: in.Until, Limit: in.Limit + 1,
	}
	if in.SchemaValid != "" {
		v := in.SchemaValid == "true"
		f.SchemaValid = &v
	}
	if in.Type != "" {
		if err := domain.ValidatePattern("type", in.Type); err != nil {
			return nil, queryValidation(err)
		}
	}
	if err := checkTimeRange(in.Since, in.Until); err != nil {
		return nil, err
	}
	after, err := decodeCursor(in.After)
	if err != nil {
		return nil, err
	}
	f.After = after
	out := &listEventsOutput{}
	out.Body.Data = []EventListItem{}
	scope, ok := narrowed(ctx, in.TenantID)
	if !ok {
		return out, nil
	}
	events, err := s.store.ListEvents(ctx, scope, f)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	events, out.Body.NextCursor = keysetPage(events, in.Limit, func(e store.EventSummary) string { return encodeCursor(e.Position()) })
	out.Body.Data = make([]EventListItem, len(events))
	for i, e := range events {
		out.Body.Data[i] = EventListItem{ID: e.ID, Type: e.Type, Source: e.Source, TenantID: e.TenantID, ReceivedAt: e.ReceivedAt, Status: string(e.Status), SchemaValid: e.SchemaValid, Test: e.Test}
	}
	return out, nil
}
