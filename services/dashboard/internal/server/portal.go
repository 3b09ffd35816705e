package server

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/services/dashboard/internal/session"
	"github.com/dispatch-webhooks/dispatch/web"
)

// The customer portal (ADR 32): a tenant's own pages under /portal/,
// opened with a single-use portal link. A portal session holds the key
// that opening the link made, bound to the link's tenant; its pages are
// the dashboard's handlers with the portal's look (portalUI), so every
// read and change goes through the API as that key and the API's tenant
// scoping keeps every other tenant's data out of reach.

// portalCookie holds a portal session, for /portal/ only.
const portalCookie = "dispatch_portal"

// PortalConfig brands the portal and says where it may be framed.
type PortalConfig struct {
	// FrameAncestors are the origins that may show the portal in a frame;
	// none may when empty (frame-ancestors 'none').
	FrameAncestors []string
	// Title names the portal in its header (PORTAL_TITLE).
	Title string
	// LogoURL, if set, is an image shown beside the title.
	LogoURL string
	// AccentColor, if set, colours links, buttons' borders and focus.
	AccentColor string
}

// portalUI is the customer portal's look and place.
var portalUI = ui{base: web.PortalBase, subscriptions: web.PortalEndpoints, subscription: web.PortalEndpoint,
	events: web.PortalEvents, event: web.PortalEvent, errorPage: web.PortalError,
	eventTypes: web.PortalEventTypes, eventType: web.PortalEventType}

// portalRoute is one of the portal's pages or actions that need a portal
// session. Every one goes through portalSession; a POST changes
// something, so it needs the CSRF token and a session that may write.
type portalRoute struct {
	pattern string
	handle  func(http.ResponseWriter, *http.Request, *request)
}

// portalRoutes are every route of the portal that a session reaches. The
// portal's mux is built from this list, and the isolation tests walk it,
// so a route added here is registered and tested at once.
func (s *Server) portalRoutes() []portalRoute {
	return []portalRoute{
		{"GET /portal/{$}", s.subscriptions},
		{"GET /portal/subscriptions", s.subscriptions},
		{"POST /portal/subscriptions", s.createSubscription},
		{"GET /portal/subscriptions/{id}", s.subscription},
		{"POST /portal/subscriptions/{id}/edit", s.editSubscription},
		{"POST /portal/subscriptions/{id}/pause", s.setState("paused")},
		{"POST /portal/subscriptions/{id}/resume", s.setState("active")},
		{"POST /portal/subscriptions/{id}/delete", s.deleteSubscription},
		{"POST /portal/subscriptions/{id}/rotate", s.rotate},
		{"POST /portal/subscriptions/{id}/redeliver", s.redeliverSubscription},
		{"POST /portal/subscriptions/{id}/reveal", s.revealSecret},
		{"POST /portal/subscriptions/{id}/test", s.sendTestEvent},
		{"GET /portal/events", s.events},
		{"GET /portal/events/{id}", s.event},
		{"POST /portal/events/{id}/redeliver", s.redeliverEvent},
		{"GET /portal/event-types", s.eventTypes},
		{"GET /portal/event-types/{name}", s.eventType},
	}
}

// RegisterPortal adds the customer portal and the static files to mux.
func (s *Server) RegisterPortal(mux *http.ServeMux) {
	s.registerStatic(mux)
	mux.Handle("GET /portal", http.RedirectHandler(string(web.PortalEndpointsURL), http.StatusMovedPermanently))
	mux.HandleFunc("GET /portal/open", s.portalOpen)
	mux.HandleFunc("GET /portal/expired", s.portalExpiredPage)
	mux.HandleFunc("GET /portal/theme.css", s.portalTheme)
	for _, rt := range s.portalRoutes() {
		mux.HandleFunc(rt.pattern, s.portalSession(rt.handle))
	}
}

// registerStatic serves the embedded static files, once per mux.
func (s *Server) registerStatic(mux *http.ServeMux) {
	if _, pattern := mux.Handler(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/static/style.css"}}); pattern != "" {
		return
	}
	static, _ := fs.Sub(web.Static, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
}

// portalHeaders replaces the dashboard's security headers on a portal
// answer: it may be framed by PORTAL_FRAME_ANCESTORS' origins (none when
// unset), and may show the logo.
func (s *Server) portalHeaders(w http.ResponseWriter) {
	h := w.Header()
	ancestors := "'none'"
	if len(s.cfg.Portal.FrameAncestors) > 0 {
		ancestors = strings.Join(s.cfg.Portal.FrameAncestors, " ")
		// X-Frame-Options cannot name origins; frame-ancestors says it all.
		h.Del("X-Frame-Options")
	} else {
		h.Set("X-Frame-Options", "DENY")
	}
	img := "'self' data:"
	if u, err := url.Parse(s.cfg.Portal.LogoURL); err == nil && u.Host != "" {
		img += " " + u.Scheme + "://" + u.Host
	}
	h.Set("Content-Security-Policy", "default-src 'self'; img-src "+img+"; frame-ancestors "+ancestors+"; form-action 'self'; base-uri 'none'")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
}

// framed reports whether the portal may be framed by other sites, whose
// frames get its cookie only when it is SameSite=None (hence Secure, and
// Partitioned so that it lives in the embedding site's jar).
func (s *Server) framed(r *http.Request) bool {
	return len(s.cfg.Portal.FrameAncestors) > 0 && s.secure(r)
}

// portalCookieFor is the portal session's cookie holding value until
// expires (a negative maxAge clears it).
func (s *Server) portalCookieFor(r *http.Request, value string, expires time.Time, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: portalCookie, Value: value, Path: web.PortalBase, Expires: expires, MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode}
	if s.framed(r) {
		c.SameSite, c.Partitioned = http.SameSiteNoneMode, true
	}
	return c
}

// portalOpen opens a portal link: the API consumes its token (once) and
// answers the session's key, which is sealed into the portal's cookie;
// the browser goes on to the portal's home. A link that cannot be opened
// any more is the expired page.
func (s *Server) portalOpen(w http.ResponseWriter, r *http.Request) {
	s.portalHeaders(w)
	token := r.URL.Query().Get("token")
	if token == "" || len(token) > 128 {
		s.portalExpired(w, r, http.StatusGone)
		return
	}
	api, err := client.NewClientWithResponses(s.cfg.APIURL, client.WithHTTPClient(s.cfg.HTTPClient))
	if err != nil {
		http.Error(w, "portal misconfigured: "+err.Error(), http.StatusInternalServerError)
		return
	}
	res, err := api.ExchangePortalLinkWithResponse(r.Context(), client.ExchangePortalLinkJSONRequestBody{Token: token})
	switch {
	case err != nil:
		s.cfg.Logger.Warn("portal link: API unreachable", "err", err)
		s.portalUnavailable(w, r, http.StatusBadGateway, "The service did not answer, so this link could not be opened. Try again in a moment.")
		return
	case res.JSON200 == nil && (res.StatusCode() == http.StatusNotFound || res.StatusCode() == http.StatusUnprocessableEntity):
		s.portalExpired(w, r, http.StatusGone)
		return
	case res.JSON200 == nil:
		e := problem(res.StatusCode(), res.Body)
		s.cfg.Logger.Warn("portal link: API refused", "err", e, "request_id", e.RequestID)
		s.portalUnavailable(w, r, e.httpStatus(), "This link could not be opened: "+e.message())
		return
	}
	ps := res.JSON200
	sess := session.Session{ID: session.Nonce(), APIKey: ps.Key, KeyID: ps.KeyId, Scopes: []string{"read"}, TenantID: ps.TenantId,
		Expires: ps.ExpiresAt, Portal: true, TenantName: ps.TenantName, ReturnURL: str(ps.ReturnUrl)}
	if !ps.ReadOnly {
		sess.Scopes = append(sess.Scopes, "write")
	}
	if sess.Issued, err = s.cfg.Revocations.Issue(r.Context()); err != nil {
		s.cfg.Logger.Warn("portal link: session store unreachable", "err", err)
		w.Header().Set("Retry-After", "5")
		s.portalUnavailable(w, r, http.StatusServiceUnavailable, "The portal cannot record sessions right now, and this link has been used up. Ask for a new one in a moment.")
		return
	}
	value, err := s.cfg.Sealer.Seal(sess)
	if err != nil {
		http.Error(w, "The session could not be created.", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, s.portalCookieFor(r, value, sess.Expires, 0))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, string(web.PortalEndpointsURL), http.StatusSeeOther)
}

// portalSession wraps a portal page or action: without a portal session
// that is still valid the expired page answers; a POST needs the
// session's CSRF token and a session that may write, else it is a 403
// and nothing is sent to the API.
func (s *Server) portalSession(h func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.portalHeaders(w)
		c, err := r.Cookie(portalCookie)
		if err != nil {
			s.portalEnded(w, r)
			return
		}
		sess, err := s.open(r.Context(), c.Value)
		if err == nil && !sess.Portal {
			err = session.ErrInvalid
		}
		switch {
		case errors.Is(err, session.ErrUnavailable):
			s.cfg.Logger.Warn("session store unreachable", "path", r.URL.Path, "err", err)
			w.Header().Set("Retry-After", "5")
			s.portalUnavailable(w, r, http.StatusServiceUnavailable, "The portal cannot check this session right now; nothing was shown or done. Try again in a moment.")
			return
		case err != nil:
			s.portalEnded(w, r)
			return
		}
		api, err := client.NewClientWithResponses(s.cfg.APIURL, client.WithAPIKey(sess.APIKey), client.WithHTTPClient(s.cfg.HTTPClient))
		if err != nil {
			http.Error(w, "portal misconfigured: "+err.Error(), http.StatusInternalServerError)
			return
		}
		rq := &request{sess: sess, api: api, page: s.portalPage(sess, c.Value), ui: portalUI}
		if r.Method == http.MethodPost {
			refuse := ""
			switch {
			case !s.cfg.Sealer.ValidToken(c.Value, r.PostFormValue("csrf")):
				refuse = "This form's security token is missing or belongs to another session, so nothing was done. Go back, reload the page and try again."
			case !rq.page.CanWrite:
				refuse = "This link lets you look, not change anything, so nothing was done."
			}
			if refuse != "" {
				rq.page.Title = "Refused"
				s.render(w, r, http.StatusForbidden, web.PortalError(web.ErrorView{Page: rq.page, Status: http.StatusForbidden, Message: refuse}))
				return
			}
		}
		h(w, r, rq)
	}
}

// portalPage is the page fields of a portal session whose sealed cookie
// is value.
func (s *Server) portalPage(sess session.Session, value string) web.Page {
	p := s.page(sess, value)
	p.CanWrite, p.Admin = sess.Has("write"), false
	name := sess.TenantName
	if name == "" {
		name = sess.TenantID
	}
	p.Portal = &web.PortalChrome{Title: s.cfg.Portal.Title, LogoURL: s.cfg.Portal.LogoURL, TenantName: name,
		ReturnURL: sess.ReturnURL, Expires: sess.Expires}
	return p
}

// portalEnded answers a request without a valid portal session (none,
// expired, revoked, or its key refused by the API): the cookie is
// cleared and the expired page shown; a request htmx made is sent there.
func (s *Server) portalEnded(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, s.portalCookieFor(r, "", time.Time{}, -1))
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", web.PortalBase+"/expired")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.portalExpired(w, r, http.StatusUnauthorized)
}

func (s *Server) portalExpiredPage(w http.ResponseWriter, r *http.Request) {
	s.portalHeaders(w)
	s.portalExpired(w, r, http.StatusUnauthorized)
}

// portalExpired is the page of a link or session that cannot be used.
func (s *Server) portalExpired(w http.ResponseWriter, r *http.Request, status int) {
	s.render(w, r, status, web.PortalExpired(web.PortalExpiredView{Title: s.cfg.Portal.Title, LogoURL: s.cfg.Portal.LogoURL,
		Message: "This link has expired; ask for a new one."}))
}

// portalUnavailable is a portal page that could not be shown, without a
// session to show it in.
func (s *Server) portalUnavailable(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, web.PortalExpired(web.PortalExpiredView{Title: s.cfg.Portal.Title, LogoURL: s.cfg.Portal.LogoURL, Message: msg}))
}

// portalTheme is the portal's accent colour as a style sheet, so that
// pages need no inline style (the content security policy allows none).
func (s *Server) portalTheme(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	if c := s.cfg.Portal.AccentColor; c != "" {
		_, _ = w.Write([]byte(":root { --accent: " + c + "; }\n"))
	}
}

// Portal extras: what the portal's pages show beyond the dashboard's.

// knownTypesFrom bounds how many recent events are read for the types a
// tenant received, offered when adding an endpoint.
const knownTypesFrom = 100

// portalEndpoints fills what the portal's endpoints page shows beyond
// the subscriptions, whose attempts over the last day and circuits came
// with the listing: the event types the tenant received lately, and the
// catalog's, both offered by the endpoint form.
func (s *Server) portalEndpoints(ctx context.Context, rq *request, v *web.SubscriptionsView) {
	v.KnownTypes = recentTypes(ctx, rq.api)
	v.Form.Catalog = catalogNames(ctx, rq.api)
}

// recentTypes are the distinct types of the tenant's newest events, but
// for the test events, which no endpoint needs to ask for.
func recentTypes(ctx context.Context, api *client.ClientWithResponses) []string {
	limit := int64(knownTypesFrom)
	res, err := api.ListEventsWithResponse(ctx, &client.ListEventsParams{Limit: &limit})
	if err != nil || res.JSON200 == nil {
		return nil
	}
	var types []string
	for _, e := range items(res.JSON200.Data) {
		if e.Type != testEventType && !slices.Contains(types, e.Type) {
			types = append(types, e.Type)
		}
	}
	slices.Sort(types)
	return types
}

// portalEndpointChoices are the tenant's endpoints the event log's filter
// offers: the first page of them.
func portalEndpointChoices(ctx context.Context, api *client.ClientWithResponses) []web.SubscriptionRow {
	limit := int64(250)
	res, err := api.ListSubscriptionsWithResponse(ctx, &client.ListSubscriptionsParams{Limit: &limit})
	if err != nil || res.JSON200 == nil {
		return nil
	}
	var rows []web.SubscriptionRow
	for _, sub := range items(res.JSON200.Data) {
		rows = append(rows, subscriptionRow(sub))
	}
	return rows
}

// testPending reports whether the newest test event among deliveries
// (newest first) has no attempt recorded yet: the endpoint's page then
// keeps refreshing its recent deliveries until it has. A delivery being
// processed already counts its attempt but has no result yet, so it is
// the status that tells.
func testPending(deliveries []web.DeliveryRow) bool {
	for _, d := range deliveries {
		if d.EventType == testEventType {
			return d.Status == "pending" || d.Status == "processing"
		}
	}
	return true
}

// testEventType is the type of the events "Send test event" sends.
const testEventType = "dispatch.test"

// revealSecret shows the endpoint's signing secret (POST: a deliberate
// act, refused to read-only sessions like any change).
func (s *Server) revealSecret(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	res, err := rq.api.RevealSubscriptionSecretWithResponse(r.Context(), id)
	if err != nil {
		s.subscriptionFailed(w, r, rq, unreachable(err), nil)
		return
	}
	if res.JSON200 == nil {
		s.subscriptionFailed(w, r, rq, problem(res.StatusCode(), res.Body), nil)
		return
	}
	v, err := s.subscriptionView(r.Context(), rq, id, url.Values{})
	if err != nil {
		s.fail(w, r, rq, err)
		return
	}
	v.Revealed, v.PreviousSecretUntil = res.JSON200.Secret, res.JSON200.PreviousSecretExpiresAt
	s.render(w, r, http.StatusOK, rq.ui.subscription(v))
}

// sendTestEvent sends a signed dispatch.test event to the endpoint alone,
// then shows its page watching the recent deliveries (htmx refreshes
// them) until the attempt is recorded.
func (s *Server) sendTestEvent(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	res, err := rq.api.SendTestEventWithResponse(r.Context(), id, client.SendTestEventJSONRequestBody{})
	if err != nil {
		s.subscriptionFailed(w, r, rq, unreachable(err), nil)
		return
	}
	if res.JSON202 == nil {
		if wait := res.HTTPResponse.Header.Get("Retry-After"); res.StatusCode() == http.StatusTooManyRequests && wait != "" {
			w.Header().Set("Retry-After", wait)
		}
		s.subscriptionFailed(w, r, rq, problem(res.StatusCode(), res.Body), nil)
		return
	}
	http.Redirect(w, r, rq.path(web.SubscriptionURL(id))+"?done=test&watch=1", http.StatusSeeOther)
}
