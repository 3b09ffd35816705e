package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/catalog"
)

// JSONValue is any JSON value, kept as sent: an event type's schema.
type JSONValue json.RawMessage

// MarshalJSON writes the value as is.
func (j JSONValue) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("true"), nil
	}
	return j, nil
}

// UnmarshalJSON keeps the raw bytes.
func (j *JSONValue) UnmarshalJSON(b []byte) error {
	*j = append((*j)[:0], b...)
	return nil
}

// Schema documents a JSON Schema as a free-form value.
func (JSONValue) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Description: "A JSON Schema (2020-12, or draft-07 when its $schema says so) for the event's data."}
}

// EventTypeInput is the body of PUT /event-types/{name}.
type EventTypeInput struct {
	Description string       `json:"description,omitempty" maxLength:"16384" doc:"What the event means, in Markdown."`
	Schema      JSONValue    `json:"schema" doc:"A JSON Schema (2020-12; draft-07 when $schema names it) for the event's data; at most 64 KiB, nested at most 32 deep, with $refs only inside itself. Changing it adds a version."`
	Examples    []JSONObject `json:"examples" minItems:"1" maxItems:"10" doc:"1–10 example data objects; each must validate against the schema. The first is what POST /subscriptions/{id}/test sends."`
	Deprecated  bool         `json:"deprecated,omitempty" doc:"Still delivered, but subscribing to it answers a warning."`
	Validation  string       `json:"validation,omitempty" enum:"off,warn,enforce" default:"enforce" doc:"What ingest does with data that does not validate: off (nothing), warn (stores it marked schema_valid false and counts it), enforce (refuses it with a 422)."`
}

// EventTypeBody is an event type as the API shows it.
type EventTypeBody struct {
	Name string `json:"name" example:"order.created"`
	EventTypeInput
	Version    int        `json:"version" doc:"The latest schema version; 1 for a new type."`
	ArchivedAt *time.Time `json:"archived_at,omitempty" doc:"When the type was deleted: its name stays reserved, its versions readable, and ingest no longer knows it."`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

func eventTypeBody(t domain.EventType) EventTypeBody {
	b := EventTypeBody{
		Name: t.Name,
		EventTypeInput: EventTypeInput{
			Description: t.Description, Schema: JSONValue(t.Schema), Examples: make([]JSONObject, len(t.Examples)),
			Deprecated: t.Deprecated, Validation: string(t.Validation),
		},
		Version: t.Version, ArchivedAt: t.ArchivedAt, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
	for i, ex := range t.Examples {
		b.Examples[i] = JSONObject(ex)
	}
	return b
}

// EventTypeVersionBody is one version of an event type's schema.
type EventTypeVersionBody struct {
	Version   int          `json:"version"`
	Schema    JSONValue    `json:"schema"`
	Examples  []JSONObject `json:"examples"`
	CreatedAt time.Time    `json:"created_at"`
}

type eventTypeNameInput struct {
	Name string `path:"name" maxLength:"255" doc:"The event type's name."`
}

type putEventTypeInput struct {
	Name string `path:"name" maxLength:"255" doc:"The event type's name: the alphabet and length of event types."`
	Body EventTypeInput
}

type putEventTypeOutput struct {
	Status int
	Body   EventTypeBody
}

type eventTypeOutput struct {
	Body EventTypeBody
}

type listEventTypesInput struct {
	Prefix     string `query:"prefix" maxLength:"255" doc:"Only types whose name starts with this, e.g. 'order.'."`
	Deprecated string `query:"deprecated" enum:"true,false" doc:"Only deprecated types (true) or only the others (false)."`
	Archived   bool   `query:"archived" doc:"List the archived (deleted) types instead of the others."`
	After      string `query:"after" maxLength:"255" doc:"Cursor: the next_cursor of the previous page."`
	Limit      int    `query:"limit" minimum:"1" maximum:"250" default:"50"`
}

type listEventTypesOutput struct {
	Body struct {
		Data       []EventTypeBody `json:"data"`
		NextCursor string          `json:"next_cursor,omitempty" doc:"Pass as 'after' for the next page; absent on the last page."`
	}
}

type eventTypeVersionsOutput struct {
	Body struct {
		Data []EventTypeVersionBody `json:"data" doc:"Every version, newest first."`
	}
}

func (s *Server) registerEventTypes(api huma.API) {
	operatorOnly := map[string]any{operatorOnlyKey: true}
	huma.Register(api, huma.Operation{
		OperationID:  "put-event-type",
		Method:       http.MethodPut,
		Path:         "/event-types/{name}",
		Summary:      "Create or change an event type",
		Description:  "Creates the type (201) or replaces its description, examples, deprecation and validation mode (200). A schema that differs from the latest version's adds a version. The schema must compile, refer to nothing outside itself and stay within the size, depth and expansion bounds, and each example must validate against it; otherwise a 422 names the place. An archived type's name is a 409. Needs the write scope and a key bound to no tenant: the catalog is the operator's.",
		Tags:         []string{"Event types"},
		MaxBodyBytes: maxBodyBytes,
		Metadata:     operatorOnly,
		Errors:       []int{http.StatusConflict, http.StatusUnprocessableEntity},
		Responses: map[string]*huma.Response{
			"201": {
				Description: "The event type was created.",
				Content:     map[string]*huma.MediaType{"application/json": {Schema: api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[EventTypeBody](), true, "")}},
			},
		},
	}, s.putEventType)

	huma.Register(api, huma.Operation{
		OperationID: "list-event-types",
		Method:      http.MethodGet,
		Path:        "/event-types",
		Summary:     "List event types",
		Description: "The catalog by name; keyset pages. Every key with the read scope may read it, tenant-bound keys included.",
		Tags:        []string{"Event types"},
		Errors:      []int{http.StatusUnprocessableEntity},
	}, s.listEventTypes)

	huma.Register(api, huma.Operation{
		OperationID: "get-event-type",
		Method:      http.MethodGet,
		Path:        "/event-types/{name}",
		Summary:     "Get an event type",
		Description: "The type with its latest schema, archived or not.",
		Tags:        []string{"Event types"},
		Errors:      []int{http.StatusNotFound},
	}, s.getEventType)

	huma.Register(api, huma.Operation{
		OperationID: "list-event-type-versions",
		Method:      http.MethodGet,
		Path:        "/event-types/{name}/versions",
		Summary:     "List an event type's schema versions",
		Tags:        []string{"Event types"},
		Errors:      []int{http.StatusNotFound},
	}, s.listEventTypeVersions)

	huma.Register(api, huma.Operation{
		OperationID:   "delete-event-type",
		Method:        http.MethodDelete,
		Path:          "/event-types/{name}",
		Summary:       "Archive an event type",
		Description:   "Ingest no longer knows the type (its events are not validated; with EVENT_TYPES_REQUIRED they are refused); its name stays reserved and its versions readable. Needs a key bound to no tenant.",
		Tags:          []string{"Event types"},
		DefaultStatus: http.StatusNoContent,
		Metadata:      operatorOnly,
		Errors:        []int{http.StatusNotFound},
	}, s.deleteEventType)
}

// eventTypeOf is a PUT's event type, checked: its name, bounds, schema and
// examples. The error is a 422 naming the place.
func eventTypeOf(name string, in EventTypeInput) (domain.EventType, error) {
	t := domain.EventType{
		Name: name, Description: in.Description, Schema: json.RawMessage(in.Schema),
		Deprecated: in.Deprecated, Validation: domain.SchemaValidation(in.Validation),
		Examples: make([]json.RawMessage, len(in.Examples)),
	}
	if t.Validation == "" {
		t.Validation = domain.ValidationEnforce
	}
	for i, ex := range in.Examples {
		t.Examples[i] = json.RawMessage(ex)
	}
	if err := domain.ValidateEventTypeName("path.name", name); err != nil {
		return t, validation422(err, "")
	}
	if err := domain.ValidateEventType(t); err != nil {
		return t, validation422(err, "body.")
	}
	compiled, err := catalog.Compile(t.Schema)
	if err != nil {
		return t, validation422(err, "body.")
	}
	var details []error
	for i, ex := range t.Examples {
		for _, f := range compiled.Validate(ex, "/examples/"+strconv.Itoa(i)) {
			details = append(details, &huma.ErrorDetail{Location: f.Pointer, Message: f.Message})
		}
	}
	if len(details) > 0 {
		return t, huma.Error422UnprocessableEntity("an example does not validate against the schema", details...)
	}
	return t, nil
}

// validation422 is a *domain.ValidationError as a 422, its field prefixed.
func validation422(err error, prefix string) error {
	return huma.Error422UnprocessableEntity("validation failed", validationDetail(err, prefix))
}

func (s *Server) putEventType(ctx context.Context, in *putEventTypeInput) (*putEventTypeOutput, error) {
	t, err := eventTypeOf(in.Name, in.Body)
	if err != nil {
		return nil, err
	}
	stored, created, err := s.store.PutEventType(ctx, t)
	if err != nil {
		return nil, s.problem(ctx, err, fmt.Sprintf("event type %q is archived; its name stays reserved", in.Name))
	}
	s.refreshCatalog(ctx)
	out := &putEventTypeOutput{Status: http.StatusOK, Body: eventTypeBody(stored)}
	if created {
		out.Status = http.StatusCreated
	}
	return out, nil
}

// refreshCatalog loads the catalog on this instance after a change made
// here; other instances see it within catalog.MaxStaleness.
func (s *Server) refreshCatalog(ctx context.Context) {
	if err := s.catalog.Refresh(ctx); err != nil {
		s.log.WarnContext(ctx, "event-type catalog not refreshed after a change; it is within a second", "err", err)
	}
}

func (s *Server) getEventType(ctx context.Context, in *eventTypeNameInput) (*eventTypeOutput, error) {
	t, err := s.store.GetEventType(ctx, in.Name)
	if err != nil {
		return nil, s.problem(ctx, err, "event type not found")
	}
	return &eventTypeOutput{Body: eventTypeBody(t)}, nil
}

func (s *Server) listEventTypes(ctx context.Context, in *listEventTypesInput) (*listEventTypesOutput, error) {
	f := store.EventTypeFilter{Prefix: in.Prefix, Archived: in.Archived, After: in.After, Limit: in.Limit + 1}
	if in.Deprecated != "" {
		d := in.Deprecated == "true"
		f.Deprecated = &d
	}
	types, err := s.store.ListEventTypes(ctx, f)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	out := &listEventTypesOutput{}
	types, out.Body.NextCursor = keysetPage(types, in.Limit, func(t domain.EventType) string { return t.Name })
	out.Body.Data = make([]EventTypeBody, len(types))
	for i, t := range types {
		out.Body.Data[i] = eventTypeBody(t)
	}
	return out, nil
}

func (s *Server) listEventTypeVersions(ctx context.Context, in *eventTypeNameInput) (*eventTypeVersionsOutput, error) {
	vs, err := s.store.ListEventTypeVersions(ctx, in.Name)
	if err != nil {
		return nil, s.problem(ctx, err, "event type not found")
	}
	out := &eventTypeVersionsOutput{}
	out.Body.Data = make([]EventTypeVersionBody, len(vs))
	for i, v := range vs {
		b := EventTypeVersionBody{Version: v.Version, Schema: JSONValue(v.Schema), Examples: make([]JSONObject, len(v.Examples)), CreatedAt: v.CreatedAt}
		for j, ex := range v.Examples {
			b.Examples[j] = JSONObject(ex)
		}
		out.Body.Data[i] = b
	}
	return out, nil
}

func (s *Server) deleteEventType(ctx context.Context, in *eventTypeNameInput) (*struct{}, error) {
	if err := s.store.ArchiveEventType(ctx, in.Name); err != nil {
		return nil, s.problem(ctx, err, "event type not found")
	}
	s.refreshCatalog(ctx)
	return nil, nil
}

// errSchemaInvalid is why an enforced event was refused.
type errSchemaInvalid struct {
	failures []catalog.Failure
	entry    *catalog.Entry
}

func (e errSchemaInvalid) Error() string {
	return fmt.Sprintf("data does not follow the schema of event type %q (version %d)", e.entry.Name, e.entry.Version)
}

func (e errSchemaInvalid) details() []*huma.ErrorDetail {
	ds := make([]*huma.ErrorDetail, len(e.failures))
	for i, f := range e.failures {
		ds[i] = &huma.ErrorDetail{Location: f.Pointer, Message: f.Message}
	}
	return ds
}

// errUnknownType refuses an event whose type the catalog does not have
// while EVENT_TYPES_REQUIRED is on.
var errUnknownType = errors.New("is not in the event-type catalog (GET /event-types), and EVENT_TYPES_REQUIRED is on")

// checkSchema validates e's data against its type's schema, when the
// catalog has the type and its validation is not off, and records the
// version and verdict on e. It returns errSchemaInvalid for an enforced
// type whose data does not validate, a *domain.ValidationError for an
// unknown type while types are required.
// pointer is where the event's data is in the request body ("/data");
// decoded, if not nil, is the data already decoded with json.Number.
// types is the catalog as the request sees it (catalog.Cache.Types).
func (s *Server) checkSchema(types catalog.Types, e *domain.Event, decoded any, pointer string) error {
	entry := types.Lookup(e.Type)
	if entry == nil {
		if s.typesRequired {
			return &domain.ValidationError{Field: "type", Reason: fmt.Sprintf("%q %s", e.Type, errUnknownType)}
		}
		return nil
	}
	if entry.Validation == domain.ValidationOff || entry.Schema == nil {
		return nil
	}
	var failures []catalog.Failure
	if decoded != nil {
		failures = entry.Schema.ValidateValue(decoded, pointer)
	} else {
		failures = entry.Schema.Validate(e.Data, pointer)
	}
	valid := len(failures) == 0
	e.SchemaVersion, e.SchemaValid = entry.Version, &valid
	if !valid && entry.Validation == domain.ValidationEnforce {
		s.schemaInvalid.WithLabelValues(string(domain.ValidationEnforce)).Inc()
		return errSchemaInvalid{failures: failures, entry: entry}
	}
	return nil
}

// countStored counts a stored event that its schema found invalid (warn).
func (s *Server) countStored(e domain.Event) {
	if e.SchemaValid != nil && !*e.SchemaValid {
		s.schemaInvalid.WithLabelValues(string(domain.ValidationWarn)).Inc()
	}
}

// asErrors is details as the errors of a problem answer.
func asErrors(details []*huma.ErrorDetail) []error {
	errs := make([]error, len(details))
	for i, d := range details {
		errs[i] = d
	}
	return errs
}
