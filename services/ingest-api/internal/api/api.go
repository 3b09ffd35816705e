// Package api is the ingest API: events in, subscriptions managed, delivery
// state and attempts out. Handlers validate everything before the first
// write and answer errors as RFC 9457 problem+json naming the bad field.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/catalog"
)

// Store is the part of the data layer the API uses.
type Store interface {
	IngestEvent(ctx context.Context, e domain.Event) (store.IngestResult, error)
	IngestEvents(ctx context.Context, events []domain.Event) (store.BatchResult, error)
	GetEvent(ctx context.Context, scope store.Scope, id string) (domain.Event, domain.EventStatus, error)
	ListEventDeliveries(ctx context.Context, scope store.Scope, f store.EventDeliveryFilter) ([]domain.Delivery, error)
	ListAttempts(ctx context.Context, scope store.Scope, f store.AttemptFilter) ([]domain.Attempt, error)
	CreateSubscription(ctx context.Context, s domain.Subscription) (domain.Subscription, error)
	GetSubscription(ctx context.Context, scope store.Scope, id string) (domain.Subscription, error)
	ListSubscriptions(ctx context.Context, scope store.Scope, after string, limit int) ([]domain.Subscription, error)
	UpdateSubscription(ctx context.Context, scope store.Scope, id string, p store.SubscriptionPatch) (domain.Subscription, error)
	DeleteSubscription(ctx context.Context, scope store.Scope, id string) (domain.Subscription, error)
	Redeliver(ctx context.Context, scope store.Scope, eventID, subscriptionID string, sinceURLChange bool) ([]store.DeliveryRef, error)
	RedeliverBulk(ctx context.Context, scope store.Scope, f store.RedeliverFilter) (store.BulkRedelivery, error)
	ListEvents(ctx context.Context, scope store.Scope, f store.EventFilter) ([]store.EventSummary, error)
	ListDeliveries(ctx context.Context, scope store.Scope, f store.DeliveryFilter) ([]store.DeliverySummary, error)
	Stats(ctx context.Context, scope store.Scope, window time.Duration) (store.Stats, error)
	Timeline(ctx context.Context, scope store.Scope, window time.Duration) ([]store.MinuteActivity, error)
	KeyStore
	CreateAPIKey(ctx context.Context, k domain.APIKey, hash apikey.Hash) (domain.APIKey, error)
	ListAPIKeys(ctx context.Context) ([]domain.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string) error
	RotateSecret(ctx context.Context, scope store.Scope, id, secret string, grace time.Duration) (domain.Subscription, time.Time, error)
	PutTenant(ctx context.Context, t domain.Tenant) (domain.Tenant, bool, error)
	GetTenant(ctx context.Context, id string) (domain.Tenant, store.TenantCounts, error)
	ListTenants(ctx context.Context, f store.TenantFilter) ([]domain.Tenant, error)
	ExistingTenants(ctx context.Context, ids []string) ([]string, error)
	DeleteTenant(ctx context.Context, id string) ([]domain.Subscription, error)
	catalog.Source
	PutEventType(ctx context.Context, t domain.EventType) (domain.EventType, bool, error)
	PutEventTypes(ctx context.Context, types []domain.EventType) ([]bool, error)
	GetEventType(ctx context.Context, name string) (domain.EventType, error)
	ListEventTypes(ctx context.Context, f store.EventTypeFilter) ([]domain.EventType, error)
	ListEventTypeVersions(ctx context.Context, name string) ([]domain.EventTypeVersion, error)
	ArchiveEventType(ctx context.Context, name string) error
	CreatePortalLink(ctx context.Context, l domain.PortalLink, hash apikey.Hash) (domain.PortalLink, error)
	OpenPortalLink(ctx context.Context, hash apikey.Hash, key domain.APIKey, keyHash apikey.Hash) (domain.PortalSession, error)
	RevokePortal(ctx context.Context, tenant string) (store.PortalRevocation, error)
	RevealSecret(ctx context.Context, scope store.Scope, id string) (store.RevealedSecret, error)
	RevealHeaders(ctx context.Context, scope store.Scope, id string) (map[string]string, error)
	ClientCertificateExpiries(ctx context.Context) ([]store.CertificateExpiry, error)
	SendTest(ctx context.Context, scope store.Scope, subscriptionID string, e domain.Event) (store.IngestResult, error)
	SubscriptionActivity(ctx context.Context, scope store.Scope, ids []string, since time.Time) (map[string]store.Activity, error)
	TenantSettings(ctx context.Context, id string) (domain.DeliverySettings, error)
	ListOrderingKeys(ctx context.Context, scope store.Scope, f store.OrderingKeyFilter) ([]store.OrderingKey, error)
	CountBlockedKeys(ctx context.Context, scope store.Scope, subscriptionID string) (int64, error)
	SkipOrderingKey(ctx context.Context, scope store.Scope, subscriptionID, key, reason string) (store.DeliveryRef, *store.DeliveryRef, error)
	RetryOrderingKeyNow(ctx context.Context, scope store.Scope, subscriptionID, key string) (store.DeliveryRef, error)
}

// Publisher hands new deliveries to the queue without waiting for it.
type Publisher interface {
	Publish(ctx context.Context, msgs ...queue.Message)
}

// Circuits reports subscriptions' live circuits (state, opening, recent
// failures) and forgets the circuits of deleted subscriptions.
type Circuits interface {
	Circuits(ctx context.Context, ts []resilience.Target) ([]resilience.Circuit, error)
	Forget(ctx context.Context, t resilience.Target) error
}

// Server holds the API's dependencies.
type Server struct {
	clock     clock.Clock
	store     Store
	publisher Publisher
	circuits  Circuits
	defaults  domain.DeliverySettings
	egress    egress.Policy
	resolver  egress.Resolver
	auth      *authenticator
	batch     batchChecker
	ingest    *ingestBatcher
	cursors   *cursorSealer
	// portalURL and portalReturnOrigins are Config's PortalURL and
	// PortalReturnOrigins.
	portalURL           string
	portalReturnOrigins []string
	log                 *slog.Logger
	received            prometheus.Counter
	tracer              trace.Tracer
	catalog             *catalog.Cache
	// typesRequired refuses exact event types the catalog does not have.
	typesRequired bool
	schemaInvalid *prometheus.CounterVec
}

// Config names the API's dependencies.
type Config struct {
	Store     Store
	Publisher Publisher
	// Circuits, if set, adds the live circuit state to GET /subscriptions/{id}.
	Circuits Circuits
	// Defaults are the delivery workers' defaults, which apply where
	// neither a subscription nor its tenant sets a value: main reads them
	// from the workers' variables (RETRY_MAX_ATTEMPTS, DELIVERY_TIMEOUT,
	// ...) with the workers' defaults. GET /subscriptions/{id} shows them
	// in its effective settings; a zero field is left out there.
	Defaults domain.DeliverySettings
	// Egress judges subscription URLs as the delivery workers will: the
	// same DELIVERY_ALLOW_CIDRS.
	Egress egress.Policy
	// Resolver looks up a URL's host; nil means the system's.
	Resolver egress.Resolver
	// AdminKey, if set, is accepted as an admin key besides the stored
	// ones (ADMIN_API_KEY), to bootstrap a deployment.
	AdminKey string
	// EventTypesRequired refuses events, and subscriptions naming exact
	// types, whose type the catalog does not have (EVENT_TYPES_REQUIRED).
	EventTypesRequired bool
	// CursorKeys seal the bulk-redelivery cursors given to keys without
	// the read scope (keys derived from them do): the first seals, every
	// one opens. Instances that share them take each other's cursors;
	// main passes SECRETS_ENCRYPTION_KEY and its previous keys. Without
	// any, the instance makes a key of its own, and such cursors open only
	// on it and only until it restarts.
	CursorKeys [][]byte
	// PortalURL is the customer portal's base URL as its users reach it
	// (PORTAL_URL, such as https://portal.example.com/portal); portal
	// links are PortalURL + "/open?token=...".
	PortalURL string
	// PortalReturnOrigins are the origins a portal link's return URL may
	// have (PORTAL_RETURN_ORIGINS); none allows no return URL.
	PortalReturnOrigins []string
	Logger              *slog.Logger
	// Registerer receives the API's metrics; nil means the default registry.
	Registerer prometheus.Registerer
	// Version is reported in the OpenAPI document.
	Version string
	// TracerProvider traces creating events; nil means OpenTelemetry's
	// global provider, a no-op unless tracing is on.
	TracerProvider trace.TracerProvider
	// Clock tells the time wherever the API reads it (key and catalog
	// caches, key and link expiry, the failure budgets), so tests can move
	// time instead of waiting [clock.Real()].
	Clock clock.Clock
}

// New registers every operation on mux and returns the Huma API, whose
// OpenAPI document describes them (served at /openapi.json and, for older
// generators, /openapi-3.0.json).
func New(mux *http.ServeMux, cfg Config) huma.API {
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	s := &Server{
		store:               cfg.Store,
		publisher:           cfg.Publisher,
		circuits:            cfg.Circuits,
		defaults:            cfg.Defaults,
		egress:              cfg.Egress,
		resolver:            cfg.Resolver,
		clock:               cfg.Clock,
		auth:                newAuthenticator(cfg.Store, cfg.AdminKey, cfg.Clock),
		ingest:              newIngestBatcher(cfg.Store, maxIngestGroup, maxIngestFlushes),
		cursors:             newCursorSealer(cfg.CursorKeys),
		portalURL:           strings.TrimSuffix(cfg.PortalURL, "/"),
		portalReturnOrigins: cfg.PortalReturnOrigins,
		log:                 cfg.Logger,
		tracer:              cfg.TracerProvider.Tracer("github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"),
		received: registerCounter(cfg.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch_events_received_total",
			Help: "Events accepted and stored (re-posts of a known id are not counted).",
		})),
		catalog:       catalog.NewCache(cfg.Store, cfg.Logger, cfg.Clock),
		typesRequired: cfg.EventTypesRequired,
		schemaInvalid: registerCounterVec(cfg.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch_events_schema_invalid_total",
			Help: "Events whose data did not validate against their type's schema, by the type's mode: warn (stored, marked schema_valid false) or enforce (refused).",
		}, []string{"mode"})),
	}
	if cfg.Store != nil {
		// Another instance in the same registry (tests) exports the same.
		var already prometheus.AlreadyRegisteredError
		if err := cfg.Registerer.Register(newCertificateExpiry(cfg.Store, cfg.Logger)); err != nil && !errors.As(err, &already) {
			panic(err)
		}
	}
	api := humago.New(mux, humaConfig(cfg.Version))
	api.UseMiddleware(s.authMiddleware(api))
	api.UseMiddleware(guard(api))
	registerDocs(mux)
	s.registerEvents(api)
	s.registerEventsBatch(api)
	s.registerSubscriptions(api)
	s.registerRedelivery(api)
	s.registerEventsList(api)
	s.registerDeliveriesList(api)
	s.registerStats(api)
	s.registerTimeline(api)
	s.registerRotation(api)
	s.registerAPIKeys(api)
	s.registerMe(api)
	s.registerTenants(api)
	s.registerSendTest(api)
	s.registerCatalogDocument(api)
	s.registerImport(api)
	s.registerEventTypes(api)
	s.registerOrdering(api)
	s.registerPortal(api)
	s.registerEndpoint(api)
	s.registerHeaders(api)
	declareCommonErrors(api.OpenAPI())
	warmDocuments(mux)
	return api
}

// warmDocuments renders the OpenAPI document in each of its forms once,
// now that it is complete. Huma renders each on its first request and
// keeps it without a lock, so two first requests at once would race.
func warmDocuments(mux *http.ServeMux) {
	for _, path := range []string{"/openapi.json", "/openapi-3.0.json", "/openapi.yaml", "/openapi-3.0.yaml"} {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(context.Background(), http.MethodGet, path, nil))
	}
}

// commonErrors are the answers any operation may give, whatever it does.
var commonErrors = map[string]string{
	"401": "Unauthorized: no API key, or one that is unknown, expired or revoked.",
	"403": "Forbidden: the API key lacks the scope this operation needs.",
	"429": "Too Many Requests: this client's requests failed authentication too often; retry after the Retry-After header's seconds.",
	"503": "Service Unavailable: the database cannot be reached; retry after the Retry-After header's seconds.",
}

// declareCommonErrors adds commonErrors to every operation's documented
// answers, so clients generated from the document know them; 403 only
// where a key may be refused (GET /me needs no scope), and neither 401 nor
// 403 where no key is asked for (opening a portal link).
func declareCommonErrors(oapi *huma.OpenAPI) {
	problem := map[string]*huma.MediaType{"application/problem+json": {Schema: &huma.Schema{Ref: "#/components/schemas/ErrorModel"}}}
	for _, item := range oapi.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op == nil {
				continue
			}
			for code, desc := range commonErrors {
				if code == "403" && requiredScope(op) == "" && !operatorOnly(op) || code != "503" && public(op) {
					continue
				}
				if op.Responses[code] == nil {
					op.Responses[code] = &huma.Response{Description: desc, Content: problem}
				}
			}
		}
	}
}

// Spec returns the API's OpenAPI document without serving it, for tools
// that write it to a file.
func Spec(version string) *huma.OpenAPI {
	return New(http.NewServeMux(), Config{Registerer: prometheus.NewRegistry(), Version: version}).OpenAPI()
}

func humaConfig(version string) huma.Config {
	cfg := huma.DefaultConfig("Dispatch API", version)
	cfg.Info.Description = "Ingest events and manage the subscriptions that Dispatch delivers them to as signed webhooks."
	// Relative, so the interactive docs call the instance that serves them.
	cfg.Servers = []*huma.Server{{URL: "/", Description: "The Dispatch API serving this document."}}
	cfg.Info.License = &huma.License{Name: "MIT", URL: "https://opensource.org/license/mit"}
	// Plain JSON answers: no "$schema" field or Link header in every body.
	cfg.CreateHooks = nil
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "An API key (dsp_...) with the scope the operation needs: read for GETs, publish for posting events, write for other changes, admin for keys."},
	}
	cfg.Security = []map[string][]string{{"bearer": {}}}
	cfg.Transformers = append(cfg.Transformers, addRequestID)
	cfg.OnAddOperation = append(cfg.OnAddOperation, documentErrors, keepNoReadDeadline)
	// Huma's own page loads its renderer from a CDN; registerDocs serves
	// an embedded one.
	cfg.DocsPath = ""
	return cfg
}

// keepNoReadDeadline stops Huma from setting its 5 s read deadline on the
// connection when it decodes a body. The guard has read the body already
// (bounded by the server's ReadTimeout), and a deadline set after that
// would end the server's background read of the idle connection, which
// cancels the request's context: a batch still being stored 5 s later
// would fail.
func keepNoReadDeadline(_ *huma.OpenAPI, op *huma.Operation) {
	op.BodyReadTimeout = -1
}

// registerCounter registers c, reusing an already registered equal
// collector so several API instances can share one registry in tests.
func registerCounter(r prometheus.Registerer, c prometheus.Counter) prometheus.Counter {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector.(prometheus.Counter)
		}
		panic(err)
	}
	return c
}

// registerCounterVec is registerCounter for a counter with labels.
func registerCounterVec(r prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector.(*prometheus.CounterVec)
		}
		panic(err)
	}
	return c
}
