package server

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/services/dashboard/internal/session"
	"github.com/dispatch-webhooks/dispatch/web"
)

// Actions post to the API as the signed-in key. Success redirects to the
// page with a notice code (post, redirect, get); a refusal shows the page
// again with the API's words at the top or next to the field concerned.

// redeliverEvent queues an event's finished deliveries again: all of them,
// or one subscription's when the form names it.
func (s *Server) redeliverEvent(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	var body client.RedeliverEventJSONRequestBody
	if sub := r.PostFormValue("subscription_id"); sub != "" {
		body.SubscriptionId = &sub
	}
	res, err := rq.api.RedeliverEventWithResponse(r.Context(), id, body)
	var apiErr *apiError
	switch {
	case err != nil:
		apiErr = unreachable(err)
	case res.JSON202 != nil:
		http.Redirect(w, r, rq.path(web.EventURL(id))+"?done=redeliver&n="+strconv.FormatInt(res.JSON202.Queued, 10), http.StatusSeeOther)
		return
	default:
		apiErr = problem(res.StatusCode(), res.Body)
	}
	if s.unauthorized(w, r, rq, apiErr) {
		return
	}
	v, err := s.eventView(r.Context(), rq, id, url.Values{})
	if err != nil {
		s.fail(w, r, rq, err)
		return
	}
	v.Error = apiErr.message()
	s.render(w, r, apiErr.httpStatus(), rq.ui.event(v))
}

// createSubscription creates a subscription and shows its secret once.
func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request, rq *request) {
	form := web.SubscriptionForm{
		ID: strings.TrimSpace(r.PostFormValue("id")), URL: strings.TrimSpace(r.PostFormValue("url")),
		EventTypes: strings.TrimSpace(r.PostFormValue("event_types")), Secret: r.PostFormValue("secret"), Errors: web.Errors{},
		Chosen: r.PostForm["catalog_type"],
	}
	notUTF8(form.Errors, map[string]*string{"id": &form.ID, "url": &form.URL, "event_types": &form.EventTypes, "secret": &form.Secret})
	types := eventTypes(form.EventTypes)
	for _, t := range form.Chosen {
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	body := client.CreateSubscriptionJSONRequestBody{Url: form.URL, EventTypes: &types}
	// The portal never sends an id: the server chooses it, and ids are
	// unique across tenants, so a chosen one would tell a customer whether
	// another tenant has it (the API refuses a portal key's id too).
	if form.ID != "" && !rq.sess.Portal {
		body.Id = &form.ID
	}
	if form.Secret != "" {
		body.Secret = &form.Secret
	}
	if len(types) == 0 && form.Errors["event_types"] == "" {
		form.Errors["event_types"] = "name at least one event type or pattern, such as order.* or *"
	}
	var apiErr *apiError
	if len(form.Errors) == 0 {
		res, err := rq.api.CreateSubscriptionWithResponse(r.Context(), body)
		switch {
		case err != nil:
			apiErr = unreachable(err)
		case res.JSON201 != nil:
			s.showOnce(w, r, rq, session.Flash{SubscriptionID: res.JSON201.Id, Secret: res.JSON201.Secret, Warnings: items(res.JSON201.Warnings)}, "created")
			return
		default:
			apiErr = problem(res.StatusCode(), res.Body)
			if apiErr.Status == http.StatusConflict {
				apiErr.Fields["id"] = apiErr.Detail
			}
		}
	}
	if apiErr != nil && s.unauthorized(w, r, rq, apiErr) {
		return
	}
	v, err := s.subscriptionsView(r.Context(), rq, url.Values{})
	if err != nil {
		s.fail(w, r, rq, err)
		return
	}
	status := http.StatusUnprocessableEntity
	if apiErr != nil {
		status = apiErr.httpStatus()
		for f, msg := range apiErr.Fields {
			form.Errors[f] = msg
		}
		if len(apiErr.Fields) == 0 || apiErr.Status >= 500 || apiErr.Status == 0 || apiErr.Status == http.StatusForbidden {
			v.Error = apiErr.message()
		}
	}
	form.Catalog = v.Form.Catalog
	v.Form = form
	s.render(w, r, status, rq.ui.subscriptions(v))
}

// subscriptionFailed shows the subscription page again with what the API
// said about an action.
func (s *Server) subscriptionFailed(w http.ResponseWriter, r *http.Request, rq *request, apiErr *apiError, edit func(*web.SubscriptionView)) {
	if s.unauthorized(w, r, rq, apiErr) {
		return
	}
	v, err := s.subscriptionView(r.Context(), rq, r.PathValue("id"), url.Values{})
	if err != nil {
		s.fail(w, r, rq, err)
		return
	}
	v.Error = apiErr.message()
	if edit != nil {
		edit(&v)
	}
	s.render(w, r, apiErr.httpStatus(), rq.ui.subscription(v))
}

// setState pauses or resumes a subscription.
func (s *Server) setState(state client.UpdateSubscriptionInputBodyState) func(http.ResponseWriter, *http.Request, *request) {
	done := map[client.UpdateSubscriptionInputBodyState]string{"paused": "paused", "active": "resumed"}[state]
	return func(w http.ResponseWriter, r *http.Request, rq *request) {
		id := r.PathValue("id")
		res, err := rq.api.UpdateSubscriptionWithResponse(r.Context(), id, client.UpdateSubscriptionJSONRequestBody{State: &state})
		if err != nil {
			s.subscriptionFailed(w, r, rq, unreachable(err), nil)
			return
		}
		if res.JSON200 == nil {
			s.subscriptionFailed(w, r, rq, problem(res.StatusCode(), res.Body), nil)
			return
		}
		http.Redirect(w, r, rq.path(web.SubscriptionURL(id))+"?done="+done, http.StatusSeeOther)
	}
}

// rotate gives the subscription a new secret and shows it once.
func (s *Server) rotate(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	res, err := rq.api.RotateSubscriptionSecretWithResponse(r.Context(), id, client.RotateSubscriptionSecretJSONRequestBody{})
	if err != nil {
		s.subscriptionFailed(w, r, rq, unreachable(err), nil)
		return
	}
	if res.JSON200 == nil {
		s.subscriptionFailed(w, r, rq, problem(res.StatusCode(), res.Body), nil)
		return
	}
	expires := res.JSON200.PreviousSecretExpiresAt
	s.showOnce(w, r, rq, session.Flash{SubscriptionID: id, Secret: res.JSON200.Secret, PreviousExpiresAt: &expires}, "rotated")
}

// flashCookie carries a secret, or the API's warnings, to the page a
// redirect leads to.
const flashCookie = "dispatch_flash"

// flashTTL is how long a secret waits for its page: the redirect's round
// trip, with room for a slow network.
const flashTTL = 2 * time.Minute

// showOnce redirects to the subscription's page (post, redirect, get),
// which shows f's secret and warnings once: they travel there sealed in a
// cookie that the page clears, so a reload neither repeats the action nor
// shows them again.
func (s *Server) showOnce(w http.ResponseWriter, r *http.Request, rq *request, f session.Flash, done string) {
	f.SessionID, f.Expires = rq.sess.ID, s.cfg.Clock.Now().Add(flashTTL)
	value, err := s.cfg.Sealer.SealFlash(f)
	if err != nil {
		s.fail(w, r, rq, err)
		return
	}
	http.SetCookie(w, s.flashCookieFor(r, rq, value, int(flashTTL.Seconds())))
	http.Redirect(w, r, rq.path(web.SubscriptionURL(f.SubscriptionID))+"?done="+done, http.StatusSeeOther)
}

// takeFlash returns the secret (nil if none) and the warnings a redirect
// brought for the subscription id, and clears them, so that they show
// once.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request, rq *request, id string) (*web.CreatedSecret, []string) {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil, nil
	}
	http.SetCookie(w, s.flashCookieFor(r, rq, "", -1))
	f, err := s.cfg.Sealer.OpenFlash(c.Value)
	if err != nil || f.SessionID != rq.sess.ID || f.SubscriptionID != id {
		return nil, nil
	}
	if f.Secret == "" {
		return nil, f.Warnings
	}
	return &web.CreatedSecret{SubscriptionID: f.SubscriptionID, Secret: f.Secret, PreviousExpiresAt: f.PreviousExpiresAt}, f.Warnings
}

// flashCookieFor is the cookie that carries a flash to the subscription's
// page (a negative maxAge clears it): SameSite=Strict on the operators'
// pages; on the portal's, the rules of its session cookie, so that it
// reaches a framed portal too.
func (s *Server) flashCookieFor(r *http.Request, rq *request, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: flashCookie, Value: value, Path: rq.path("/subscriptions/"), MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode}
	if rq.sess.Portal {
		c.SameSite = http.SameSiteLaxMode
		if s.framed(r) {
			c.SameSite, c.Partitioned = http.SameSiteNoneMode, true
		}
	}
	return c
}

// redeliverSubscription queues the subscription's failed deliveries
// created since the time given, one page of them: as many as the API
// queues in one request. When it has more, the page after says how many
// were queued so far and offers to continue, a form that sends the API's
// cursor (and the time, and the count) back here; each page is one click,
// so no click queues a whole history, and each page's count is shown as
// it is queued.
func (s *Server) redeliverSubscription(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	since, after := r.PostFormValue("since"), r.PostFormValue("after")
	// Only ever shown: a made-up count changes nothing but the words.
	queued, err := strconv.ParseInt(r.PostFormValue("queued"), 10, 64)
	if err != nil || queued < 0 {
		queued = 0
	}
	withField := func(msg string) func(*web.SubscriptionView) {
		return func(v *web.SubscriptionView) { v.RedeliverSince, v.Errors["since"] = since, msg }
	}
	from, err := parseTime(since)
	if err != nil || from == nil {
		msg := "enter a time such as 2026-01-02T15:04 (UTC)"
		if err != nil {
			msg = err.Error()
		}
		s.subscriptionFailed(w, r, rq, &apiError{Status: http.StatusUnprocessableEntity, Detail: "Check the time", Fields: web.Errors{"since": msg}}, withField(msg))
		return
	}
	statuses := []client.RedeliverBulkInputBodyStatuses{client.RedeliverBulkInputBodyStatusesFailed}
	body := client.RedeliverSubscriptionJSONRequestBody{From: from, Statuses: &statuses}
	if after != "" {
		body.After = &after
	}
	// A page that fails can be asked for again: the form to continue stays.
	again := func(v *web.SubscriptionView) {
		if after != "" {
			v.Redelivery = &web.RedeliveryContinuation{Since: since, After: after, Queued: queued}
		}
	}
	res, err := rq.api.RedeliverSubscriptionWithResponse(r.Context(), id, body)
	if err != nil {
		s.subscriptionFailed(w, r, rq, unreachable(err), again)
		return
	}
	if res.JSON202 == nil {
		e := problem(res.StatusCode(), res.Body)
		edit := again
		if msg, ok := e.Fields["from"]; ok {
			edit = withField(msg)
		} else if msg, ok := e.Fields["after"]; ok {
			edit = withField("this redelivery cannot continue from where it was (" + msg + "); start it again from a time")
		}
		s.subscriptionFailed(w, r, rq, e, edit)
		return
	}
	queued += res.JSON202.Queued
	if res.JSON202.NextCursor == nil {
		http.Redirect(w, r, rq.path(web.SubscriptionURL(id))+"?done=redeliver&n="+strconv.FormatInt(queued, 10), http.StatusSeeOther)
		return
	}
	// The page that offers to continue is a GET too: a reload shows it
	// again and queues nothing.
	q := url.Values{"done": {"redeliver-more"}, "n": {strconv.FormatInt(res.JSON202.Queued, 10)},
		"since": {since}, "after": {*res.JSON202.NextCursor}, "queued": {strconv.FormatInt(queued, 10)}}
	http.Redirect(w, r, rq.path(web.SubscriptionURL(id))+"?"+q.Encode(), http.StatusSeeOther)
}

// deleteSubscription deletes the subscription (the page asked first).
func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	res, err := rq.api.DeleteSubscriptionWithResponse(r.Context(), id)
	if err != nil {
		s.subscriptionFailed(w, r, rq, unreachable(err), nil)
		return
	}
	if res.StatusCode() != http.StatusNoContent {
		s.subscriptionFailed(w, r, rq, problem(res.StatusCode(), res.Body), nil)
		return
	}
	http.Redirect(w, r, rq.path("/subscriptions")+"?done=deleted", http.StatusSeeOther)
}

// editSubscription patches the fields the operator changed: each field is
// compared with the value the page showed (the form's was_ fields), so a
// change someone else made meanwhile to another field is kept.
func (s *Server) editSubscription(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	read := func(prefix string) web.EditValues {
		f := func(name string) string { return strings.TrimSpace(r.PostFormValue(prefix + name)) }
		return web.EditValues{URL: f("url"), EventTypes: f("event_types"), RateLimitPerSecond: f("rate_limit_per_second"),
			MaxConcurrency: f("max_concurrency"), TimeoutMs: f("timeout_ms"), MaxAttempts: f("max_attempts")}
	}
	edit := web.SubscriptionEdit{Values: read(""), Was: read("was_"), Errors: web.Errors{}, Open: true}
	notUTF8(edit.Errors, map[string]*string{"url": &edit.Values.URL, "event_types": &edit.Values.EventTypes})
	var body client.UpdateSubscriptionJSONRequestBody
	changed := false
	if edit.Values.URL != edit.Was.URL && edit.Errors["url"] == "" {
		body.Url, changed = &edit.Values.URL, true
	}
	switch types := eventTypes(edit.Values.EventTypes); {
	case edit.Errors["event_types"] != "":
		// Already refused: not valid UTF-8.
	case len(types) == 0:
		edit.Errors["event_types"] = "name at least one event type or pattern, such as order.* or *"
	case !slices.Equal(types, eventTypes(edit.Was.EventTypes)):
		body.EventTypes, changed = &types, true
	}
	for _, f := range []struct {
		name     string
		now, was string
		to       **int64
	}{
		{"rate_limit_per_second", edit.Values.RateLimitPerSecond, edit.Was.RateLimitPerSecond, &body.RateLimitPerSecond},
		{"max_concurrency", edit.Values.MaxConcurrency, edit.Was.MaxConcurrency, &body.MaxConcurrency},
		{"timeout_ms", edit.Values.TimeoutMs, edit.Was.TimeoutMs, &body.TimeoutMs},
		{"max_attempts", edit.Values.MaxAttempts, edit.Was.MaxAttempts, &body.MaxAttempts},
	} {
		// The portal's customers change URLs and event types; limits
		// stay the operator's.
		if f.now == f.was || rq.sess.Portal {
			continue
		}
		if f.now == "" {
			edit.Errors[f.name] = "a limit cannot go back to the worker's default once set; enter the default's value instead"
			continue
		}
		n, err := strconv.ParseInt(f.now, 10, 64)
		if err != nil {
			edit.Errors[f.name] = "enter a whole number"
			continue
		}
		*f.to, changed = &n, true
	}
	withForm := func(apiErr *apiError) func(*web.SubscriptionView) {
		return func(v *web.SubscriptionView) {
			v.Edit = edit
			var other []string
			for f, msg := range apiErr.Fields {
				if f != "" && !slices.Contains(editFields, f) {
					other = append(other, f+": "+msg)
				}
			}
			if len(other) > 0 {
				slices.Sort(other)
				v.Error = apiErr.Detail + ": " + strings.Join(other, "; ")
			}
		}
	}
	if len(edit.Errors) > 0 {
		s.subscriptionFailed(w, r, rq, &apiError{Status: http.StatusUnprocessableEntity, Detail: "Check the fields marked", Fields: edit.Errors}, withForm(&apiError{}))
		return
	}
	if !changed {
		http.Redirect(w, r, rq.path(web.SubscriptionURL(id))+"?done=unchanged", http.StatusSeeOther)
		return
	}
	res, err := rq.api.UpdateSubscriptionWithResponse(r.Context(), id, body)
	if err != nil {
		s.subscriptionFailed(w, r, rq, unreachable(err), withForm(&apiError{}))
		return
	}
	if res.JSON200 == nil {
		e := problem(res.StatusCode(), res.Body)
		for f, msg := range e.Fields {
			if slices.Contains(editFields, f) {
				edit.Errors[f] = msg
			}
		}
		s.subscriptionFailed(w, r, rq, e, withForm(e))
		return
	}
	if warnings := items(res.JSON200.Warnings); len(warnings) > 0 {
		s.showOnce(w, r, rq, session.Flash{SubscriptionID: id, Warnings: warnings}, "updated")
		return
	}
	http.Redirect(w, r, rq.path(web.SubscriptionURL(id))+"?done=updated", http.StatusSeeOther)
}

// editFields are the edit form's fields, named as the API names them.
var editFields = []string{"url", "event_types", "rate_limit_per_second", "max_concurrency", "timeout_ms", "max_attempts"}
