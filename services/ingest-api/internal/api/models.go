package api

import (
	"encoding/json"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// JSONObject is event data: any JSON object, stored and delivered as sent.
type JSONObject json.RawMessage

// MarshalJSON writes the object as is.
func (j JSONObject) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("{}"), nil
	}
	return j, nil
}

// UnmarshalJSON keeps the raw bytes.
func (j *JSONObject) UnmarshalJSON(b []byte) error {
	*j = append((*j)[:0], b...)
	return nil
}

// Schema documents event data as a free-form object.
func (JSONObject) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeObject, AdditionalProperties: true, Description: "The event payload: any JSON object."}
}

// EventBody is an event as sent by producers and returned by the API.
type EventBody struct {
	ID          string     `json:"id" minLength:"1" maxLength:"255" pattern:"^[A-Za-z0-9_.-]+$" example:"evt_01HZX3" doc:"Producer-chosen unique id; the idempotency key. Posting an id again creates nothing."`
	Type        string     `json:"type" minLength:"1" maxLength:"255" pattern:"^[A-Za-z0-9_.-]+$" example:"order.created" doc:"Event type that subscriptions match on."`
	Source      string     `json:"source,omitempty" maxLength:"255" example:"shop" doc:"Which system produced the event."`
	TenantID    string     `json:"tenant_id,omitempty" maxLength:"255" pattern:"^([A-Za-z0-9_.-]+|\\*)$" example:"acme" doc:"The tenant whose subscriptions receive the event. Absent: the key's tenant, or 'default'. '*' sends it to the matching subscriptions of every tenant (keys bound to no tenant only)."`
	OrderingKey string     `json:"ordering_key,omitempty" minLength:"1" maxLength:"256" pattern:"^[A-Za-z0-9_.-]+$" example:"order-1042" doc:"The sequence the event belongs to. Subscriptions with ordering per_key receive the events of one key one at a time, in the order they were accepted; sent in the X-Dispatch-Ordering-Key header and the body's ordering_key."`
	Data        JSONObject `json:"data"`
	ReceivedAt  *time.Time `json:"received_at,omitempty" readOnly:"true" doc:"When Dispatch first accepted the event."`
}

func eventBody(e domain.Event) EventBody {
	t := e.ReceivedAt
	return EventBody{ID: e.ID, Type: e.Type, Source: e.Source, TenantID: e.TenantID, OrderingKey: e.OrderingKey, Data: JSONObject(e.Data), ReceivedAt: &t}
}

// DeliveryBody is one subscription's delivery state for an event.
type DeliveryBody struct {
	SubscriptionID string     `json:"subscription_id"`
	Status         string     `json:"status" enum:"pending,processing,delivered,retrying,failed"`
	Attempts       int        `json:"attempts" doc:"HTTP attempts made so far."`
	NextAttemptAt  *time.Time `json:"next_attempt_at,omitempty" doc:"When a retrying delivery is due again."`
	Held           bool       `json:"held,omitempty" doc:"A pending delivery that waits behind an earlier event of its ordering key."`
	LastStatusCode *int       `json:"last_status_code,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

func deliveryBody(d domain.Delivery) DeliveryBody {
	b := DeliveryBody{
		SubscriptionID: d.SubscriptionID, Status: string(d.Status), Attempts: d.Attempts,
		LastStatusCode: d.LastStatusCode, LastError: d.LastError, UpdatedAt: d.UpdatedAt, Held: d.Held(),
	}
	if d.Status == domain.DeliveryRetrying {
		// For other open statuses the column holds internal due times.
		b.NextAttemptAt = d.NextAttemptAt
	}
	return b
}

// EventDetail is an event with its overall status and its first
// deliveries.
type EventDetail struct {
	EventBody
	Status               string         `json:"status" enum:"unmatched,pending,retrying,failed,delivered" doc:"Derived from all the deliveries: pending while any is in flight, then retrying, failed, or delivered when all are."`
	SchemaVersion        int            `json:"schema_version,omitempty" doc:"The version of its type's schema the event's data was validated against; absent when it was not validated (a type not in the catalog, or validation off)."`
	SchemaValid          *bool          `json:"schema_valid,omitempty" doc:"Whether the data validated; false only for a type in warn mode (enforce refuses such events). Absent when not validated."`
	Test                 bool           `json:"test,omitempty" doc:"A test event sent by POST /subscriptions/{id}/test to one subscription only."`
	Deliveries           []DeliveryBody `json:"deliveries" doc:"The first 50 deliveries by subscription id: the first page of GET /events/{id}/deliveries."`
	DeliveriesNextCursor string         `json:"deliveries_next_cursor,omitempty" doc:"Present when the event has more deliveries: pass as 'after' to GET /events/{id}/deliveries for the next page."`
}

// AttemptBody is one HTTP attempt.
type AttemptBody struct {
	ID             int64     `json:"id"`
	SubscriptionID string    `json:"subscription_id"`
	Number         int       `json:"number" doc:"1 for the first attempt of this delivery."`
	StartedAt      time.Time `json:"started_at"`
	DurationMS     float64   `json:"duration_ms" doc:"How long the attempt took, in milliseconds to the microsecond (0.312)."`
	StatusCode     *int      `json:"status_code,omitempty"`
	ErrorClass     string    `json:"error_class,omitempty" enum:"http_status,timeout,connection_refused,connection_reset,dns,tls,network,blocked,invalid_response,response_too_large,informational_response,internal,auth"`
	Error          string    `json:"error,omitempty"`
	ResponseBody   string    `json:"response_body,omitempty" doc:"The start of the receiver's answer, capped."`
	Instance       string    `json:"instance,omitempty" doc:"The worker instance that made the attempt."`
	// The two header lists are lists rather than objects: they keep the
	// order and a name sent more than once.
	RequestHeaders  []HeaderBody `json:"request_headers,omitempty" doc:"The request headers Dispatch sent, in the order it sets them; never a secret. Absent when no request was built (the attempt failed before) or the attempt predates their recording."`
	ResponseHeaders []HeaderBody `json:"response_headers,omitempty" doc:"The receiver's response headers by name: at most 32 lines and 4 KiB, values cut at 1 KiB, Set-Cookie values masked. Absent without an answer."`
}

// HeaderBody is one HTTP header line of an attempt.
type HeaderBody struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Masked bool   `json:"masked,omitempty" doc:"The value is not the one sent or received: a Set-Cookie's value after the cookie's name, or a secret."`
}

// headerBodies is headers as the API shows them; nil when there are none.
func headerBodies(headers []domain.Header) []HeaderBody {
	if len(headers) == 0 {
		return nil
	}
	out := make([]HeaderBody, len(headers))
	for i, h := range headers {
		out[i] = HeaderBody{Name: h.Name, Value: h.Value, Masked: h.Masked}
	}
	return out
}

// Settings are a subscription's own delivery settings; an absent field
// means the service-wide default.
type Settings struct {
	MaxAttempts      int   `json:"max_attempts,omitempty" minimum:"1" maximum:"100" doc:"Attempts before a delivery fails for good."`
	RetryBaseDelayMS int64 `json:"retry_base_delay_ms,omitempty" minimum:"1" maximum:"604800000" doc:"Longest wait before the first retry; doubles per attempt (full jitter)."`
	RetryMaxDelayMS  int64 `json:"retry_max_delay_ms,omitempty" minimum:"1" maximum:"604800000" doc:"Longest wait between two attempts."`
	TimeoutMS        int64 `json:"timeout_ms,omitempty" minimum:"100" maximum:"300000" doc:"Time allowed for one attempt."`
	RateLimit        int   `json:"rate_limit_per_second,omitempty" minimum:"1" maximum:"100000" doc:"Most deliveries the destination receives in any one-second window."`
	MaxConcurrency   int   `json:"max_concurrency,omitempty" minimum:"1" maximum:"10000" doc:"Most deliveries in flight to the destination at once."`
}

// sent names s's fields by their JSON names, each true when it was sent.
func (s Settings) sent() map[string]bool {
	return map[string]bool{
		"max_attempts": s.MaxAttempts != 0, "retry_base_delay_ms": s.RetryBaseDelayMS != 0, "retry_max_delay_ms": s.RetryMaxDelayMS != 0,
		"timeout_ms": s.TimeoutMS != 0, "rate_limit_per_second": s.RateLimit != 0, "max_concurrency": s.MaxConcurrency != 0,
	}
}

func (s Settings) domain() domain.DeliverySettings {
	return domain.DeliverySettings{
		MaxAttempts:    s.MaxAttempts,
		RetryBaseDelay: time.Duration(s.RetryBaseDelayMS) * time.Millisecond,
		RetryMaxDelay:  time.Duration(s.RetryMaxDelayMS) * time.Millisecond,
		Timeout:        time.Duration(s.TimeoutMS) * time.Millisecond,
		RatePerSecond:  s.RateLimit,
		MaxConcurrency: s.MaxConcurrency,
	}
}

// SubscriptionBody is a subscription as the API shows it.
type SubscriptionBody struct {
	ID          string   `json:"id"`
	TenantID    string   `json:"tenant_id" doc:"The tenant the subscription belongs to."`
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	State       string   `json:"state" enum:"active,paused,disabled"`
	StateReason string   `json:"state_reason,omitempty" doc:"Why the subscription is not active, e.g. 'endpoint answered 410 Gone'."`
	Ordering    string   `json:"ordering" enum:"none,per_key" doc:"per_key: the events of one ordering key go one at a time, in the order they were accepted."`
	Settings
	Headers      map[string]string `json:"headers,omitempty" doc:"Custom headers added to every delivery, by name, each value masked (POST /subscriptions/{id}/headers/reveal shows them)."`
	TLS          *ClientTLSBody    `json:"tls,omitempty"`
	OAuth2       *OAuth2Body       `json:"oauth2,omitempty"`
	CircuitState string            `json:"circuit_state,omitempty" enum:"closed,half_open,open" doc:"The destination's live circuit breaker state (single subscription answers, and listings asked for it with circuit=true)."`
	// The circuit's opening and the failure counts come with
	// circuit_state, from the same place (the circuit breakers' records in
	// Redis; ADR 34).
	CircuitOpenedAt  *time.Time `json:"circuit_opened_at,omitempty" doc:"While the circuit is open or half-open: when it opened from closed (it keeps this time while it goes between open and half-open), so how long the endpoint has been failing. With circuit_state."`
	FailuresLastHour *int       `json:"failures_last_hour,omitempty" doc:"Failed attempts in the last hour, to the minute (this minute and the 59 before), whatever the circuit's state. With circuit_state."`
	LastFailureAt    *time.Time `json:"last_failure_at,omitempty" doc:"When the last failed attempt was reported, if within the last day. With circuit_state."`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	// Effective is set in GET /subscriptions/{id}: every setting in force,
	// the subscription's own, else its tenant's, else the delivery
	// workers' default. No doc tag, as for Activity.
	Effective *Settings `json:"effective,omitempty"`
	// Activity is set in listings asked for it (activity=true): attempts
	// over the last 24 hours. No doc tag: OpenAPI 3.0 allows no
	// description beside the $ref it becomes.
	Activity *ActivityBody `json:"activity_24h,omitempty"`
}

// SubscriptionUpdated is the answer to PATCH /subscriptions/{id}: for a key
// that may read, the subscription as changed (as GET shows it, without
// the circuit state); for any other key, its id and the fields the request
// set, as sent, and nothing stored that the request did not send.
type SubscriptionUpdated struct {
	ID          string   `json:"id"`
	URL         string   `json:"url,omitempty"`
	EventTypes  []string `json:"event_types,omitempty"`
	State       string   `json:"state,omitempty" enum:"active,paused,disabled"`
	StateReason string   `json:"state_reason,omitempty" doc:"Why the subscription is not active, e.g. 'endpoint answered 410 Gone'."`
	Ordering    string   `json:"ordering,omitempty" enum:"none,per_key"`
	Settings
	Headers   map[string]string `json:"headers,omitempty" doc:"Custom headers, by name, each value masked."`
	TLS       *ClientTLSBody    `json:"tls,omitempty"`
	OAuth2    *OAuth2Body       `json:"oauth2,omitempty"`
	CreatedAt *time.Time        `json:"created_at,omitempty"`
	UpdatedAt *time.Time        `json:"updated_at,omitempty"`
	Warnings  []string          `json:"warnings,omitempty" doc:"As in the answer to POST /subscriptions: exact event types not in the catalog, and deprecated ones."`
}

func subscriptionBody(s domain.Subscription) SubscriptionBody {
	return SubscriptionBody{
		ID: s.ID, URL: s.URL, EventTypes: s.EventTypes, State: string(s.State), StateReason: s.StateReason, Ordering: string(s.Ordering.Or()),
		TenantID: s.TenantID, Settings: settingsBody(s.Settings), Headers: masked(s.Headers), TLS: clientTLSBody(s.TLS), OAuth2: oauth2Body(s.OAuth2),
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

func settingsBody(st domain.DeliverySettings) Settings {
	return Settings{
		MaxAttempts:      st.MaxAttempts,
		RetryBaseDelayMS: st.RetryBaseDelay.Milliseconds(),
		RetryMaxDelayMS:  st.RetryMaxDelay.Milliseconds(),
		TimeoutMS:        st.Timeout.Milliseconds(),
		RateLimit:        st.RatePerSecond,
		MaxConcurrency:   st.MaxConcurrency,
	}
}
