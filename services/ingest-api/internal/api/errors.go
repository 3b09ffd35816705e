package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/validation"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// problem maps domain errors to problem+json answers. Anything unexpected
// is logged and answered as a 500 without internal detail.
func (s *Server) problem(err error, msg string) error {
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &ve):
		return huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{
			Location: "body." + ve.Field,
			Message:  ve.Reason,
		})
	case errors.Is(err, domain.ErrNotFound):
		return huma.Error404NotFound(msg)
	case errors.Is(err, domain.ErrConflict):
		return huma.Error409Conflict(msg)
	case errors.Is(err, domain.ErrUnavailable):
		s.log.Warn("database unavailable", "err", err)
		return huma.Error503ServiceUnavailable("database temporarily unavailable; retry the request (posting the same event id again is safe)")
	default:
		s.log.Error("request failed", "err", err)
		return huma.NewError(http.StatusInternalServerError, "internal error")
	}
}

// Huma reports a missing required property at its parent's location
// ("body") with the property's name only in the message. Clients act on
// the location, so point it at the property itself ("body.id").
func init() {
	base := huma.NewError
	prefix, suffix, _ := strings.Cut(validation.MsgExpectedRequiredProperty, "%s")
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		for _, err := range errs {
			var d *huma.ErrorDetail
			if !errors.As(err, &d) {
				continue
			}
			if name, ok := strings.CutPrefix(d.Message, prefix); ok {
				if name, ok = strings.CutSuffix(name, suffix); ok {
					d.Location += "." + name
				}
			}
		}
		return base(status, msg, errs...)
	}
}
