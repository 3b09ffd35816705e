package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// CurrentKey is the API key a request was made with.
type CurrentKey struct {
	ID     string   `json:"id" doc:"The key's id; ADMIN_API_KEY for the key given by that variable."`
	Scopes []string `json:"scopes"`
	// TenantID is set for a key bound to a tenant.
	TenantID string `json:"tenant_id,omitempty" doc:"The tenant the key is bound to; absent for a key that sees every tenant."`
}

type currentKeyOutput struct {
	Body CurrentKey
}

func (s *Server) registerMe(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "get-current-key",
		Method:      http.MethodGet,
		Path:        "/me",
		Summary:     "Describe the API key in use",
		Description: "Any valid key may call it, whatever its scopes, so that a client (such as the dashboard) can offer only what the key may do.",
		Tags:        []string{"API keys"},
	}, s.currentKey)
}

func (s *Server) currentKey(ctx context.Context, _ *struct{}) (*currentKeyOutput, error) {
	p, _ := ctx.Value(principalKey{}).(principal)
	out := &currentKeyOutput{Body: CurrentKey{ID: p.keyID, TenantID: p.tenant}}
	for _, sc := range p.scopes {
		out.Body.Scopes = append(out.Body.Scopes, string(sc))
	}
	return out, nil
}
