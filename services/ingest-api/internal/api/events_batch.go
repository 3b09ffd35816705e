package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// Results of one event in a batch.
const (
	batchStored  = "stored"
	batchExists  = "exists"
	batchInvalid = "invalid"
)

// BatchRequest is the body of POST /events/batch. The events are checked one
// by one in the handler, so that a bad event fails only itself: Huma
// documents the schema but does not validate it (SkipValidateBody), and
// decoding keeps the body's text for the handler.
type BatchRequest struct {
	Events []EventBody `json:"events" minItems:"1" maxItems:"500" doc:"1–500 events, each as POST /events takes it. More is a 413."`

	raw []byte
}

// UnmarshalJSON keeps the body's text; createEventsBatch decodes it.
func (b *BatchRequest) UnmarshalJSON(data []byte) error {
	b.raw = append(b.raw[:0], data...)
	return nil
}

// BatchResultBody is the answer to POST /events/batch.
type BatchResultBody struct {
	Stored  int               `json:"stored" doc:"Events stored by this request."`
	Exists  int               `json:"exists" doc:"Events not stored because their id is known, or came earlier in the batch."`
	Invalid int               `json:"invalid" doc:"Events refused; their errors say why."`
	Data    []BatchItemResult `json:"data" doc:"One result per event, in the order of the request."`
}

// BatchItemResult is what became of one event of a batch.
type BatchItemResult struct {
	ID     string              `json:"id,omitempty" doc:"The event's id; absent when the event has no valid id."`
	Status string              `json:"status" enum:"stored,exists,invalid" doc:"stored: stored now, with its deliveries (as POST /events answers 202). exists: an event with this id was stored before or comes earlier in this batch; nothing stored (as POST /events answers 200). invalid: refused, see errors; nothing stored."`
	Errors []*huma.ErrorDetail `json:"errors,omitempty" doc:"Why an invalid event was refused, each naming the place, e.g. body.events[3].data."`
}

type createEventsBatchInput struct {
	Body BatchRequest
}

type createEventsBatchOutput struct {
	Body BatchResultBody
}

// batchChecker checks one event of a batch as POST /events checks its body:
// the JSON text, the EventBody schema, then domain.ValidateEvent.
type batchChecker struct {
	registry huma.Registry
	schema   *huma.Schema
}

func (s *Server) registerEventsBatch(api huma.API) {
	registry := api.OpenAPI().Components.Schemas
	s.batch = batchChecker{registry: registry, schema: registry.Schema(reflect.TypeFor[EventBody](), true, "")}
	huma.Register(api, huma.Operation{
		OperationID: "create-events-batch",
		Method:      http.MethodPost,
		Path:        "/events/batch",
		Summary:     "Send up to 500 events at once",
		Description: "Checks each event as POST /events does, then stores the valid ones whose ids are new, with one delivery per matching active subscription, in one transaction, and queues the deliveries. " +
			"Answers 200 once they are committed, with a result per event in request order: stored, exists (known id; nothing stored) or invalid (with the errors). One invalid event does not fail the others. " +
			"More than 500 events, or a body over 5 MiB, is a 413; a body that is not {\"events\": [...]} a 422; nothing is stored then.",
		Tags:             []string{"Events"},
		MaxBodyBytes:     domain.MaxBatchBodySize + 1,
		SkipValidateBody: true,
		Metadata:         map[string]any{bodyLimitKey: domain.MaxBatchBodySize},
		Errors:           []int{http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity},
	}, s.createEventsBatch)
}

// createEventsBatch stores a batch of events in one transaction and answers
// for each of them.
func (s *Server) createEventsBatch(ctx context.Context, in *createEventsBatchInput) (*createEventsBatchOutput, error) {
	ctx, span := s.tracer.Start(ctx, "create-events-batch")
	defer span.End()
	items, err := batchItems(in.Body.raw)
	if err != nil {
		span.RecordError(err)
		return nil, err
	}
	out := &createEventsBatchOutput{Body: BatchResultBody{Data: make([]BatchItemResult, len(items))}}
	events := make([]domain.Event, 0, len(items))
	at := make([]int, 0, len(items)) // events[k] is items[at[k]]
	invalid := func(i int, id string, errs ...*huma.ErrorDetail) {
		out.Body.Data[i] = BatchItemResult{ID: id, Status: batchInvalid, Errors: errs}
		out.Body.Invalid++
	}
	tenantOf := map[string]string{} // event id → its tenant, within the batch
	types, err := s.catalog.Types(ctx)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	traceParent := traceParentOf(ctx)
	for i, raw := range items {
		e, data, id, errs := s.batch.check(i, raw)
		if errs != nil {
			invalid(i, id, errs...)
			continue
		}
		tenant, err := createdTenant(ctx, e.TenantID, "events")
		if err != nil {
			invalid(i, id, validationDetail(tenantValidation(err), "body.events["+strconv.Itoa(i)+"]."))
			continue
		}
		if other, seen := tenantOf[e.ID]; seen && other != tenant {
			invalid(i, id, &huma.ErrorDetail{Location: "body.events[" + strconv.Itoa(i) + "].tenant_id", Message: errOtherTenantsID})
			continue
		}
		e.TenantID = tenant
		if err := s.checkSchema(types, &e, data, "/events/"+strconv.Itoa(i)+"/data"); err != nil {
			var schemaErr errSchemaInvalid
			var ve *domain.ValidationError
			switch {
			case errors.As(err, &schemaErr):
				invalid(i, id, schemaErr.details()...)
				continue
			case errors.As(err, &ve):
				invalid(i, id, validationDetail(err, "body.events["+strconv.Itoa(i)+"]."))
				continue
			}
			return nil, s.problem(ctx, err, "")
		}
		tenantOf[e.ID] = tenant
		e.TraceParent = traceParent
		events = append(events, e)
		at = append(at, i)
	}
	events, at, err = s.knownTenantsOnly(ctx, events, at, invalid)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("dispatch.batch_size", len(items)), attribute.Int("dispatch.invalid", out.Body.Invalid))
	}
	res, err := s.store.IngestEvents(ctx, events)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "batch not stored")
		return nil, s.problem(ctx, err, "")
	}
	for k, created := range res.Created {
		if res.OtherTenant[k] {
			invalid(at[k], events[k].ID, &huma.ErrorDetail{Location: "body.events[" + strconv.Itoa(at[k]) + "].tenant_id", Message: errOtherTenantsID})
			continue
		}
		r := BatchItemResult{ID: events[k].ID, Status: batchExists}
		if created {
			r.Status = batchStored
			out.Body.Stored++
			s.countStored(events[k])
		} else {
			out.Body.Exists++
		}
		out.Body.Data[at[k]] = r
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("dispatch.stored", out.Body.Stored), attribute.Int("dispatch.deliveries", len(res.Deliveries)))
	}
	s.received.Add(float64(out.Body.Stored))
	if len(res.Deliveries) > 0 {
		s.publish(ctx, res.Deliveries)
	}
	return out, nil
}

// errOtherTenantsID is why an event whose id another tenant's event has is
// refused: ids are unique across tenants.
const errOtherTenantsID = "an event with this id was posted for another tenant; event ids are unique across tenants"

// tenantValidation is createdTenant's error as a validation error on
// tenant_id, for an event of a batch.
func tenantValidation(err error) error {
	var forbidden errTenantForbidden
	if errors.As(err, &forbidden) {
		return &domain.ValidationError{Field: "tenant_id", Reason: forbidden.Error()}
	}
	return err
}

// knownTenantsOnly keeps the events whose tenant exists and answers the
// others as invalid. Only tenants other than the default one and "*" are
// looked up: one query for the whole batch, none for most batches.
func (s *Server) knownTenantsOnly(ctx context.Context, events []domain.Event, at []int, invalid func(int, string, ...*huma.ErrorDetail)) ([]domain.Event, []int, error) {
	var named []string
	for _, e := range events {
		if e.TenantID != domain.DefaultTenant && e.TenantID != domain.AllTenants && !slices.Contains(named, e.TenantID) {
			named = append(named, e.TenantID)
		}
	}
	if len(named) == 0 {
		return events, at, nil
	}
	found, err := s.store.ExistingTenants(ctx, named)
	if err != nil {
		return nil, nil, err
	}
	keptEvents, keptAt := events[:0], at[:0]
	for k, e := range events {
		if e.TenantID != domain.DefaultTenant && e.TenantID != domain.AllTenants && !slices.Contains(found, e.TenantID) {
			invalid(at[k], e.ID, &huma.ErrorDetail{Location: "body.events[" + strconv.Itoa(at[k]) + "].tenant_id", Message: fmt.Sprintf("no tenant %q exists", e.TenantID)})
			continue
		}
		keptEvents, keptAt = append(keptEvents, e), append(keptAt, at[k])
	}
	return keptEvents, keptAt, nil
}

// batchItems takes the events out of a batch body, which the guard has
// found to be valid JSON. A body that is not {"events": [...]} with 1 to
// domain.MaxBatchEvents events fails as a whole, as does one naming
// events twice, which would otherwise drop the first array in silence.
func batchItems(raw []byte) ([]json.RawMessage, error) {
	invalidBody := func(location, msg string) error {
		return huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{Location: location, Message: msg})
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, invalidBody("body", "must be a JSON object with the member events")
	}
	var events json.RawMessage
	for dec.More() {
		name, err := dec.Token()
		if err != nil || name != "events" {
			return nil, invalidBody("body", `unexpected property: the body holds only "events"`)
		}
		if events != nil {
			return nil, invalidBody("body.events", domain.RepeatedMember)
		}
		if err := dec.Decode(&events); err != nil {
			return nil, invalidBody("body.events", "must be an array of events")
		}
	}
	if events == nil || string(events) == "null" {
		return nil, invalidBody("body", "expected required property events to be present")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(events, &items); err != nil {
		return nil, invalidBody("body.events", "must be an array of events")
	}
	if len(items) == 0 {
		return nil, invalidBody("body.events", "must hold at least one event")
	}
	if len(items) > domain.MaxBatchEvents {
		return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf("a batch holds at most %d events; this one has %d", domain.MaxBatchEvents, len(items)))
	}
	return items, nil
}

// check checks events[i] of a batch and returns it as an event with its
// data decoded (numbers as json.Number, as the schema validator takes
// them), or the problems found with it and its id if that is valid. Each
// problem's location starts with body.events[i], and the checks are those
// of POST /events, in its order, with the same messages.
func (c batchChecker) check(i int, raw json.RawMessage) (domain.Event, any, string, []*huma.ErrorDetail) {
	loc := "body.events[" + strconv.Itoa(i) + "]"
	if len(raw) > domain.MaxRequestBodySize {
		return domain.Event{}, nil, "", []*huma.ErrorDetail{{Location: loc, Message: fmt.Sprintf("must be at most %d bytes of JSON, as POST /events takes", domain.MaxRequestBodySize)}}
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil { // not expected: the body was valid JSON
		return domain.Event{}, nil, "", []*huma.ErrorDetail{{Location: loc, Message: "must be a JSON object"}}
	}
	id := validID(v)
	if err := domain.ValidateJSONText(loc, raw, maxBodyDepth); err != nil {
		d := validationDetail(err, "")
		if d.Location == loc+".id" {
			id = "" // an id named twice: which one the event meant is not known
		}
		return domain.Event{}, nil, id, []*huma.ErrorDetail{d}
	}
	var res huma.ValidateResult
	huma.Validate(c.registry, c.schema, huma.NewPathBuffer([]byte(loc), len(loc)), huma.ModeWriteToServer, v, &res)
	if len(res.Errors) > 0 {
		details := make([]*huma.ErrorDetail, 0, len(res.Errors))
		for _, err := range res.Errors {
			d := errorDetail(err)
			switch d.Value.(type) {
			case map[string]any, []any:
				// The client has the event; an answer of 500 copies of
				// events would not help it more.
				d.Value = nil
			}
			details = append(details, d)
		}
		return domain.Event{}, nil, id, details
	}
	var body EventBody
	if err := json.Unmarshal(raw, &body); err != nil { // not expected: the schema held
		return domain.Event{}, nil, id, []*huma.ErrorDetail{{Location: loc, Message: err.Error()}}
	}
	e := domain.Event{ID: body.ID, Type: body.Type, Source: body.Source, TenantID: body.TenantID, OrderingKey: body.OrderingKey, Data: []byte(body.Data)}
	if err := domain.ValidateEvent(e); err != nil {
		return domain.Event{}, nil, id, []*huma.ErrorDetail{validationDetail(err, loc+".")}
	}
	obj, _ := v.(map[string]any)
	return e, obj["data"], e.ID, nil
}

// validID is the id member of a decoded event, if it is a valid event id.
func validID(v any) string {
	obj, _ := v.(map[string]any)
	id, _ := obj["id"].(string)
	if domain.ValidateEventID(id) != nil {
		return ""
	}
	return id
}

// validationDetail is a *domain.ValidationError as a problem detail, its
// field prefixed; anything else is reported at the prefix.
func validationDetail(err error, prefix string) *huma.ErrorDetail {
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		return &huma.ErrorDetail{Location: prefix + ve.Field, Message: ve.Reason}
	}
	return &huma.ErrorDetail{Location: strings.TrimSuffix(prefix, "."), Message: err.Error()}
}
