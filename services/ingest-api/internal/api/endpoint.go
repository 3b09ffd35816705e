package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// What the customer portal (ADR 32) needs of a subscription beyond the
// dashboard: its secret on request and its recent attempts counted (GET
// /subscriptions?activity=true); a test event to it alone is testsend.go.

// SecretRevealed is a subscription's current signing secret.
type SecretRevealed struct {
	Secret                  string     `json:"secret" doc:"The current signing secret."`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty" doc:"During a rotation's grace period: until then the previous secret signs beside this one."`
}

type revealSecretOutput struct {
	Body SecretRevealed
}

// ActivityBody is a subscription's attempts over the last 24 hours, in
// listings asked for it (GET /subscriptions?activity=true), counted by
// whole hours from the retry scheduler's roll-up (ADR 35).
type ActivityBody struct {
	Attempts  int64 `json:"attempts" doc:"Attempts made in the last 24 hours: since the start of the hour 24 hours ago, from hours rolled up by the retry scheduler; those of the last minute or two only on the newest 25 deliveries."`
	Succeeded int64 `json:"succeeded" doc:"Those of them answered with a 2xx."`
}

// activityWindow is what GET /subscriptions?activity=true counts.
const activityWindow = store.ActivityWindow

func (s *Server) registerEndpoint(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "reveal-subscription-secret",
		Method:      http.MethodPost,
		Path:        "/subscriptions/{id}/secret/reveal",
		Summary:     "Show a subscription's signing secret",
		Description: "Answers the current secret, for the subscription's owner to configure its receiver. Only a customer portal session's key (of the subscription's tenant, not read-only) and an admin key may: any other key is refused (403), whatever its scopes, so that a key made to publish or manage subscriptions cannot read every signing secret. A POST, so that showing a secret is a deliberate act; each one is logged with the key's id and the subscription's.",
		Tags:        []string{"Subscriptions"},
		Errors:      []int{http.StatusNotFound},
	}, s.revealSecret)
}

func (s *Server) revealSecret(ctx context.Context, in *subscriptionIDInput) (*revealSecretOutput, error) {
	p := who(ctx)
	if !p.portal && !domain.Grants(p.scopes, domain.ScopeAdmin) {
		return nil, huma.Error403Forbidden("showing a secret needs a customer portal session's key or an admin key")
	}
	r, err := s.store.RevealSecret(ctx, scopeOf(ctx), in.ID)
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	// Who saw which secret, for the operator's audit; never the secret.
	s.log.InfoContext(ctx, "subscription secret revealed", "key_id", p.keyID, "subscription_id", in.ID, "request_id", RequestID(ctx))
	return &revealSecretOutput{Body: SecretRevealed{Secret: r.Secret, PreviousSecretExpiresAt: r.PreviousUntil}}, nil
}
