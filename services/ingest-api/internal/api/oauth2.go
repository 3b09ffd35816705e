package api

import (
	"context"
	"encoding/json"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// A subscription's OAuth2 client credentials (ADR 40): the client secret
// sealed and masked, the token URL judged by the address policy.

// OAuth2Body is a subscription's OAuth2 settings as answers show them.
type OAuth2Body struct {
	TokenURL     string   `json:"token_url" doc:"The token endpoint the worker asks for access tokens."`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret" doc:"Masked: the secret is never shown once set."`
	Scopes       []string `json:"scopes,omitempty"`
	Audience     string   `json:"audience,omitempty"`
}

func oauth2Body(o *domain.OAuth2) *OAuth2Body {
	if o == nil {
		return nil
	}
	return &OAuth2Body{TokenURL: o.TokenURL, ClientID: o.ClientID, ClientSecret: maskedValue, Scopes: o.Scopes, Audience: o.Audience}
}

// oauth2Input is the oauth2 field as sent.
type oauth2Input struct {
	TokenURL     string   `json:"token_url"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Scopes       []string `json:"scopes"`
	Audience     string   `json:"audience"`
}

// oauth2Field is the oauth2 field of a create or a PATCH: absent or null
// on a create means none; on a PATCH, absent leaves the settings as they
// are, null removes them and an object replaces them.
type oauth2Field struct {
	Sent  bool
	Value *oauth2Input
}

// UnmarshalJSON records that the field was sent, null included.
func (f *oauth2Field) UnmarshalJSON(b []byte) error {
	f.Sent = true
	if string(b) == "null" {
		f.Value = nil
		return nil
	}
	return json.Unmarshal(b, &f.Value)
}

// Schema describes the field as a nullable object.
func (oauth2Field) Schema(huma.Registry) *huma.Schema {
	str := func(doc string) *huma.Schema { return &huma.Schema{Type: huma.TypeString, Description: doc} }
	most := domain.MaxOAuth2Scopes
	return &huma.Schema{
		Type: huma.TypeObject, Nullable: true, AdditionalProperties: false,
		Required: []string{"token_url", "client_id"},
		Properties: map[string]*huma.Schema{
			"token_url":     str("The token endpoint (absolute http or https URL), judged by the address policy like url."),
			"client_id":     str("The client id (at most 255 bytes)."),
			"client_secret": str("The client secret (at most 1024 bytes), sent with HTTP Basic authentication. Stored encrypted, never shown again. Required on create; on PATCH, left out (or empty) with the stored token_url and client_id, the stored secret is kept."),
			"scopes":        {Type: huma.TypeArray, Items: str("A scope."), MaxItems: &most, Description: "Scopes asked for, sent space-separated."},
			"audience":      str("Sent as the audience parameter, for providers that require one."),
		},
		Description: "OAuth2 client credentials: the worker fetches an access token from token_url, caches it until shortly before it expires, and sends it as Authorization: Bearer. On PATCH, null removes the settings and an object replaces them all, except that client_secret left out with the same token_url and client_id keeps the stored secret.",
	}
}

// oauth2Settings returns the settings sent, checked, with the token URL judged
// by the address policy; nil when none were sent or null was. With
// mayKeep (a PATCH by a key that may read), settings sent without their
// secret keep the stored one, which keep reports; the store checks that
// the token URL and client id are those the secret was stored with.
func (s *Server) oauth2Settings(ctx context.Context, f oauth2Field, mayKeep bool) (_ *domain.OAuth2, keep bool, _ error) {
	if f.Value == nil {
		return nil, false, nil
	}
	o := domain.OAuth2{TokenURL: f.Value.TokenURL, ClientID: f.Value.ClientID, ClientSecret: f.Value.ClientSecret, Scopes: f.Value.Scopes, Audience: f.Value.Audience}
	keep = mayKeep && o.ClientSecret == ""
	validate := domain.ValidateOAuth2
	if keep {
		validate = domain.ValidateOAuth2KeepingSecret
	}
	if err := validate(o); err != nil {
		return nil, false, err
	}
	if err := s.egress.CheckURL(ctx, s.resolver, o.TokenURL); err != nil {
		return nil, false, &domain.ValidationError{Field: "oauth2.token_url", Reason: err.Error()}
	}
	return &o, keep, nil
}
