package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/web"
)

// apiError is an answer of the API that was not the one hoped for, or no
// answer at all (Status 0).
type apiError struct {
	// Status is the API's HTTP status; 0 when it did not answer.
	Status int
	// Detail is the problem's detail (or title), as the API wrote it.
	Detail string
	// RequestID is the API's request id, to find its log lines.
	RequestID string
	// Fields maps a field name ("url", "type", "event_types") to the
	// problem with it, from the problem's errors[].location.
	Fields web.Errors
	// Paths maps the location below body or query, indices dropped
	// ("tls.client_key", "oauth2.scopes"), to the problem there: for forms
	// whose fields are the parts of one field of the API.
	Paths web.Errors
	cause error
}

func (e *apiError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("API unreachable: %v", e.cause)
	}
	return fmt.Sprintf("API answered %d: %s", e.Status, e.Detail)
}

// unreachable is a call that got no answer.
func unreachable(err error) *apiError { return &apiError{cause: err} }

// problem reads the API's problem+json answer; a body that is not one
// still gives an error with the status.
func problem(status int, body []byte) *apiError {
	e := &apiError{Status: status, Fields: web.Errors{}, Paths: web.Errors{}}
	var p client.ErrorModel
	if json.Unmarshal(body, &p) != nil {
		return e
	}
	if p.Detail != nil {
		e.Detail = *p.Detail
	} else if p.Title != nil {
		e.Detail = *p.Title
	}
	if p.RequestId != nil {
		e.RequestID = *p.RequestId
	}
	if p.Errors != nil {
		for _, d := range *p.Errors {
			msg := ""
			if d.Message != nil {
				msg = *d.Message
			}
			field, path := "", ""
			if d.Location != nil {
				field, path = fieldOf(*d.Location), pathOf(*d.Location)
			}
			if _, seen := e.Fields[field]; !seen {
				e.Fields[field] = msg
			}
			if _, seen := e.Paths[path]; !seen && path != "" {
				e.Paths[path] = msg
			}
		}
	}
	return e
}

// fieldOf names the form field a problem location is about:
// body.url → url, body.event_types[1] → event_types, query.type → type,
// body.data.items[2] → data.
func fieldOf(location string) string {
	_, rest, ok := strings.Cut(location, ".")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, ".["); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// pathOf is a problem location below body or query, without indices:
// body.tls.client_key → tls.client_key, body.oauth2.scopes[1] →
// oauth2.scopes.
func pathOf(location string) string {
	_, rest, ok := strings.Cut(location, ".")
	if !ok {
		return ""
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], ']')
		if j < 0 {
			return b.String()
		}
		rest = rest[i+j+1:]
	}
}

// fieldsUnder copies the problems located under prefix ("tls") into
// errs, named by what follows it ("client_key"); one at prefix itself is
// named prefix.
func (e *apiError) fieldsUnder(prefix string, errs web.Errors) {
	for path, msg := range e.Paths {
		if path == prefix {
			errs[prefix] = msg
		} else if f, ok := strings.CutPrefix(path, prefix+"."); ok {
			errs[f] = msg
		}
	}
}

// asAPIError returns err as an *apiError, wrapping anything else as an
// unreachable API.
func asAPIError(err error) *apiError {
	var e *apiError
	if errors.As(err, &e) {
		return e
	}
	return unreachable(err)
}

// message is what an operator reads about e: what went wrong and what to
// do, never a stack trace or a raw server error.
func (e *apiError) message() string {
	switch {
	case e.Status == 0:
		return "The Dispatch API did not answer. Check that the ingest-api is running and try again."
	case e.Status == http.StatusForbidden:
		return "The API refused this with your key: " + e.Detail
	case e.Status == http.StatusNotFound:
		return "Not found: " + e.Detail
	case e.Status == http.StatusServiceUnavailable:
		return "The API is unavailable for a moment (its database or keys cannot be read). Try again shortly."
	case e.Status >= 500:
		msg := fmt.Sprintf("The API could not complete this (HTTP %d).", e.Status)
		if e.RequestID != "" {
			msg += " Its logs have the details under request id " + e.RequestID + "."
		}
		return msg
	case len(e.Fields) > 0 && e.Fields[""] == "" && e.Detail != "":
		return "Not saved: " + e.Detail + " (see the fields below)."
	default:
		if e.Fields[""] != "" {
			return e.Fields[""]
		}
		return e.Detail
	}
}

// httpStatus is the dashboard's answer for e: the API's 4xx as it is, a
// gateway error for anything worse.
func (e *apiError) httpStatus() int {
	switch {
	case e.Status == 0:
		return http.StatusBadGateway
	case e.Status == http.StatusServiceUnavailable:
		return http.StatusServiceUnavailable
	case e.Status >= 500:
		return http.StatusBadGateway
	case e.Status >= 400:
		return e.Status
	default:
		return http.StatusBadGateway
	}
}
