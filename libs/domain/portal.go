package domain

import (
	"fmt"
	"time"
)

// Bounds of a portal link's life: it opens until it expires, and the
// portal session it opens ends then too.
const (
	MinPortalLinkTTL     = 5 * time.Minute
	MaxPortalLinkTTL     = 7 * 24 * time.Hour
	DefaultPortalLinkTTL = time.Hour
	// MaxReturnURLLength bounds a portal link's return URL.
	MaxReturnURLLength = 2048
)

// PortalLink is a single-use link to a tenant's customer portal (ADR 32).
// Only its token's hash is stored.
type PortalLink struct {
	ID       string
	TenantID string
	// ReadOnly sessions may see every page and change nothing.
	ReadOnly bool
	// ReturnURL, if set, is where the portal's "Back" link leads.
	ReturnURL string
	CreatedAt time.Time
	// ExpiresAt is when the link stops opening and its session ends.
	ExpiresAt time.Time
}

// PortalSession is what opening a portal link gives: a key bound to the
// link's tenant that expires with the link, and what the portal shows.
type PortalSession struct {
	Link       PortalLink
	Key        APIKey
	TenantName string
}

// ValidatePortalLinkTTL checks a portal link's lifetime.
func ValidatePortalLinkTTL(field string, d time.Duration) error {
	if d < MinPortalLinkTTL || d > MaxPortalLinkTTL {
		return invalid(field, fmt.Sprintf("must be from %s to %s", "5m", "168h (7 days)"))
	}
	return nil
}
