package api

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// TenantBody is a tenant as the API shows it.
type TenantBody struct {
	ID       string     `json:"id" example:"acme"`
	Name     string     `json:"name,omitempty" example:"Acme Inc."`
	Metadata JSONObject `json:"metadata" doc:"The caller's own JSON object, stored as event data is (members may come back in another order)."`
	TenantSettings
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TenantSettings are a tenant's defaults for its subscriptions and its
// quota; an absent field means the service-wide default, or no quota.
type TenantSettings struct {
	Settings
	MaxSubscriptions int `json:"max_subscriptions,omitempty" minimum:"1" maximum:"1000000" doc:"Most subscriptions the tenant may have; creating one more is a 422. No bound when absent."`
}

// TenantDetail is a tenant with its counts.
type TenantDetail struct {
	TenantBody
	Subscriptions     int64 `json:"subscriptions" doc:"How many subscriptions the tenant has."`
	EventsLast24h     int64 `json:"events_last_24h" doc:"Events posted for the tenant in the last 24 hours."`
	FailingDeliveries int64 `json:"failing_deliveries" doc:"Deliveries to the tenant's subscriptions that are retrying or have failed."`
}

func tenantBody(t domain.Tenant) TenantBody {
	return TenantBody{
		ID: t.ID, Name: t.Name, Metadata: JSONObject(t.Metadata),
		TenantSettings: TenantSettings{Settings: settingsBody(t.Settings), MaxSubscriptions: t.MaxSubscriptions},
		CreatedAt:      t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

type tenantIDInput struct {
	ID string `path:"id" maxLength:"255"`
}

type putTenantInput struct {
	ID   string `path:"id" maxLength:"255"`
	Body struct {
		Name     string     `json:"name,omitempty" maxLength:"255" doc:"A display name."`
		Metadata JSONObject `json:"metadata,omitempty" doc:"Any JSON object of at most 4 KiB."`
		TenantSettings
	}
}

type putTenantOutput struct {
	Status int
	Body   TenantBody
}

type tenantOutput struct {
	Body TenantDetail
}

type listTenantsInput struct {
	Prefix string `query:"prefix" maxLength:"255" doc:"Only tenants whose id starts with this."`
	After  string `query:"after" maxLength:"255" doc:"Cursor: the next_cursor of the previous page."`
	Limit  int    `query:"limit" minimum:"1" maximum:"250" default:"50"`
}

type listTenantsOutput struct {
	Body struct {
		Data       []TenantBody `json:"data"`
		NextCursor string       `json:"next_cursor,omitempty" doc:"Pass as 'after' for the next page; absent on the last page."`
	}
}

func (s *Server) registerTenants(api huma.API) {
	operatorOnly := map[string]any{operatorOnlyKey: true}
	huma.Register(api, huma.Operation{
		OperationID:  "put-tenant",
		Method:       http.MethodPut,
		Path:         "/tenants/{id}",
		Summary:      "Create or change a tenant",
		Description:  "Creates the tenant (201) or replaces its name, metadata, settings and quota (200). Its settings fill in what its subscriptions leave unset. Needs the write scope and a key bound to no tenant.",
		Tags:         []string{"Tenants"},
		MaxBodyBytes: maxBodyBytes,
		Metadata:     operatorOnly,
		Errors:       []int{http.StatusUnprocessableEntity},
		Responses: map[string]*huma.Response{
			"201": {
				Description: "The tenant was created.",
				Content:     map[string]*huma.MediaType{"application/json": {Schema: api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[TenantBody](), true, "")}},
			},
		},
	}, s.putTenant)

	huma.Register(api, huma.Operation{
		OperationID: "list-tenants",
		Method:      http.MethodGet,
		Path:        "/tenants",
		Summary:     "List tenants",
		Description: "Ordered by id. Needs a key bound to no tenant.",
		Tags:        []string{"Tenants"},
		Metadata:    operatorOnly,
	}, s.listTenants)

	huma.Register(api, huma.Operation{
		OperationID: "get-tenant",
		Method:      http.MethodGet,
		Path:        "/tenants/{id}",
		Summary:     "Get a tenant with its counts",
		Description: "A key bound to a tenant may read only its own.",
		Tags:        []string{"Tenants"},
		Errors:      []int{http.StatusNotFound},
	}, s.getTenant)

	huma.Register(api, huma.Operation{
		OperationID:   "delete-tenant",
		Method:        http.MethodDelete,
		Path:          "/tenants/{id}",
		Summary:       "Delete a tenant",
		Description:   "Deletes the tenant with its keys, its subscriptions and their deliveries and attempts, and its events. The default tenant cannot be deleted (409). Needs a key bound to no tenant.",
		Tags:          []string{"Tenants"},
		DefaultStatus: http.StatusNoContent,
		Metadata:      operatorOnly,
		Errors:        []int{http.StatusNotFound, http.StatusConflict},
	}, s.deleteTenant)
}

func (s *Server) putTenant(ctx context.Context, in *putTenantInput) (*putTenantOutput, error) {
	t := domain.Tenant{
		ID: in.ID, Name: in.Body.Name, Metadata: []byte(in.Body.Metadata),
		Settings: in.Body.Settings.domain(), MaxSubscriptions: in.Body.MaxSubscriptions,
	}
	if err := domain.ValidateTenantID("path.id", t.ID); err != nil {
		var ve *domain.ValidationError
		errors.As(err, &ve)
		return nil, huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{Location: ve.Field, Message: ve.Reason})
	}
	if err := domain.ValidateTenant(t); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	stored, created, err := s.store.PutTenant(ctx, t)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	out := &putTenantOutput{Status: http.StatusOK, Body: tenantBody(stored)}
	if created {
		out.Status = http.StatusCreated
	}
	return out, nil
}

func (s *Server) getTenant(ctx context.Context, in *tenantIDInput) (*tenantOutput, error) {
	if !scopeOf(ctx).Sees(in.ID) {
		return nil, huma.Error404NotFound("tenant not found")
	}
	t, c, err := s.store.GetTenant(ctx, in.ID)
	if err != nil {
		return nil, s.problem(ctx, err, "tenant not found")
	}
	return &tenantOutput{Body: TenantDetail{TenantBody: tenantBody(t), Subscriptions: c.Subscriptions,
		EventsLast24h: c.RecentEvents, FailingDeliveries: c.FailingDeliveries}}, nil
}

func (s *Server) listTenants(ctx context.Context, in *listTenantsInput) (*listTenantsOutput, error) {
	ts, err := s.store.ListTenants(ctx, store.TenantFilter{Prefix: in.Prefix, After: in.After, Limit: in.Limit + 1})
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	out := &listTenantsOutput{}
	ts, out.Body.NextCursor = keysetPage(ts, in.Limit, func(t domain.Tenant) string { return t.ID })
	out.Body.Data = make([]TenantBody, len(ts))
	for i, t := range ts {
		out.Body.Data[i] = tenantBody(t)
	}
	return out, nil
}

func (s *Server) deleteTenant(ctx context.Context, in *tenantIDInput) (*struct{}, error) {
	subs, err := s.store.DeleteTenant(ctx, in.ID)
	if err != nil {
		return nil, s.problem(ctx, err, "tenant not found")
	}
	if s.circuits != nil {
		for _, sub := range subs {
			if err := s.circuits.Forget(ctx, resilience.TargetOf(sub.ID, sub.URL, sub.CreatedAt)); err != nil {
				s.log.Warn("could not forget a deleted subscription's limits", "subscription_id", sub.ID, "err", err)
			}
		}
	}
	s.auth.forgetTenant(in.ID)
	return nil, nil
}

// narrowed is the request's scope narrowed to the tenant a listing asks
// for (none: the whole scope). It is false when the two do not meet: a
// key bound to one tenant asking for another's, which finds nothing.
func narrowed(ctx context.Context, tenant string) (store.Scope, bool) {
	scope := scopeOf(ctx)
	switch {
	case tenant == "":
		return scope, true
	case !scope.Sees(tenant):
		return scope, false
	}
	return store.TenantScope(tenant), true
}

// errTenantForbidden is an event or subscription of another tenant than
// the key's own; its text is the answer's.
type errTenantForbidden struct{ tenant, what string }

func (e errTenantForbidden) Error() string {
	return "this API key is bound to tenant '" + e.tenant + "' and may create " + e.what + " only for it"
}

// createdTenant is the tenant that what the request creates (what:
// "subscriptions" or "events") belongs to: the one it names (for a key
// bound to a tenant, only its own: anything else is errTenantForbidden),
// else the key's tenant, else the default one. Events may name "*", every
// tenant, if the key is bound to none. A name that is no tenant id is a
// *domain.ValidationError on tenant_id; one that names no tenant is found
// when the row is stored.
func createdTenant(ctx context.Context, named, what string) (string, error) {
	p, _ := ctx.Value(principalKey{}).(principal)
	switch {
	case p.tenant != "" && named != "" && named != p.tenant:
		return "", errTenantForbidden{tenant: p.tenant, what: what}
	case p.tenant != "":
		return p.tenant, nil
	case named == "":
		return domain.DefaultTenant, nil
	case named == domain.AllTenants && what == "events":
		return named, nil
	}
	return named, domain.ValidateTenantID("tenant_id", named)
}

// tenantProblem is createdTenant's error as an answer: 403 for another
// tenant, 422 for a bad id.
func (s *Server) tenantProblem(ctx context.Context, err error) error {
	var forbidden errTenantForbidden
	if errors.As(err, &forbidden) {
		return huma.Error403Forbidden(forbidden.Error())
	}
	return s.problem(ctx, err, "")
}
