package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// PortalLinkCreated is a new portal link, shown only here.
type PortalLinkCreated struct {
	ID        string    `json:"id" example:"pl_3mq7x0c2v9k1b4n8" doc:"The link's id; not secret."`
	URL       string    `json:"url" example:"https://portal.example.com/portal/open?token=dpl_..." doc:"Opens the tenant's portal once. Shown only here: hand it to the customer at once (redirect, or an iframe's src)."`
	ExpiresAt time.Time `json:"expires_at" doc:"When the link stops opening and the session it opened ends."`
	ReadOnly  bool      `json:"read_only"`
}

type createPortalLinkInput struct {
	ID string `path:"id" maxLength:"255"`
	// Body is optional: without one the link takes every default.
	Body *portalLinkOptions
}

// portalLinkOptions are what a portal link carries besides its tenant.
type portalLinkOptions struct {
	ExpiresIn string `json:"expires_in,omitempty" maxLength:"32" default:"1h" example:"1h" doc:"How long the link opens and its session lasts: a duration such as 30m, 1h or 48h, from 5m to 168h (7 days)."`
	ReadOnly  bool   `json:"read_only,omitempty" doc:"The session sees every page and may change nothing."`
	ReturnURL string `json:"return_url,omitempty" maxLength:"2048" example:"https://app.example.com/settings/webhooks" doc:"Where the portal's 'Back' link leads; its origin must be in the API's PORTAL_RETURN_ORIGINS."`
}

type createPortalLinkOutput struct {
	Body PortalLinkCreated
}

type revokePortalOutput struct {
	Body struct {
		LinksRevoked  int64 `json:"links_revoked" doc:"Links that could still have been opened."`
		SessionsEnded int64 `json:"sessions_ended" doc:"Portal sessions that had not yet expired."`
	}
}

// PortalSessionBody is what opening a portal link gives the portal.
type PortalSessionBody struct {
	Key        string    `json:"key" doc:"An API key bound to the tenant (read, and write unless read_only) that expires with the session, and that may call only the operations the portal makes, without operator settings: whoever holds it can do what the portal offers and nothing more. The portal's session holds it; never shown to anyone."`
	KeyID      string    `json:"key_id"`
	TenantID   string    `json:"tenant_id"`
	TenantName string    `json:"tenant_name"`
	ReadOnly   bool      `json:"read_only"`
	ReturnURL  string    `json:"return_url,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
}

type exchangePortalLinkInput struct {
	Body struct {
		Token string `json:"token" minLength:"1" maxLength:"128" doc:"The token of a portal link's URL."`
	}
}

type exchangePortalLinkOutput struct {
	Body PortalSessionBody
}

// publicKey, in an operation's Metadata, lets it be called without a key:
// what it is sent is the credential.
const publicKey = "dispatch.public"

func public(op *huma.Operation) bool {
	p, _ := op.Metadata[publicKey].(bool)
	return p
}

// portalLinkPaths start the operations the portal scope may call.
const portalLinkPaths = "/tenants/{id}/portal-links"

func (s *Server) registerPortal(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID:   "create-portal-link",
		Method:        http.MethodPost,
		Path:          portalLinkPaths,
		Summary:       "Create a link to a tenant's customer portal",
		Description:   "Answers a single-use URL that opens the tenant's portal: its endpoints, event log and deliveries, nothing of any other tenant. Only the token's hash is stored. Needs the admin or portal scope and a key bound to no tenant.",
		Tags:          []string{"Portal"},
		DefaultStatus: http.StatusCreated,
		MaxBodyBytes:  4 << 10,
		Metadata:      map[string]any{operatorOnlyKey: true},
		Errors:        []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, s.createPortalLink)

	huma.Register(api, huma.Operation{
		OperationID: "revoke-portal-links",
		Method:      http.MethodPost,
		Path:        portalLinkPaths + "/revoke",
		Summary:     "End every portal link and session of a tenant",
		Description: "Links stop opening and every open portal session of the tenant ends at its next request. Needs the admin or portal scope and a key bound to no tenant.",
		Tags:        []string{"Portal"},
		Metadata:    map[string]any{operatorOnlyKey: true},
		Errors:      []int{http.StatusNotFound},
	}, s.revokePortalLinks)

	huma.Register(api, huma.Operation{
		OperationID:  "exchange-portal-link",
		Method:       http.MethodPost,
		Path:         "/portal-links/exchange",
		Summary:      "Open a portal link",
		Description:  "The portal calls this when a customer opens a link: it consumes the link (once: of two openings at once exactly one succeeds) and answers the session's key. Needs no API key: the token is the credential. A token that is unknown, used, expired or revoked is a 404; a client with too many such failures gets 429 with Retry-After, as for API keys.",
		Tags:         []string{"Portal"},
		Security:     []map[string][]string{{}},
		MaxBodyBytes: 4 << 10,
		Metadata:     map[string]any{publicKey: true},
		Errors:       []int{http.StatusNotFound, http.StatusTooManyRequests},
	}, s.exchangePortalLink)
}

func (s *Server) createPortalLink(ctx context.Context, in *createPortalLinkInput) (*createPortalLinkOutput, error) {
	opts := portalLinkOptions{}
	if in.Body != nil {
		opts = *in.Body
	}
	ttl := domain.DefaultPortalLinkTTL
	if opts.ExpiresIn != "" {
		d, err := time.ParseDuration(opts.ExpiresIn)
		if err != nil {
			return nil, s.problem(ctx, &domain.ValidationError{Field: "expires_in", Reason: "must be a duration such as 30m, 1h or 48h"}, "")
		}
		ttl = d
	}
	if err := domain.ValidatePortalLinkTTL("expires_in", ttl); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	if opts.ReturnURL != "" {
		if err := validReturnURL(opts.ReturnURL, s.portalReturnOrigins); err != nil {
			return nil, s.problem(ctx, err, "")
		}
	}
	if err := domain.ValidateTenantID("id", in.ID); err != nil {
		return nil, huma.Error404NotFound("tenant not found")
	}
	token, hash := apikey.NewPortalToken()
	l, err := s.store.CreatePortalLink(ctx, domain.PortalLink{ID: apikey.NewPortalLinkID(), TenantID: in.ID, ReadOnly: opts.ReadOnly,
		ReturnURL: opts.ReturnURL, ExpiresAt: s.clock.Now().Add(ttl)}, hash)
	if err != nil {
		return nil, s.problem(ctx, err, "tenant not found")
	}
	return &createPortalLinkOutput{Body: PortalLinkCreated{ID: l.ID, URL: s.portalURL + "/open?token=" + token, ExpiresAt: l.ExpiresAt, ReadOnly: l.ReadOnly}}, nil
}

func (s *Server) revokePortalLinks(ctx context.Context, in *tenantIDInput) (*revokePortalOutput, error) {
	r, err := s.store.RevokePortal(ctx, in.ID)
	if err != nil {
		return nil, s.problem(ctx, err, "tenant not found")
	}
	s.auth.forgetWhere(func(k domain.APIKey) bool { return k.Portal && k.TenantID == in.ID })
	out := &revokePortalOutput{}
	out.Body.LinksRevoked, out.Body.SessionsEnded = r.Links, r.Sessions
	return out, nil
}

func (s *Server) exchangePortalLink(ctx context.Context, in *exchangePortalLinkInput) (*exchangePortalLinkOutput, error) {
	const gone = "this portal link is unknown, used, expired or revoked"
	token := strings.TrimSpace(in.Body.Token)
	if !apikey.WellFormedPortalToken(token) {
		// No link has such a token: nothing to look up (ADR 36).
		return nil, huma.Error404NotFound(gone)
	}
	// Each lookup costs one of the client's failures, given back when the
	// link opens, as a key's does (ADR 36).
	refund, err := s.auth.charge(ctx)
	var throttled *tooManyFailures
	if errors.As(err, &throttled) {
		return nil, huma.ErrorWithHeaders(huma.Error429TooManyRequests(err.Error()),
			http.Header{"Retry-After": {strconv.Itoa(retryAfterSeconds(throttled.retryAfter))}})
	}
	key, keyHash := apikey.New()
	ps, err := s.store.OpenPortalLink(ctx, apikey.HashOf(token),
		domain.APIKey{ID: apikey.NewID(), Name: "portal session", Prefix: apikey.Display(key)}, keyHash)
	if err != nil {
		return nil, s.problem(ctx, err, gone)
	}
	refund()
	s.auth.forgetHash(keyHash)
	return &exchangePortalLinkOutput{Body: PortalSessionBody{Key: key, KeyID: ps.Key.ID, TenantID: ps.Link.TenantID, TenantName: ps.TenantName,
		ReadOnly: ps.Link.ReadOnly, ReturnURL: ps.Link.ReturnURL, ExpiresAt: ps.Link.ExpiresAt}}, nil
}

// validReturnURL checks a portal link's return URL: an absolute http or
// https URL without credentials whose origin is one of origins.
func validReturnURL(raw string, origins []string) error {
	bad := func(reason string) error { return &domain.ValidationError{Field: "return_url", Reason: reason} }
	if err := domain.ValidateText("return_url", raw); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return bad("must be an absolute http or https URL without credentials")
	}
	if !slices.Contains(origins, u.Scheme+"://"+u.Host) {
		if len(origins) == 0 {
			return bad("return URLs are not allowed: PORTAL_RETURN_ORIGINS lists none")
		}
		return bad("its origin " + u.Scheme + "://" + u.Host + " is not in PORTAL_RETURN_ORIGINS")
	}
	return nil
}
