package api

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// A subscription's custom headers (ADR 39): set on create and by PATCH,
// shown masked, revealed by the keys that may reveal its secret.

// maskedValue stands for every custom header value in answers: the values
// are often credentials, so their length is not shown either.
const maskedValue = "********"

// maxSubscriptionBodyBytes bounds the body of POST and PATCH
// /subscriptions: above the general bound, so that an oversized header
// value (up to a megabyte or so) is answered with a 422 naming the header
// rather than a 413 about the body.
const maxSubscriptionBodyBytes = 2 << 20

// headersDoc describes the headers field of a PATCH; a create's says the
// same in its tag.
const headersDoc = "Custom headers added to every delivery, by name (at most 20, values at most 4096 bytes). " +
	"Not allowed: Host, Content-Length, Content-Type, User-Agent, hop-by-hop headers, traceparent, tracestate, X-Dispatch-* and webhook-*. " +
	"Values are stored encrypted and shown masked; POST /subscriptions/{id}/headers/reveal shows them."

// masked returns headers' names, each with maskedValue; nil when there
// are none.
func masked(headers map[string]string) map[string]string {
	if len(headers) == 0 {
		return nil
	}
	out := make(map[string]string, len(headers))
	for name := range maps.Keys(headers) {
		out[name] = maskedValue
	}
	return out
}

// headersPatch is the headers field of a PATCH: absent leaves the headers
// as they are; an object replaces them all; null or {} removes them.
type headersPatch struct {
	Sent   bool
	Values map[string]string
}

// UnmarshalJSON records that the field was sent, null included.
func (h *headersPatch) UnmarshalJSON(b []byte) error {
	h.Sent = true
	if string(b) == "null" {
		h.Values = nil
		return nil
	}
	return json.Unmarshal(b, &h.Values)
}

// Schema describes the field as a nullable object of strings.
func (headersPatch) Schema(huma.Registry) *huma.Schema {
	most := domain.MaxCustomHeaders
	return &huma.Schema{
		Type: huma.TypeObject, Nullable: true, MaxProperties: &most,
		AdditionalProperties: &huma.Schema{Type: huma.TypeString},
		Description:          headersDoc + " null or {} removes them all; an object replaces them all.",
	}
}

// HeadersRevealed is a subscription's custom headers with their values.
type HeadersRevealed struct {
	Headers map[string]string `json:"headers" doc:"The custom headers, by name, with their values."`
}

type revealHeadersOutput struct {
	Body HeadersRevealed
}

func (s *Server) registerHeaders(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "reveal-subscription-headers",
		Method:      http.MethodPost,
		Path:        "/subscriptions/{id}/headers/reveal",
		Summary:     "Show a subscription's custom header values",
		Description: "Answers the custom headers with their values, which every other answer masks. The keys that may reveal the signing secret may: a customer portal session's key (of the subscription's tenant, not read-only) and an admin key; any other key is refused (403). Each reveal is logged with the key's id and the subscription's.",
		Tags:        []string{"Subscriptions"},
		Errors:      []int{http.StatusNotFound},
	}, s.revealHeaders)
}

func (s *Server) revealHeaders(ctx context.Context, in *subscriptionIDInput) (*revealHeadersOutput, error) {
	p := who(ctx)
	if !p.portal && !domain.Grants(p.scopes, domain.ScopeAdmin) {
		return nil, huma.Error403Forbidden("showing header values needs a customer portal session's key or an admin key")
	}
	headers, err := s.store.RevealHeaders(ctx, scopeOf(ctx), in.ID)
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	s.log.InfoContext(ctx, "subscription headers revealed", "key_id", p.keyID, "subscription_id", in.ID, "request_id", RequestID(ctx))
	if headers == nil {
		headers = map[string]string{}
	}
	return &revealHeadersOutput{Body: HeadersRevealed{Headers: headers}}, nil
}
