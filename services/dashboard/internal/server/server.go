// Package server is the dashboard's HTTP side: sign-in and sessions, CSRF
// checks, and one handler per page or action. Every handler reads and acts
// through the ingest-api's API with the generated client, as the signed-in
// key, builds a view model and renders a web component; the API enforces
// scopes and validation, the dashboard only shows what it answers.
package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/services/dashboard/internal/session"
	"github.com/dispatch-webhooks/dispatch/web"
)

// Cookie names.
const (
	sessionCookie = "dispatch_session"
	loginCookie   = "dispatch_login"
)

// Config is what a Server needs.
type Config struct {
	// APIURL is the ingest-api's base URL.
	APIURL string
	// Sealer seals sessions and makes CSRF tokens.
	Sealer *session.Sealer
	// Revocations records the sessions that ended before their expiry;
	// every request checks it.
	Revocations *session.Revocations
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration
	// HTTPClient calls the API; a client with a 15 s timeout when nil.
	HTTPClient *http.Client
	// Logger logs failed API calls.
	Logger *slog.Logger
	// Clock tells the time sessions and flashes start from, so tests can
	// move it instead of waiting [clock.Real()].
	Clock clock.Clock
	// Portal brands the customer portal and says who may frame it.
	Portal PortalConfig
	// HTTPS says that browsers reach the dashboard over HTTPS
	// (DASHBOARD_PUBLIC_URL is an https URL), typically through a proxy
	// that ends TLS: every cookie is then Secure and every answer carries
	// Strict-Transport-Security, whatever the proxy's headers say.
	HTTPS bool
}

// Server serves the dashboard.
type Server struct {
	cfg Config
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Portal.Title == "" {
		cfg.Portal.Title = "Webhooks"
	}
	return &Server{cfg: cfg}
}

// Register adds the dashboard's pages, actions and static files to mux.
func (s *Server) Register(mux *http.ServeMux) {
	s.registerStatic(mux)
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("POST /logout/everywhere", s.signedIn(s.logoutEverywhere))

	mux.HandleFunc("GET /{$}", s.signedIn(s.overview))
	mux.HandleFunc("GET /events", s.signedIn(s.events))
	mux.HandleFunc("GET /events/{id}", s.signedIn(s.event))
	mux.HandleFunc("POST /events/{id}/redeliver", s.signedIn(s.redeliverEvent))
	mux.HandleFunc("GET /subscriptions", s.signedIn(s.subscriptions))
	mux.HandleFunc("POST /subscriptions", s.signedIn(s.createSubscription))
	mux.HandleFunc("GET /subscriptions/{id}", s.signedIn(s.subscription))
	mux.HandleFunc("POST /subscriptions/{id}/pause", s.signedIn(s.setState("paused")))
	mux.HandleFunc("POST /subscriptions/{id}/resume", s.signedIn(s.setState("active")))
	mux.HandleFunc("POST /subscriptions/{id}/rotate", s.signedIn(s.rotate))
	mux.HandleFunc("POST /subscriptions/{id}/redeliver", s.signedIn(s.redeliverSubscription))
	mux.HandleFunc("POST /subscriptions/{id}/delete", s.signedIn(s.deleteSubscription))
	mux.HandleFunc("POST /subscriptions/{id}/edit", s.signedIn(s.editSubscription))
	mux.HandleFunc("POST /subscriptions/{id}/headers", s.signedIn(s.setHeaders))
	mux.HandleFunc("POST /subscriptions/{id}/tls", s.signedIn(s.setTLS))
	mux.HandleFunc("POST /subscriptions/{id}/oauth2", s.signedIn(s.setOAuth2))
	mux.HandleFunc("GET /event-types", s.signedIn(s.eventTypes))
	mux.HandleFunc("GET /event-types/{name}", s.signedIn(s.eventType))
	mux.HandleFunc("GET /tenants", s.signedIn(s.tenants))
	mux.HandleFunc("GET /tenants/{id}", s.signedIn(s.tenant))
}

// Handler returns the dashboard and the customer portal with their
// security headers, on a mux of their own (health and metrics are the
// caller's).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Register(mux)
	s.RegisterPortal(mux)
	return s.SecurityHeaders(mux)
}

// PortalHandler returns the customer portal alone, with its static files
// and security headers, for a listener of its own (PORTAL_ADDR): none of
// the operators' pages is on it.
func (s *Server) PortalHandler() http.Handler {
	mux := http.NewServeMux()
	s.RegisterPortal(mux)
	return s.SecurityHeaders(mux)
}

// hsts keeps browsers on HTTPS for a year once they have seen it. It names
// no subdomains: the dashboard cannot speak for its neighbours' hosts.
const hsts = "max-age=31536000"

// SecurityHeaders sets headers that keep pages from being framed, scripts
// from other origins from running, and answers from being sniffed, and
// over HTTPS (Config.HTTPS, or TLS on this listener) keeps browsers on it.
func (s *Server) SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if s.cfg.HTTPS || r.TLS != nil {
			h.Set("Strict-Transport-Security", hsts)
		}
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// Ready checks that the API answers /healthz.
func (s *Server) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.APIURL+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("API /healthz answered " + resp.Status)
	}
	return nil
}

// request is one signed-in request: the session, an API client acting as
// its key, the page fields every view shares, and the pages it is shown.
type request struct {
	sess session.Session
	api  *client.ClientWithResponses
	page web.Page
	ui   ui
}

// ui is where a request's pages live and how they look: the operators'
// dashboard at the root, or a tenant's customer portal under /portal. The
// handlers that read and act through the API are the same for both.
type ui struct {
	// base is prefixed to every path the pages link or redirect to.
	base          string
	subscriptions func(web.SubscriptionsView) templ.Component
	subscription  func(web.SubscriptionView) templ.Component
	events        func(web.EventsView) templ.Component
	event         func(web.EventView) templ.Component
	errorPage     func(web.ErrorView) templ.Component
	eventTypes    func(web.EventTypesView) templ.Component
	eventType     func(web.EventTypeView) templ.Component
}

// dashboardUI is the operators' dashboard.
var dashboardUI = ui{subscriptions: web.Subscriptions, subscription: web.Subscription, events: web.Events, event: web.Event, errorPage: web.ErrorPage,
	eventTypes: web.EventTypes, eventType: web.EventType}

// path is the dashboard path p (such as "/events") where the request's
// pages live.
func (rq *request) path(p templ.SafeURL) string { return rq.ui.base + string(p) }

// listTenant is the tenant a listing asks for: a session bound to a
// tenant asks for its own, whatever the URL names (it sees no other, and
// naming it lets each row show it); any other the one named, or none.
func (rq *request) listTenant(named string) string {
	if rq.sess.TenantID != "" {
		return rq.sess.TenantID
	}
	return strings.TrimSpace(named)
}

// signedIn wraps a handler that needs a session: without a valid one the
// browser goes to /login; a POST must carry the session's CSRF token.
func (s *Server) signedIn(h func(w http.ResponseWriter, r *http.Request, rq *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil {
			toLogin(w, r, "/login")
			return
		}
		sess, err := s.open(r.Context(), c.Value)
		if err == nil && sess.Portal {
			// A portal session's cookie is for /portal/ alone.
			err = session.ErrInvalid
		}
		switch {
		case errors.Is(err, session.ErrUnavailable):
			s.unavailable(w, r, s.page(sess, c.Value), err, "so it cannot tell whether this session is still valid; nothing was shown or done")
			return
		case err != nil:
			s.clearSession(w, r)
			to := "/login"
			if errors.Is(err, session.ErrExpired) || errors.Is(err, session.ErrEnded) {
				to += "?expired=1"
			}
			toLogin(w, r, to)
			return
		}
		api, err := client.NewClientWithResponses(s.cfg.APIURL, client.WithAPIKey(sess.APIKey), client.WithHTTPClient(s.cfg.HTTPClient))
		if err != nil {
			http.Error(w, "dashboard misconfigured: "+err.Error(), http.StatusInternalServerError)
			return
		}
		rq := &request{sess: sess, api: api, page: s.page(sess, c.Value), ui: dashboardUI}
		if r.Method == http.MethodPost && !s.cfg.Sealer.ValidToken(c.Value, r.PostFormValue("csrf")) {
			rq.page.Title = "Refused"
			s.render(w, r, http.StatusForbidden, web.ErrorPage(web.ErrorView{Page: rq.page, Status: http.StatusForbidden,
				Message: "This form's security token is missing or belongs to another session, so nothing was done. Go back, reload the page and try again."}))
			return
		}
		h(w, r, rq)
	}
}

// open returns the session sealed in value if it has not ended. With
// session.ErrUnavailable it also returns the session, which opened but
// may have ended: the caller must not act on it.
func (s *Server) open(ctx context.Context, value string) (session.Session, error) {
	sess, err := s.cfg.Sealer.Open(value)
	if err != nil {
		return session.Session{}, err
	}
	if err := s.cfg.Revocations.Check(ctx, sess); err != nil {
		if errors.Is(err, session.ErrUnavailable) {
			return sess, err
		}
		return session.Session{}, err
	}
	return sess, nil
}

// page is the page fields of a session whose sealed cookie is value.
func (s *Server) page(sess session.Session, value string) web.Page {
	return web.Page{
		KeyID: sess.KeyID, Scopes: sess.Scopes, BoundTenant: sess.TenantID, CanWrite: sess.Has("write", "admin"), Admin: sess.Has("admin"),
		CSRF: s.cfg.Sealer.Token(value), Now: s.cfg.Clock.Now(),
	}
}

// unavailable answers 503 when Redis, where ended sessions are recorded,
// does not answer: the dashboard fails closed rather than honour a session
// that may have been signed out, or pretend to have ended one (ADR 19).
// consequence follows "cannot reach the Redis where it records ended
// sessions," and says what was not done.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, p web.Page, err error, consequence string) {
	s.cfg.Logger.Warn("session store unreachable", "path", r.URL.Path, "err", err)
	p.Title = "Unavailable"
	w.Header().Set("Retry-After", "5")
	s.render(w, r, http.StatusServiceUnavailable, web.ErrorPage(web.ErrorView{Page: p, Status: http.StatusServiceUnavailable,
		Message: "The dashboard cannot reach the Redis where it records ended sessions, " + consequence + ". Try again in a moment."}))
}

// render writes a component with status; a component that fails to render
// is logged and answered with a plain 500, never half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		s.cfg.Logger.Error("render", "path", r.URL.Path, "err", err)
		http.Error(w, "The page could not be rendered.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows an API failure as a page: a key the API no longer accepts
// ends the session, anything else is explained in words.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	e := asAPIError(err)
	if s.unauthorized(w, r, rq, e) {
		return
	}
	if e.Status == 0 || e.Status >= 500 {
		s.cfg.Logger.Warn("API call failed", "path", r.URL.Path, "err", e, "request_id", e.RequestID)
	}
	p := rq.page
	if p.Title == "" {
		p.Title = "Something went wrong"
	}
	s.render(w, r, e.httpStatus(), rq.ui.errorPage(web.ErrorView{Page: p, Status: e.httpStatus(), Message: e.message()}))
}

// unauthorized reports whether err means the session's key is no longer
// accepted, ending the session: an operator goes to /login, a portal's
// customer sees that the link has expired.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, rq *request, err error) bool {
	if asAPIError(err).Status != http.StatusUnauthorized {
		return false
	}
	if rq.sess.Portal {
		s.portalEnded(w, r)
		return true
	}
	s.clearSession(w, r)
	toLogin(w, r, "/login?expired=1")
	return true
}

// secure reports whether r's cookies are Secure: always when the dashboard
// is configured as reached over HTTPS, otherwise when this request came
// over TLS or a proxy says it did. Without the setting a proxy that does
// not send X-Forwarded-Proto would get cookies a plain-HTTP hop could
// carry, hence the setting.
func (s *Server) secure(r *http.Request) bool {
	return s.cfg.HTTPS || r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func (s *Server) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
}

// toLogin sends the browser to the sign-in page at to: a redirect, or for
// a request htmx made (which would follow a redirect and swap the sign-in
// page into the overview) an HX-Redirect that makes htmx navigate there.
func toLogin(w http.ResponseWriter, r *http.Request, to string) {
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
