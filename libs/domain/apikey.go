package domain

import (
	"fmt"
	"slices"
	"time"
)

// Scope is what an API key may do.
type Scope string

// Scopes. Admin may do everything, including managing keys; write may
// change events, subscriptions and deliveries (and so publish events);
// publish may only post events, for producers; read may make every GET;
// portal may only create and revoke tenants' portal links, for the
// product that hands its customers their portal.
const (
	ScopeAdmin   Scope = "admin"
	ScopeWrite   Scope = "write"
	ScopePublish Scope = "publish"
	ScopeRead    Scope = "read"
	ScopePortal  Scope = "portal"
)

// Scopes lists every scope.
var Scopes = []Scope{ScopeAdmin, ScopeWrite, ScopePublish, ScopeRead, ScopePortal}

// Grants reports whether a key holding held may do what needs want.
func Grants(held []Scope, want Scope) bool {
	for _, h := range held {
		if h == want || h == ScopeAdmin || (h == ScopeWrite && want == ScopePublish) {
			return true
		}
	}
	return false
}

// APIKey is a stored API key as operators see it: never the key itself.
type APIKey struct {
	ID     string
	Name   string
	Scopes []Scope
	// Prefix is the key's first characters, to tell keys apart.
	Prefix string
	// TenantID binds the key to one tenant, whose data alone it sees;
	// empty for a key that sees every tenant.
	TenantID   string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	// Portal marks the key of a portal session (ADR 32): made when a
	// portal link is opened, bound to its tenant, ending with the link's
	// session, and revoked with every other of its tenant's.
	Portal bool
}

// MaxKeyNameLength bounds an API key's name.
const MaxKeyNameLength = 255

// ValidateAPIKey checks a key's name, scopes and expiry before it is stored.
func ValidateAPIKey(k APIKey, now time.Time) error {
	if k.Name == "" || len(k.Name) > MaxKeyNameLength {
		return invalid("name", fmt.Sprintf("must be 1 to %d characters", MaxKeyNameLength))
	}
	if err := ValidateText("name", k.Name); err != nil {
		return err
	}
	if len(k.Scopes) == 0 {
		return invalid("scopes", "must list at least one scope")
	}
	for i, s := range k.Scopes {
		if !slices.Contains(Scopes, s) {
			return invalid(fmt.Sprintf("scopes[%d]", i), "must be one of admin, write, publish, read, portal")
		}
	}
	if k.ExpiresAt != nil && !k.ExpiresAt.After(now) {
		return invalid("expires_at", "must be in the future")
	}
	if k.TenantID != "" {
		return ValidateTenantID("tenant_id", k.TenantID)
	}
	return nil
}
