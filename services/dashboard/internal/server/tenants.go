package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/web"
)

// tenantPreview is how many of a tenant's subscriptions, events and
// failing events its page shows; each list links to the rest.
const tenantPreview = 10

// tenants lists tenants by id, a page at a time; prefix keeps those whose
// id starts with it. The search and the page live in the query. A session
// bound to a tenant is shown its own page instead.
func (s *Server) tenants(w http.ResponseWriter, r *http.Request, rq *request) {
	if own := rq.sess.TenantID; own != "" {
		// A key bound to a tenant may not list tenants: it has its own.
		http.Redirect(w, r, string(web.TenantURL(own)), http.StatusSeeOther)
		return
	}
	q := r.URL.Query()
	v := web.TenantsView{Page: rq.page, Prefix: q.Get("prefix"), Errors: web.Errors{}}
	v.Title, v.Nav = "Tenants", "tenants"
	limit := int64(50)
	params := client.ListTenantsParams{Limit: &limit}
	if p := strings.TrimSpace(v.Prefix); p != "" {
		params.Prefix = &p
	}
	if after := q.Get("after"); after != "" {
		params.After = &after
		v.First = pageURL("/tenants", q, "")
	}
	res, err := rq.api.ListTenantsWithResponse(r.Context(), &params)
	status := http.StatusOK
	switch {
	case err != nil:
		s.fail(w, r, rq, unreachable(err))
		return
	case res.JSON200 != nil:
		for _, t := range items(res.JSON200.Data) {
			v.Tenants = append(v.Tenants, tenantRow(t.Id, t.Name, t.MaxSubscriptions, t.CreatedAt, t.UpdatedAt))
		}
		if res.JSON200.NextCursor != nil {
			v.Next = pageURL("/tenants", q, *res.JSON200.NextCursor)
		}
	case res.StatusCode() == http.StatusUnprocessableEntity:
		v.Errors = problem(res.StatusCode(), res.Body).Fields
		status = http.StatusUnprocessableEntity
	default:
		s.fail(w, r, rq, problem(res.StatusCode(), res.Body))
		return
	}
	s.render(w, r, status, web.Tenants(v))
}

// tenantView builds a tenant's page: the tenant with its counts, and the
// first of its subscriptions, newest events and newest failing events.
// The calls are independent, so they run side by side.
func (s *Server) tenantView(ctx context.Context, rq *request, id string) (web.TenantView, error) {
	v := web.TenantView{Page: rq.page}
	v.Title, v.Nav = "Tenant "+id, "tenants"
	limit := int64(tenantPreview)
	failing := []client.ListEventsParamsStatus{client.ListEventsParamsStatusFailed, client.ListEventsParamsStatusRetrying}
	var (
		wg sync.WaitGroup
		// failingRows holds the events of each status in failing.
		failingRows = make([][]web.EventRow, len(failing))
		// errs holds each call's failure; the first in this order is shown.
		errs = make([]error, 3+len(failing))
	)
	wg.Go(func() { errs[0] = tenantDetail(ctx, rq.api, id, &v) })
	wg.Go(func() {
		yes := true
		res, err := rq.api.ListSubscriptionsWithResponse(ctx, &client.ListSubscriptionsParams{TenantId: &id, Limit: &limit, Circuit: &yes})
		switch {
		case err != nil:
			errs[1] = unreachable(err)
		case res.JSON200 == nil:
			errs[1] = problem(res.StatusCode(), res.Body)
		default:
			for _, sub := range items(res.JSON200.Data) {
				v.Subscriptions = append(v.Subscriptions, subscriptionRow(sub))
			}
		}
	})
	wg.Go(func() {
		v.Events, errs[2] = eventRows(ctx, rq.api, &client.ListEventsParams{TenantId: &id, Limit: &limit})
	})
	for i, st := range failing {
		wg.Go(func() {
			failingRows[i], errs[3+i] = eventRows(ctx, rq.api, &client.ListEventsParams{TenantId: &id, Status: &st, Limit: &limit})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return v, err
		}
	}
	v.Failing = newest(slices.Concat(failingRows...), tenantPreview)
	return v, nil
}

// getTenant asks for a tenant with its counts (GET /tenants/{id}); one
// the key may not see is not found, as one that does not exist.
func getTenant(ctx context.Context, api *client.ClientWithResponses, id string) (*client.GetTenantResponse, error) {
	res, err := api.GetTenantWithResponse(ctx, id)
	if err != nil {
		return nil, unreachable(err)
	}
	if res.JSON200 == nil {
		e := problem(res.StatusCode(), res.Body)
		if e.Status == http.StatusNotFound || e.Status == http.StatusUnprocessableEntity {
			e.Status, e.Detail = http.StatusNotFound, "no tenant has the id "+id+"."
		}
		return nil, e
	}
	return res, nil
}

func tenantCounts(t client.TenantDetail) web.TenantCounts {
	c := web.TenantCounts{Subscriptions: t.Subscriptions, EventsLast24h: t.EventsLast24h, FailingDeliveries: t.FailingDeliveries}
	if t.MaxSubscriptions != nil {
		c.MaxSubscriptions = *t.MaxSubscriptions
	}
	return c
}

// tenantDetail fills v with the tenant, its counts, metadata and settings.
func tenantDetail(ctx context.Context, api *client.ClientWithResponses, id string, v *web.TenantView) error {
	res, err := getTenant(ctx, api, id)
	if err != nil {
		return err
	}
	t := res.JSON200
	v.Tenant = tenantRow(t.Id, t.Name, t.MaxSubscriptions, t.CreatedAt, t.UpdatedAt)
	v.Counts = tenantCounts(*t)
	v.Settings = settings(tenantLimits(*t), limits{}, "the worker's default")
	// The metadata as the API sent it, members in their order.
	var raw struct {
		Metadata json.RawMessage `json:"metadata"`
	}
	var pretty bytes.Buffer
	if json.Unmarshal(res.Body, &raw) == nil && json.Indent(&pretty, raw.Metadata, "", "  ") == nil && pretty.String() != "{}" {
		v.Metadata = pretty.String()
	}
	return nil
}

// eventRows lists a page of events.
func eventRows(ctx context.Context, api *client.ClientWithResponses, params *client.ListEventsParams) ([]web.EventRow, error) {
	res, err := api.ListEventsWithResponse(ctx, params)
	if err != nil {
		return nil, unreachable(err)
	}
	if res.JSON200 == nil {
		return nil, problem(res.StatusCode(), res.Body)
	}
	var rows []web.EventRow
	for _, e := range items(res.JSON200.Data) {
		rows = append(rows, eventRow(e))
	}
	return rows, nil
}

// newest is the n newest of rows, in the events listing's order: newest
// first, then by id, descending.
func newest(rows []web.EventRow, n int) []web.EventRow {
	slices.SortFunc(rows, func(a, b web.EventRow) int {
		return cmp.Or(b.ReceivedAt.Compare(a.ReceivedAt), strings.Compare(b.ID, a.ID))
	})
	return rows[:min(n, len(rows))]
}

func (s *Server) tenant(w http.ResponseWriter, r *http.Request, rq *request) {
	v, err := s.tenantView(r.Context(), rq, r.PathValue("id"))
	if err != nil {
		rq.page.Title = v.Title
		s.fail(w, r, rq, err)
		return
	}
	s.render(w, r, http.StatusOK, web.Tenant(v))
}
