package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// maxBodyBytes is every operation's body limit as Huma counts it: Huma
// refuses a body that reaches its limit, the API one that exceeds
// domain.MaxRequestBodySize.
const maxBodyBytes = domain.MaxRequestBodySize + 1

// bodyLimitKey, in an operation's Metadata, raises its body limit from
// domain.MaxRequestBodySize to the int it holds (in bytes). Huma's own
// limit, the operation's MaxBodyBytes, must be above it.
const bodyLimitKey = "dispatch.bodyLimit"

// bodyLimit is the largest body op takes.
func bodyLimit(op *huma.Operation) int {
	if n, ok := op.Metadata[bodyLimitKey].(int); ok {
		return n
	}
	return domain.MaxRequestBodySize
}

// maxBodyDepth bounds the nesting of any request body before it is
// decoded; event data has its own, lower bound (domain.MaxJSONDepth).
const maxBodyDepth = 10000

// guard is a Huma middleware that refuses, before anything is decoded,
// what decoding would pass on to PostgreSQL or repair in silence:
//
//   - path and query values that are not UTF-8 or hold control characters
//     (PostgreSQL refuses NUL in text; the others have no place in an id);
//   - a body over domain.MaxRequestBodySize, or the operation's own limit
//     (bodyLimitKey): 413;
//   - a body that is not declared application/json (415): browsers send
//     other types across origins without asking first, so this keeps web
//     pages from posting to the API;
//   - JSON text with invalid UTF-8, \u0000 or unpaired surrogate escapes
//     anywhere, which Go's decoder would replace or keep and PostgreSQL
//     refuses, or with an object naming a member twice, of which the
//     decoder would keep the last in silence (422 naming the member).
//     An operation that validates its body itself (SkipValidateBody:
//     POST /events/batch, event by event) checks this too, so that one
//     bad part fails only itself; the guard only refuses malformed JSON
//     for it (400).
func guard(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		for _, p := range op.Parameters {
			var v string
			switch p.In {
			case "path":
				v = ctx.Param(p.Name)
			case "query":
				v = ctx.Query(p.Name)
			default:
				continue
			}
			if err := domain.ValidateText(p.In+"."+p.Name, v); err != nil {
				writeInvalid(api, ctx, err)
				return
			}
		}
		if op.RequestBody == nil {
			next(ctx)
			return
		}
		r, _ := humago.Unwrap(ctx)
		limit := bodyLimit(op)
		raw, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
		if err != nil {
			var nerr net.Error
			if errors.As(err, &nerr) && nerr.Timeout() {
				_ = huma.WriteErr(api, ctx, http.StatusRequestTimeout, "request body read timeout")
				return
			}
			_ = huma.WriteErr(api, ctx, http.StatusBadRequest, "cannot read request body")
			return
		}
		if len(raw) > limit {
			_ = huma.WriteErr(api, ctx, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", limit))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if len(raw) == 0 {
			next(ctx) // Huma answers a missing required body
			return
		}
		if mt, _, err := mime.ParseMediaType(ctx.Header("Content-Type")); err != nil || mt != "application/json" {
			_ = huma.WriteErr(api, ctx, http.StatusUnsupportedMediaType, "the body must be sent as Content-Type: application/json")
			return
		}
		switch {
		case op.SkipValidateBody:
			if !json.Valid(raw) {
				_ = huma.WriteErr(api, ctx, http.StatusBadRequest, "the body is not valid JSON (or nests more than 10000 deep)")
				return
			}
		case json.Valid(raw): // Huma answers malformed JSON itself
			if err := domain.ValidateJSONText("body", raw, maxBodyDepth); err != nil {
				writeInvalid(api, ctx, err)
				return
			}
		}
		next(ctx)
	}
}

// writeInvalid answers a *domain.ValidationError whose field is a full
// location ("path.id", "body.data.x") as a 422.
func writeInvalid(api huma.API, ctx huma.Context, err error) {
	d := &huma.ErrorDetail{Message: err.Error()}
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		d.Location, d.Message = ve.Field, ve.Reason
	}
	_ = huma.WriteErr(api, ctx, http.StatusUnprocessableEntity, "validation failed", d)
}
