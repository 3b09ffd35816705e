package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/web"
)

// circuitChecks bounds how many subscriptions the overview looks at;
// circuitCheckConns how many of those needing attention it asks for their
// newest failing delivery at once.
const (
	circuitChecks     = 50
	circuitCheckConns = 8
)

// overview answers "what is failing right now?": activity over the last
// hour and day, deliveries per minute, the backlog, subscriptions not
// healthy, recent failures. Its API calls are independent, so they run
// side by side: the page costs its slowest call, not their sum. A key
// bound to a tenant may not read the activity, backlog and minutes of
// every tenant: its tenant's counts stand in for them.
func (s *Server) overview(w http.ResponseWriter, r *http.Request, rq *request) {
	v := web.OverviewView{Page: rq.page}
	v.Title, v.Nav, v.Notice = "Overview", "overview", notice(r.URL.Query())
	if r.URL.Query().Get("refresh") != "" {
		v.RefreshSeconds = 10
	}
	ctx := r.Context()
	// errs holds each call's failure; the first in this order is shown.
	errs := make([]error, 3)
	var wg sync.WaitGroup
	if own := rq.sess.TenantID; own != "" {
		wg.Go(func() {
			res, err := getTenant(ctx, rq.api, own)
			if err != nil {
				errs[0] = err
				return
			}
			c := tenantCounts(*res.JSON200)
			v.Counts = &c
		})
	} else {
		wg.Go(func() { v.Windows, v.Backlog, errs[0] = stats(ctx, rq.api) })
		wg.Go(func() { v.Chart, v.ChartError = s.chart(ctx, rq.api) })
	}
	wg.Go(func() {
		v.Attention, v.Checked, v.Unchecked, errs[1] = s.attention(ctx, rq.api)
	})
	wg.Go(func() {
		status, limit := client.ListEventsParamsStatusFailed, int64(10)
		params := client.ListEventsParams{Status: &status, Limit: &limit}
		if own := rq.listTenant(""); own != "" {
			params.TenantId = &own
		}
		v.RecentFailed, errs[2] = eventRows(ctx, rq.api, &params)
	})
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			s.fail(w, r, rq, err)
			return
		}
	}
	s.render(w, r, http.StatusOK, web.Overview(v))
}

// stats counts the activity of the last hour and day (GET /stats, side by
// side) and the backlog now.
func stats(ctx context.Context, api *client.ClientWithResponses) ([]web.StatsWindow, web.Backlog, error) {
	windows := []string{"1h", "24h"}
	answers := make([]*client.StatsBody, len(windows))
	errs := make([]error, len(windows))
	var wg sync.WaitGroup
	for i, window := range windows {
		wg.Go(func() {
			res, err := api.GetStatsWithResponse(ctx, &client.GetStatsParams{Window: &window})
			switch {
			case err != nil:
				errs[i] = unreachable(err)
			case res.JSON200 == nil:
				errs[i] = problem(res.StatusCode(), res.Body)
			default:
				answers[i] = res.JSON200
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, web.Backlog{}, err
		}
	}
	var out []web.StatsWindow
	for i, st := range answers {
		out = append(out, web.StatsWindow{Window: windows[i], Received: st.EventsReceived,
			Delivered: st.DeliveriesDelivered, Retrying: st.DeliveriesRetrying, Failed: st.DeliveriesFailed})
	}
	return out, web.Backlog{Due: answers[0].BacklogDue, Oldest: time.Duration(answers[0].BacklogOldestDueSeconds * float64(time.Second))}, nil
}

// chart lays out the last hour's deliveries per minute. A failure costs
// the chart, not the page: it says why instead.
func (s *Server) chart(ctx context.Context, api *client.ClientWithResponses) (*web.DeliveriesChartView, string) {
	window := "1h"
	res, err := api.GetStatsMinutesWithResponse(ctx, &client.GetStatsMinutesParams{Window: &window})
	var e *apiError
	switch {
	case err != nil:
		e = unreachable(err)
	case res.JSON200 == nil:
		e = problem(res.StatusCode(), res.Body)
	}
	if e != nil {
		s.cfg.Logger.Warn("API call failed", "call", "GET /stats/minutes", "err", e, "request_id", e.RequestID)
		return nil, "The chart could not be drawn: " + e.message()
	}
	var minutes []web.MinuteCounts
	for _, m := range items(res.JSON200.Data) {
		minutes = append(minutes, web.MinuteCounts{Minute: m.Minute, Delivered: m.DeliveriesDelivered, Retrying: m.DeliveriesRetrying, Failed: m.DeliveriesFailed})
	}
	c := web.NewDeliveriesChartView(minutes, "last hour")
	return &c, ""
}

// items is the slice p points at, or none.
func items[T any](p *[]T) []T {
	if p == nil {
		return nil
	}
	return *p
}

// attention lists the subscriptions that are not active or whose circuit
// is not closed, among the first circuitChecks: the listing carries each
// circuit (state, opening, failures), all read in one call.
func (s *Server) attention(ctx context.Context, api *client.ClientWithResponses) (rows []web.SubscriptionRow, checked int, more bool, err error) {
	limit, yes := int64(circuitChecks), true
	res, err := api.ListSubscriptionsWithResponse(ctx, &client.ListSubscriptionsParams{Limit: &limit, Circuit: &yes})
	if err != nil {
		return nil, 0, false, unreachable(err)
	}
	if res.JSON200 == nil {
		return nil, 0, false, problem(res.StatusCode(), res.Body)
	}
	subs := items(res.JSON200.Data)
	more = res.JSON200.NextCursor != nil
	for _, sub := range subs {
		row := subscriptionRow(sub)
		if row.State != "active" || (row.Circuit != "" && row.Circuit != "closed") {
			rows = append(rows, row)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, circuitCheckConns)
	// Why each needs attention: its newest failing delivery.
	for i := range rows {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rows[i].LastFailure = lastFailure(ctx, api, rows[i].ID)
		})
	}
	wg.Wait()
	return rows, len(subs), more, nil
}

// lastFailure is the subscription's newest failed or retrying delivery,
// nil when it has none or the API does not say.
func lastFailure(ctx context.Context, api *client.ClientWithResponses, id string) *web.FailureView {
	var newest *web.FailureView
	one := int64(1)
	for _, st := range []client.ListSubscriptionDeliveriesParamsStatus{"failed", "retrying"} {
		res, err := api.ListSubscriptionDeliveriesWithResponse(ctx, id, &client.ListSubscriptionDeliveriesParams{Status: &st, Limit: &one})
		if err != nil || res.JSON200 == nil {
			continue
		}
		for _, d := range items(res.JSON200.Data) {
			if newest == nil || d.UpdatedAt.After(newest.At) {
				newest = &web.FailureView{At: d.UpdatedAt, EventID: d.EventId, Status: string(d.Status), StatusCode: code(d.LastStatusCode), Error: str(d.LastError)}
			}
		}
	}
	return newest
}

var eventStatuses = []string{"unmatched", "pending", "retrying", "failed", "delivered"}

// events is the event search; filters and the page live in the query.
func (s *Server) events(w http.ResponseWriter, r *http.Request, rq *request) {
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		http.Redirect(w, r, rq.path(web.EventURL(id)), http.StatusSeeOther)
		return
	}
	v := web.EventsView{Page: rq.page, Errors: web.Errors{}, Filter: web.EventFilter{
		Type: q.Get("type"), Status: q.Get("status"), SubscriptionID: q.Get("subscription_id"), TenantID: q.Get("tenant_id"),
		Since: q.Get("since"), Until: q.Get("until"),
	}}
	v.Title, v.Nav = "Events", "events"
	if rq.sess.Portal {
		v.Endpoints = portalEndpointChoices(r.Context(), rq.api)
	}
	limit := int64(50)
	params := client.ListEventsParams{Limit: &limit}
	if f := strings.TrimSpace(v.Filter.Type); f != "" {
		params.Type = &f
	}
	if f := v.Filter.Status; f != "" {
		if !slices.Contains(eventStatuses, f) {
			v.Errors["status"] = "choose one of " + strings.Join(eventStatuses, ", ")
		}
		st := client.ListEventsParamsStatus(f)
		params.Status = &st
	}
	if f := strings.TrimSpace(v.Filter.SubscriptionID); f != "" {
		params.SubscriptionId = &f
	}
	if f := rq.listTenant(v.Filter.TenantID); f != "" {
		params.TenantId = &f
	}
	var err error
	if params.Since, err = parseTime(v.Filter.Since); err != nil {
		v.Errors["since"] = err.Error()
	}
	if params.Until, err = parseTime(v.Filter.Until); err != nil {
		v.Errors["until"] = err.Error()
	}
	if after := q.Get("after"); after != "" {
		params.After = &after
		v.First = pageURL(rq.path("/events"), q, "")
	}
	status := http.StatusOK
	if len(v.Errors) == 0 {
		res, err := rq.api.ListEventsWithResponse(r.Context(), &params)
		switch {
		case err != nil:
			s.fail(w, r, rq, unreachable(err))
			return
		case res.JSON200 != nil:
			for _, e := range items(res.JSON200.Data) {
				v.Events = append(v.Events, eventRow(e))
			}
			if res.JSON200.NextCursor != nil {
				v.Next = pageURL(rq.path("/events"), q, *res.JSON200.NextCursor)
			}
		case res.StatusCode() == http.StatusUnprocessableEntity:
			e := problem(res.StatusCode(), res.Body)
			if msg, ok := e.Fields["after"]; ok {
				v.Error = "This page's position is not valid (" + msg + "); start from the newest events."
			}
			for f, msg := range e.Fields {
				v.Errors[f] = msg
			}
			status = http.StatusUnprocessableEntity
		default:
			s.fail(w, r, rq, problem(res.StatusCode(), res.Body))
			return
		}
	} else {
		status = http.StatusUnprocessableEntity
	}
	s.render(w, r, status, rq.ui.events(v))
}

// errBadPage says that the API refused part of a page's URL, a position
// (after) or a filter: the page is still shown, saying what is wrong, as
// a 422, as the events list shows a refused filter or position.
var errBadPage = errors.New("a position or filter in the page's URL is not valid")

// badPosition says that the API refused a page's position, and where to
// start instead, in the events list's words.
func badPosition(e *apiError, restart string) string {
	return "This page's position is not valid (" + e.Fields["after"] + "); " + restart + "."
}

// The event page shows a page of the event's deliveries (the API's
// default page, the first of which GET /events/{id} carries) and each
// delivery's newest attempts; asked for more of one delivery's attempts
// (?delivery=), it shows a page of them. An event's history has no bound
// of its own, so the page's size comes from these alone.
const (
	attemptsPreview = 10
	attemptsPage    = 50
	// attemptCalls bounds the attempts requests one event page makes at once.
	attemptCalls = 8
)

// eventView builds the event page: the event, its payload as it was sent,
// and a page of deliveries, each with its newest attempts. q holds the
// page's state: after (the page of deliveries), delivery (the
// subscription whose delivery shows a page of attempts) and
// attempts_after (which page). A position the API refuses is errBadPage,
// with the view.
func (s *Server) eventView(ctx context.Context, rq *request, id string, q url.Values) (web.EventView, error) {
	v := web.EventView{Page: rq.page}
	v.Title, v.Nav = "Event "+id, "events"
	res, err := rq.api.GetEventWithResponse(ctx, id)
	if err != nil {
		return v, unreachable(err)
	}
	if res.JSON200 == nil {
		e := problem(res.StatusCode(), res.Body)
		if e.Status == http.StatusNotFound || e.Status == http.StatusUnprocessableEntity {
			e.Status, e.Detail = http.StatusNotFound, "no event has the id "+id+". Search the events list, or check the id."
		}
		return v, e
	}
	ev := res.JSON200
	v.Event = web.EventRow{ID: ev.Id, Type: ev.Type, Source: str(ev.Source), Status: string(ev.Status), Tenant: str(ev.TenantId)}
	if ev.ReceivedAt != nil {
		v.Event.ReceivedAt = *ev.ReceivedAt
	}
	// The payload as the API sent it, members in their order.
	var raw struct {
		Data json.RawMessage `json:"data"`
	}
	var pretty bytes.Buffer
	if json.Unmarshal(res.Body, &raw) == nil && json.Indent(&pretty, raw.Data, "", "  ") == nil {
		v.Payload = pretty.String()
	}
	page := eventPage{path: rq.path(web.EventURL(id)), after: q.Get("after"), delivery: q.Get("delivery"), attemptsAfter: q.Get("attempts_after")}
	deliveries, next := items(ev.Deliveries), ev.DeliveriesNextCursor
	if page.after != "" {
		v.FirstDeliveries = page.path
		dl, err := rq.api.ListEventDeliveriesWithResponse(ctx, id, &client.ListEventDeliveriesParams{After: &page.after})
		switch {
		case err != nil:
			return v, unreachable(err)
		case dl.StatusCode() == http.StatusUnprocessableEntity:
			v.Error = badPosition(problem(dl.StatusCode(), dl.Body), "start from the first deliveries")
			return v, errBadPage
		case dl.JSON200 == nil:
			return v, problem(dl.StatusCode(), dl.Body)
		}
		deliveries, next = items(dl.JSON200.Data), dl.JSON200.NextCursor
	}
	if next != nil {
		v.NextDeliveries = page.url(*next, "", "")
	}
	v.Deliveries = make([]web.DeliveryView, len(deliveries))
	errs := make([]error, len(deliveries))
	var wg sync.WaitGroup
	sem := make(chan struct{}, attemptCalls)
	for i, d := range deliveries {
		v.Deliveries[i] = web.DeliveryView{SubscriptionID: d.SubscriptionId, Status: string(d.Status), Held: d.Held != nil && *d.Held,
			Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, LastStatusCode: code(d.LastStatusCode),
			LastError: str(d.LastError), UpdatedAt: d.UpdatedAt}
		if d.Attempts == 0 {
			continue // none made yet: nothing to ask for
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = deliveryAttempts(ctx, rq.api, id, page, &v.Deliveries[i])
		})
	}
	wg.Wait()
	var bad error
	for _, err := range errs {
		var e *apiError
		if errors.As(err, &e) && e.Status == http.StatusUnprocessableEntity {
			v.Error = "This position in the attempts is not valid (" + e.Fields["after"] + "); show the newest attempts."
			bad = errBadPage
			continue
		}
		if err != nil {
			return v, err
		}
	}
	return v, bad
}

// eventPage is the state an event page's URL holds.
type eventPage struct {
	path, after, delivery, attemptsAfter string
}

// url is the event page at the page of deliveries after, showing a page
// of delivery's attempts after attemptsAfter ("" for the newest), scrolled
// to that delivery.
func (p eventPage) url(after, delivery, attemptsAfter string) string {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if delivery != "" {
		q.Set("delivery", delivery)
	}
	if attemptsAfter != "" {
		q.Set("attempts_after", attemptsAfter)
	}
	u := p.path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	if delivery != "" {
		u += "#" + web.DeliveryAnchor(delivery)
	}
	return u
}

// deliveryAttempts fills d with its newest attempts, or, for the delivery
// the page shows more of, with the page of attempts the URL names, and
// with the links to more.
func deliveryAttempts(ctx context.Context, api *client.ClientWithResponses, eventID string, page eventPage, d *web.DeliveryView) error {
	expanded := page.delivery == d.SubscriptionID
	order, limit := client.Newest, int64(attemptsPreview)
	params := client.ListEventAttemptsParams{SubscriptionId: &d.SubscriptionID, Order: &order, Limit: &limit}
	if expanded {
		limit = attemptsPage
		if page.attemptsAfter != "" {
			params.After = &page.attemptsAfter
			d.NewestAttempts = page.url(page.after, d.SubscriptionID, "")
		}
	}
	res, err := api.ListEventAttemptsWithResponse(ctx, eventID, &params)
	if err != nil {
		return unreachable(err)
	}
	if res.JSON200 == nil {
		return problem(res.StatusCode(), res.Body)
	}
	for _, a := range items(res.JSON200.Data) {
		d.AttemptRows = append(d.AttemptRows, attemptView(a))
	}
	switch next := res.JSON200.NextCursor; {
	case next == nil:
	case expanded:
		d.OlderAttempts = page.url(page.after, d.SubscriptionID, *next)
	default:
		d.MoreAttempts = page.url(page.after, d.SubscriptionID, "")
	}
	return nil
}

func (s *Server) event(w http.ResponseWriter, r *http.Request, rq *request) {
	q := r.URL.Query()
	v, err := s.eventView(r.Context(), rq, r.PathValue("id"), q)
	status, ok := pageStatus(err)
	if !ok {
		rq.page.Title = v.Title
		s.fail(w, r, rq, err)
		return
	}
	v.Notice = notice(q)
	s.render(w, r, status, rq.ui.event(v))
}

// pageStatus is the answer for a page whose view was built with err: 200,
// 422 for errBadPage (the view says what is wrong), or not ok when there
// is no view to show.
func pageStatus(err error) (status int, ok bool) {
	switch {
	case err == nil:
		return http.StatusOK, true
	case errors.Is(err, errBadPage):
		return http.StatusUnprocessableEntity, true
	default:
		return 0, false
	}
}

// subscriptionsView lists one page of subscriptions, of one tenant when
// q names it (tenant_id). A filter the API refuses is shown next to its
// field (FilterErrors), with no list.
func (s *Server) subscriptionsView(ctx context.Context, rq *request, q url.Values) (web.SubscriptionsView, error) {
	v := web.SubscriptionsView{Page: rq.page, FilterErrors: web.Errors{}, Form: web.SubscriptionForm{Errors: web.Errors{}}}
	v.Title, v.Nav = "Subscriptions", "subscriptions"
	// The catalog is the operator's: a portal session's key may not read
	// it, and the portal offers the types its tenant received instead.
	if rq.page.CanWrite && !rq.sess.Portal {
		v.Form.Catalog = catalogNames(ctx, rq.api)
	}
	limit := int64(50)
	// Each subscription's circuit and failures come with the listing, read
	// in one call to Redis.
	yes := true
	params := client.ListSubscriptionsParams{Limit: &limit, Circuit: &yes}
	if rq.sess.Portal {
		// The portal shows each endpoint's attempts too.
		params.Activity = &yes
	}
	// The pages' links keep the filter.
	filter := url.Values{}
	if tenant := rq.listTenant(q.Get("tenant_id")); tenant != "" {
		params.TenantId = &tenant
	}
	if rq.sess.TenantID == "" && params.TenantId != nil {
		v.TenantID = *params.TenantId
		filter.Set("tenant_id", v.TenantID)
	}
	if after := q.Get("after"); after != "" {
		params.After = &after
		v.First = pageURL(rq.path("/subscriptions"), filter, "")
	}
	res, err := rq.api.ListSubscriptionsWithResponse(ctx, &params)
	if err != nil {
		return v, unreachable(err)
	}
	if res.JSON200 == nil {
		e := problem(res.StatusCode(), res.Body)
		if e.Status != http.StatusUnprocessableEntity {
			return v, e
		}
		v.FilterErrors = e.Fields
		if msg, ok := e.Fields["after"]; ok {
			v.Error = "This page's position is not valid (" + msg + "); start from the first subscriptions."
		} else if _, ok := e.Fields["tenant_id"]; !ok {
			v.Error = e.message()
		}
		return v, nil
	}
	v.Activity = map[string]web.EndpointActivity{}
	for _, sub := range items(res.JSON200.Data) {
		v.Subscriptions = append(v.Subscriptions, subscriptionRow(sub))
		if a := sub.Activity24h; a != nil {
			v.Activity[sub.Id] = web.EndpointActivity{Attempts: a.Attempts, Succeeded: a.Succeeded}
		}
	}
	if res.JSON200.NextCursor != nil {
		v.Next = pageURL(rq.path("/subscriptions"), filter, *res.JSON200.NextCursor)
	}
	if rq.sess.Portal {
		s.portalEndpoints(ctx, rq, &v)
	}
	return v, nil
}

func (s *Server) subscriptions(w http.ResponseWriter, r *http.Request, rq *request) {
	v, err := s.subscriptionsView(r.Context(), rq, r.URL.Query())
	if err != nil {
		s.fail(w, r, rq, err)
		return
	}
	v.Notice = notice(r.URL.Query())
	status := http.StatusOK
	if len(v.FilterErrors) > 0 || v.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	s.render(w, r, status, rq.ui.subscriptions(v))
}

var deliveryStatuses = []string{"pending", "processing", "delivered", "retrying", "failed"}

// subscriptionView builds the subscription page: settings, circuit and a
// page of recent deliveries. A status filter or position refused is
// errBadPage, with the view.
func (s *Server) subscriptionView(ctx context.Context, rq *request, id string, q url.Values) (web.SubscriptionView, error) {
	v := web.SubscriptionView{Page: rq.page, Errors: web.Errors{}, DeliveryStatus: q.Get("status")}
	v.Title, v.Nav = "Subscription "+id, "subscriptions"
	res, err := rq.api.GetSubscriptionWithResponse(ctx, id)
	if err != nil {
		return v, unreachable(err)
	}
	if res.JSON200 == nil {
		e := problem(res.StatusCode(), res.Body)
		if e.Status == http.StatusNotFound || e.Status == http.StatusUnprocessableEntity {
			e.Status, e.Detail = http.StatusNotFound, "no subscription has the id "+id+"."
		}
		return v, e
	}
	v.Subscription = subscriptionRow(*res.JSON200)
	if v.Ordering, err = s.ordering(ctx, rq, *res.JSON200); err != nil {
		return v, err
	}
	v.Settings = settings(subscriptionLimits(*res.JSON200), inForce(*res.JSON200), "its tenant's default, else the workers'")
	v.Edit = web.SubscriptionEdit{Values: editValues(*res.JSON200), Was: editValues(*res.JSON200), Errors: web.Errors{}}
	v.TLSEdit, v.OAuth2Edit = destinationForms(*res.JSON200)
	limit := int64(25)
	params := client.ListSubscriptionDeliveriesParams{Limit: &limit}
	if st := v.DeliveryStatus; st != "" {
		if !slices.Contains(deliveryStatuses, st) {
			v.Errors["status"] = "choose one of " + strings.Join(deliveryStatuses, ", ")
			return v, errBadPage
		}
		p := client.ListSubscriptionDeliveriesParamsStatus(st)
		params.Status = &p
	}
	if after := q.Get("after"); after != "" {
		params.After = &after
		v.First = pageURL(rq.path(web.SubscriptionURL(id)), q, "")
	}
	dl, err := rq.api.ListSubscriptionDeliveriesWithResponse(ctx, id, &params)
	if err != nil {
		return v, unreachable(err)
	}
	if dl.JSON200 == nil {
		e := problem(dl.StatusCode(), dl.Body)
		if e.Status != http.StatusUnprocessableEntity {
			return v, e
		}
		v.Error = e.message()
		if _, ok := e.Fields["after"]; ok {
			v.Error = badPosition(e, "start from the newest deliveries")
		}
		return v, errBadPage
	}
	for _, d := range items(dl.JSON200.Data) {
		v.Deliveries = append(v.Deliveries, deliveryRow(d))
	}
	if dl.JSON200.NextCursor != nil {
		v.Next = pageURL(rq.path(web.SubscriptionURL(id)), q, *dl.JSON200.NextCursor)
	}
	return v, nil
}

// ordering is a subscription's ordering, with, for an operator, the count
// of its blocked keys: a portal session may not list keys.
func (s *Server) ordering(ctx context.Context, rq *request, sub client.SubscriptionBody) (web.OrderingView, error) {
	v := web.OrderingView{PerKey: sub.Ordering == client.SubscriptionBodyOrderingPerKey}
	if !v.PerKey || rq.sess.Portal {
		return v, nil
	}
	limit := int64(1)
	res, err := rq.api.ListOrderingKeysWithResponse(ctx, sub.Id, &client.ListOrderingKeysParams{Limit: &limit})
	if err != nil {
		return v, unreachable(err)
	}
	if res.JSON200 == nil {
		return v, problem(res.StatusCode(), res.Body)
	}
	v.BlockedKeys = &res.JSON200.BlockedKeys
	return v, nil
}

func (s *Server) subscription(w http.ResponseWriter, r *http.Request, rq *request) {
	q := r.URL.Query()
	v, err := s.subscriptionView(r.Context(), rq, r.PathValue("id"), q)
	status, ok := pageStatus(err)
	if !ok {
		rq.page.Title = v.Title
		s.fail(w, r, rq, err)
		return
	}
	v.Notice = notice(q)
	v.ConfirmDelete = q.Get("confirm") == "delete" && v.CanWrite
	v.ConfirmRotate = q.Get("confirm") == "rotate" && v.CanWrite
	v.NewSecret, v.Warnings = s.takeFlash(w, r, rq, v.Subscription.ID)
	if q.Get("done") == "redeliver-more" && v.CanWrite {
		queued, err := strconv.ParseInt(q.Get("queued"), 10, 64)
		if err != nil || queued < 0 {
			queued = 0
		}
		v.Redelivery = &web.RedeliveryContinuation{Since: q.Get("since"), After: q.Get("after"), Queued: queued}
	}
	v.Watch = rq.sess.Portal && q.Get("watch") != "" && testPending(v.Deliveries)
	s.render(w, r, status, rq.ui.subscription(v))
}
