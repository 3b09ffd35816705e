package server

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/web"
)

// Conversions from the API's answers to the components' view models.

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func code(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

// eventRow is a listed event.
func eventRow(e client.EventListItem) web.EventRow {
	return web.EventRow{ID: e.Id, Type: e.Type, Source: str(e.Source), Status: string(e.Status), ReceivedAt: e.ReceivedAt, Tenant: e.TenantId}
}

func subscriptionRow(s client.SubscriptionBody) web.SubscriptionRow {
	row := web.SubscriptionRow{ID: s.Id, URL: s.Url, EventTypes: items(s.EventTypes), State: string(s.State),
		StateReason: str(s.StateReason), Tenant: s.TenantId, CreatedAt: s.CreatedAt}
	if s.CircuitState != nil {
		row.Circuit = string(*s.CircuitState)
	}
	row.OpenedAt, row.Failures, row.LastFailureAt = s.CircuitOpenedAt, s.FailuresLastHour, s.LastFailureAt
	if s.Headers != nil {
		row.Headers = slices.Sorted(maps.Keys(*s.Headers))
	}
	if s.Tls != nil {
		row.ClientCertificateExpiresAt = s.Tls.ClientCertificateExpiresAt
		row.TLS = clientTLSView(*s.Tls)
	}
	if o := s.Oauth2; o != nil {
		row.OAuth2 = &web.OAuth2View{TokenURL: o.TokenUrl, ClientID: o.ClientId, Scopes: items(o.Scopes), Audience: str(o.Audience)}
	}
	return row
}

// limits are the delivery settings a subscription or a tenant may set;
// nil is not set.
type limits struct {
	maxAttempts, retryBaseDelayMs, retryMaxDelayMs, timeoutMs, rateLimitPerSecond, maxConcurrency *int64
}

func subscriptionLimits(s client.SubscriptionBody) limits {
	return limits{s.MaxAttempts, s.RetryBaseDelayMs, s.RetryMaxDelayMs, s.TimeoutMs, s.RateLimitPerSecond, s.MaxConcurrency}
}

// inForce is the settings in force that GET /subscriptions/{id} gives
// (effective); all unset when it gives none.
func inForce(s client.SubscriptionBody) limits {
	e := s.Effective
	if e == nil {
		return limits{}
	}
	return limits{e.MaxAttempts, e.RetryBaseDelayMs, e.RetryMaxDelayMs, e.TimeoutMs, e.RateLimitPerSecond, e.MaxConcurrency}
}

func tenantLimits(t client.TenantDetail) limits {
	return limits{t.MaxAttempts, t.RetryBaseDelayMs, t.RetryMaxDelayMs, t.TimeoutMs, t.RateLimitPerSecond, t.MaxConcurrency}
}

// settings shows l; a setting l leaves unset shows its value in force
// marked as a default, or unset when inForce has none either.
func settings(l, inForce limits, unset string) []web.Setting {
	ms := func(p *int64) string { return (time.Duration(*p) * time.Millisecond).String() }
	n := func(p *int64) string { return strconv.FormatInt(*p, 10) }
	perSecond := func(p *int64) string { return n(p) + "/s" }
	var out []web.Setting
	for _, f := range []struct {
		name           string
		value, inForce *int64
		format         func(*int64) string
	}{
		{"max attempts", l.maxAttempts, inForce.maxAttempts, n},
		{"retry base delay", l.retryBaseDelayMs, inForce.retryBaseDelayMs, ms},
		{"retry max delay", l.retryMaxDelayMs, inForce.retryMaxDelayMs, ms},
		{"timeout", l.timeoutMs, inForce.timeoutMs, ms},
		{"rate limit", l.rateLimitPerSecond, inForce.rateLimitPerSecond, perSecond},
		{"max concurrency", l.maxConcurrency, inForce.maxConcurrency, n},
	} {
		if f.value == nil && f.inForce != nil {
			out = append(out, web.Setting{Name: f.name, Value: f.format(f.inForce) + " (" + unset + ")", Default: true})
			continue
		}
		if f.value == nil {
			out = append(out, web.Setting{Name: f.name, Value: unset, Default: true})
			continue
		}
		out = append(out, web.Setting{Name: f.name, Value: f.format(f.value)})
	}
	return out
}

// editValues are s's editable fields as the edit form shows them.
func editValues(s client.SubscriptionBody) web.EditValues {
	n := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	return web.EditValues{URL: s.Url, EventTypes: strings.Join(items(s.EventTypes), "\n"),
		RateLimitPerSecond: n(s.RateLimitPerSecond), MaxConcurrency: n(s.MaxConcurrency), TimeoutMs: n(s.TimeoutMs), MaxAttempts: n(s.MaxAttempts)}
}

// eventTypes splits what an operator typed into patterns: commas, spaces
// and line breaks separate them.
func eventTypes(s string) []string {
	return strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r' })
}

// tenantRow is a tenant as GET /tenants and GET /tenants/{id} describe it.
func tenantRow(id string, name *string, maxSubscriptions *int64, created, updated time.Time) web.TenantRow {
	row := web.TenantRow{ID: id, Name: str(name), CreatedAt: created, UpdatedAt: updated}
	if maxSubscriptions != nil {
		row.MaxSubscriptions = *maxSubscriptions
	}
	return row
}

func deliveryRow(d client.DeliveryListItem) web.DeliveryRow {
	return web.DeliveryRow{EventID: d.EventId, EventType: d.EventType, Test: d.Test != nil && *d.Test, Status: string(d.Status),
		Held: d.Held != nil && *d.Held, Attempts: d.Attempts,
		LastStatusCode: code(d.LastStatusCode), LastError: str(d.LastError), NextAttemptAt: d.NextAttemptAt,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

func attemptView(a client.AttemptBody) web.AttemptView {
	v := web.AttemptView{Number: a.Number, StartedAt: a.StartedAt, StatusCode: code(a.StatusCode), DurationMs: a.DurationMs,
		Error: str(a.Error), Response: str(a.ResponseBody), Instance: str(a.Instance),
		RequestHeaders: headerViews(a.RequestHeaders), ResponseHeaders: headerViews(a.ResponseHeaders)}
	if a.ErrorClass != nil {
		v.ErrorClass = string(*a.ErrorClass)
	}
	return v
}

// headerViews are an attempt's header lines as the API gives them.
func headerViews(hs *[]client.HeaderBody) []web.Header {
	if hs == nil {
		return nil
	}
	out := make([]web.Header, len(*hs))
	for i, h := range *hs {
		out[i] = web.Header{Name: h.Name, Value: h.Value, Masked: h.Masked != nil && *h.Masked}
	}
	return out
}

// notUTF8 marks every field of values whose text is not valid UTF-8 in
// errs and makes its value valid to show again. Sent as JSON, such text
// would reach the API with its bad bytes silently replaced, so it is
// refused here, next to its field.
func notUTF8(errs web.Errors, values map[string]*string) {
	for name, v := range values {
		if !utf8.ValidString(*v) {
			errs[name] = "must be valid UTF-8 text"
			*v = strings.ToValidUTF8(*v, "\uFFFD")
		}
	}
}

// parseTime reads a time as operators type it: RFC 3339, or
// 2006-01-02T15:04[:05] or 2006-01-02 taken as UTC. "" is no time.
func parseTime(s string) (*time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return &t, nil
		}
	}
	return nil, fmt.Errorf("use a time such as 2026-01-02T15:04 (UTC) or 2026-01-02T15:04:05+02:00")
}

// pageURL is path with the query q, after set to cursor ("" drops it).
func pageURL(path string, q url.Values, cursor string) string {
	q2 := url.Values{}
	for k, v := range q {
		if k != "after" && len(v) > 0 && v[0] != "" {
			q2[k] = v[:1]
		}
	}
	if cursor != "" {
		q2.Set("after", cursor)
	}
	if len(q2) == 0 {
		return path
	}
	return path + "?" + q2.Encode()
}

// notice says what an action did, from the codes redirects carry; unknown
// codes say nothing, so a crafted link cannot put words on a page.
func notice(q url.Values) string {
	switch q.Get("done") {
	case "redeliver", "redeliver-more":
		n, _ := strconv.ParseInt(q.Get("n"), 10, 64)
		return queuedNotice(n)
	case "created":
		return "Subscription created."
	case "rotated":
		return "Secret rotated."
	case "paused":
		return "Subscription paused: it gets no new deliveries, and its waiting ones wait."
	case "resumed":
		return "Subscription resumed."
	case "deleted":
		return "Subscription deleted."
	case "updated":
		return "Subscription updated."
	case "headers":
		return "Custom headers replaced."
	case "headers-removed":
		return "Custom headers removed."
	case "tls":
		return "Mutual TLS settings saved."
	case "tls-removed":
		return "Mutual TLS removed."
	case "oauth2":
		return "OAuth2 settings saved."
	case "oauth2-removed":
		return "OAuth2 removed."
	case "unchanged":
		return "Nothing was changed: the form had the subscription's values."
	case "test":
		return "Test event sent: its delivery shows below once it is attempted."
	}
	return ""
}

// queuedNotice says how many deliveries a redelivery queued.
func queuedNotice(n int64) string {
	if n == 1 {
		return "1 delivery queued for redelivery."
	}
	return strconv.FormatInt(n, 10) + " deliveries queued for redelivery."
}
