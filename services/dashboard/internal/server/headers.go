package server

import (
	"net/http"
	"strings"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/web"
)

// setHeaders replaces the subscription's custom headers with the form's
// "Name: value" lines, or removes them all (the remove button). The API
// checks every name and value; its objection shows next to the field,
// with the names typed and none of the values.
func (s *Server) setHeaders(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	text := r.PostFormValue("headers")
	headers := map[string]string{}
	form := web.HeadersEdit{Errors: web.Errors{}, Open: true}
	if r.PostFormValue("remove") == "" {
		var names []string
		for line := range strings.Lines(text) {
			line = strings.TrimRight(line, "\r\n")
			if strings.TrimSpace(line) == "" {
				continue
			}
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				// The line may be a value typed alone: not written back.
				form.Errors["headers"] = "write each header as Name: value, one per line"
				continue
			}
			name = strings.TrimSpace(name)
			names = append(names, name+": ")
			headers[name] = strings.TrimSpace(value)
		}
		form.Text = strings.Join(names, "\n")
		if len(names) == 0 && len(form.Errors) == 0 {
			form.Errors["headers"] = "enter at least one header, or remove them all with the other button"
		}
	}
	refused := func(e *apiError) {
		s.subscriptionFailed(w, r, rq, e, func(v *web.SubscriptionView) { v.HeadersEdit = form })
	}
	if len(form.Errors) > 0 {
		refused(&apiError{Status: http.StatusUnprocessableEntity, Detail: "Check the headers", Fields: form.Errors})
		return
	}
	res, err := rq.api.UpdateSubscriptionWithResponse(r.Context(), id, client.UpdateSubscriptionJSONRequestBody{Headers: &headers})
	if err != nil {
		refused(unreachable(err))
		return
	}
	if res.JSON200 == nil {
		e := problem(res.StatusCode(), res.Body)
		if msg, ok := e.Fields["headers"]; ok {
			form.Errors["headers"] = msg
		}
		refused(e)
		return
	}
	done := "headers"
	if len(headers) == 0 {
		done = "headers-removed"
	}
	http.Redirect(w, r, rq.path(web.SubscriptionURL(id))+"?done="+done, http.StatusSeeOther)
}
