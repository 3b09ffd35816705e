package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

type createSubscriptionInput struct {
	Body struct {
		ID         string   `json:"id,omitempty" maxLength:"255" pattern:"^[A-Za-z0-9_.-]+$" doc:"Optional; generated when missing."`
		TenantID   string   `json:"tenant_id,omitempty" maxLength:"255" doc:"The tenant the subscription belongs to, for good: it receives only that tenant's events (and those sent to every tenant). Default: the key's tenant, or 'default'."`
		URL        string   `json:"url" minLength:"1" maxLength:"2048" example:"https://example.com/webhooks" doc:"Absolute http or https URL that receives the deliveries."`
		EventTypes []string `json:"event_types" minItems:"1" maxItems:"64" example:"[\"order.*\"]" doc:"Patterns: an exact type, 'prefix.*' for every type under a prefix, or '*' for all."`
		Ordering   string   `json:"ordering,omitempty" enum:"none,per_key" doc:"none (the default): each event goes as soon as it may. per_key: the events of one ordering key go one at a time, in the order they were accepted; a key waits while its head is retried. Applies to the events accepted after it is set."`
		Secret     string   `json:"secret,omitempty" doc:"Optional signing secret: 'whsec_' + base64 of 24-64 bytes (the Standard Webhooks form), or a plain string of 8-256 printable ASCII characters without leading or trailing white space, not starting with 'sealed:', whose bytes are the HMAC key. Generated in the whsec_ form when missing."`
		Settings
		TLS     tlsField          `json:"tls,omitzero"`
		OAuth2  oauth2Field       `json:"oauth2,omitzero"`
		Headers map[string]string `json:"headers,omitempty" maxProperties:"20" doc:"Custom headers added to every delivery, by name (at most 20, values at most 4096 bytes). Not allowed: Host, Content-Length, Content-Type, User-Agent, hop-by-hop headers, traceparent, tracestate, X-Dispatch-* and webhook-*. Values are stored encrypted and shown masked; POST /subscriptions/{id}/headers/reveal shows them."`
	}
}

// SubscriptionCreated is a new subscription with its signing secret, which
// is shown only here.
type SubscriptionCreated struct {
	SubscriptionBody
	Secret string `json:"secret" doc:"Signing secret. Shown only once: store it with the receiver."`
	// Warnings name the exact event types the catalog does not have, and
	// the deprecated ones.
	Warnings []string `json:"warnings,omitempty" doc:"Exact event types the catalog does not have (patterns and future types are allowed, so this is no error unless EVENT_TYPES_REQUIRED is on), and deprecated types (still delivered)."`
}

type createSubscriptionOutput struct {
	Body SubscriptionCreated
}

type subscriptionIDInput struct {
	ID string `path:"id" maxLength:"255"`
}

type subscriptionOutput struct {
	Body SubscriptionBody
}

type updateSubscriptionOutput struct {
	Body SubscriptionUpdated
}

type listSubscriptionsInput struct {
	TenantID string `query:"tenant_id" maxLength:"255" doc:"Only this tenant's subscriptions."`
	After    string `query:"after" maxLength:"255" doc:"Cursor: the next_cursor of the previous page."`
	Limit    int    `query:"limit" minimum:"1" maximum:"250" default:"50"`
	Activity bool   `query:"activity" doc:"Adds each subscription's attempts over the last 24 hours (activity_24h)."`
	Circuit  bool   `query:"circuit" doc:"Adds each subscription's live circuit breaker state (circuit_state), when its circuit opened (circuit_opened_at), its failed attempts in the last hour (failures_last_hour) and its last failure (last_failure_at), all in one call to Redis."`
}

type listSubscriptionsOutput struct {
	Body listSubscriptionsBody
}

type listSubscriptionsBody struct {
	Data       []SubscriptionBody `json:"data"`
	NextCursor string             `json:"next_cursor,omitempty" doc:"Pass as 'after' for the next page; absent on the last page."`
}

func (s *Server) registerSubscriptions(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID:   "create-subscription",
		Method:        http.MethodPost,
		Path:          "/subscriptions",
		Summary:       "Create a subscription",
		Tags:          []string{"Subscriptions"},
		DefaultStatus: http.StatusCreated,
		MaxBodyBytes:  maxSubscriptionBodyBytes + 1,
		Metadata:      map[string]any{bodyLimitKey: maxSubscriptionBodyBytes},
		Errors:        []int{http.StatusConflict, http.StatusUnprocessableEntity},
	}, s.createSubscription)

	huma.Register(api, huma.Operation{
		OperationID: "list-subscriptions",
		Method:      http.MethodGet,
		Path:        "/subscriptions",
		Summary:     "List subscriptions",
		Tags:        []string{"Subscriptions"},
	}, s.listSubscriptions)

	huma.Register(api, huma.Operation{
		OperationID: "get-subscription",
		Method:      http.MethodGet,
		Path:        "/subscriptions/{id}",
		Summary:     "Get a subscription",
		Tags:        []string{"Subscriptions"},
		Errors:      []int{http.StatusNotFound},
	}, s.getSubscription)

	huma.Register(api, huma.Operation{
		OperationID: "update-subscription",
		Method:      http.MethodPatch,
		Path:        "/subscriptions/{id}",
		Summary:     "Change a subscription",
		Description: "Changes the fields present in the body. Setting state to active re-enables a disabled or paused subscription; paused keeps its deliveries waiting. " +
			"Answers the subscription as changed to a key with the read scope, and only its id and the fields sent to any other key. " +
			"Such a key may not give a new url to a subscription with deliveries waiting (pending, processing or retrying), which would go there: 403. " +
			"A retry delay sent alone is checked against the other one as stored; a key without the read scope sends both or neither (422 naming the missing one), checked against each other only.",
		Tags:         []string{"Subscriptions"},
		MaxBodyBytes: maxSubscriptionBodyBytes + 1,
		Metadata:     map[string]any{bodyLimitKey: maxSubscriptionBodyBytes},
		Errors:       []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, s.updateSubscription)

	huma.Register(api, huma.Operation{
		OperationID:   "delete-subscription",
		Method:        http.MethodDelete,
		Path:          "/subscriptions/{id}",
		Summary:       "Delete a subscription",
		Description:   "Deletes the subscription with its deliveries and their attempts.",
		Tags:          []string{"Subscriptions"},
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusNotFound},
	}, s.deleteSubscription)
}

func (s *Server) createSubscription(ctx context.Context, in *createSubscriptionInput) (*createSubscriptionOutput, error) {
	fields := in.Body.Settings.sent()
	fields["id"] = in.Body.ID != ""
	if err := portalFieldsRefused(ctx, fields); err != nil {
		return nil, err
	}
	sub := domain.Subscription{ID: in.Body.ID, TenantID: in.Body.TenantID, URL: in.Body.URL, EventTypes: in.Body.EventTypes, Secret: in.Body.Secret, Settings: in.Body.Settings.domain(), Headers: in.Body.Headers,
		Ordering: domain.Ordering(in.Body.Ordering)}
	if sub.ID == "" {
		sub.ID = domain.NewSubscriptionID()
	}
	tenant, err := createdTenant(ctx, sub.TenantID, "subscriptions")
	if err != nil {
		return nil, s.tenantProblem(ctx, err)
	}
	sub.TenantID = tenant
	if err := domain.ValidateSubscription(sub); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	if err := s.checkDestination(ctx, sub.URL); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	if sub.TLS, _, err = in.Body.TLS.domain(s.clock.Now(), false); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	if err := checkTLSURL(sub.TLS, sub.URL); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	if sub.OAuth2, _, err = s.oauth2Settings(ctx, in.Body.OAuth2, false); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	warnings, err := s.catalogWarnings(ctx, sub.EventTypes)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	if sub.Secret == "" {
		sub.Secret = signing.GenerateSecret()
	} else if err := checkSecret(sub.Secret); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	created, err := s.store.CreateSubscription(ctx, sub)
	if err != nil {
		return nil, s.problem(ctx, err, "a subscription with this id already exists")
	}
	return &createSubscriptionOutput{Body: SubscriptionCreated{SubscriptionBody: subscriptionBody(created), Secret: created.Secret, Warnings: warnings}}, nil
}

type updateSubscriptionInput struct {
	ID   string `path:"id" maxLength:"255"`
	Body struct {
		URL        *string  `json:"url,omitempty" maxLength:"2048"`
		EventTypes []string `json:"event_types,omitempty" minItems:"1" maxItems:"64"`
		State      *string  `json:"state,omitempty" enum:"active,paused" doc:"active re-enables a disabled or paused subscription."`
		TenantID   *string  `json:"tenant_id,omitempty" maxLength:"255" doc:"A subscription's tenant never changes: any other than its own is a 422."`
		Ordering   *string  `json:"ordering,omitempty" enum:"none,per_key" doc:"Applies to the events accepted from then on; deliveries already held keep their order."`
		Settings
		Headers headersPatch `json:"headers,omitzero"`
		TLS     tlsField     `json:"tls,omitzero"`
		OAuth2  oauth2Field  `json:"oauth2,omitzero"`
	}
}

func (s *Server) updateSubscription(ctx context.Context, in *updateSubscriptionInput) (*updateSubscriptionOutput, error) {
	b := in.Body
	if err := portalFieldsRefused(ctx, b.Settings.sent()); err != nil {
		return nil, err
	}
	read := mayRead(ctx)
	patch := store.SubscriptionPatch{URL: b.URL, EventTypes: b.EventTypes, URLOnlyWhenIdle: !read, RetryDelaysTogether: !read, TenantID: b.TenantID}
	if b.URL != nil {
		if err := domain.ValidateURL(*b.URL); err != nil {
			return nil, s.problem(ctx, err, "")
		}
		if err := s.checkDestination(ctx, *b.URL); err != nil {
			return nil, s.problem(ctx, err, "")
		}
	}
	for i, p := range b.EventTypes {
		if err := domain.ValidatePattern(fmt.Sprintf("event_types[%d]", i), p); err != nil {
			return nil, s.problem(ctx, err, "")
		}
	}
	if b.Headers.Sent {
		if err := domain.ValidateHeaders(b.Headers.Values); err != nil {
			return nil, s.problem(ctx, err, "")
		}
		patch.SetHeaders, patch.Headers = true, b.Headers.Values
	}
	if b.TLS.Sent {
		c, keep, err := b.TLS.domain(s.clock.Now(), read)
		if err != nil {
			return nil, s.problem(ctx, err, "")
		}
		if b.URL != nil {
			if err := checkTLSURL(c, *b.URL); err != nil {
				return nil, s.problem(ctx, err, "")
			}
		}
		patch.SetTLS, patch.TLS, patch.KeepTLSKey = true, c, keep
	}
	if b.OAuth2.Sent {
		o, keep, err := s.oauth2Settings(ctx, b.OAuth2, read)
		if err != nil {
			return nil, s.problem(ctx, err, "")
		}
		patch.SetOAuth2, patch.OAuth2, patch.KeepOAuth2Secret = true, o, keep
	}
	warnings, err := s.catalogWarnings(ctx, b.EventTypes)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	settings := b.Settings.domain()
	if err := domain.ValidateSettings(settings); err != nil {
		return nil, s.problem(ctx, err, "")
	}
	if settings != (domain.DeliverySettings{}) {
		patch.Settings = &settings
	}
	if b.State != nil {
		st := domain.SubscriptionState(*b.State)
		patch.State = &st
	}
	if b.Ordering != nil {
		o := domain.Ordering(*b.Ordering)
		patch.Ordering = &o
	}
	sub, err := s.store.UpdateSubscription(ctx, scopeOf(ctx), in.ID, patch)
	if errors.Is(err, domain.ErrBeforeURLChange) {
		return nil, huma.Error403Forbidden("this subscription has deliveries waiting (pending, processing or retrying), which a new url would receive: " +
			"changing the url while they wait needs a key with the 'read' scope")
	}
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	if !read {
		out := &updateSubscriptionOutput{Body: SubscriptionUpdated{ID: sub.ID, EventTypes: b.EventTypes, Settings: b.Settings, Headers: masked(b.Headers.Values), TLS: clientTLSBody(patch.TLS), OAuth2: oauth2Body(patch.OAuth2), Warnings: warnings}}
		if b.URL != nil {
			out.Body.URL = *b.URL
		}
		if b.State != nil {
			out.Body.State = *b.State
		}
		if b.Ordering != nil {
			out.Body.Ordering = *b.Ordering
		}
		return out, nil
	}
	body := subscriptionBody(sub)
	return &updateSubscriptionOutput{Body: SubscriptionUpdated{
		ID: body.ID, URL: body.URL, EventTypes: body.EventTypes, State: body.State, StateReason: body.StateReason, Ordering: body.Ordering,
		Settings: body.Settings, Headers: body.Headers, TLS: body.TLS, OAuth2: body.OAuth2, CreatedAt: &body.CreatedAt, UpdatedAt: &body.UpdatedAt, Warnings: warnings,
	}}, nil
}

func (s *Server) getSubscription(ctx context.Context, in *subscriptionIDInput) (*subscriptionOutput, error) {
	sub, err := s.store.GetSubscription(ctx, scopeOf(ctx), in.ID)
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	tenant, err := s.store.TenantSettings(ctx, sub.TenantID)
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	body := []SubscriptionBody{subscriptionBody(sub)}
	effective := settingsBody(inForce(sub.Settings, tenant, s.defaults))
	body[0].Effective = &effective
	s.addCircuits(ctx, []domain.Subscription{sub}, body)
	return &subscriptionOutput{Body: body[0]}, nil
}

// inForce is each setting as the workers apply it: the subscription's
// own, else its tenant's, else the default.
func inForce(own, tenant, def domain.DeliverySettings) domain.DeliverySettings {
	pick := func(vs ...int64) int64 {
		for _, v := range vs {
			if v != 0 {
				return v
			}
		}
		return 0
	}
	return domain.DeliverySettings{
		MaxAttempts:    int(pick(int64(own.MaxAttempts), int64(tenant.MaxAttempts), int64(def.MaxAttempts))),
		RetryBaseDelay: time.Duration(pick(int64(own.RetryBaseDelay), int64(tenant.RetryBaseDelay), int64(def.RetryBaseDelay))),
		RetryMaxDelay:  time.Duration(pick(int64(own.RetryMaxDelay), int64(tenant.RetryMaxDelay), int64(def.RetryMaxDelay))),
		Timeout:        time.Duration(pick(int64(own.Timeout), int64(tenant.Timeout), int64(def.Timeout))),
		RatePerSecond:  int(pick(int64(own.RatePerSecond), int64(tenant.RatePerSecond), int64(def.RatePerSecond))),
		MaxConcurrency: int(pick(int64(own.MaxConcurrency), int64(tenant.MaxConcurrency), int64(def.MaxConcurrency))),
	}
}

// addCircuits sets each body's circuit fields from its subscription's
// circuit, all read in one call. Without Redis they are left out.
func (s *Server) addCircuits(ctx context.Context, subs []domain.Subscription, bodies []SubscriptionBody) {
	if s.circuits == nil || len(subs) == 0 {
		return
	}
	targets := make([]resilience.Target, len(subs))
	for i, sub := range subs {
		targets[i] = resilience.TargetOf(sub.ID, sub.URL, sub.CreatedAt)
	}
	circuits, err := s.circuits.Circuits(ctx, targets)
	if err != nil {
		return
	}
	for i, c := range circuits {
		b := &bodies[i] //nolint:gosec // G602: Circuits answers a circuit per target, and there is a target per body
		b.CircuitState = string(c.State)
		failures := c.FailuresLastHour
		b.FailuresLastHour = &failures
		if !c.OpenedAt.IsZero() {
			t := c.OpenedAt.UTC()
			b.CircuitOpenedAt = &t
		}
		if !c.LastFailureAt.IsZero() {
			t := c.LastFailureAt.UTC()
			b.LastFailureAt = &t
		}
	}
}

func (s *Server) listSubscriptions(ctx context.Context, in *listSubscriptionsInput) (*listSubscriptionsOutput, error) {
	after, err := decodeIDCursor(in.After)
	if err != nil {
		return nil, err
	}
	out := &listSubscriptionsOutput{Body: listSubscriptionsBody{Data: []SubscriptionBody{}}}
	scope, ok := narrowed(ctx, in.TenantID)
	if !ok {
		return out, nil
	}
	subs, err := s.store.ListSubscriptions(ctx, scope, after, in.Limit+1)
	if err != nil {
		return nil, s.problem(ctx, err, "")
	}
	subs, out.Body.NextCursor = keysetPage(subs, in.Limit, func(s domain.Subscription) string { return s.ID })
	out.Body.Data = make([]SubscriptionBody, len(subs))
	ids := make([]string, len(subs))
	for i, sub := range subs {
		out.Body.Data[i], ids[i] = subscriptionBody(sub), sub.ID
	}
	if in.Circuit {
		s.addCircuits(ctx, subs, out.Body.Data)
	}
	if in.Activity && len(ids) > 0 {
		activity, err := s.store.SubscriptionActivity(ctx, scope, ids, s.clock.Now().Add(-activityWindow))
		if err != nil {
			return nil, s.problem(ctx, err, "")
		}
		for i := range out.Body.Data {
			a := activity[ids[i]]
			out.Body.Data[i].Activity = &ActivityBody{Attempts: a.Attempts, Succeeded: a.Succeeded}
		}
	}
	return out, nil
}

// checkDestination refuses a URL that deliveries could not reach under the
// address policy, judged now; the workers judge it again at every dial.
func (s *Server) checkDestination(ctx context.Context, url string) error {
	if err := s.egress.CheckURL(ctx, s.resolver, url); err != nil {
		return &domain.ValidationError{Field: "url", Reason: err.Error()}
	}
	return nil
}

func (s *Server) deleteSubscription(ctx context.Context, in *subscriptionIDInput) (*struct{}, error) {
	sub, err := s.store.DeleteSubscription(ctx, scopeOf(ctx), in.ID)
	if err != nil {
		return nil, s.problem(ctx, err, "subscription not found")
	}
	if s.circuits != nil {
		// Attempts still in flight must not write its circuit back; if Redis
		// is away the circuit expires on its own and a subscription created
		// later under this id has a circuit of its own anyway.
		if err := s.circuits.Forget(ctx, resilience.TargetOf(sub.ID, sub.URL, sub.CreatedAt)); err != nil {
			s.log.Warn("could not forget a deleted subscription's limits", "subscription_id", in.ID, "err", err)
		}
	}
	return nil, nil
}

// catalogWarnings checks a subscription's patterns against the catalog:
// each exact type the catalog does not have is a warning (a 422 with
// EVENT_TYPES_REQUIRED), each deprecated one too. Patterns ("order.*",
// "*") are not checked: they may match types yet to come.
func (s *Server) catalogWarnings(ctx context.Context, patterns []string) ([]string, error) {
	var warnings []string
	for i, p := range patterns {
		if p == "*" || strings.HasSuffix(p, ".*") {
			continue
		}
		e, err := s.catalog.Lookup(ctx, p)
		if err != nil {
			return nil, err
		}
		switch {
		case e == nil && s.typesRequired:
			return nil, &domain.ValidationError{Field: fmt.Sprintf("event_types[%d]", i), Reason: fmt.Sprintf("%q %s", p, errUnknownType)}
		case e == nil:
			warnings = append(warnings, fmt.Sprintf("event type %q is not in the catalog (GET /event-types); the subscription receives it if it is ever posted", p))
		case e.Deprecated:
			warnings = append(warnings, fmt.Sprintf("event type %q is deprecated; it is still delivered", p))
		}
	}
	return warnings, nil
}
