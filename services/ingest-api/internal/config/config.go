// Package config parses the ingest API's environment once, at start-up.
package config

import (
	"net/netip"
	"net/url"

	"github.com/dispatch-webhooks/dispatch/libs/config"
)

// Config is the ingest API's settings: the common ones and Redis, from
// which it reads live circuit states.
type Config struct {
	config.Common
	config.Redis
	config.SecretKeys
	// Delivery holds the delivery workers' defaults, read from the same
	// variables with the same defaults: the API shows a subscription's
	// values in force and judges when an open circuit half-opens.
	config.Delivery
	// AllowCIDRs are the internal ranges a subscription's URL may point at,
	// the same DELIVERY_ALLOW_CIDRS the delivery workers dial under.
	AllowCIDRs []netip.Prefix
	// AdminKey is accepted as an admin API key besides the stored ones
	// (ADMIN_API_KEY), so a new deployment can create its first keys.
	AdminKey string
	// EventTypesRequired refuses events and subscriptions that name an
	// exact event type the catalog does not have (EVENT_TYPES_REQUIRED).
	EventTypesRequired bool
	// PortalURL is the customer portal's base URL, which portal links
	// start with (PORTAL_URL).
	PortalURL string
	// PortalReturnOrigins are the origins a portal link's return URL may
	// have (PORTAL_RETURN_ORIGINS).
	PortalReturnOrigins []string
	// LogRequests logs every request at info, an access log (LOG_REQUESTS);
	// by default only refused or failed ones are (ADR 27).
	LogRequests bool
}

// DefaultPortalURL is where the dashboard serves the portal by default.
const DefaultPortalURL = "http://127.0.0.1:8083/portal"

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	c := Config{Common: env.Common(30), Redis: env.Redis(), SecretKeys: env.SecretKeys(), Delivery: env.Delivery(), AllowCIDRs: env.Prefixes("DELIVERY_ALLOW_CIDRS"), AdminKey: env.String("ADMIN_API_KEY", ""),
		EventTypesRequired: env.OneOf("EVENT_TYPES_REQUIRED", "false", "true", "false") == "true",
		LogRequests:        env.OneOf("LOG_REQUESTS", "false", "true", "false") == "true",
		PortalURL:          env.String("PORTAL_URL", DefaultPortalURL), PortalReturnOrigins: env.List("PORTAL_RETURN_ORIGINS", nil)}
	if u, err := url.Parse(c.PortalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		env.Fail("PORTAL_URL", "%q is not an http or https URL such as https://portal.example.com/portal", c.PortalURL)
	}
	for _, o := range c.PortalReturnOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Scheme+"://"+u.Host != o {
			env.Fail("PORTAL_RETURN_ORIGINS", "%q is not an origin such as https://app.example.com (scheme and host, no path)", o)
		}
	}
	if c.AdminKey != "" && len(c.AdminKey) < minAdminKeyLength {
		// A short admin key could be guessed; generated keys are 56 characters.
		env.Fail("ADMIN_API_KEY", "must be at least %d characters", minAdminKeyLength)
	}
	return c, env.Err()
}

// minAdminKeyLength is the shortest ADMIN_API_KEY accepted.
const minAdminKeyLength = 24
