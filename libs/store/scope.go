package store

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"
)

// Scope is the data a call may see and change: every tenant's, or one
// tenant's. Each method that reads or changes what belongs to a tenant
// takes one, so that no caller can reach a tenant's rows without saying
// whose it means; rows outside the scope are not found (ADR 0028).
type Scope struct{ tenant string }

// Unscoped sees every tenant, for keys bound to none and for the services'
// own work.
var Unscoped = Scope{}

// NoTenant sees no tenant's rows: no tenant id holds a '/'.
var NoTenant = Scope{tenant: "/"}

// TenantScope sees only tenant's rows; an empty id sees none.
func TenantScope(tenant string) Scope {
	if tenant == "" {
		return NoTenant
	}
	return Scope{tenant: tenant}
}

// Sees reports whether rows of tenant are within the scope.
func (s Scope) Sees(tenant string) bool { return s.tenant == "" || s.tenant == tenant }

// arg is the scope as a query argument: NULL sees every tenant.
func (s Scope) arg() pgtype.Text { return pgtype.Text{String: s.tenant, Valid: s.tenant != ""} }

// eventInScope is the condition that event e is within the scope passed as
// argument n: the scope sees every tenant, the event is the tenant's, or
// it was sent to every tenant and reached one of the tenant's
// subscriptions.
func eventInScope(n int) string {
	p := fmt.Sprintf("$%d", n)
	return `(` + p + `::text IS NULL OR e.tenant_id = ` + p + ` OR (e.tenant_id IS NULL AND EXISTS (
		SELECT 1 FROM deliveries sd JOIN subscriptions ss ON ss.id = sd.subscription_id
		WHERE sd.event_id = e.id AND ss.tenant_id = ` + p + `)))`
}

// deliveryInScope is the condition that delivery d goes to a subscription
// within the scope passed as argument n.
func deliveryInScope(n int) string {
	p := fmt.Sprintf("$%d", n)
	return `(` + p + `::text IS NULL OR d.subscription_id IN (SELECT id FROM subscriptions WHERE tenant_id = ` + p + `))`
}
