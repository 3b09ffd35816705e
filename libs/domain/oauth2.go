package domain

import (
	"errors"
	"fmt"
)

// OAuth2 is a subscription's OAuth2 client credentials grant (RFC 6749
// 4.4): the worker asks TokenURL for an access token with ClientID and
// ClientSecret and sends it to the destination as a bearer token.
type OAuth2 struct {
	TokenURL string
	ClientID string
	// ClientSecret is sealed at rest; reads leave it empty.
	ClientSecret string
	Scopes       []string
	// Audience, if set, is sent as the audience parameter, which some
	// providers (Auth0, Okta) require.
	Audience string
}

// Bounds of a subscription's OAuth2 settings.
const (
	MaxOAuth2ClientID     = 255
	MaxOAuth2ClientSecret = 1024
	MaxOAuth2Scopes       = 20
	MaxOAuth2Scope        = 255
	MaxOAuth2Audience     = 2048
)

// ValidateOAuth2 checks a subscription's OAuth2 settings (not the token
// URL's address, which the API judges with the address policy).
func ValidateOAuth2(o OAuth2) error {
	return validateOAuth2(o, false)
}

// ValidateOAuth2KeepingSecret checks settings sent without their client
// secret, to keep the stored one: as ValidateOAuth2 but the secret; the
// caller makes sure the stored token URL and client id are these.
func ValidateOAuth2KeepingSecret(o OAuth2) error {
	if o.ClientSecret != "" {
		return invalid("oauth2.client_secret", "is kept only when the settings are sent without it")
	}
	return validateOAuth2(o, true)
}

func validateOAuth2(o OAuth2, keepSecret bool) error {
	if err := ValidateURL(o.TokenURL); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return invalid("oauth2.token_url", ve.Reason)
		}
		return invalid("oauth2.token_url", err.Error())
	}
	for _, f := range []struct {
		field, value string
		max          int
	}{
		{"oauth2.client_id", o.ClientID, MaxOAuth2ClientID},
		{"oauth2.client_secret", o.ClientSecret, MaxOAuth2ClientSecret},
	} {
		if keepSecret && f.field == "oauth2.client_secret" {
			continue
		}
		switch {
		case f.value == "":
			return invalid(f.field, "must not be empty")
		case len(f.value) > f.max:
			return invalid(f.field, fmt.Sprintf("must be at most %d bytes", f.max))
		}
		if err := ValidateText(f.field, f.value); err != nil {
			return err
		}
	}
	if len(o.Scopes) > MaxOAuth2Scopes {
		return invalid("oauth2.scopes", fmt.Sprintf("must list at most %d scopes", MaxOAuth2Scopes))
	}
	for i, sc := range o.Scopes {
		// RFC 6749 3.3: printable ASCII but space, '"' and '\'.
		ok := sc != "" && len(sc) <= MaxOAuth2Scope
		for j := 0; ok && j < len(sc); j++ {
			c := sc[j]
			ok = c > ' ' && c <= '~' && c != '"' && c != '\\'
		}
		if !ok {
			return invalid(fmt.Sprintf("oauth2.scopes[%d]", i), fmt.Sprintf("must be 1 to %d printable ASCII characters without space, '\"' or '\\'", MaxOAuth2Scope))
		}
	}
	if len(o.Audience) > MaxOAuth2Audience {
		return invalid("oauth2.audience", fmt.Sprintf("must be at most %d bytes", MaxOAuth2Audience))
	}
	if err := ValidateText("oauth2.audience", o.Audience); err != nil {
		return err
	}
	return nil
}
