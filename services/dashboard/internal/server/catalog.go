package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/web"
)

// catalogOffer is how many of the catalog's types the subscription form
// offers; the rest are typed in.
const catalogOffer = 100

// eventTypes lists the catalog, a page at a time, searched by the start of
// the names and by deprecation; the search lives in the query.
func (s *Server) eventTypes(w http.ResponseWriter, r *http.Request, rq *request) {
	q := r.URL.Query()
	v := web.EventTypesView{Page: rq.page, Prefix: q.Get("prefix"), Deprecated: q.Get("deprecated"), Errors: web.Errors{}}
	v.Title, v.Nav = "Event types", "event-types"
	limit := int64(50)
	params := client.ListEventTypesParams{Limit: &limit}
	if p := strings.TrimSpace(v.Prefix); p != "" {
		params.Prefix = &p
	}
	if v.Deprecated == "true" || v.Deprecated == "false" {
		d := client.ListEventTypesParamsDeprecated(v.Deprecated)
		params.Deprecated = &d
	} else {
		v.Deprecated = ""
	}
	if after := q.Get("after"); after != "" {
		params.After = &after
		v.First = pageURL("/event-types", q, "")
	}
	res, err := rq.api.ListEventTypesWithResponse(r.Context(), &params)
	status := http.StatusOK
	switch {
	case err != nil:
		s.fail(w, r, rq, unreachable(err))
		return
	case res.JSON200 != nil:
		for _, t := range items(res.JSON200.Data) {
			v.Types = append(v.Types, eventTypeRow(t))
		}
		if res.JSON200.NextCursor != nil {
			v.Next = pageURL("/event-types", q, *res.JSON200.NextCursor)
		}
	case res.StatusCode() == http.StatusUnprocessableEntity:
		v.Errors = problem(res.StatusCode(), res.Body).Fields
		status = http.StatusUnprocessableEntity
	default:
		s.fail(w, r, rq, problem(res.StatusCode(), res.Body))
		return
	}
	s.render(w, r, status, web.EventTypes(v))
}

func eventTypeRow(t client.EventTypeBody) web.EventTypeRow {
	row := web.EventTypeRow{Name: t.Name, Version: t.Version, UpdatedAt: t.UpdatedAt}
	row.Summary, _, _ = strings.Cut(str(t.Description), "\n")
	if t.Validation != nil {
		row.Validation = string(*t.Validation)
	}
	if t.Deprecated != nil {
		row.Deprecated = *t.Deprecated
	}
	return row
}

// indented is JSON text indented for reading, members in their order.
func indented(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// eventType is one type's page: the type as written (the API's own text,
// so the schema's members keep their order) and its versions.
func (s *Server) eventType(w http.ResponseWriter, r *http.Request, rq *request) {
	name := r.PathValue("name")
	v := web.EventTypeView{Page: rq.page}
	v.Title, v.Nav = "Event type "+name, "event-types"
	res, err := rq.api.GetEventTypeWithResponse(r.Context(), name)
	if err != nil {
		s.fail(w, r, rq, unreachable(err))
		return
	}
	if res.JSON200 == nil {
		e := problem(res.StatusCode(), res.Body)
		if e.Status == http.StatusNotFound || e.Status == http.StatusUnprocessableEntity {
			e.Status, e.Detail = http.StatusNotFound, "the catalog has no event type "+name+"."
		}
		s.fail(w, r, rq, e)
		return
	}
	t := res.JSON200
	v.Type, v.Description, v.ArchivedAt = eventTypeRow(*t), str(t.Description), t.ArchivedAt
	var raw struct {
		Schema   json.RawMessage   `json:"schema"`
		Examples []json.RawMessage `json:"examples"`
	}
	if json.Unmarshal(res.Body, &raw) == nil {
		v.Schema = indented(raw.Schema)
		for _, ex := range raw.Examples {
			v.Examples = append(v.Examples, indented(ex))
		}
	}
	versions, err := rq.api.ListEventTypeVersionsWithResponse(r.Context(), name)
	if err != nil {
		s.fail(w, r, rq, unreachable(err))
		return
	}
	var rawVersions struct {
		Data []struct {
			Version   int64           `json:"version"`
			Schema    json.RawMessage `json:"schema"`
			CreatedAt time.Time       `json:"created_at"`
		} `json:"data"`
	}
	if versions.JSON200 == nil || json.Unmarshal(versions.Body, &rawVersions) != nil {
		s.fail(w, r, rq, problem(versions.StatusCode(), versions.Body))
		return
	}
	for _, ver := range rawVersions.Data {
		v.Versions = append(v.Versions, web.EventTypeVersionRow{Version: ver.Version, Schema: indented(ver.Schema), CreatedAt: ver.CreatedAt})
	}
	s.render(w, r, http.StatusOK, web.EventType(v))
}

// catalogNames are the first catalogOffer type names of the catalog, for
// the subscription form; none when the catalog cannot be read, since the
// form works without them.
func catalogNames(ctx context.Context, api *client.ClientWithResponses) []string {
	limit := int64(catalogOffer)
	res, err := api.ListEventTypesWithResponse(ctx, &client.ListEventTypesParams{Limit: &limit})
	if err != nil || res.JSON200 == nil {
		return nil
	}
	var names []string
	for _, t := range items(res.JSON200.Data) {
		names = append(names, t.Name)
	}
	return names
}
