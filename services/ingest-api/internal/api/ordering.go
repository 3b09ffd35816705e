package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

type listOrderingKeysInput struct {
	ID    string `path:"id" maxLength:"255"`
	State string `query:"state" enum:"blocked,open" default:"blocked" doc:"blocked: keys whose head failed and waits for its retry, holding the key's later events. open: every key with a delivery not yet final."`
	After string `query:"after" maxLength:"256" doc:"Cursor: the next_cursor of the previous page."`
	Limit int    `query:"limit" minimum:"1" maximum:"250" default:"50"`
}

// OrderingKeyBody is an ordering key of a subscription and its head.
type OrderingKeyBody struct {
	Key string `json:"key"`
	// Head is the key's delivery that goes next: the others wait behind it.
	HeadEventID    string     `json:"head_event_id" doc:"The event whose delivery goes next: the key's other events wait behind it."`
	Status         string     `json:"status" enum:"pending,processing,retrying" doc:"The head's delivery status."`
	Attempts       int        `json:"attempts" doc:"The head's attempts so far."`
	NextAttemptAt  *time.Time `json:"next_attempt_at,omitempty" doc:"When a retrying head is due again."`
	LastStatusCode *int       `json:"last_status_code,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
	Waiting        int64      `json:"waiting" doc:"How many of the key's events wait behind the head."`
}

type listOrderingKeysOutput struct {
	Body struct {
		Data        []OrderingKeyBody `json:"data"`
		BlockedKeys int64             `json:"blocked_keys" doc:"How many of the subscription's keys are blocked, whatever the page."`
		NextCursor  string            `json:"next_cursor,omitempty" doc:"Pass as 'after' for the next page; absent on the last page."`
	}
}

type orderingKeyInput struct {
	ID  string `path:"id" maxLength:"255"`
	Key string `path:"key" maxLength:"256"`
}

type skipOrderingKeyInput struct {
	ID   string `path:"id" maxLength:"255"`
	Key  string `path:"key" maxLength:"256"`
	Body *struct {
		Reason string `json:"reason,omitempty" maxLength:"500" doc:"Recorded as the skipped delivery's last error, after 'skipped: '."`
	} `required:"false"`
}

// OrderingKeyAction is the answer to an action on an ordering key.
type OrderingKeyAction struct {
	EventID     string `json:"event_id" doc:"The event whose delivery the action applied to: the skipped head, or the head sent now."`
	NextEventID string `json:"next_event_id,omitempty" doc:"After a skip: the key's event that goes next, queued now; absent when none waits."`
}

type orderingKeyActionOutput struct {
	Body OrderingKeyAction
}

func (s *Server) registerOrdering(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "list-ordering-keys",
		Method:      http.MethodGet,
		Path:        "/subscriptions/{id}/ordering-keys",
		Summary:     "List a subscription's ordering keys",
		Description: "The keys of an ordered subscription (ordering per_key) that have a delivery not yet final, by key, each with its head: the delivery that goes next. state=blocked (the default) lists the keys whose head failed and waits for its retry. Keyset pages.",
		Tags:        []string{"Subscriptions"},
		Errors:      []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, s.listOrderingKeys)

	huma.Register(api, huma.Operation{
		OperationID:   "skip-ordering-key-head",
		Method:        http.MethodPost,
		Path:          "/subscriptions/{id}/ordering-keys/{key}/skip",
		Summary:       "Skip the head of an ordering key",
		Description:   "Fails the key's head for good, with 'skipped: ' and the reason as its last error, and queues the key's next event. 404 when the key has nothing waiting; 409 while a worker is attempting the head.",
		Tags:          []string{"Subscriptions"},
		DefaultStatus: http.StatusOK,
		MaxBodyBytes:  maxBodyBytes,
		Errors:        []int{http.StatusNotFound, http.StatusConflict},
	}, s.skipOrderingKey)

	huma.Register(api, huma.Operation{
		OperationID:   "retry-ordering-key-head",
		Method:        http.MethodPost,
		Path:          "/subscriptions/{id}/ordering-keys/{key}/retry",
		Summary:       "Send the head of an ordering key now",
		Description:   "Queues the key's head at once instead of at its next retry; the key's later events still wait for it. It spends an attempt like any retry. 404 when the key has nothing waiting; 409 while a worker is attempting the head.",
		Tags:          []string{"Subscriptions"},
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  maxBodyBytes,
		Errors:        []int{http.StatusNotFound, http.StatusConflict},
	}, s.retryOrderingKey)
}

func (s *Server) listOrderingKeys(ctx context.Context, in *listOrderingKeysInput) (*listOrderingKeysOutput, error) {
	scope := scopeOf(ctx)
	keys, err := s.store.ListOrderingKeys(ctx, scope, store.OrderingKeyFilter{
		SubscriptionID: in.ID, State: store.OrderingKeyState(in.State), After: in.After, Limit: in.Limit + 1,
	})
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	out := &listOrderingKeysOutput{}
	if out.Body.BlockedKeys, err = s.store.CountBlockedKeys(ctx, scope, in.ID); err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	keys, out.Body.NextCursor = keysetPage(keys, in.Limit, func(k store.OrderingKey) string { return k.Key })
	out.Body.Data = make([]OrderingKeyBody, len(keys))
	for i, k := range keys {
		h := k.Head
		b := OrderingKeyBody{Key: k.Key, HeadEventID: h.EventID, Status: string(h.Status), Attempts: h.Attempts,
			LastStatusCode: h.LastStatusCode, LastError: h.LastError, Waiting: k.Waiting}
		if h.Status == domain.DeliveryRetrying {
			b.NextAttemptAt = h.NextAttemptAt
		}
		out.Body.Data[i] = b
	}
	return out, nil
}

// keyProblem answers an action on an ordering key that failed.
func (s *Server) keyProblem(ctx context.Context, err error) error {
	if errors.Is(err, domain.ErrConflict) {
		return huma.Error409Conflict("a worker is attempting the key's head now; try again once the attempt is over")
	}
	return s.problem(ctx, err, "nothing of this key waits on this subscription")
}

func (s *Server) skipOrderingKey(ctx context.Context, in *skipOrderingKeyInput) (*orderingKeyActionOutput, error) {
	reason := "by an operator"
	if in.Body != nil && in.Body.Reason != "" {
		if err := domain.ValidateText("reason", in.Body.Reason); err != nil {
			return nil, s.problem(ctx, err, "")
		}
		reason = in.Body.Reason
	}
	skipped, next, err := s.store.SkipOrderingKey(ctx, scopeOf(ctx), in.ID, in.Key, reason)
	if err != nil {
		return nil, s.keyProblem(ctx, err)
	}
	out := &orderingKeyActionOutput{Body: OrderingKeyAction{EventID: skipped.EventID}}
	if next != nil {
		s.publish(ctx, []store.DeliveryRef{*next})
		out.Body.NextEventID = next.EventID
	}
	return out, nil
}

func (s *Server) retryOrderingKey(ctx context.Context, in *orderingKeyInput) (*orderingKeyActionOutput, error) {
	head, err := s.store.RetryOrderingKeyNow(ctx, scopeOf(ctx), in.ID, in.Key)
	if err != nil {
		return nil, s.keyProblem(ctx, err)
	}
	s.publish(ctx, []store.DeliveryRef{head})
	return &orderingKeyActionOutput{Body: OrderingKeyAction{EventID: head.EventID}}, nil
}
