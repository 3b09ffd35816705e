package api

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// A cursor is an opaque page position for clients: base64url (no padding)
// of "<unix microseconds>:<id>", the keyset values of the page's last item.
// PostgreSQL keeps microseconds, so the position is exact. With ids of at
// most domain.MaxIDLength characters a cursor stays under 400 characters,
// the after parameter's bound.
func encodeCursor(p store.Position) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(p.Time.UnixMicro(), 10) + ":" + p.ID))
}

// badCursor says what is wrong with a cursor the API did not hand out.
const badCursor = "is not a cursor from this API: pass next_cursor of the previous answer as it is"

// decodeCursor reads the after parameter; "" is the first page. Anything
// that is not a cursor this API handed out, including NUL bytes and
// invalid UTF-8, is a 422 on query.after.
func decodeCursor(s string) (*store.Position, error) {
	p, ok := parseCursor(s)
	if !ok {
		return nil, queryProblem("after", badCursor)
	}
	return p, nil
}

// parseCursor reads a cursor; "" is the start (nil). ok is false for
// anything encodeCursor did not write.
func parseCursor(s string) (_ *store.Position, ok bool) {
	if s == "" {
		return nil, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	micros, id, ok := strings.Cut(string(raw), ":")
	if !ok || domain.ValidateEventID(id) != nil {
		return nil, false
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return nil, false
	}
	return &store.Position{Time: time.UnixMicro(us), ID: id}, true
}

// queryProblem is a 422 naming a query parameter.
func queryProblem(param, reason string) error {
	return huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{
		Location: "query." + param,
		Message:  reason,
	})
}

// queryValidation turns a domain validation error about a query parameter
// into a 422 naming it.
func queryValidation(err error) error {
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		return queryProblem(ve.Field, ve.Reason)
	}
	return err
}

// checkTimeRange refuses an until that is not after since.
func checkTimeRange(since, until time.Time) error {
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return queryProblem("until", "must be after since")
	}
	return nil
}
