package domain

import (
	"encoding/json"
	"time"
)

// Event is something that happened in a producer's system. Its ID is chosen
// by the producer and is the idempotency key for ingest.
type Event struct {
	ID   string
	Type string
	// TenantID is the tenant whose subscriptions receive the event, or
	// AllTenants; the API sets DefaultTenant when the producer names none.
	TenantID   string
	Source     string
	Data       json.RawMessage
	ReceivedAt time.Time
	// SchemaVersion is the version of its type's schema the event was
	// validated against; 0 when it was not validated (its type is not in
	// the catalog, or the type's validation is off).
	SchemaVersion int
	// SchemaValid is the verdict of that validation; nil when there was
	// none. Only a type in warn mode stores false: enforce refuses the
	// event instead.
	SchemaValid *bool
	// Test marks an event sent by POST /subscriptions/{id}/test to one
	// subscription only, never fanned out.
	Test bool
	// TraceParent is the W3C traceparent of the span that stored the
	// event, when it was traced: its retries are published in that trace.
	// Stored, never read back into an event.
	TraceParent string
	// OrderingKey names the sequence the event belongs to: subscriptions
	// with ordering per_key receive a key's events one at a time, in the
	// order they were accepted (ADR 43). "" for none.
	OrderingKey string
}

// SubscriptionState says whether a subscription receives deliveries.
type SubscriptionState string

// Subscription states.
const (
	SubscriptionActive   SubscriptionState = "active"
	SubscriptionPaused   SubscriptionState = "paused"
	SubscriptionDisabled SubscriptionState = "disabled"
)

// Ordering says whether a subscription receives the events of one
// ordering key in order.
type Ordering string

// Orderings.
const (
	// OrderingNone delivers every event as soon as it may go.
	OrderingNone Ordering = "none"
	// OrderingPerKey delivers the events of one ordering key one at a
	// time, in the order they were accepted; events without a key, and
	// different keys, go as with OrderingNone.
	OrderingPerKey Ordering = "per_key"
)

// Or returns o, or OrderingNone where o is unset ("").
func (o Ordering) Or() Ordering {
	if o == "" {
		return OrderingNone
	}
	return o
}

// Subscription is a destination URL and the event types it wants.
type Subscription struct {
	ID string
	// TenantID is the tenant the subscription belongs to, for good.
	TenantID   string
	URL        string
	EventTypes []string
	// Secret is the current signing secret, "whsec_..." or plain (see
	// signing.ParseSecret). It is set only when the subscription is created
	// or its secret rotated: the API shows it then and never again, and
	// reads leave it empty.
	Secret      string
	State       SubscriptionState
	StateReason string
	// Settings override the service-wide delivery defaults; zero fields
	// mean "use the default".
	Settings DeliverySettings
	// Headers are the custom headers added to every delivery, by name.
	// Values are given on create and on change; reads leave each value
	// empty: they are sealed like the secret and shown only on an
	// explicit reveal.
	Headers map[string]string
	// TLS is the subscription's mutual TLS settings; nil when it has
	// none. Reads leave its Key empty.
	TLS *ClientTLS
	// OAuth2 is the subscription's OAuth2 client credentials; nil when it
	// has none. Reads leave its ClientSecret empty.
	OAuth2 *OAuth2
	// Ordering applies to the events accepted while it is set; "" is
	// OrderingNone.
	Ordering  Ordering
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DeliverySettings tune how one subscription's deliveries are attempted.
// A zero field means the service-wide default.
type DeliverySettings struct {
	MaxAttempts    int
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	Timeout        time.Duration
	// RatePerSecond and MaxConcurrency limit what the destination receives.
	RatePerSecond  int
	MaxConcurrency int
}

// DeliveryStatus is where one (event, subscription) delivery is in its lifecycle:
// pending → processing → delivered | retrying → processing … | failed.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending    DeliveryStatus = "pending"
	DeliveryProcessing DeliveryStatus = "processing"
	DeliveryDelivered  DeliveryStatus = "delivered"
	DeliveryRetrying   DeliveryStatus = "retrying"
	DeliveryFailed     DeliveryStatus = "failed"
)

// Delivery is the state of one event's delivery to one subscription.
type Delivery struct {
	ID             int64
	EventID        string
	SubscriptionID string
	Status         DeliveryStatus
	Attempts       int
	NextAttemptAt  *time.Time
	LastStatusCode *int
	LastError      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Held reports a pending delivery that waits behind an earlier event of
// its ordering key: it has no due time until the earlier one is final.
func (d Delivery) Held() bool {
	return d.Status == DeliveryPending && d.NextAttemptAt == nil
}

// ErrorClass classifies why an attempt did not get a 2xx answer.
type ErrorClass string

// Attempt error classes. An attempt that got a 2xx has no class.
const (
	ErrorNone              ErrorClass = ""
	ErrorHTTPStatus        ErrorClass = "http_status"
	ErrorTimeout           ErrorClass = "timeout"
	ErrorConnectionRefused ErrorClass = "connection_refused"
	ErrorConnectionReset   ErrorClass = "connection_reset"
	ErrorDNS               ErrorClass = "dns"
	ErrorTLS               ErrorClass = "tls"
	ErrorNetwork           ErrorClass = "network"
	// ErrorBlocked means the destination resolved to an address deliveries
	// may not reach (see DELIVERY_ALLOW_CIDRS); retrying cannot help.
	ErrorBlocked ErrorClass = "blocked"
	// ErrorInvalidResponse means the receiver's answer was not valid HTTP.
	ErrorInvalidResponse ErrorClass = "invalid_response"
	// ErrorResponseTooLarge means the receiver's response headers exceeded
	// DELIVERY_MAX_RESPONSE_HEADER_BYTES.
	ErrorResponseTooLarge ErrorClass = "response_too_large"
	// ErrorInformational means the receiver answered with a 1xx status that
	// ends the exchange (101 Switching Protocols) instead of a final one.
	ErrorInformational ErrorClass = "informational_response"
	// ErrorInternal means Dispatch could not make the request itself (a
	// signing secret that does not parse, a body it could not encode): a
	// failure of its own, not the destination's, so nothing was sent.
	ErrorInternal ErrorClass = "internal"
	// ErrorAuth means the subscription's OAuth2 token could not be had:
	// its token endpoint failed, refused the credentials or answered
	// something that is not a token.
	ErrorAuth ErrorClass = "auth"
)

// Attempt is one HTTP request made for a delivery.
type Attempt struct {
	ID         int64
	DeliveryID int64
	EventID    string
	// EventType is the event's type; set when attempts are read, for
	// RequestHeaders.
	EventType      string
	SubscriptionID string
	Number         int
	StartedAt      time.Time
	Duration       time.Duration
	StatusCode     *int
	ErrorClass     ErrorClass
	Error          string
	ResponseBody   string
	// RequestHeaders are the "Name: value" lines of the request headers
	// whose values cannot be derived (see RequestHeaders); "" when no
	// request was built.
	RequestHeaders string
	// ResponseHeaders are the receiver's response headers as
	// ResponseHeaderExcerpt renders them; "" without an answer.
	ResponseHeaders string
	Instance        string
}

// Succeeded reports whether the attempt got a 2xx answer.
func (a Attempt) Succeeded() bool {
	return a.ErrorClass == ErrorNone && a.StatusCode != nil && *a.StatusCode >= 200 && *a.StatusCode < 300
}
