package web

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"
)

// Page is what every signed-in page shares: its title and section, the
// signed-in key, the CSRF token its forms carry, and a notice or error for
// the whole page.
type Page struct {
	Title string
	// Nav is the section highlighted in the header: "overview", "events",
	// "subscriptions", "event-types" or "tenants".
	Nav string
	// KeyID names the signed-in API key (its id, or ADMIN_API_KEY).
	KeyID string
	// Scopes are the signed-in key's scopes, as GET /me gives them.
	Scopes []string
	// BoundTenant is the tenant the signed-in key is bound to; "" for a
	// key that sees every tenant. A bound key's pages show its tenant and
	// offer no tenant filter or list of tenants.
	BoundTenant string
	// CanWrite is true when the key may act (write or admin): only then are
	// action buttons rendered.
	CanWrite bool
	// Admin is true when the key has the admin scope: only then is the
	// button that ends every session rendered.
	Admin bool
	// CSRF is the token every state-changing form carries.
	CSRF string
	// Now is when the page was built; relative times count from it.
	Now time.Time
	// Notice reports what an action did ("2 deliveries queued").
	Notice string
	// Warnings are what the API warned of about the action (an event type
	// not in the catalog, a deprecated one); the action was done.
	Warnings []string
	// Error is a problem with the whole page or action, shown at the top.
	Error string
	// RefreshSeconds, when positive, reloads the page that often.
	RefreshSeconds int
	// Portal is set on a customer portal's pages: its branding and its
	// tenant.
	Portal *PortalChrome
}

// PortalChrome is what a customer portal's pages show around their
// content: the deployment's branding (PORTAL_TITLE, PORTAL_LOGO_URL) and
// the session's tenant, return link and end.
type PortalChrome struct {
	Title      string
	LogoURL    string
	TenantName string
	// ReturnURL, if set, is the "Back" link's target.
	ReturnURL string
	// Expires is when the session ends.
	Expires time.Time
}

// PortalExpiredView is the page of a portal link or session that can no
// longer be used.
type PortalExpiredView struct {
	Title   string
	LogoURL string
	// Message says what happened, in the customer's words.
	Message string
}

// ReturnHost is the host the portal's "Back" link leads to, for its label.
func (c PortalChrome) ReturnHost() string {
	if u, err := url.Parse(c.ReturnURL); err == nil {
		return u.Host
	}
	return ""
}

// Errors maps a form field's name to what is wrong with it.
type Errors map[string]string

// For returns the problem with field, or "".
func (e Errors) For(field string) string { return e[field] }

// LoginView is the sign-in page.
type LoginView struct {
	// CSRF is the token the sign-in form carries.
	CSRF string
	// Error is shown next to the API key field.
	Error string
	// Notice explains why the operator is here (signed out, session expired).
	Notice string
}

// ErrorView is a page that could not be shown, and why.
type ErrorView struct {
	Page
	Status  int
	Message string
}

// StatsWindow is GET /stats for one window.
type StatsWindow struct {
	Window    string
	Received  int64
	Delivered int64
	Retrying  int64
	Failed    int64
}

// Backlog is what waits for a worker now.
type Backlog struct {
	Due    int64
	Oldest time.Duration
}

// OverviewView answers "what is failing right now?".
type OverviewView struct {
	Page
	Windows []StatsWindow
	Backlog Backlog
	// Attention lists subscriptions whose circuit is not closed or that
	// are not active.
	Attention []SubscriptionRow
	// Checked is how many subscriptions were looked at; Unchecked is true
	// when there are more than the overview looks at.
	Checked   int
	Unchecked bool
	// RecentFailed are the newest events whose status is failed.
	RecentFailed []EventRow
	// Chart is deliveries per minute over the last hour; nil when the API
	// could not give the minutes, ChartError then says why.
	Chart      *DeliveriesChartView
	ChartError string
	// Counts, for a key bound to a tenant, are its tenant's counts, in
	// place of the windows, backlog and chart, which count every tenant.
	Counts *TenantCounts
}

// EventFilter is the events page's filters, as typed.
type EventFilter struct {
	Type           string
	Status         string
	SubscriptionID string
	TenantID       string
	Since          string
	Until          string
}

// EventRow is one event in a listing.
type EventRow struct {
	ID         string
	Type       string
	Source     string
	Status     string
	ReceivedAt time.Time
	// Tenant is the event's tenant, "*" for an event sent to every tenant.
	Tenant string
}

// EventsView is the event search.
type EventsView struct {
	Page
	Filter EventFilter
	Errors Errors
	Events []EventRow
	// Next is the URL of the next page, First of the first; "" when none.
	Next  string
	First string
	// Endpoints, in the portal, are the tenant's endpoints offered by the
	// endpoint filter.
	Endpoints []SubscriptionRow
}

// EventView answers "what happened to this event?".
type EventView struct {
	Page
	Event   EventRow
	Payload string
	// Deliveries are one page of the event's deliveries, by subscription.
	Deliveries []DeliveryView
	// NextDeliveries is the URL of the next page of deliveries,
	// FirstDeliveries of the first; "" when none.
	NextDeliveries  string
	FirstDeliveries string
}

// DeliveryView is one subscription's delivery of an event, with a page of
// its attempts, newest first.
type DeliveryView struct {
	SubscriptionID string
	Status         string
	// Held is a pending delivery that waits for an earlier event of its
	// ordering key to be delivered or to fail for good.
	Held           bool
	Attempts       int64
	NextAttemptAt  *time.Time
	LastStatusCode string
	LastError      string
	UpdatedAt      time.Time
	AttemptRows    []AttemptView
	// MoreAttempts is the URL that shows more of the delivery's newest
	// attempts than the event page does; OlderAttempts the next page after
	// those shown; NewestAttempts goes back to the newest. "" when none.
	MoreAttempts   string
	OlderAttempts  string
	NewestAttempts string
}

// AttemptView is one HTTP attempt.
type AttemptView struct {
	Number     int64
	StartedAt  time.Time
	StatusCode string
	DurationMs float64
	ErrorClass string
	Error      string
	Response   string
	Instance   string
	// RequestHeaders are the headers sent, ResponseHeaders the receiver's
	// (an excerpt); nil when none were recorded.
	RequestHeaders  []Header
	ResponseHeaders []Header
}

// Header is one HTTP header line. A Masked value is shown as a stand-in,
// not as what was sent or received.
type Header struct {
	Name   string
	Value  string
	Masked bool
}

// attemptColumns is the number of columns of an attempts table: the
// portal's customers do not see the worker's.
func attemptColumns(customer bool) int {
	if customer {
		return 6
	}
	return 7
}

// Succeeded reports whether the attempt got a 2xx.
func (a AttemptView) Succeeded() bool {
	n, err := strconv.Atoi(a.StatusCode)
	return err == nil && n >= 200 && n < 300
}

// SubscriptionRow is one subscription in a listing.
type SubscriptionRow struct {
	ID          string
	URL         string
	EventTypes  []string
	State       string
	StateReason string
	// Circuit is closed, half_open or open; "" when not known.
	Circuit string
	// OpenedAt is when the circuit opened, while it is open or half-open;
	// nil otherwise.
	OpenedAt *time.Time
	// Failures counts the failed attempts of the last hour; nil when not
	// known (the API could not read the circuits).
	Failures *int64
	// LastFailureAt is the last failed attempt, within the last day; nil
	// when none or not known.
	LastFailureAt *time.Time
	Tenant        string
	CreatedAt     time.Time
	// Headers are the names of its custom headers, sorted; their values
	// never reach the dashboard.
	Headers []string
	// ClientCertificateExpiresAt is when its mutual TLS client
	// certificate expires; nil when it has none.
	ClientCertificateExpiresAt *time.Time
	// TLS summarises its mutual TLS settings; nil when it has none.
	TLS *ClientTLSView
	// OAuth2 is its OAuth2 client credentials but the secret, which never
	// reaches the dashboard; nil when it has none.
	OAuth2 *OAuth2View
	// LastFailure is its newest failing delivery (the attention table's
	// rows only); nil when none is known.
	LastFailure *FailureView
}

// ClientTLSView is what a subscription's mutual TLS settings say about
// themselves: the client certificate's subject and issuer and how many
// CAs the bundle holds. The key is never part of it.
type ClientTLSView struct {
	// Subject and Issuer are the client certificate's, "" without one
	// (or when it cannot be read).
	Subject, Issuer string
	// HasCertificate is set when a client certificate (and key) is stored.
	HasCertificate bool
	// CACertificates counts the CA bundle's certificates; 0 without one.
	CACertificates int
}

// OAuth2View is a subscription's OAuth2 client credentials without the
// client secret.
type OAuth2View struct {
	TokenURL, ClientID string
	Scopes             []string
	Audience           string
}

// FailureView is a subscription's newest failing delivery: when it last
// changed, its event and the receiver's last answer.
type FailureView struct {
	At         time.Time
	EventID    string
	Status     string
	StatusCode string
	Error      string
}

// SubscriptionForm is the create form's values and errors.
type SubscriptionForm struct {
	ID         string
	URL        string
	EventTypes string
	Secret     string
	Errors     Errors
	// Catalog names the catalog's types, offered beside the patterns;
	// Chosen are those ticked.
	Catalog []string
	Chosen  []string
}

// CreatedSecret is a secret shown once: after creation or rotation.
type CreatedSecret struct {
	SubscriptionID string
	Secret         string
	// PreviousExpiresAt is when the replaced secret stops signing (rotation).
	PreviousExpiresAt *time.Time
}

// SubscriptionsView lists subscriptions and offers the create form.
type SubscriptionsView struct {
	Page
	// TenantID filters the subscriptions listed; FilterErrors are its
	// problems.
	TenantID      string
	FilterErrors  Errors
	Subscriptions []SubscriptionRow
	Next          string
	First         string
	Form          SubscriptionForm
	Created       *CreatedSecret
	// Activity, in the portal, is each listed endpoint's attempts over the
	// last 24 hours, by id.
	Activity map[string]EndpointActivity
	// KnownTypes, in the portal, are event types the tenant received
	// lately, offered when adding an endpoint.
	KnownTypes []string
}

// Setting is one of a subscription's or a tenant's settings; Default is
// true when it is not set and a default applies, which Value then names.
type Setting struct {
	Name    string
	Value   string
	Default bool
}

// DeliveryRow is one of a subscription's deliveries.
type DeliveryRow struct {
	EventID   string
	EventType string
	// Test marks a delivery of a test event sent from the API.
	Test   bool
	Status string
	// Held is a pending delivery that waits for an earlier event of its
	// ordering key to be delivered or to fail for good.
	Held           bool
	Attempts       int64
	LastStatusCode string
	LastError      string
	NextAttemptAt  *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// SubscriptionView answers "is this endpoint healthy?".
type SubscriptionView struct {
	Page
	Subscription SubscriptionRow
	Settings     []Setting
	Deliveries   []DeliveryRow
	// DeliveryStatus filters the deliveries shown.
	DeliveryStatus string
	Next           string
	First          string
	// NewSecret is set right after a rotation.
	NewSecret *CreatedSecret
	// RedeliverSince is the redelivery form's value; Errors its problems.
	RedeliverSince string
	Errors         Errors
	// Redelivery, set after a redelivery the API has more of, offers to
	// queue the next ones.
	Redelivery *RedeliveryContinuation
	// ConfirmDelete shows the deletion's confirmation step.
	ConfirmDelete bool
	// ConfirmRotate shows the secret rotation's confirmation step.
	ConfirmRotate bool
	// Edit is the edit form.
	Edit SubscriptionEdit
	// HeadersEdit is the custom headers' form.
	HeadersEdit HeadersEdit
	// TLSEdit is the mutual TLS form.
	TLSEdit TLSEdit
	// OAuth2Edit is the OAuth2 client credentials' form.
	OAuth2Edit OAuth2Edit
	// Revealed, in the portal, is the signing secret after "Reveal" or a
	// rotation; PreviousSecretUntil is when the secret it replaced stops
	// signing beside it.
	Revealed            string
	PreviousSecretUntil *time.Time
	// Watch, in the portal, makes the recent deliveries refresh until a
	// test event's attempt shows.
	Watch bool
	// Ordering is how the subscription orders its deliveries.
	Ordering OrderingView
}

// OrderingView is a subscription's ordering: per key or none, and for
// per key how many keys wait behind a failing head.
type OrderingView struct {
	PerKey bool
	// BlockedKeys is nil when not known (the portal does not ask).
	BlockedKeys *int64
}

// RedeliveryContinuation is a redelivery of a subscription's failed
// deliveries that the API queued a page of and has more of: the form
// that queues the next page sends Since and After (the API's next_cursor)
// back, and Queued, how many the redelivery queued so far.
type RedeliveryContinuation struct {
	Since  string
	After  string
	Queued int64
}

// EditValues are the edit form's fields as text, named as the API names
// them: url, event_types, rate_limit_per_second, max_concurrency,
// timeout_ms, max_attempts. An empty setting is the worker's default.
type EditValues struct {
	URL                string
	EventTypes         string
	RateLimitPerSecond string
	MaxConcurrency     string
	TimeoutMs          string
	MaxAttempts        string
}

// SubscriptionEdit is the form that changes a subscription's URL, event
// types and limits: the values shown or typed, the values the page showed
// (Was, sent along so that only fields the operator changed are patched),
// the problems with each field, and whether the form starts open.
type SubscriptionEdit struct {
	Values EditValues
	Was    EditValues
	Errors Errors
	Open   bool
}

// HeadersEdit is the form that replaces a subscription's custom headers:
// the text typed ("Name: value" lines), its problem, and whether the form
// starts open. After a refusal Text holds the names only: values are
// never written back into a page.
type HeadersEdit struct {
	Text   string
	Errors Errors
	Open   bool
}

// TLSEdit is the form that sets a subscription's mutual TLS settings:
// the certificate and CA bundle shown or typed (public, so written back),
// the problems by field (client_certificate, client_key, ca_bundle, and
// tls for the settings as a whole), and whether the form starts open.
// The key is write-only: the form never holds it, and an empty key field
// keeps the stored key.
type TLSEdit struct {
	Certificate, CABundle string
	Errors                Errors
	Open                  bool
}

// OAuth2Edit is the form that sets a subscription's OAuth2 client
// credentials: the fields shown or typed but the client secret, which is
// write-only (an empty field keeps the stored one), the problems by field
// (token_url, client_id, client_secret, scopes, audience, and oauth2 for
// the settings as a whole), and whether the form starts open.
type OAuth2Edit struct {
	TokenURL, ClientID, Scopes, Audience string
	Errors                               Errors
	Open                                 bool
}

// TenantRow is one tenant in a listing.
type TenantRow struct {
	ID   string
	Name string
	// MaxSubscriptions is the tenant's quota; 0 when it has none.
	MaxSubscriptions int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// TenantsView lists tenants by id, searched by the start of their id.
type TenantsView struct {
	Page
	// Prefix is the search box's value.
	Prefix  string
	Errors  Errors
	Tenants []TenantRow
	// Next is the URL of the next page, First of the first; "" when none.
	Next  string
	First string
}

// TenantCounts are a tenant's figures as GET /tenants/{id} counts them.
type TenantCounts struct {
	Subscriptions int64
	// MaxSubscriptions is the tenant's quota; 0 when it has none.
	MaxSubscriptions  int64
	EventsLast24h     int64
	FailingDeliveries int64
}

// TenantView answers "how is this customer doing?".
type TenantView struct {
	Page
	Tenant TenantRow
	Counts TenantCounts
	// Metadata is the tenant's metadata as indented JSON; "" when it has
	// none.
	Metadata string
	Settings []Setting
	// Subscriptions, Events and Failing are the first few of the tenant's
	// subscriptions, newest events, and newest events whose deliveries
	// are retrying or have failed.
	Subscriptions []SubscriptionRow
	Events        []EventRow
	Failing       []EventRow
}

// Ago says how long before now t was, briefly: "just now", "3 min ago",
// "5 h ago", "2 days ago"; a time after now is "in 3 min".
func Ago(t, now time.Time) string {
	d := now.Sub(t)
	suffix := " ago"
	prefix := ""
	if d < 0 {
		d, suffix, prefix = -d, "", "in "
	}
	switch {
	case d < 10*time.Second:
		if prefix != "" {
			return "in a moment"
		}
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%s%d s%s", prefix, int(d.Seconds()), suffix)
	case d < time.Hour:
		return fmt.Sprintf("%s%d min%s", prefix, int(d.Minutes()), suffix)
	case d < 48*time.Hour:
		return fmt.Sprintf("%s%d h%s", prefix, int(d.Hours()), suffix)
	default:
		return fmt.Sprintf("%s%d days%s", prefix, int(d.Hours()/24), suffix)
	}
}

// Exact is t as shown on hover: UTC, to the millisecond.
func Exact(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") }

// Tone is the colour class for a status word: ok, warn, bad, info or muted.
func Tone(status string) string {
	switch status {
	case "delivered", "active", "closed":
		return "ok"
	case "retrying", "half_open", "paused":
		return "warn"
	case "failed", "open", "disabled":
		return "bad"
	case "pending", "processing":
		return "info"
	default:
		return "muted"
	}
}

// Word is how a status reads: "half open" for half_open.
func Word(status string) string {
	if status == "half_open" {
		return "half open"
	}
	return status
}

// Duration formats a backlog age: "0 s", "42 s", "3 min 5 s", "2 h 10 min".
func Duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
}

// EventTypesView is the event-type catalog, searched by the start of the
// names and by deprecation.
type EventTypesView struct {
	Page
	Prefix string
	// Deprecated is "true", "false" or "" (either).
	Deprecated string
	Errors     Errors
	Types      []EventTypeRow
	Next       string
	First      string
}

// EventTypeRow is an event type in the catalog's table.
type EventTypeRow struct {
	Name string
	// Summary is the description's first line.
	Summary    string
	Validation string
	Version    int64
	Deprecated bool
	UpdatedAt  time.Time
}

// EventTypeView is one event type's page.
type EventTypeView struct {
	Page
	Type EventTypeRow
	// Description is the Markdown as written; shown as text.
	Description string
	ArchivedAt  *time.Time
	// Fields are the fields the schema describes, for reading; the schema
	// itself is below them.
	Fields []SchemaField
	// Schema and Examples are indented JSON, members in their order.
	Schema   string
	Examples []string
	Versions []EventTypeVersionRow
}

// SchemaField is a field an event type's schema describes.
type SchemaField struct {
	// Path is where the field is in data: "customer.email",
	// "items[].sku".
	Path string
	// Type is its JSON type or types, or its allowed values.
	Type        string
	Required    bool
	Description string
}

// EventTypeVersionRow is one version of a type's schema.
type EventTypeVersionRow struct {
	Version   int64
	Schema    string
	CreatedAt time.Time
}

// Millis formats an attempt's duration in milliseconds: "0.312 ms" under
// one, "4.5 ms" under ten, "120 ms" above.
func Millis(ms float64) string {
	switch {
	case ms < 1:
		return strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
	case ms < 10:
		return strconv.FormatFloat(math.Round(ms*10)/10, 'f', -1, 64) + " ms"
	default:
		return strconv.FormatFloat(math.Round(ms), 'f', 0, 64) + " ms"
	}
}

// Plural is a count with its noun: "1 attempt", "2 attempts", "1,200
// subscriptions".
func Plural(n int64, one, many string) string { return Count(n) + " " + Noun(n, one, many) }

// Noun is the noun for a count of n: one when n is 1, else many.
func Noun(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
