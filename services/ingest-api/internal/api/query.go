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
	return encodeTimeCursor(p.Time, p.ID)
}

// badCursor says what is wrong with a cursor the API did not hand out.
const badCursor = "is not a cursor from this API: pass next_cursor of the previous answer as it is"

func encodeTimeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMicro(), 10) + ":" + id))
}

// Cursor times are bounded by what the API can write as RFC 3339 (years
// 0000–9999), well inside PostgreSQL's range: every time it hands out in a
// cursor is one, and a time outside would reach PostgreSQL as an error or,
// at the ends of int64, as ±infinity, which matches every row or none.
var (
	minCursorTime = time.Date(0, time.January, 1, 0, 0, 0, 0, time.UTC)
	maxCursorTime = time.Date(9999, time.December, 31, 23, 59, 59, 999999000, time.UTC)
)

// notACursor is the 422 for an after parameter this API did not hand out.
// Each answer gets its own error: the answer's request id is written into it.
func notACursor() error {
	return queryProblem("after", badCursor)
}

// decodeTimeCursor reads a cursor of encodeTimeCursor's form whose id
// validID accepts. Only the exact text encodeTimeCursor would give for the
// position is a cursor: no padding or other base64 spellings, no sign or
// leading zeros, no time out of range.
func decodeTimeCursor(s string, validID func(string) bool) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", notACursor()
	}
	micros, id, ok := strings.Cut(string(raw), ":")
	if !ok || !validID(id) {
		return time.Time{}, "", notACursor()
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return time.Time{}, "", notACursor()
	}
	t := time.UnixMicro(us).UTC()
	if t.Before(minCursorTime) || t.After(maxCursorTime) || encodeTimeCursor(t, id) != s {
		return time.Time{}, "", notACursor()
	}
	return t, id, nil
}

// decodeCursor reads the after parameter of a listing by time and event
// id; "" is the first page. Anything that is not a cursor this API handed
// out, including NUL bytes and invalid UTF-8, is a 422 on query.after.
func decodeCursor(s string) (*store.Position, error) {
	p, ok := parseCursor(s)
	if !ok {
		return nil, notACursor()
	}
	return p, nil
}

// parseCursor reads a cursor; "" is the start (nil). ok is false for
// anything encodeCursor did not write.
func parseCursor(s string) (_ *store.Position, ok bool) {
	if s == "" {
		return nil, true
	}
	t, id, err := decodeTimeCursor(s, func(id string) bool { return domain.ValidateEventID(id) == nil })
	if err != nil {
		return nil, false
	}
	return &store.Position{Time: t, ID: id}, true
}

// encodeAttemptCursor is an attempt's cursor: its start and its id, in
// encodeCursor's form.
func encodeAttemptCursor(p store.AttemptPosition) string {
	return encodeTimeCursor(p.StartedAt, strconv.FormatInt(p.ID, 10))
}

// decodeAttemptCursor reads the after parameter of an event's attempts;
// "" is the first page. The id is an attempt's: a positive integer,
// written without sign or leading zeros.
func decodeAttemptCursor(s string) (*store.AttemptPosition, error) {
	if s == "" {
		return nil, nil
	}
	var id int64
	t, _, err := decodeTimeCursor(s, func(s string) bool {
		n, err := strconv.ParseInt(s, 10, 64)
		id = n
		return err == nil && n > 0 && strconv.FormatInt(n, 10) == s
	})
	if err != nil {
		return nil, err
	}
	return &store.AttemptPosition{StartedAt: t, ID: id}, nil
}

// decodeIDCursor reads the after parameter of a listing by subscription
// id (GET /subscriptions, GET /events/{id}/deliveries), whose cursor is
// the last id itself; "" is the first page.
func decodeIDCursor(s string) (string, error) {
	if s != "" && domain.ValidateSubscriptionID(s) != nil {
		return "", notACursor()
	}
	return s, nil
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
