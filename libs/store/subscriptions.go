package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

const subscriptionColumns = `id, tenant_id, url, event_types, state, state_reason, ` + settingsColumns + `, created_at, updated_at, ` + headerNamesColumn +
	`, tls_client_certificate, tls_ca_bundle, tls_not_after, ` + oauth2ReadColumn + `, ordering`

// headerNamesColumn is the names of a subscription's custom headers: reads
// never carry their sealed values.
const headerNamesColumn = `ARRAY(SELECT jsonb_object_keys(headers) ORDER BY 1)`

// settingsColumns are a subscription's delivery settings, read by scanSettings.
const settingsColumns = `max_attempts, retry_base_ms, retry_max_ms, timeout_ms, rate_limit_per_second, max_concurrency`

// settingsDest receives settingsColumns.
type settingsDest struct {
	maxAttempts, toMS, rate, conc pgtype.Int4
	baseMS, maxDelayMS            pgtype.Int8
}

func (d *settingsDest) targets() []any {
	return []any{&d.maxAttempts, &d.baseMS, &d.maxDelayMS, &d.toMS, &d.rate, &d.conc}
}

func (d *settingsDest) settings() domain.DeliverySettings {
	return domain.DeliverySettings{
		MaxAttempts:    int(d.maxAttempts.Int32),
		RetryBaseDelay: time.Duration(d.baseMS.Int64) * time.Millisecond,
		RetryMaxDelay:  time.Duration(d.maxDelayMS.Int64) * time.Millisecond,
		Timeout:        time.Duration(d.toMS.Int32) * time.Millisecond,
		RatePerSecond:  int(d.rate.Int32),
		MaxConcurrency: int(d.conc.Int32),
	}
}

// scanSubscription reads subscriptionColumns and, when given, the extra
// columns after them. The secret is not read: only the worker's claim
// needs it, and a secret that cannot be opened must not make a
// subscription unreadable.
func scanSubscription(row pgx.Row, extra ...any) (domain.Subscription, error) {
	var (
		sub      domain.Subscription
		sd       settingsDest
		names    []string
		cert, ca pgtype.Text
		notAfter pgtype.Timestamptz
		oauth2   *oauth2Column
	)
	dest := append([]any{&sub.ID, &sub.TenantID, &sub.URL, &sub.EventTypes, &sub.State, &sub.StateReason}, sd.targets()...)
	err := row.Scan(append(append(dest, &sub.CreatedAt, &sub.UpdatedAt, &names, &cert, &ca, &notAfter, &oauth2, &sub.Ordering), extra...)...)
	sub.Settings = sd.settings()
	sub.OAuth2 = oauth2.domain()
	if cert.Valid || ca.Valid {
		sub.TLS = &domain.ClientTLS{Certificate: cert.String, CABundle: ca.String, NotAfter: notAfter.Time}
	}
	if len(names) > 0 {
		sub.Headers = make(map[string]string, len(names))
		for _, n := range names {
			sub.Headers[n] = ""
		}
	}
	return sub, err
}

// headerOwner is what a custom header's sealed value is bound to: its
// subscription and its name, so that a value moved to another header or
// another subscription does not open.
func headerOwner(subID, name string) string {
	return subID + "/headers/" + name
}

// tlsKeyOwner is what a subscription's sealed TLS client key is bound to.
func tlsKeyOwner(subID string) string {
	return subID + "/tls/key"
}

// tlsArgs returns the arguments for tls_client_certificate,
// tls_client_key (sealed), tls_ca_bundle and tls_not_after: NULL for
// what c does not set.
func (s *Store) tlsArgs(subID string, c *domain.ClientTLS) []any {
	if c == nil {
		return []any{nil, nil, nil, nil}
	}
	text := func(v string) pgtype.Text { return pgtype.Text{String: v, Valid: v != ""} }
	key := pgtype.Text{}
	if c.Key != "" {
		key = text(s.seal(tlsKeyOwner(subID), c.Key))
	}
	return []any{text(c.Certificate), key, text(c.CABundle), pgtype.Timestamptz{Time: c.NotAfter, Valid: c.Certificate != ""}}
}

// sealHeaders returns headers with each value sealed, as the argument for
// the headers column: SQL NULL (never JSON null) when there are none.
func (s *Store) sealHeaders(subID string, headers map[string]string) any {
	if len(headers) == 0 {
		return nil
	}
	sealed := make(map[string]string, len(headers))
	for name, value := range headers {
		sealed[name] = s.seal(headerOwner(subID, name), value)
	}
	return sealed
}

// openHeaders opens the values of a headers column.
func (s *Store) openHeaders(subID string, sealed map[string]string) (map[string]string, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	headers := make(map[string]string, len(sealed))
	for name, value := range sealed {
		v, err := s.open(headerOwner(subID, name), value)
		if err != nil {
			return nil, err
		}
		headers[name] = v
	}
	return headers, nil
}

// nullMS stores a zero duration as NULL ("use the default").
func nullMS(d time.Duration) pgtype.Int8 {
	return pgtype.Int8{Int64: d.Milliseconds(), Valid: d > 0}
}

// nullInt is how an optional count or limit is stored: NULL for zero, not
// set. Its columns are int4, and it is passed as an int8 so that pgx
// refuses a value beyond int4 rather than storing it wrapped, as a
// conversion to int32 would; validation bounds every such value far
// below that.
func nullInt(n int) pgtype.Int8 {
	return pgtype.Int8{Int64: int64(n), Valid: n > 0}
}

// lockTenantSQL locks a tenant's row while a subscription is created in
// it and reads its quota and, if it has one, its subscriptions' count.
const lockTenantSQL = `
	SELECT max_subscriptions, CASE WHEN max_subscriptions IS NULL THEN 0
		ELSE (SELECT count(*) FROM subscriptions WHERE tenant_id = $1) END
	FROM tenants WHERE id = $1 FOR NO KEY UPDATE`

// CreateSubscription stores a new, active subscription in its tenant
// (DefaultTenant when it names none). A subscription with the same id is
// domain.ErrConflict; an unknown tenant, or one whose quota of
// subscriptions is used up, is a *domain.ValidationError on tenant_id.
func (s *Store) CreateSubscription(ctx context.Context, sub domain.Subscription) (_ domain.Subscription, err error) {
	defer markUnavailable(&err)
	if sub.TenantID == "" {
		sub.TenantID = domain.DefaultTenant
	}
	var created domain.Subscription
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The tenant's row is locked so that concurrent creations count
		// one after another against its quota; FOR NO KEY UPDATE, unlike
		// FOR UPDATE, leaves the key share that each event's foreign key
		// takes on its tenant free, so that ingest never waits for it.
		var (
			quota pgtype.Int4
			count int
		)
		err := tx.QueryRow(ctx, lockTenantSQL, sub.TenantID).Scan(&quota, &count)
		if errors.Is(err, pgx.ErrNoRows) {
			return unknownTenant(sub.TenantID)
		}
		if err != nil {
			return err
		}
		if quota.Valid && count >= int(quota.Int32) {
			return &domain.ValidationError{Field: "tenant_id", Reason: fmt.Sprintf(
				"tenant %q has %d subscriptions, its quota (max_subscriptions)", sub.TenantID, quota.Int32)}
		}
		row := tx.QueryRow(ctx, `
			INSERT INTO subscriptions (id, tenant_id, url, event_types, secret, `+settingsColumns+`, headers,
				tls_client_certificate, tls_client_key, tls_ca_bundle, tls_not_after, oauth2, ordering)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
			ON CONFLICT (id) DO NOTHING
			RETURNING `+subscriptionColumns,
			append([]any{sub.ID, sub.TenantID, sub.URL, sub.EventTypes, s.seal(sub.ID, sub.Secret),
				nullInt(sub.Settings.MaxAttempts),
				nullMS(sub.Settings.RetryBaseDelay), nullMS(sub.Settings.RetryMaxDelay),
				nullMS(sub.Settings.Timeout),
				nullInt(sub.Settings.RatePerSecond),
				nullInt(sub.Settings.MaxConcurrency),
				s.sealHeaders(sub.ID, sub.Headers)}, append(s.tlsArgs(sub.ID, sub.TLS), s.oauth2Arg(sub.ID, sub.OAuth2), sub.Ordering.Or())...)...)
		created, err = scanSubscription(row)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("subscription %q: %w", sub.ID, domain.ErrConflict)
		}
		return err
	})
	if err != nil {
		return domain.Subscription{}, fmt.Errorf("insert subscription: %w", err)
	}
	created.Secret = sub.Secret
	return created, nil
}

// GetSubscription returns one subscription within scope or domain.ErrNotFound.
func (s *Store) GetSubscription(ctx context.Context, scope Scope, id string) (_ domain.Subscription, err error) {
	defer markUnavailable(&err)
	sub, err := scanSubscription(s.pool.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
		WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)`, id, scope.arg()))
	if err != nil {
		return domain.Subscription{}, fmt.Errorf("get subscription %q: %w", id, notFound(err))
	}
	return sub, nil
}

// ListSubscriptions returns up to limit subscriptions within scope ordered
// by id, starting after the id in after (keyset pagination; "" starts at
// the top).
func (s *Store) ListSubscriptions(ctx context.Context, scope Scope, after string, limit int) (_ []domain.Subscription, err error) {
	defer markUnavailable(&err)
	query := `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE id > $1 ORDER BY id LIMIT $2`
	args := []any{after, limit}
	if scope.tenant != "" {
		// Its own statement, so that the tenant's index answers it.
		query = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE tenant_id = $3 AND id > $1 ORDER BY id LIMIT $2`
		args = append(args, scope.tenant)
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	subs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Subscription, error) { return scanSubscription(r) })
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return subs, nil
}

// DeleteSubscription removes a subscription within scope together with its
// deliveries and their attempts, and returns what it was. An unknown id, or
// one outside scope, is domain.ErrNotFound.
func (s *Store) DeleteSubscription(ctx context.Context, scope Scope, id string) (_ domain.Subscription, err error) {
	defer markUnavailable(&err)
	var sub domain.Subscription
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The deletion cascades to the deliveries in whatever order its
		// plan walks them. The worker's batches lock the deliveries they
		// change in id order (lockSQL); locking this subscription's
		// deliveries in the same order first means the two wait for each
		// other instead of deadlocking.
		if _, err := tx.Exec(ctx, `SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
			WHERE d.subscription_id = $1 AND ($2::text IS NULL OR s.tenant_id = $2) ORDER BY d.id FOR UPDATE OF d`, id, scope.arg()); err != nil {
			return err
		}
		var err error
		sub, err = scanSubscription(tx.QueryRow(ctx, `DELETE FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)
			RETURNING `+subscriptionColumns, id, scope.arg()))
		return err
	})
	if err != nil {
		return domain.Subscription{}, fmt.Errorf("delete subscription %q: %w", id, notFound(err))
	}
	return sub, nil
}

// ExistingSubscriptions returns those of ids that are still subscriptions.
func (s *Store) ExistingSubscriptions(ctx context.Context, ids []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM subscriptions WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("existing subscriptions: %w", err)
	}
	existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("existing subscriptions: %w", err)
	}
	return existing, nil
}

// DisableSubscription stops a subscription for good (for example after its
// endpoint answered 410 Gone) and fails its deliveries that are waiting,
// in one transaction. Deliveries being attempted right now finish normally.
// The failed ones are not reported exhausted one by one: the
// subscription's dispatch.subscription.disabled event reports them.
func (s *Store) DisableSubscription(ctx context.Context, id, reason string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE subscriptions SET state = 'disabled', state_reason = $2, updated_at = now()
			WHERE id = $1`, id, reason)
		if err != nil {
			return fmt.Errorf("disable subscription %q: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("disable subscription %q: %w", id, domain.ErrNotFound)
		}
		_, err = tx.Exec(ctx, `
			UPDATE deliveries SET status = 'failed', next_attempt_at = NULL,
			       last_error = 'subscription disabled: ' || $2, report_failure = false, updated_at = now()
			WHERE subscription_id = $1 AND status IN ('pending', 'retrying')`, id, reason)
		if err != nil {
			return fmt.Errorf("fail deliveries of disabled subscription %q: %w", id, err)
		}
		return nil
	})
}

// SubscriptionPatch lists the fields to change; nil fields stay as they are.
type SubscriptionPatch struct {
	URL        *string
	EventTypes []string
	// State may be active or paused; making a subscription active clears
	// its state reason.
	State    *domain.SubscriptionState
	Settings *domain.DeliverySettings
	// URLOnlyWhenIdle refuses a new URL, with domain.ErrBeforeURLChange,
	// while the subscription has open deliveries: accepted before the
	// change, they would go to the new URL. For a caller that may not read
	// them.
	URLOnlyWhenIdle bool
	// RetryDelaysTogether refuses a patch that sets one retry delay
	// without the other (a *domain.ValidationError naming the missing
	// one) and compares the two it sets only with each other. Checked
	// against the stored other delay, the answer would say whether that
	// delay is above or below the value sent, so a caller could find it
	// by bisection. For a caller that may not read it.
	RetryDelaysTogether bool
	// TenantID, when set, must be the subscription's own: a subscription
	// never moves to another tenant (a *domain.ValidationError otherwise).
	TenantID *string
	// SetHeaders replaces the custom headers with Headers (none when it
	// is empty); without it they stay as they are.
	SetHeaders bool
	Headers    map[string]string
	// SetTLS replaces the mutual TLS settings with TLS (none when nil);
	// without it they stay as they are.
	SetTLS bool
	TLS    *domain.ClientTLS
	// SetOAuth2 replaces the OAuth2 settings with OAuth2 (none when nil);
	// without it they stay as they are.
	SetOAuth2 bool
	OAuth2    *domain.OAuth2
	// KeepTLSKey keeps the stored TLS key with TLS (whose Key is empty)
	// when the stored certificate is TLS.Certificate, and is a
	// *domain.ValidationError on tls.client_key otherwise: a key belongs
	// to its certificate.
	KeepTLSKey bool
	// KeepOAuth2Secret keeps the stored client secret with OAuth2 (whose
	// ClientSecret is empty) when the stored token URL and client id are
	// OAuth2's, and is a *domain.ValidationError on oauth2.client_secret
	// otherwise: a secret goes only where it went before.
	KeepOAuth2Secret bool
	// Ordering, when set, applies to the events accepted from then on.
	Ordering *domain.Ordering
}

// UpdateSubscription applies a validated patch to a subscription within
// scope and returns the result, or domain.ErrNotFound. Settings replace the
// stored ones field by field where non-zero. The retry delays are checked
// against the stored ones in the same transaction, under the row's lock: a
// patch that would leave the longest wait below the first one is a
// *domain.ValidationError naming the patched field, and changes nothing
// (with RetryDelaysTogether, a patch setting only one is refused instead).
// A URL other than the stored one moves url_changed_at to now. Making a
// paused or disabled subscription active starts its failing period afresh
// (ADR 0037): the time it was not attempted does not count toward
// AUTO_DISABLE_AFTER, and a re-enabled subscription is not disabled again
// before it has failed that long once more.
func (s *Store) UpdateSubscription(ctx context.Context, scope Scope, id string, p SubscriptionPatch) (_ domain.Subscription, err error) {
	defer markUnavailable(&err)
	var st domain.DeliverySettings
	if p.Settings != nil {
		st = *p.Settings
	}
	var state pgtype.Text
	if p.State != nil {
		state = pgtype.Text{String: string(*p.State), Valid: true}
	}
	var sub domain.Subscription
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			url, tenant    string
			base, maxDelay pgtype.Int8
			kept           keptCredentials
		)
		err := tx.QueryRow(ctx, `SELECT url, tenant_id, retry_base_ms, retry_max_ms,
				CASE WHEN tls_client_key IS NOT NULL THEN tls_client_certificate END,
				CASE WHEN oauth2 ? 'client_secret' THEN oauth2->>'token_url' END, oauth2->>'client_id'
			FROM subscriptions
			WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2) FOR UPDATE`, id, scope.arg()).
			Scan(&url, &tenant, &base, &maxDelay, &kept.certificate, &kept.tokenURL, &kept.clientID)
		if err != nil {
			return notFound(err)
		}
		if err := kept.check(p); err != nil {
			return err
		}
		if p.TenantID != nil && *p.TenantID != tenant {
			return &domain.ValidationError{Field: "tenant_id", Reason: fmt.Sprintf("cannot change: the subscription belongs to tenant %q for good", tenant)}
		}
		if err := checkRetryDelays(st, base, maxDelay, p.RetryDelaysTogether); err != nil {
			return err
		}
		if p.URLOnlyWhenIdle && p.URL != nil && *p.URL != url {
			// The row's lock keeps deliveries from being created or
			// redelivered meanwhile: both take a lock on it that this one
			// excludes.
			var open bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE subscription_id = $1 AND status IN `+openStatuses+`)`, id).Scan(&open); err != nil {
				return err
			}
			if open {
				return domain.ErrBeforeURLChange
			}
		}
		sub, err = scanSubscription(tx.QueryRow(ctx, `
			UPDATE subscriptions SET
				url = coalesce($2, url),
				url_changed_at = CASE WHEN coalesce($2, url) <> url THEN now() ELSE url_changed_at END,
				event_types = coalesce($3, event_types),
				state = coalesce($4, state),
				state_reason = CASE WHEN $4 = 'active' THEN '' ELSE state_reason END,
				failing_since = CASE WHEN $4 = 'active' AND state <> 'active' THEN NULL ELSE failing_since END,
				alert_since = CASE WHEN $4 = 'active' AND state <> 'active' THEN NULL ELSE alert_since END,
				alert_level = CASE WHEN $4 = 'active' AND state <> 'active' THEN 0 ELSE alert_level END,
				max_attempts = coalesce($5, max_attempts),
				retry_base_ms = coalesce($6, retry_base_ms),
				retry_max_ms = coalesce($7, retry_max_ms),
				timeout_ms = coalesce($8, timeout_ms),
				rate_limit_per_second = coalesce($9, rate_limit_per_second),
				max_concurrency = coalesce($10, max_concurrency),
				headers = CASE WHEN $11 THEN $12 ELSE headers END,
				tls_client_certificate = CASE WHEN $13 THEN $14 ELSE tls_client_certificate END,
				tls_client_key = CASE WHEN $13 AND NOT $20 THEN $15 ELSE tls_client_key END,
				tls_ca_bundle = CASE WHEN $13 THEN $16 ELSE tls_ca_bundle END,
				tls_not_after = CASE WHEN $13 THEN $17::timestamptz ELSE tls_not_after END,
				oauth2 = CASE WHEN $18 AND $21 THEN $19::jsonb || jsonb_build_object('client_secret', oauth2->'client_secret')
					WHEN $18 THEN $19::jsonb ELSE oauth2 END,
				ordering = coalesce($22, ordering),
				updated_at = now()
			WHERE id = $1
			RETURNING `+subscriptionColumns,
			append([]any{id, p.URL, p.EventTypes, state,
				nullInt(st.MaxAttempts),
				nullMS(st.RetryBaseDelay), nullMS(st.RetryMaxDelay),
				nullMS(st.Timeout),
				nullInt(st.RatePerSecond),
				nullInt(st.MaxConcurrency),
				p.SetHeaders, s.sealHeaders(id, p.Headers), p.SetTLS}, append(s.tlsArgs(id, p.TLS), p.SetOAuth2, s.oauth2Arg(id, p.OAuth2), p.KeepTLSKey, p.KeepOAuth2Secret, p.Ordering)...)...))
		return err
	})
	if err != nil {
		return domain.Subscription{}, fmt.Errorf("update subscription %q: %w", id, err)
	}
	return sub, nil
}

// keptCredentials is what a patch that keeps a stored TLS key or client
// secret is checked against: the certificate the stored key belongs to,
// and the token URL and client id the stored secret is sent with (each
// NULL when there is no key or secret).
type keptCredentials struct {
	certificate, tokenURL, clientID pgtype.Text
}

// check refuses a patch that keeps a key or secret for other settings
// than those it was stored with.
func (k keptCredentials) check(p SubscriptionPatch) error {
	if p.KeepTLSKey && (p.TLS == nil || !k.certificate.Valid || k.certificate.String != p.TLS.Certificate) {
		return &domain.ValidationError{Field: "tls.client_key",
			Reason: "must be given with a new client_certificate: the stored key is kept only with the certificate it was stored with"}
	}
	if p.KeepOAuth2Secret && (p.OAuth2 == nil || !k.tokenURL.Valid || k.tokenURL.String != p.OAuth2.TokenURL || k.clientID.String != p.OAuth2.ClientID) {
		return &domain.ValidationError{Field: "oauth2.client_secret",
			Reason: "must be given with a new token_url or client_id: the stored secret is kept only with the token URL and client id it was stored with"}
	}
	return nil
}

// RotateSecret makes secret the signing secret of the subscription within
// scope and keeps the current one as the previous secret until grace has
// passed, so that deliveries carry both signatures meanwhile. It returns the subscription
// and when the previous secret stops being used.
func (s *Store) RotateSecret(ctx context.Context, scope Scope, id, secret string, grace time.Duration) (_ domain.Subscription, _ time.Time, err error) {
	defer markUnavailable(&err)
	var until time.Time
	sub, err := scanSubscription(s.pool.QueryRow(ctx, `
		UPDATE subscriptions
		SET previous_secret = secret, previous_secret_expires_at = now() + $3::interval, secret = $2, updated_at = now()
		WHERE id = $1 AND ($4::text IS NULL OR tenant_id = $4)
		RETURNING `+subscriptionColumns+`, previous_secret_expires_at`, id, s.seal(id, secret), grace, scope.arg()), &until)
	if err != nil {
		return domain.Subscription{}, time.Time{}, fmt.Errorf("rotate secret of %q: %w", id, notFound(err))
	}
	sub.Secret = secret
	return sub, until, nil
}

// checkRetryDelays refuses a patch whose retry delays, merged with the
// stored ones, would put the longest wait below the first. With together,
// a patch must set both or neither, and the stored ones do not count.
func checkRetryDelays(patch domain.DeliverySettings, storedBase, storedMax pgtype.Int8, together bool) error {
	if together && (patch.RetryBaseDelay > 0) != (patch.RetryMaxDelay > 0) {
		const why = ": a key without the 'read' scope sets both retry delays together, since checking one against the stored other would tell that value"
		if patch.RetryBaseDelay > 0 {
			return &domain.ValidationError{Field: "retry_max_delay_ms", Reason: "must be sent with retry_base_delay_ms" + why}
		}
		return &domain.ValidationError{Field: "retry_base_delay_ms", Reason: "must be sent with retry_max_delay_ms" + why}
	}
	base, maxDelay := time.Duration(storedBase.Int64)*time.Millisecond, time.Duration(storedMax.Int64)*time.Millisecond
	if patch.RetryBaseDelay > 0 {
		base = patch.RetryBaseDelay
	}
	if patch.RetryMaxDelay > 0 {
		maxDelay = patch.RetryMaxDelay
	}
	if base == 0 || maxDelay == 0 || maxDelay >= base {
		return nil
	}
	if patch.RetryMaxDelay > 0 {
		return &domain.ValidationError{Field: "retry_max_delay_ms", Reason: "must not be below the subscription's retry_base_delay_ms"}
	}
	return &domain.ValidationError{Field: "retry_base_delay_ms", Reason: "must not be above the subscription's retry_max_delay_ms"}
}
