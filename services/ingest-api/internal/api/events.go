package api

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

type createEventInput struct {
	Body EventBody
}

type createEventOutput struct {
	Status int
	Body   EventBody
}

type eventIDInput struct {
	ID string `path:"id" maxLength:"255" doc:"The event id."`
}

type eventOutput struct {
	Body EventDetail
}

// eventDeliveries is how many deliveries GET /events/{id} shows: the first
// page of GET /events/{id}/deliveries at its default size. An event has a
// delivery per matching subscription, so they are paged like any listing.
const eventDeliveries = 50

type listEventDeliveriesInput struct {
	ID    string `path:"id" maxLength:"255" doc:"The event id."`
	After string `query:"after" maxLength:"255" doc:"Cursor: the next_cursor of the previous page (or deliveries_next_cursor of GET /events/{id})."`
	Limit int    `query:"limit" minimum:"1" maximum:"250" default:"50"`
}

type listEventDeliveriesOutput struct {
	Body struct {
		Data       []DeliveryBody `json:"data"`
		NextCursor string         `json:"next_cursor,omitempty" doc:"Pass as 'after' for the next page; absent on the last page."`
	}
}

type listAttemptsInput struct {
	ID             string `path:"id" maxLength:"255" doc:"The event id."`
	SubscriptionID string `query:"subscription_id" maxLength:"255" pattern:"^[A-Za-z0-9_.-]+$" doc:"Only the attempts of the event's delivery to this subscription."`
	Order          string `query:"order" enum:"oldest,newest" default:"oldest" doc:"Oldest first (by started_at, then id), the default, or newest first. Pass the same order with each of its cursors."`
	After          string `query:"after" maxLength:"400" doc:"Cursor: the next_cursor of the previous page."`
	Limit          int    `query:"limit" minimum:"1" maximum:"250" default:"50"`
}

type attemptsOutput struct {
	Body struct {
		Data       []AttemptBody `json:"data"`
		NextCursor string        `json:"next_cursor,omitempty" doc:"Pass as 'after' for the next page; absent on the last page."`
	}
}

func (s *Server) registerEvents(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID:   "create-event",
		Method:        http.MethodPost,
		Path:          "/events",
		Summary:       "Send an event",
		Description:   "Stores the event and one delivery per matching active subscription in one transaction, then queues the deliveries. Answers 202 once stored; re-posting a known id stores nothing and answers 200: with the event as first stored to a key with the read scope, with what it sent to any other key.",
		Tags:          []string{"Events"},
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  maxBodyBytes,
		Errors:        []int{http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "An event with this id already exists; nothing was stored. A key with the read scope gets the event as first stored; any other key gets back the event it sent, without received_at, and nothing of the stored one.",
				Content:     map[string]*huma.MediaType{"application/json": {Schema: api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[EventBody](), true, "")}},
			},
		},
	}, s.createEvent)

	huma.Register(api, huma.Operation{
		OperationID: "get-event",
		Method:      http.MethodGet,
		Path:        "/events/{id}",
		Summary:     "Get an event and its delivery state",
		Tags:        []string{"Events"},
		Errors:      []int{http.StatusNotFound},
	}, s.getEvent)

	huma.Register(api, huma.Operation{
		OperationID: "list-event-deliveries",
		Method:      http.MethodGet,
		Path:        "/events/{id}/deliveries",
		Summary:     "List an event's deliveries",
		Description: "The event's deliveries, one per matching subscription, by subscription id; keyset pages. GET /events/{id} shows the first page.",
		Tags:        []string{"Events"},
		Errors:      []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, s.listEventDeliveries)

	huma.Register(api, huma.Operation{
		OperationID: "list-event-attempts",
		Method:      http.MethodGet,
		Path:        "/events/{id}/attempts",
		Summary:     "List an event's delivery attempts",
		Description: "The event's HTTP attempts, oldest or newest first (by started_at, then id), of every delivery or of one subscription's; keyset pages.",
		Tags:        []string{"Events"},
		Errors:      []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, s.listAttempts)
}

// createEvent stores an event and its deliveries and queues them. The event
// is stored together with those of concurrent requests (ingestBatcher), and
// the answer waits for its own commit. Its span
// is the parent of each delivery's publishing, so that with tracing on an
// event's trace runs from this request to every attempt.
func (s *Server) createEvent(ctx context.Context, in *createEventInput) (*createEventOutput, error) {
	ctx, span := s.tracer.Start(ctx, "create-event")
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("dispatch.event_id", in.Body.ID), attribute.String("dispatch.event_type", in.Body.Type))
	}
	e := domain.Event{ID: in.Body.ID, Type: in.Body.Type, Source: in.Body.Source, OrderingKey: in.Body.OrderingKey, Data: []byte(in.Body.Data), TraceParent: traceParentOf(ctx)}
	if err := domain.ValidateEvent(e); err != nil {
		span.RecordError(err)
		return nil, s.problem(ctx, err, "")
	}
	tenant, err := createdTenant(ctx, in.Body.TenantID, "events")
	if err != nil {
		return nil, s.tenantProblem(ctx, err)
	}
	e.TenantID = tenant
	types, err := s.catalog.Types(ctx)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	if err := s.checkSchema(types, &e, nil, "/data"); err != nil {
		var invalid errSchemaInvalid
		if errors.As(err, &invalid) {
			return nil, huma.Error422UnprocessableEntity(invalid.Error(), asErrors(invalid.details())...)
		}
		return nil, s.problem(ctx, err, "")
	}
	res, err := s.ingest.ingest(ctx, e)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "event not stored")
		return nil, s.problem(ctx, err, errOtherTenantsID)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Bool("dispatch.created", res.Created), attribute.Int("dispatch.deliveries", len(res.Deliveries)))
	}
	if !res.Created {
		if !mayRead(ctx) {
			// The status tells a producer that its repeat changed nothing,
			// as idempotency must; the stored event is for keys that may
			// read it, whatever id the caller guessed or body it sent.
			return &createEventOutput{Status: http.StatusOK, Body: EventBody{ID: e.ID, Type: e.Type, Source: e.Source, TenantID: in.Body.TenantID, OrderingKey: e.OrderingKey, Data: in.Body.Data}}, nil
		}
		return &createEventOutput{Status: http.StatusOK, Body: eventBody(res.Event)}, nil
	}
	s.received.Inc()
	s.countStored(e)
	s.publish(ctx, res.Deliveries)
	return &createEventOutput{Status: http.StatusAccepted, Body: eventBody(res.Event)}, nil
}

func (s *Server) getEvent(ctx context.Context, in *eventIDInput) (*eventOutput, error) {
	e, status, err := s.store.GetEvent(ctx, scopeOf(ctx), in.ID)
	if err != nil {
		return nil, s.problem(ctx, err, "event not found")
	}
	deliveries, next, err := s.eventDeliveryPage(ctx, in.ID, "", eventDeliveries)
	if err != nil {
		return nil, err
	}
	return &eventOutput{Body: EventDetail{
		EventBody: eventBody(e), Status: string(status), Deliveries: deliveries, DeliveriesNextCursor: next,
		SchemaVersion: e.SchemaVersion, SchemaValid: e.SchemaValid, Test: e.Test,
	}}, nil
}

func (s *Server) listEventDeliveries(ctx context.Context, in *listEventDeliveriesInput) (*listEventDeliveriesOutput, error) {
	after, err := decodeIDCursor(in.After)
	if err != nil {
		return nil, err
	}
	out := &listEventDeliveriesOutput{}
	out.Body.Data, out.Body.NextCursor, err = s.eventDeliveryPage(ctx, in.ID, after, in.Limit)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eventDeliveryPage is a page of an event's deliveries after the
// subscription id after, and the cursor of the next page ("" on the last).
func (s *Server) eventDeliveryPage(ctx context.Context, eventID, after string, limit int) ([]DeliveryBody, string, error) {
	ds, err := s.store.ListEventDeliveries(ctx, scopeOf(ctx), store.EventDeliveryFilter{EventID: eventID, After: after, Limit: limit + 1})
	if err != nil {
		return nil, "", s.problem(ctx, err, "event not found")
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		next = ds[len(ds)-1].SubscriptionID
	}
	bodies := make([]DeliveryBody, len(ds))
	for i, d := range ds {
		bodies[i] = deliveryBody(d)
	}
	return bodies, next, nil
}

func (s *Server) listAttempts(ctx context.Context, in *listAttemptsInput) (*attemptsOutput, error) {
	after, err := decodeAttemptCursor(in.After)
	if err != nil {
		return nil, err
	}
	attempts, err := s.store.ListAttempts(ctx, scopeOf(ctx), store.AttemptFilter{
		EventID: in.ID, SubscriptionID: in.SubscriptionID, Newest: in.Order == "newest", After: after, Limit: in.Limit + 1,
	})
	if err != nil {
		return nil, s.problem(ctx, err, "event not found")
	}
	out := &attemptsOutput{}
	attempts, out.Body.NextCursor = keysetPage(attempts, in.Limit, func(a domain.Attempt) string { return encodeAttemptCursor(store.AttemptPositionOf(a)) })
	out.Body.Data = make([]AttemptBody, len(attempts))
	for i, a := range attempts {
		out.Body.Data[i] = AttemptBody{
			ID: a.ID, SubscriptionID: a.SubscriptionID, Number: a.Number, StartedAt: a.StartedAt,
			DurationMS: durationMS(a.Duration), StatusCode: a.StatusCode, ErrorClass: string(a.ErrorClass),
			Error: a.Error, ResponseBody: a.ResponseBody, Instance: a.Instance,
			RequestHeaders: headerBodies(domain.RequestHeaders(a)), ResponseHeaders: headerBodies(domain.ParseHeaderLines(a.ResponseHeaders)),
		}
	}
	return out, nil
}

// publish hands committed deliveries to the queue. The answer does not wait
// for Kafka: the rows are durable, and the retry scheduler publishes any
// the producer reports as failed. Held deliveries are not published: the
// worker that finishes the delivery before each one claims it.
func (s *Server) publish(ctx context.Context, refs []store.DeliveryRef) {
	msgs := make([]queue.Message, 0, len(refs))
	for _, d := range refs {
		if !d.Held {
			msgs = append(msgs, queue.Message{DeliveryID: d.ID, EventID: d.EventID, SubscriptionID: d.SubscriptionID})
		}
	}
	s.publisher.Publish(context.WithoutCancel(ctx), msgs...)
}

// durationMS is d in milliseconds to the microsecond: an attempt on a
// local network takes a fraction of a millisecond.
func durationMS(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// traceParentOf is the W3C traceparent of ctx's span, stored with an event
// so that its retries are published in its trace; "" when tracing is off.
func traceParentOf(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}
