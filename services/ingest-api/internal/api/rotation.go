package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// Grace periods of a secret rotation: how long the previous secret still
// signs deliveries beside the new one.
const (
	defaultGrace = 24 * time.Hour
	maxGrace     = 7 * 24 * time.Hour
)

type rotateSecretInput struct {
	ID   string `path:"id" maxLength:"255"`
	Body *struct {
		Secret        string `json:"secret,omitempty" maxLength:"256" doc:"The new secret, in either form a subscription accepts; generated (whsec_) when absent."`
		GracePeriodMS *int64 `json:"grace_period_ms,omitempty" minimum:"0" maximum:"604800000" doc:"How long deliveries also carry a signature with the previous secret; 24 hours when absent, 0 to stop using it at once."`
	} `required:"false"`
}

// SecretRotated is a subscription's new secret, shown only here.
type SecretRotated struct {
	Secret                  string    `json:"secret" doc:"The new signing secret. Shown only once: store it with the receiver."`
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at" doc:"Until then deliveries carry signatures with both secrets, space-separated."`
}

type rotateSecretOutput struct {
	Body SecretRotated
}

func (s *Server) registerRotation(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID:  "rotate-subscription-secret",
		Method:       http.MethodPost,
		Path:         "/subscriptions/{id}/secret/rotate",
		Summary:      "Rotate a subscription's signing secret",
		Description:  "Makes a new secret current. During the grace period every delivery carries two signatures, one per secret, so a receiver holding either verifies it; afterwards only the new one.",
		Tags:         []string{"Subscriptions"},
		MaxBodyBytes: 4 << 10,
		Errors:       []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, s.rotateSecret)
}

func (s *Server) rotateSecret(ctx context.Context, in *rotateSecretInput) (*rotateSecretOutput, error) {
	secret, grace := "", defaultGrace
	if in.Body != nil {
		secret = in.Body.Secret
		if in.Body.GracePeriodMS != nil {
			grace = time.Duration(*in.Body.GracePeriodMS) * time.Millisecond
		}
	}
	if grace < 0 || grace > maxGrace {
		return nil, s.problem(ctx, &domain.ValidationError{Field: "grace_period_ms", Reason: "must be between 0 and 604800000 (7 days)"}, "")
	}
	if secret == "" {
		secret = signing.GenerateSecret()
	} else if err := checkSecret(secret); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	sub, until, err := s.store.RotateSecret(ctx, scopeOf(ctx), in.ID, secret, grace)
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	return &rotateSecretOutput{Body: SecretRotated{Secret: sub.Secret, PreviousSecretExpiresAt: until}}, nil
}

// checkSecret refuses a secret a client chose that cannot sign
// (signing.ParseSecret) or that starts as sealed secrets are stored
// ("sealed:"), which could be mistaken for one.
func checkSecret(secret string) error {
	if _, err := signing.ParseSecret(secret); err != nil {
		return &domain.ValidationError{Field: "secret", Reason: err.Error()}
	}
	if seal.Reserved(secret) {
		return &domain.ValidationError{Field: "secret", Reason: "a secret must not start with 'sealed:', which marks secrets sealed at rest"}
	}
	return nil
}
