package api

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/validation"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// retryAfter is how long a client is asked to wait after a 503: long
// enough for a restarted database or a failover, short enough that an
// event is not held back for long.
const retryAfter = 5 * time.Second

// ErrorModel is every error answer: RFC 9457 problem+json with the
// request's id as an extension member, so a client's report can be
// matched with the server's log lines.
type ErrorModel struct {
	huma.ErrorModel
	RequestID string `json:"request_id,omitempty" example:"01J9Z6C4V3Q8M2K7H5T0R1N6WB" doc:"The request's X-Request-ID, as in the server's logs."`
}

// problem maps domain errors to problem+json answers. Anything unexpected
// is logged and answered as a 500 without internal detail.
func (s *Server) problem(ctx context.Context, err error, msg string) error {
	var (
		ve      *domain.ValidationError
		tooSoon *domain.TooSoonError
	)
	switch {
	case errors.As(err, &ve):
		return huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{
			Location: "body." + ve.Field,
			Message:  ve.Reason,
		})
	case errors.As(err, &tooSoon):
		// Whole seconds, rounded up: a client that waits as told is let in.
		wait := max(1, int((tooSoon.RetryAfter+time.Second-1)/time.Second))
		return huma.ErrorWithHeaders(huma.Error429TooManyRequests(tooSoon.Error()), http.Header{"Retry-After": {strconv.Itoa(wait)}})
	case errors.Is(err, domain.ErrNotFound):
		return huma.Error404NotFound(msg)
	case errors.Is(err, domain.ErrConflict):
		return huma.Error409Conflict(msg)
	case errors.Is(err, domain.ErrUnavailable):
		s.log.WarnContext(ctx, "database unavailable", "request_id", RequestID(ctx), "err", err)
		return huma.ErrorWithHeaders(
			huma.Error503ServiceUnavailable("database temporarily unavailable; retry the request (posting the same event id again is safe)"),
			http.Header{"Retry-After": {strconv.Itoa(int(retryAfter.Seconds()))}})
	default:
		s.log.ErrorContext(ctx, "request failed", "request_id", RequestID(ctx), "err", err)
		return huma.NewError(http.StatusInternalServerError, "internal error")
	}
}

// addRequestID is a Huma transformer: it writes the request's id into
// every error answer, those Huma makes itself (a malformed body) included.
func addRequestID(ctx huma.Context, _ string, v any) (any, error) {
	if p, ok := v.(*ErrorModel); ok && p.RequestID == "" {
		p.RequestID = RequestID(ctx.Context())
	}
	return v, nil
}

// documentErrors adds to an operation's OpenAPI description the answers
// every operation may give: 503 with Retry-After while the database is
// away, 422 for a bad path or query value, and 400 (not JSON), 413, 415
// and 422 for a body; and the Retry-After header of an operation's 429.
func documentErrors(oapi *huma.OpenAPI, op *huma.Operation) {
	codes := []int{http.StatusServiceUnavailable}
	if len(op.Parameters) > 0 {
		codes = append(codes, http.StatusUnprocessableEntity)
	}
	if op.RequestBody != nil {
		codes = append(codes, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity)
	}
	schema := oapi.Components.Schemas.Schema(reflect.TypeFor[ErrorModel](), true, "")
	for _, code := range codes {
		key := strconv.Itoa(code)
		if _, ok := op.Responses[key]; ok {
			continue
		}
		r := &huma.Response{
			Description: http.StatusText(code),
			Content:     map[string]*huma.MediaType{"application/problem+json": {Schema: schema}},
		}
		if code == http.StatusServiceUnavailable {
			r.Headers = map[string]*huma.Param{"Retry-After": {
				Description: "Seconds to wait before retrying.",
				Schema:      &huma.Schema{Type: huma.TypeInteger},
			}}
		}
		op.Responses[key] = r
	}
	if r, ok := op.Responses[strconv.Itoa(http.StatusTooManyRequests)]; ok && r.Headers == nil {
		r.Headers = map[string]*huma.Param{"Retry-After": {
			Description: "Seconds to wait before trying again.",
			Schema:      &huma.Schema{Type: huma.TypeInteger},
		}}
	}
}

var requiredPrefix, requiredSuffix, _ = strings.Cut(validation.MsgExpectedRequiredProperty, "%s")

// errorDetail is err as a problem's detail. A missing required property is
// reported at the property itself (see init).
func errorDetail(err error) *huma.ErrorDetail {
	detailer, ok := err.(huma.ErrorDetailer)
	if !ok {
		return &huma.ErrorDetail{Message: err.Error()}
	}
	d := detailer.ErrorDetail()
	if name, ok := strings.CutPrefix(d.Message, requiredPrefix); ok {
		if name, ok = strings.CutSuffix(name, requiredSuffix); ok {
			d.Location += "." + name
		}
	}
	return d
}

// Huma reports a missing required property at its parent's location
// ("body") with the property's name only in the message. Clients act on
// the location, so point it at the property itself ("body.id").
// Every error is an *ErrorModel, so it can carry the request's id.
func init() {
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		details := make([]*huma.ErrorDetail, 0, len(errs))
		for _, err := range errs {
			if err != nil {
				details = append(details, errorDetail(err))
			}
		}
		return &ErrorModel{ErrorModel: huma.ErrorModel{Status: status, Title: http.StatusText(status), Detail: msg, Errors: details}}
	}
	// encoding/json matches member names regardless of case; a strict API
	// refuses {"ID": …} as an unknown member instead of taking it as "id".
	huma.ValidateStrictCasing = true
}
