package server

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/web"
)

// The forms for a subscription's mutual TLS and OAuth2 settings (ADR 39,
// 40). The dashboard never holds the TLS key or the client secret: their
// fields are always shown empty, and left empty they keep the stored
// ones, which the API allows only with the certificate, or the token URL
// and client id, they were stored with.

// clientTLSView summarises the API's TLS settings: the certificate's
// subject and issuer, read from its PEM, and the CA bundle's size.
func clientTLSView(t client.ClientTLSBody) *web.ClientTLSView {
	v := &web.ClientTLSView{HasCertificate: str(t.ClientCertificate) != ""}
	if certs := certificates(str(t.ClientCertificate)); len(certs) > 0 {
		v.Subject, v.Issuer = certs[0].Subject.String(), certs[0].Issuer.String()
	}
	v.CACertificates = len(certificates(str(t.CaBundle)))
	return v
}

// certificates are the certificates of a PEM text that parse.
func certificates(text string) []*x509.Certificate {
	var out []*x509.Certificate
	rest := []byte(text)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil && block.Type == "CERTIFICATE" {
			out = append(out, c)
		}
	}
}

// destinationForms are the TLS and OAuth2 forms filled with the
// subscription's settings, their secrets left out.
func destinationForms(s client.SubscriptionBody) (web.TLSEdit, web.OAuth2Edit) {
	t := web.TLSEdit{Errors: web.Errors{}}
	if s.Tls != nil {
		t.Certificate, t.CABundle = str(s.Tls.ClientCertificate), str(s.Tls.CaBundle)
	}
	o := web.OAuth2Edit{Errors: web.Errors{}}
	if s.Oauth2 != nil {
		o.TokenURL, o.ClientID, o.Scopes, o.Audience = s.Oauth2.TokenUrl, s.Oauth2.ClientId, strings.Join(items(s.Oauth2.Scopes), " "), str(s.Oauth2.Audience)
	}
	return t, o
}

// unixLines is PEM as a textarea sends it (CRLF line ends) with LF line
// ends and no surrounding white space.
func unixLines(text string) string {
	return strings.TrimSpace(strings.ReplaceAll(text, "\r\n", "\n"))
}

// setTLS sets the subscription's mutual TLS settings, keeping the stored
// key when its field is left empty, or removes them (the remove button).
func (s *Server) setTLS(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	form := web.TLSEdit{Certificate: unixLines(r.PostFormValue("client_certificate")), CABundle: unixLines(r.PostFormValue("ca_bundle")),
		Errors: web.Errors{}, Open: true}
	key := unixLines(r.PostFormValue("client_key"))
	var settings map[string]string // nil removes them
	if r.PostFormValue("remove") == "" {
		notUTF8(form.Errors, map[string]*string{"client_certificate": &form.Certificate, "ca_bundle": &form.CABundle})
		if !utf8.ValidString(key) {
			form.Errors["client_key"] = "must be valid UTF-8 text"
		}
		settings = map[string]string{}
		for name, v := range map[string]string{"client_certificate": form.Certificate, "client_key": key, "ca_bundle": form.CABundle} {
			if v != "" {
				settings[name] = v
			}
		}
		if len(settings) == 0 {
			form.Errors["tls"] = "paste a client certificate and its key, a CA bundle, or all three; or remove mutual TLS with the other button"
		}
	}
	refused := func(e *apiError) {
		s.subscriptionFailed(w, r, rq, e, func(v *web.SubscriptionView) { v.TLSEdit = form })
	}
	if len(form.Errors) > 0 {
		refused(&apiError{Status: http.StatusUnprocessableEntity, Detail: "Check the TLS settings", Fields: form.Errors})
		return
	}
	if settings != nil && form.Certificate != "" && key == "" {
		// The stored key is kept only with the certificate as stored:
		// send it as the API has it, whatever line ends the browser used.
		stored, err := s.storedCertificate(r, rq, id)
		if err != nil {
			refused(asAPIError(err))
			return
		}
		if unixLines(stored) == form.Certificate {
			settings["client_certificate"] = stored
		}
	}
	var body any
	if settings != nil {
		body = settings
	}
	res, err := patchOption(r, rq, id, "tls", body)
	if err != nil {
		refused(unreachable(err))
		return
	}
	if res.JSON200 == nil {
		e := problem(res.StatusCode(), res.Body)
		e.fieldsUnder("tls", form.Errors)
		refused(e)
		return
	}
	done := "tls"
	if settings == nil {
		done = "tls-removed"
	}
	http.Redirect(w, r, rq.path(web.SubscriptionURL(id))+"?done="+done, http.StatusSeeOther)
}

// storedCertificate is the subscription's client certificate as the API
// has it; "" when it has none.
func (s *Server) storedCertificate(r *http.Request, rq *request, id string) (string, error) {
	res, err := rq.api.GetSubscriptionWithResponse(r.Context(), id)
	if err != nil {
		return "", unreachable(err)
	}
	if res.JSON200 == nil {
		return "", problem(res.StatusCode(), res.Body)
	}
	if res.JSON200.Tls == nil {
		return "", nil
	}
	return str(res.JSON200.Tls.ClientCertificate), nil
}

// setOAuth2 sets the subscription's OAuth2 client credentials, keeping
// the stored secret when its field is left empty, or removes them (the
// remove button).
func (s *Server) setOAuth2(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	form := web.OAuth2Edit{TokenURL: strings.TrimSpace(r.PostFormValue("token_url")), ClientID: strings.TrimSpace(r.PostFormValue("client_id")),
		Scopes: strings.Join(strings.Fields(r.PostFormValue("scopes")), " "), Audience: strings.TrimSpace(r.PostFormValue("audience")),
		Errors: web.Errors{}, Open: true}
	secret := r.PostFormValue("client_secret")
	var settings map[string]any // nil removes them
	if r.PostFormValue("remove") == "" {
		notUTF8(form.Errors, map[string]*string{"token_url": &form.TokenURL, "client_id": &form.ClientID, "scopes": &form.Scopes, "audience": &form.Audience})
		if !utf8.ValidString(secret) {
			form.Errors["client_secret"] = "must be valid UTF-8 text"
		}
		settings = map[string]any{"token_url": form.TokenURL, "client_id": form.ClientID}
		if secret != "" {
			settings["client_secret"] = secret
		}
		if scopes := strings.Fields(form.Scopes); len(scopes) > 0 {
			settings["scopes"] = scopes
		}
		if form.Audience != "" {
			settings["audience"] = form.Audience
		}
	}
	refused := func(e *apiError) {
		s.subscriptionFailed(w, r, rq, e, func(v *web.SubscriptionView) { v.OAuth2Edit = form })
	}
	if len(form.Errors) > 0 {
		refused(&apiError{Status: http.StatusUnprocessableEntity, Detail: "Check the OAuth2 settings", Fields: form.Errors})
		return
	}
	var body any
	if settings != nil {
		body = settings
	}
	res, err := patchOption(r, rq, id, "oauth2", body)
	if err != nil {
		refused(unreachable(err))
		return
	}
	if res.JSON200 == nil {
		e := problem(res.StatusCode(), res.Body)
		e.fieldsUnder("oauth2", form.Errors)
		refused(e)
		return
	}
	done := "oauth2"
	if settings == nil {
		done = "oauth2-removed"
	}
	http.Redirect(w, r, rq.path(web.SubscriptionURL(id))+"?done="+done, http.StatusSeeOther)
}

// patchOption sends a PATCH that sets one field of the subscription to
// value, null when value is nil: the generated request type leaves a nil
// field out, which would keep the settings rather than remove them.
func patchOption(r *http.Request, rq *request, id, field string, value any) (*client.UpdateSubscriptionResponse, error) {
	b, err := json.Marshal(map[string]any{field: value})
	if err != nil {
		return nil, err
	}
	return rq.api.UpdateSubscriptionWithBodyWithResponse(r.Context(), id, "application/json", bytes.NewReader(b))
}
