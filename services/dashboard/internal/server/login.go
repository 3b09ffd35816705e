package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/services/dashboard/internal/session"
	"github.com/dispatch-webhooks/dispatch/web"
)

// loginPage shows the sign-in form. Its CSRF token is bound to a random
// value in a short-lived cookie of its own, since there is no session yet.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if _, err := s.open(r.Context(), c.Value); err == nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
	}
	v := web.LoginView{CSRF: s.loginToken(w, r)}
	switch {
	case r.URL.Query().Has("expired"):
		v.Notice = "Your session ended. Sign in again."
	case r.URL.Query().Has("signed_out"):
		v.Notice = "Signed out."
	case r.URL.Query().Has("signed_out_everywhere"):
		v.Notice = "Every session was ended, this one too. Sign in again."
	}
	s.render(w, r, http.StatusOK, web.Login(v))
}

// loginToken sets a fresh sign-in nonce cookie and returns its token.
func (s *Server) loginToken(w http.ResponseWriter, r *http.Request) string {
	nonce := session.Nonce()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: nonce, Path: "/login", MaxAge: 3600,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
	return s.cfg.Sealer.Token("login:" + nonce)
}

// login checks the key with GET /me and starts a session holding it sealed.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || !s.cfg.Sealer.ValidToken("login:"+c.Value, r.PostFormValue("csrf")) {
		s.render(w, r, http.StatusForbidden, web.Login(web.LoginView{CSRF: s.loginToken(w, r),
			Error: "The sign-in form was stale (or cookies are off). Try again."}))
		return
	}
	again := func(status int, msg string) {
		s.render(w, r, status, web.Login(web.LoginView{CSRF: s.loginToken(w, r), Error: msg}))
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	if key == "" {
		again(http.StatusUnprocessableEntity, "Enter an API key.")
		return
	}
	api, err := client.NewClientWithResponses(s.cfg.APIURL, client.WithAPIKey(key), client.WithHTTPClient(s.cfg.HTTPClient))
	if err != nil {
		again(http.StatusInternalServerError, "The dashboard cannot reach the API: "+err.Error())
		return
	}
	res, err := api.GetCurrentKeyWithResponse(r.Context())
	switch {
	case err != nil:
		s.cfg.Logger.Warn("sign-in: API unreachable", "err", err)
		again(http.StatusBadGateway, "The Dispatch API did not answer, so the key could not be checked. Try again in a moment.")
		return
	case res.StatusCode() == http.StatusUnauthorized:
		again(http.StatusUnauthorized, "The API does not accept this key: it is unknown, expired or revoked.")
		return
	case res.JSON200 == nil:
		again(problem(res.StatusCode(), res.Body).httpStatus(), problem(res.StatusCode(), res.Body).message())
		return
	}
	sess := session.Session{ID: session.Nonce(), APIKey: key, KeyID: res.JSON200.Id, Expires: s.cfg.Clock.Now().Add(s.cfg.SessionTTL)}
	if res.JSON200.Scopes != nil {
		sess.Scopes = *res.JSON200.Scopes
	}
	sess.TenantID = str(res.JSON200.TenantId)
	if !sess.Has("read", "admin") {
		again(http.StatusForbidden, "This key lacks the read scope the dashboard needs to show anything (it has: "+strings.Join(sess.Scopes, ", ")+").")
		return
	}
	if sess.Issued, err = s.cfg.Revocations.Issue(r.Context()); err != nil {
		s.cfg.Logger.Warn("sign-in: session store unreachable", "err", err)
		w.Header().Set("Retry-After", "5")
		again(http.StatusServiceUnavailable, "The dashboard cannot reach the Redis where it records sessions, so it cannot sign you in. Try again in a moment.")
		return
	}
	value, err := s.cfg.Sealer.Seal(sess)
	if err != nil {
		again(http.StatusInternalServerError, "The session could not be created.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: value, Path: "/", Expires: sess.Expires,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the session, on every instance: a copy of its cookie stops
// working too. With a valid session the form must carry its token, so
// another site cannot sign an operator out.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if sess, err := s.cfg.Sealer.Open(c.Value); err == nil {
			if !s.cfg.Sealer.ValidToken(c.Value, r.PostFormValue("csrf")) {
				http.Error(w, "This form's security token is missing or stale; reload the page and try again.", http.StatusForbidden)
				return
			}
			if err := s.cfg.Revocations.End(r.Context(), sess); err != nil {
				// The cookie is kept: dropping it would look like a sign-out
				// while a copy of it still works.
				s.unavailable(w, r, s.page(sess, c.Value), err, "so it could not end this session: you are still signed in")
				return
			}
		}
	}
	s.clearSession(w, r)
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}

// logoutEverywhere ends every session of every instance, this one too. It
// is for admin keys: the API confirms that the key still has the scope.
func (s *Server) logoutEverywhere(w http.ResponseWriter, r *http.Request, rq *request) {
	res, err := rq.api.GetCurrentKeyWithResponse(r.Context())
	switch {
	case err != nil:
		s.fail(w, r, rq, unreachable(err))
		return
	case res.JSON200 == nil:
		s.fail(w, r, rq, problem(res.StatusCode(), res.Body))
		return
	case res.JSON200.Scopes == nil || !slices.Contains(*res.JSON200.Scopes, "admin"):
		rq.page.Title = "Refused"
		s.render(w, r, http.StatusForbidden, rq.ui.errorPage(web.ErrorView{Page: rq.page, Status: http.StatusForbidden,
			Message: "Only a key with the admin scope can end every session; nothing was done."}))
		return
	}
	if err := s.cfg.Revocations.EndAll(r.Context()); err != nil {
		s.unavailable(w, r, rq.page, err, "so it could not end the sessions: none was ended")
		return
	}
	s.clearSession(w, r)
	http.Redirect(w, r, "/login?signed_out_everywhere=1", http.StatusSeeOther)
}
