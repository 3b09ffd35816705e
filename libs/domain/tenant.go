package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// DefaultTenant owns everything that names no tenant: the subscriptions of
// callers that never mention tenants and the events they post. It always
// exists and cannot be deleted.
const DefaultTenant = "default"

// AllTenants as an event's tenant sends the event to the matching
// subscriptions of every tenant. Only keys bound to no tenant may use it.
const AllTenants = "*"

// Bounds of a tenant's free-form fields.
const (
	MaxTenantNameLength = 255
	MaxTenantMetadata   = 4 << 10
)

// Tenant is one customer of a Dispatch deployment: its subscriptions,
// events and keys are invisible to every other tenant.
type Tenant struct {
	ID   string
	Name string
	// Metadata is the caller's own JSON object, stored as jsonb.
	Metadata json.RawMessage
	// Settings are the defaults of the tenant's subscriptions, between the
	// service-wide defaults and each subscription's own settings.
	Settings DeliverySettings
	// MaxSubscriptions bounds how many subscriptions the tenant may have;
	// zero means no bound.
	MaxSubscriptions int
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// ValidateTenantID checks a caller-chosen tenant id: the same alphabet as
// subscription ids, so that a customer's own id can be used.
func ValidateTenantID(field, id string) error {
	if id == "." || id == ".." {
		return invalid(field, "must not be '.' or '..'")
	}
	return validName(field, id, MaxIDLength)
}

// ValidateTenant checks a tenant before it is stored.
func ValidateTenant(t Tenant) error {
	if err := ValidateTenantID("id", t.ID); err != nil {
		return err
	}
	if len(t.Name) > MaxTenantNameLength {
		return invalid("name", fmt.Sprintf("must be at most %d characters", MaxTenantNameLength))
	}
	if err := ValidateText("name", t.Name); err != nil {
		return err
	}
	if len(t.Metadata) > MaxTenantMetadata {
		return invalid("metadata", fmt.Sprintf("must be at most %d bytes of JSON", MaxTenantMetadata))
	}
	if m := bytes.TrimSpace(t.Metadata); len(m) > 0 && m[0] != '{' {
		return invalid("metadata", "must be a JSON object")
	}
	if t.MaxSubscriptions < 0 || t.MaxSubscriptions > MaxTenantSubscriptions {
		return invalid("max_subscriptions", fmt.Sprintf("must be between 1 and %d", MaxTenantSubscriptions))
	}
	return ValidateSettings(t.Settings)
}

// MaxTenantSubscriptions bounds a tenant's subscription quota.
const MaxTenantSubscriptions = 1_000_000

// TenantKeys are the keys under which subscriptions of tenant are found
// for an event type: each of the type's match keys, prefixed with the
// tenant. The store indexes subscriptions by the same prefixed patterns,
// so that one index lookup finds a tenant's matching subscriptions however
// many tenants share the table.
func TenantKeys(tenant, eventType string) []string {
	keys := MatchKeys(eventType)
	for i, k := range keys {
		keys[i] = tenant + "/" + k
	}
	return keys
}
