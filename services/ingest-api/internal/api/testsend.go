package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

type sendTestInput struct {
	ID string `path:"id" maxLength:"255"`
	// Body is optional: without one, a dispatch.test event.
	Body *struct {
		EventType string `json:"event_type,omitempty" maxLength:"255" doc:"A type of the catalog: its first example is sent. Absent: a 'dispatch.test' event."`
	}
}

type sendTestOutput struct {
	Body EventBody
}

func (s *Server) registerSendTest(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "send-test-event",
		Method:      http.MethodPost,
		Path:        "/subscriptions/{id}/test",
		Summary:     "Send a test event to one subscription",
		Description: "Stores a test event (test: true) of the subscription's tenant with one delivery, to this subscription only, whatever its event types, and queues it: delivered and signed as any other, and marked as a test in the event and the subscription's deliveries. With event_type, the data is that type's first example; without (or without a body), a 'dispatch.test' event. Answers 202 with the event. " +
			fmt.Sprintf("At most %d test events per subscription in any %d seconds: beyond that, 429 with Retry-After (seconds until one fits again), and nothing is stored.", store.TestEventLimit, int(store.TestEventWindow.Seconds())),
		Tags:          []string{"Subscriptions"},
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  maxBodyBytes,
		Errors:        []int{http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusTooManyRequests},
	}, s.sendTest)
}

func (s *Server) sendTest(ctx context.Context, in *sendTestInput) (*sendTestOutput, error) {
	e := domain.Event{ID: store.TestEventIDPrefix + strings.ToLower(rand.Text()), Type: store.TestEventType, Source: "dispatch"}
	if in.Body == nil || in.Body.EventType == "" {
		data, err := json.Marshal(map[string]string{"message": "A test event sent by Dispatch to this subscription.", "subscription_id": in.ID})
		if err != nil {
			return nil, s.problem(ctx, err, "")
		}
		e.Data = data
	} else {
		t, err := s.store.GetEventType(ctx, in.Body.EventType)
		switch {
		case errors.Is(err, domain.ErrNotFound) || (err == nil && t.ArchivedAt != nil):
			return nil, huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{
				Location: "body.event_type", Message: fmt.Sprintf("%q is not in the event-type catalog (GET /event-types)", in.Body.EventType),
			})
		case err != nil:
			return nil, s.problem(ctx, err, "")
		}
		e.Type, e.Data, e.SchemaVersion = t.Name, t.Examples[0], t.Version
		valid := true // examples validate against their version's schema
		e.SchemaValid = &valid
	}
	res, err := s.store.SendTest(ctx, scopeOf(ctx), in.ID, e)
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	s.publish(ctx, res.Deliveries)
	return &sendTestOutput{Body: eventBody(res.Event)}, nil
}
