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

type redeliverEventInput struct {
	ID   string `path:"id" maxLength:"255"`
	Body *struct {
		SubscriptionID string `json:"subscription_id,omitempty" maxLength:"255" doc:"Only this subscription's delivery; all of the event's when absent."`
	} `required:"false"`
}

type redeliverOutput struct {
	Body struct {
		Queued int64 `json:"queued" doc:"How many deliveries were queued again."`
	}
}

// defaultRedeliverLimit is how many deliveries a bulk redelivery queues
// when the request does not say (its limit, at most 10000): one request
// costs a bounded transaction, and a client continues with the answer's
// next_cursor.
const defaultRedeliverLimit = 1000

type redeliverBulkInput struct {
	ID   string `path:"id" maxLength:"255"`
	Body struct {
		Statuses []string  `json:"statuses,omitempty" enum:"failed,delivered" maxItems:"2" doc:"Which finished deliveries to send again (default: failed)."`
		From     time.Time `json:"from,omitempty" doc:"Only deliveries created at or after this time."`
		To       time.Time `json:"to,omitempty" doc:"Only deliveries created before this time."`
		Limit    int       `json:"limit,omitempty" minimum:"1" maximum:"10000" doc:"Most deliveries this request queues, newest first (default 1000)."`
		After    string    `json:"after,omitempty" maxLength:"400" doc:"Continue a redelivery: the next_cursor of the previous answer, sent with the same statuses, from and to."`
	}
}

// BulkRedelivery is the answer to POST /subscriptions/{id}/redeliver.
type BulkRedelivery struct {
	Queued     int64  `json:"queued" doc:"How many deliveries this request queued again."`
	NextCursor string `json:"next_cursor,omitempty" doc:"More deliveries may match: pass it as after, with the same filter, to queue the next ones. Absent once none remain. Sealed (opaque, even once base64 is undone) for a key without the read scope, which may send back only such cursors."`
}

type redeliverBulkOutput struct {
	Body BulkRedelivery
}

func (s *Server) registerRedelivery(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "redeliver-event",
		Method:      http.MethodPost,
		Path:        "/events/{id}/redeliver",
		Summary:     "Send an event again",
		Description: "Queues the event's finished (delivered or failed) deliveries to active subscriptions again, all or one subscription's. Each is a new attempt. A failed delivery whose attempts are used up gets one more attempt. " +
			"A key without the read scope may not send it to a subscription whose url changed after the event was accepted: 403, nothing queued.",
		Tags:          []string{"Events"},
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  maxBodyBytes,
		Errors:        []int{http.StatusNotFound},
	}, s.redeliverEvent)

	huma.Register(api, huma.Operation{
		OperationID: "redeliver-subscription",
		Method:      http.MethodPost,
		Path:        "/subscriptions/{id}/redeliver",
		Summary:     "Send a subscription's finished deliveries again",
		Description: "Queues the subscription's matching finished deliveries again, newest first, at most limit (default 1000, at most 10000) per request; the retry scheduler publishes them in batches. While more may match, the answer's next_cursor continues: send it as after with the same filter until it is absent. " +
			"A key without the read scope may not send deliveries accepted before the subscription's url last changed: 403, nothing queued. " +
			"Its next_cursor is sealed, and it may send back no other.",
		Tags:          []string{"Subscriptions"},
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  maxBodyBytes,
		Errors:        []int{http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity},
	}, s.redeliverSubscription)
}

func (s *Server) redeliverEvent(ctx context.Context, in *redeliverEventInput) (*redeliverOutput, error) {
	var subID string
	if in.Body != nil {
		subID = in.Body.SubscriptionID
	}
	refs, err := s.store.Redeliver(ctx, scopeOf(ctx), in.ID, subID, !mayRead(ctx))
	if errors.Is(err, domain.ErrBeforeURLChange) {
		return nil, huma.Error403Forbidden("this event was accepted before its subscription's url last changed: " +
			"sending it to the new url needs a key with the 'read' scope")
	}
	if err != nil {
		return nil, s.problem(ctx, err, "event not found")
	}
	s.publish(ctx, refs)
	out := &redeliverOutput{}
	out.Body.Queued = int64(len(refs))
	return out, nil
}

func (s *Server) redeliverSubscription(ctx context.Context, in *redeliverBulkInput) (*redeliverBulkOutput, error) {
	f := store.RedeliverFilter{SubscriptionID: in.ID, From: in.Body.From, To: in.Body.To, Limit: in.Body.Limit}
	if f.Limit == 0 {
		f.Limit = defaultRedeliverLimit
	}
	for _, st := range in.Body.Statuses {
		f.Statuses = append(f.Statuses, domain.DeliveryStatus(st))
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return nil, s.problem(ctx, &domain.ValidationError{Field: "to", Reason: "must be after from"}, "")
	}
	read := mayRead(ctx)
	after, ok := s.redeliveryCursor(in.ID, in.Body.After, read)
	if !ok {
		return nil, s.problem(ctx, &domain.ValidationError{Field: "after", Reason: badCursor}, "")
	}
	f.After = after
	f.SinceURLChange = !read
	res, err := s.store.RedeliverBulk(ctx, scopeOf(ctx), f)
	if errors.Is(err, domain.ErrBeforeURLChange) {
		return nil, huma.Error403Forbidden("deliveries accepted before this subscription's url last changed match: " +
			"sending them to the new url needs a key with the 'read' scope; without it, send a from at or after the change")
	}
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found or not active")
	}
	out := &redeliverBulkOutput{Body: BulkRedelivery{Queued: res.Queued}}
	switch {
	case res.Next == nil:
	case read:
		out.Body.NextCursor = encodeCursor(*res.Next)
	default:
		out.Body.NextCursor = s.cursors.seal(in.ID, *res.Next)
	}
	return out, nil
}

// redeliveryCursor reads the after of subscriptionID's bulk redelivery:
// a cursor sealed for it, from any key, or, from a key that may read, a
// plain one as listings write them. A key without read is given sealed
// cursors only and may send nothing else: a position it made up would
// answer, through how many deliveries it queues, whether a delivery lies
// beyond it, which is a way to find event ids one comparison at a time.
func (s *Server) redeliveryCursor(subscriptionID, after string, read bool) (_ *store.Position, ok bool) {
	if after == "" {
		return nil, true
	}
	if p, ok := s.cursors.open(subscriptionID, after); ok {
		return p, true
	}
	if !read {
		return nil, false
	}
	return parseCursor(after)
}
