package store

import "github.com/dispatch-webhooks/dispatch/libs/domain"

// oauth2Column is the oauth2 column: a subscription's OAuth2 settings with
// the client secret sealed, bound to oauth2SecretOwner.
type oauth2Column struct {
	TokenURL     string   `json:"token_url"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	Audience     string   `json:"audience,omitempty"`
}

// oauth2ReadColumn is the column without its secret, for every read but
// the claim.
const oauth2ReadColumn = `oauth2 - 'client_secret'`

func oauth2SecretOwner(subID string) string {
	return subID + "/oauth2/client_secret"
}

// oauth2Arg is the argument for the oauth2 column: SQL NULL when o is nil.
func (s *Store) oauth2Arg(subID string, o *domain.OAuth2) any {
	if o == nil {
		return nil
	}
	c := oauth2Column{TokenURL: o.TokenURL, ClientID: o.ClientID, Scopes: o.Scopes, Audience: o.Audience}
	if o.ClientSecret != "" {
		// Empty when a patch keeps the stored secret, which the update
		// puts back.
		c.ClientSecret = s.seal(oauth2SecretOwner(subID), o.ClientSecret)
	}
	return c
}

// domain returns the settings as read, without the secret; nil for a
// NULL column.
func (c *oauth2Column) domain() *domain.OAuth2 {
	if c == nil {
		return nil
	}
	return &domain.OAuth2{TokenURL: c.TokenURL, ClientID: c.ClientID, Scopes: c.Scopes, Audience: c.Audience}
}
