package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// APIKeyBody describes a stored API key; the key itself is never shown
// again after it is created.
type APIKeyBody struct {
	ID         string     `json:"id" example:"key_3mq7x0c2v9k1b4n8"`
	Name       string     `json:"name" example:"billing-service"`
	Scopes     []string   `json:"scopes" example:"[\"publish\"]"`
	Prefix     string     `json:"prefix" example:"dsp_k2l9zq" doc:"The key's first characters, to tell keys apart."`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty" doc:"Updated at most once a minute."`
	TenantID   string     `json:"tenant_id,omitempty" doc:"The tenant the key is bound to; absent for a key that sees every tenant."`
}

// APIKeyCreated is a new key with its secret value, shown only here.
type APIKeyCreated struct {
	APIKeyBody
	Key string `json:"key" doc:"The API key. Shown only once: store it as a secret."`
}

func apiKeyBody(k domain.APIKey) APIKeyBody {
	b := APIKeyBody{ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt, TenantID: k.TenantID}
	for _, s := range k.Scopes {
		b.Scopes = append(b.Scopes, string(s))
	}
	return b
}

type createAPIKeyInput struct {
	Body struct {
		Name      string     `json:"name" minLength:"1" maxLength:"255" example:"billing-service" doc:"What the key is for, as lists show it: UTF-8 text without control characters."`
		Scopes    []string   `json:"scopes" minItems:"1" maxItems:"5" uniqueItems:"true" enum:"admin,write,publish,read,portal" doc:"admin: everything, including keys; write: events, subscriptions, redelivery; publish: only posting events; read: every GET; portal: only creating and revoking tenants' portal links."`
		ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"When the key stops working; never when absent."`
		TenantID  string     `json:"tenant_id,omitempty" maxLength:"255" doc:"Binds the key to this tenant: it sees and changes only the tenant's subscriptions, events, deliveries and attempts (another tenant's answer 404), posts events only for it, and may not manage tenants or keys. Absent: every tenant."`
	}
}

type createAPIKeyOutput struct {
	Body APIKeyCreated
}

type listAPIKeysOutput struct {
	Body struct {
		Data []APIKeyBody `json:"data"`
	}
}

type apiKeyIDInput struct {
	ID string `path:"id" maxLength:"255"`
}

func (s *Server) registerAPIKeys(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID:   "create-api-key",
		Method:        http.MethodPost,
		Path:          "/api-keys",
		Summary:       "Create an API key",
		Description:   "Answers the key once; only its hash is stored. Needs the admin scope.",
		Tags:          []string{"API keys"},
		DefaultStatus: http.StatusCreated,
		MaxBodyBytes:  4 << 10,
		Errors:        []int{http.StatusUnprocessableEntity},
	}, s.createAPIKey)

	huma.Register(api, huma.Operation{
		OperationID: "list-api-keys",
		Method:      http.MethodGet,
		Path:        "/api-keys",
		Summary:     "List API keys",
		Description: "Every key that is not revoked, never the key itself. Needs the admin scope.",
		Tags:        []string{"API keys"},
	}, s.listAPIKeys)

	huma.Register(api, huma.Operation{
		OperationID:   "revoke-api-key",
		Method:        http.MethodDelete,
		Path:          "/api-keys/{id}",
		Summary:       "Revoke an API key",
		Description:   "The key stops working at once on this instance and within a second on every other. Needs the admin scope.",
		Tags:          []string{"API keys"},
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusNotFound},
	}, s.revokeAPIKey)
}

func (s *Server) createAPIKey(ctx context.Context, in *createAPIKeyInput) (*createAPIKeyOutput, error) {
	key, hash := apikey.New()
	k := domain.APIKey{ID: apikey.NewID(), Name: in.Body.Name, Prefix: apikey.Display(key), ExpiresAt: in.Body.ExpiresAt, TenantID: in.Body.TenantID}
	for _, sc := range in.Body.Scopes {
		k.Scopes = append(k.Scopes, domain.Scope(sc))
	}
	if err := domain.ValidateAPIKey(k, s.clock.Now()); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	created, err := s.store.CreateAPIKey(ctx, k, hash)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	s.auth.forgetHash(hash)
	return &createAPIKeyOutput{Body: APIKeyCreated{APIKeyBody: apiKeyBody(created), Key: key}}, nil
}

func (s *Server) listAPIKeys(ctx context.Context, _ *struct{}) (*listAPIKeysOutput, error) {
	keys, err := s.store.ListAPIKeys(ctx)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	out := &listAPIKeysOutput{}
	out.Body.Data = make([]APIKeyBody, len(keys))
	for i, k := range keys {
		out.Body.Data[i] = apiKeyBody(k)
	}
	return out, nil
}

func (s *Server) revokeAPIKey(ctx context.Context, in *apiKeyIDInput) (*struct{}, error) {
	if err := s.store.RevokeAPIKey(ctx, in.ID); err != nil {
		return nil, s.problem(ctx, err, "api key not found")
	}
	s.auth.forget(in.ID)
	return nil, nil
}
