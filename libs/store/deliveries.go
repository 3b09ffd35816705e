package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

const deliveryColumns = `id, event_id, subscription_id, status, attempts, next_attempt_at,
	last_status_code, last_error, created_at, updated_at`

// scanDelivery reads deliveryColumns, then any extra columns into extra.
func scanDelivery(row pgx.Row, extra ...any) (domain.Delivery, error) {
	var (
		d    domain.Delivery
		next pgtype.Timestamptz
		code pgtype.Int4
	)
	err := row.Scan(append([]any{&d.ID, &d.EventID, &d.SubscriptionID, &d.Status, &d.Attempts, &next, &code, &d.LastError, &d.CreatedAt, &d.UpdatedAt}, extra...)...)
	d.NextAttemptAt = timePtr(next)
	if code.Valid {
		c := int(code.Int32)
		d.LastStatusCode = &c
	}
	return d, err
}

// Job is a claimed delivery with everything a worker needs to attempt it.
type Job struct {
	DeliveryID     int64
	SubscriptionID string
	// Attempt is the number of the attempt this claim allows (1 for the first).
	Attempt int
	Event   domain.Event
	URL     string
	// Secrets are the signing secrets to sign with: the current one, then
	// the previous one while a rotation's grace period lasts.
	Secrets []string
	// Headers are the subscription's custom headers, opened; nil when it
	// has none.
	Headers map[string]string
	// TLS is the subscription's mutual TLS settings, its key opened; nil
	// when it has none.
	TLS *domain.ClientTLS
	// OAuth2 is the subscription's OAuth2 settings, its client secret
	// opened; nil when it has none.
	OAuth2 *domain.OAuth2
	// Settings are the subscription's delivery settings, its tenant's
	// filling in what it leaves unset (zero: the worker's defaults).
	Settings domain.DeliverySettings
	// SubscriptionCreatedAt tells this subscription from a later one
	// created under the same id.
	SubscriptionCreatedAt time.Time
	// Ordered is a delivery that holds its ordering key (ADR 43): its
	// outcome, once final, releases the key's next delivery
	// (Outcome.InOrder).
	Ordered bool
}

// openStatuses are the statuses of deliveries that are not final.
const openStatuses = `('pending', 'processing', 'retrying')`

// claimSQL takes deliveries ($1) for one attempt each. Only a due delivery
// may be taken: every open delivery carries its due time in next_attempt_at
// (queued pending: at once; retrying: the retry time; processing: when the
// previous claim's lease lapses, because its worker died). The claim's own
// lease is stored the same way, and the attempt number is allotted here, so
// two claims can never record the same attempt. The claim consumed the Kafka
// record, so the delivery counts as not enqueued (enqueued_at -infinity).
// An id given twice names one row, which an UPDATE changes once.
//
// The first step locks every requested delivery that exists, in id order
// (as lockSQL does, and for the same reason: batches and a subscription's
// deletion wait for each other instead of deadlocking), and reads it. All
// conditions are then on that locked copy, and deliveries is reached only
// through its primary key: a condition on d's status, due time or
// subscription would let the planner reach deliveries through another
// index and filter by id, which statistics taken while the table was
// small make look cheap, and which reads every open delivery of the
// subscription for each claim (seen: 8,000 rows read per 30 claimed).
// The updated rows are named by their ids as an array too (d.id = ANY):
// with only the join d.id = l.id, such statistics also let the planner
// walk the whole primary key and join each entry to l, which made a hot
// ordering key's second run fall from over 400 deliveries a second to 150.
// recordSQL, releaseSQL, nextSQL and headSQL reach their rows the same way.
// A setting the subscription leaves unset is its tenant's, if the tenant
// sets it, and the worker's default otherwise.
const claimSQL = `
WITH l AS MATERIALIZED (
	SELECT id, event_id, subscription_id, status, next_attempt_at FROM deliveries
	WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE
)
UPDATE deliveries d
SET status = 'processing', attempts = d.attempts + 1,
    next_attempt_at = now() + coalesce(coalesce(s.timeout_ms, t.timeout_ms) * interval '1 millisecond', $2::interval) + $3::interval,
    enqueued_at = '-infinity', updated_at = now()
FROM l, events e, subscriptions s, tenants t
WHERE d.id = ANY(ARRAY(SELECT id FROM l)) AND d.id = l.id AND e.id = l.event_id AND s.id = l.subscription_id AND s.state = 'active' AND t.id = s.tenant_id
  AND l.status IN ` + openStatuses + ` AND l.next_attempt_at <= now()
RETURNING d.id, d.subscription_id, d.attempts, e.id, e.type, e.source, e.data, e.received_at,
          coalesce(e.ordering_key, ''), d.seq IS NOT NULL, s.url, s.secret, s.previous_secret, s.previous_secret_expires_at > now(), s.created_at, s.headers,
          s.tls_client_certificate, s.tls_client_key, s.tls_ca_bundle, s.oauth2,
          coalesce(s.max_attempts, t.max_attempts), coalesce(s.retry_base_ms, t.retry_base_ms),
          coalesce(s.retry_max_ms, t.retry_max_ms), coalesce(s.timeout_ms, t.timeout_ms),
          coalesce(s.rate_limit_per_second, t.rate_limit_per_second), coalesce(s.max_concurrency, t.max_concurrency)`

// secretRetryAfter is when a delivery whose secret could not be opened is
// due again: a configuration error takes a human to mend.
const secretRetryAfter = time.Minute

// openSecrets returns the secrets to sign with: the current one, then the
// previous one while the rotation's grace period lasts.
func (s *Store) openSecrets(subID, current string, previous pgtype.Text, inGrace pgtype.Bool) ([]string, error) {
	secret, err := s.open(subID, current)
	if err != nil {
		return nil, err
	}
	secrets := []string{secret}
	if previous.Valid && inGrace.Valid && inGrace.Bool {
		old, err := s.open(subID, previous.String)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, old)
	}
	return secrets, nil
}

// Claim is what ClaimDeliveries did with one requested delivery.
type Claim struct {
	// Job is the claimed delivery, ready to attempt. When Err is not nil
	// only Job.DeliveryID is set.
	Job Job
	// Err is nil when the delivery was claimed. Otherwise it wraps
	// domain.ErrNotClaimable (not due, final, held by a live claim, its
	// subscription not active, an unknown id, or an id requested earlier
	// in the same call) or domain.ErrSecretUnavailable (the claim was given
	// back, due again in a minute, without spending its attempt).
	Err error
}

// claimedRow is one row claimSQL returned, before its secrets are opened.
type claimedRow struct {
	job      Job
	secret   string
	previous pgtype.Text
	inGrace  pgtype.Bool
	headers  map[string]string
	// tlsCert, tlsKey (sealed) and tlsCA are the TLS settings as stored.
	tlsCert, tlsKey, tlsCA pgtype.Text
	oauth2                 *oauth2Column
}

// ClaimDeliveries marks the due deliveries among ids as processing with one
// statement (claimSQL): one round trip and one commit for a whole group of
// concurrent messages. It returns one Claim per id, in the order of ids.
// Each claim's lease is its subscription's timeout (defaultTimeout when it
// sets none) plus margin; once it lapses the delivery may be taken over. An
// id given more than once is claimed once, for its first occurrence.
// Deliveries whose secret, custom headers, TLS key or OAuth2 client secret cannot be opened are all given back together
// (ApplyOutcomes with Released): signing is impossible until the keys are
// mended, so holding them would only block.
//
// The error is for the call as a whole (the database could not be
// reached): then nothing was claimed, or, if the connection broke while the
// claims committed, they lapse with their leases and are taken over.
func (s *Store) ClaimDeliveries(ctx context.Context, ids []int64, defaultTimeout, margin time.Duration) ([]Claim, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var claimed map[int64]*claimedRow
	err := retryDeadlock(ctx, func() (err error) {
		rows, err := s.pool.Query(ctx, claimSQL, ids, defaultTimeout, margin)
		if err != nil {
			return err
		}
		claimed, err = scanClaimed(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim %d deliveries: %w", len(ids), err)
	}
	return s.openClaims(ctx, ids, claimed), nil
}

// scanClaimed reads claimSQL's rows by delivery id.
func scanClaimed(rows pgx.Rows) (map[int64]*claimedRow, error) {
	defer rows.Close()
	claimed := map[int64]*claimedRow{}
	for rows.Next() {
		var (
			c  claimedRow
			sd settingsDest
			j  = &c.job
		)
		dest := append([]any{&j.DeliveryID, &j.SubscriptionID, &j.Attempt, &j.Event.ID, &j.Event.Type, &j.Event.Source, &j.Event.Data, &j.Event.ReceivedAt,
			&j.Event.OrderingKey, &j.Ordered, &j.URL, &c.secret, &c.previous, &c.inGrace, &j.SubscriptionCreatedAt, &c.headers,
			&c.tlsCert, &c.tlsKey, &c.tlsCA, &c.oauth2}, sd.targets()...)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		j.Settings = sd.settings()
		claimed[j.DeliveryID] = &c
	}
	return claimed, rows.Err()
}

// openClaims makes the Claims of ids from the rows claimed: each job with
// its secrets, headers, TLS key and OAuth2 client secret opened. Those
// that do not open are given back together (see ClaimDeliveries).
func (s *Store) openClaims(ctx context.Context, ids []int64, claimed map[int64]*claimedRow) []Claim {
	claims := make([]Claim, len(ids))
	var broken []int // indexes into claims of the claims to give back
	for i, id := range ids {
		c, ok := claimed[id]
		if !ok {
			claims[i] = Claim{Job: Job{DeliveryID: id}, Err: fmt.Errorf("claim delivery %d: %w", id, domain.ErrNotClaimable)}
			continue
		}
		delete(claimed, id) // a later duplicate finds it taken
		secrets, err := s.openSecrets(c.job.SubscriptionID, c.secret, c.previous, c.inGrace)
		if err == nil {
			c.job.Headers, err = s.openHeaders(c.job.SubscriptionID, c.headers)
		}
		if err == nil && (c.tlsCert.Valid || c.tlsCA.Valid) {
			c.job.TLS = &domain.ClientTLS{Certificate: c.tlsCert.String, CABundle: c.tlsCA.String}
			if c.tlsKey.Valid {
				c.job.TLS.Key, err = s.open(tlsKeyOwner(c.job.SubscriptionID), c.tlsKey.String)
			}
		}
		if err == nil && c.oauth2 != nil {
			c.job.OAuth2 = c.oauth2.domain()
			c.job.OAuth2.ClientSecret, err = s.open(oauth2SecretOwner(c.job.SubscriptionID), c.oauth2.ClientSecret)
		}
		if err != nil {
			claims[i] = Claim{Job: Job{DeliveryID: id, Attempt: c.job.Attempt}, Err: err}
			broken = append(broken, i)
			continue
		}
		c.job.Secrets = secrets
		claims[i] = Claim{Job: c.job}
	}
	if len(broken) > 0 {
		at := time.Now().Add(secretRetryAfter)
		released := make([]Outcome, len(broken))
		for k, i := range broken {
			released[k] = Released(claims[i].Job.DeliveryID, claims[i].Job.Attempt, at)
		}
		// A claim taken over or deleted meanwhile has nothing left to give
		// back, so only the call's own error matters.
		_, rerr := s.ApplyOutcomes(ctx, released)
		for _, i := range broken {
			err := claims[i].Err
			if rerr != nil {
				err = errors.Join(err, fmt.Errorf("give the claim back: %w", rerr))
			}
			claims[i] = Claim{Job: Job{DeliveryID: claims[i].Job.DeliveryID}, Err: fmt.Errorf("claim delivery %d: %w", claims[i].Job.DeliveryID, err)}
		}
	}
	return claims
}

// DueKind says why the retry scheduler republished a delivery.
type DueKind string

// Why a delivery was due for (re)publishing.
const (
	// DueRetry is a retrying delivery whose time has come.
	DueRetry DueKind = "retry"
	// DueStranded is a pending or processing delivery whose Kafka record was
	// lost or whose worker died.
	DueStranded DueKind = "stranded"
)

// DueDelivery is a delivery claimed for republishing.
type DueDelivery struct {
	DeliveryRef
	Kind DueKind
	// TraceParent is the trace context its event was stored in, if any
	// (domain.Event.TraceParent), to publish it in.
	TraceParent string
}

// claimDueSQL claims a batch of open deliveries that need a Kafka record:
// due, and either not enqueued since their last change (enqueued_at is
// -infinity after a failed attempt, a claim whose lease then lapsed, a
// release or a bulk redelivery) or enqueued longer than stale ago without
// being picked up (the record was lost, or the publish failed). Marking them
// enqueued now under FOR UPDATE SKIP LOCKED means concurrent schedulers
// never claim the same row.
const claimDueSQL = `
WITH due AS (
	SELECT d.id, d.status = 'retrying' AS is_retry
	FROM deliveries d
	WHERE d.status IN ` + openStatuses + `
	  AND d.next_attempt_at <= now()
	  AND (d.enqueued_at = '-infinity' OR d.enqueued_at < now() - $2::interval)
	ORDER BY d.next_attempt_at
	LIMIT $1
	FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d SET enqueued_at = now()
FROM due WHERE d.id = due.id
RETURNING d.id, d.event_id, d.subscription_id, due.is_retry,
	(SELECT ev.traceparent FROM events ev WHERE ev.id = d.event_id)`

// ClaimDue claims up to limit deliveries that need publishing (see
// claimDueSQL); stale is how long a published record may wait unclaimed
// before it counts as lost.
func (s *Store) ClaimDue(ctx context.Context, limit int, stale time.Duration) ([]DueDelivery, error) {
	rows, err := s.pool.Query(ctx, claimDueSQL, limit, stale)
	if err != nil {
		return nil, fmt.Errorf("claim due deliveries: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DueDelivery, error) {
		var (
			d           DueDelivery
			isRetry     bool
			traceParent pgtype.Text
		)
		err := r.Scan(&d.ID, &d.EventID, &d.SubscriptionID, &isRetry, &traceParent)
		d.TraceParent = traceParent.String
		d.Kind = DueStranded
		if isRetry {
			d.Kind = DueRetry
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim due deliveries: %w", err)
	}
	return due, nil
}

// UntilNextDue returns how long until the earliest open delivery that
// waits for its due time becomes claimable: a retry, a released claim, or a
// worker's claim whose lease lapses (all have enqueued_at -infinity). Only
// deliveries due less than since ago or in the future count, which keeps
// the scan short (the caller passes the time since its last claim, which
// took everything due before it); ok is false when there is none. The wait
// is zero or negative when one is already due. Time is measured on the
// database's clock, the one ClaimDue compares with, so clock skew between
// hosts does not matter. Records that may go stale (enqueued_at set) are
// not counted: staleness is coarse and the scheduler's poll finds them.
// The deliveries_open index answers this with a short range scan.
func (s *Store) UntilNextDue(ctx context.Context, since time.Duration) (wait time.Duration, ok bool, err error) {
	var secs pgtype.Float8
	err = s.pool.QueryRow(ctx, `
		SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 FROM deliveries
		WHERE status IN `+openStatuses+`
		  AND next_attempt_at > now() - $1::interval AND enqueued_at = '-infinity'`, since).Scan(&secs)
	if err != nil {
		return 0, false, fmt.Errorf("next due delivery: %w", err)
	}
	if !secs.Valid {
		return 0, false, nil
	}
	return time.Duration(secs.Float64 * float64(time.Second)), true, nil
}

// Redeliver queues an event's finished (delivered or failed) deliveries
// to active subscriptions again, all of them or one subscription's, and
// returns those it queued. Their attempts continue the same numbering. A
// delivery of an ordering key goes again unordered: it neither waits for
// its key nor holds it (ADR 43).
// Only deliveries to subscriptions within scope are queued; an event
// outside scope, like an unknown one, is domain.ErrNotFound. With
// sinceURLChange, a delivery accepted before its subscription's URL last
// changed is domain.ErrBeforeURLChange, and nothing is queued.
func (s *Store) Redeliver(ctx context.Context, scope Scope, eventID, subscriptionID string, sinceURLChange bool) (_ []DeliveryRef, err error) {
	defer markUnavailable(&err)
	type finished struct {
		id             int64
		subscriptionID string
		createdAt      time.Time
	}
	var refs []DeliveryRef
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// In id order, as the workers' batches and a subscription's
		// deletion lock deliveries, and before the subscriptions, as a
		// deletion takes them, so that they wait instead of deadlocking.
		rows, err := tx.Query(ctx, `
			SELECT d.id, d.subscription_id, d.created_at FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
			WHERE d.event_id = $1 AND d.status IN ('delivered', 'failed') AND ($2 = '' OR d.subscription_id = $2)
				AND ($3::text IS NULL OR s.tenant_id = $3)
			ORDER BY d.id FOR NO KEY UPDATE OF d`, eventID, subscriptionID, scope.arg())
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (finished, error) {
			var f finished
			return f, r.Scan(&f.id, &f.subscriptionID, &f.createdAt)
		})
		if err != nil {
			return err
		}
		if len(found) == 0 {
			var known bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events e WHERE e.id = $1 AND `+eventInScope(2)+`)`,
				eventID, scope.arg()).Scan(&known); err != nil {
				return err
			}
			if !known {
				return domain.ErrNotFound
			}
			return nil
		}
		subIDs := make([]string, len(found))
		for i, f := range found {
			subIDs[i] = f.subscriptionID
		}
		// Held until the commit, the lock keeps each subscription from
		// being paused, given another URL or deleted before its delivery
		// is queued.
		//nolint:rowserrcheck // ForEachRow checks rows.Err
		rows, err = tx.Query(ctx, `
			SELECT id, url_changed_at FROM subscriptions WHERE id = ANY($1) AND state = 'active'
			ORDER BY id FOR KEY SHARE`, subIDs)
		if err != nil {
			return err
		}
		urlChanged := map[string]time.Time{}
		var (
			subID string
			at    time.Time
		)
		if _, err := pgx.ForEachRow(rows, []any{&subID, &at}, func() error {
			urlChanged[subID] = at
			return nil
		}); err != nil {
			return err
		}
		var ids []int64
		for _, f := range found {
			changed, active := urlChanged[f.subscriptionID]
			if !active {
				continue
			}
			if sinceURLChange && f.createdAt.Before(changed) {
				return domain.ErrBeforeURLChange
			}
			ids = append(ids, f.id)
			refs = append(refs, DeliveryRef{ID: f.id, EventID: eventID, SubscriptionID: f.subscriptionID})
		}
		_, err = tx.Exec(ctx, `
			UPDATE deliveries SET status = 'pending', next_attempt_at = now(), enqueued_at = now(), updated_at = now(), seq = NULL
			WHERE id = ANY($1::bigint[])`, ids)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("redeliver %q: %w", eventID, err)
	}
	return refs, nil
}

// RedeliverFilter selects finished deliveries of one subscription for bulk
// redelivery.
type RedeliverFilter struct {
	SubscriptionID string
	// Statuses to redeliver: delivered and/or failed (default: failed).
	Statuses []domain.DeliveryStatus
	// From and To bound the deliveries' creation time (zero: unbounded).
	From, To time.Time
	// After continues an earlier redelivery after this delivery (its
	// created_at and event id), as a listing's next page does.
	After *Position
	// Limit is the most deliveries one call queues (at least 1).
	Limit int
	// SinceURLChange refuses, with domain.ErrBeforeURLChange and nothing
	// queued, when any matching delivery after After was accepted before
	// the subscription's URL last changed.
	SinceURLChange bool
}

// BulkRedelivery is what one call of RedeliverBulk did.
type BulkRedelivery struct {
	Queued int64
	// Next is where the next call continues (as RedeliverFilter.After)
	// while more deliveries may match; nil once none remain.
	Next *Position
}

// redeliverCandidatesSQL finds, newest first as GET
// /subscriptions/{id}/deliveries lists them, the deliveries a bulk
// redelivery queues: each status's part of the subscription's deliveries
// is one range of deliveries_subscription_status_created, already in that
// order, so a call reads about its limit of index entries however many
// deliveries match. %s is the condition on d besides subscription and
// status, $1 the subscription, $2 the statuses, $3 the limit.
const redeliverCandidatesSQL = `
	SELECT c.id, c.created_at, c.event_id
	FROM unnest($2::text[]) AS st(status)
	CROSS JOIN LATERAL (
		SELECT d.id, d.created_at, d.event_id FROM deliveries d
		WHERE d.subscription_id = $1 AND d.status = st.status%s
		ORDER BY d.created_at DESC, d.event_id DESC LIMIT $3
	) c
	ORDER BY c.created_at DESC, c.event_id DESC LIMIT $3`

// RedeliverBulk queues up to f.Limit matching finished deliveries again,
// newest first, in one transaction, without loading them: they are marked
// due and never published, so the retry scheduler publishes them in
// batches. It returns how many were queued and where to continue. An
// unknown subscription, or one outside scope, is domain.ErrNotFound, one
// that is not active
// domain.ErrConflict, and with f.SinceURLChange one with a matching
// delivery older than its URL domain.ErrBeforeURLChange.
func (s *Store) RedeliverBulk(ctx context.Context, scope Scope, f RedeliverFilter) (_ BulkRedelivery, err error) {
	defer markUnavailable(&err)
	statuses := []string{string(domain.DeliveryFailed)}
	if len(f.Statuses) > 0 {
		statuses = statuses[:0]
		for _, st := range f.Statuses {
			statuses = append(statuses, string(st))
		}
	}
	q := query{args: []any{f.SubscriptionID, statuses, f.Limit + 1}}
	q.page(`d.created_at`, `d.event_id`, f.From, f.To, f.After)
	if scope.tenant != "" {
		// Another tenant's deliveries are neither read nor locked.
		q.and(`EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = d.subscription_id AND s.tenant_id = ` + q.arg(scope.tenant) + `)`)
	}
	cond := ""
	if len(q.where) > 0 {
		cond = " AND " + strings.Join(q.where, " AND ")
	}
	type candidate struct {
		id  int64
		pos Position
	}
	var out BulkRedelivery
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, fmt.Sprintf(redeliverCandidatesSQL, cond), q.args...)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (candidate, error) {
			var c candidate
			return c, r.Scan(&c.id, &c.pos.Time, &c.pos.ID)
		})
		if err != nil {
			return err
		}
		if len(found) > f.Limit {
			found = found[:f.Limit]
			next := found[len(found)-1].pos
			out.Next = &next
		}
		ids := make([]int64, len(found))
		for i, c := range found {
			ids[i] = c.id
		}
		// In id order, as the workers' batches and a subscription's
		// deletion lock deliveries, so that they wait for each other
		// instead of deadlocking. One that moved on meanwhile is left out.
		rows, err = tx.Query(ctx, `
			SELECT id FROM deliveries WHERE id = ANY($1::bigint[]) AND status = ANY($2::text[])
			ORDER BY id FOR NO KEY UPDATE`, ids, statuses)
		if err != nil {
			return err
		}
		locked, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		// The subscription after its deliveries, in the order a deletion
		// takes them. Held until the commit, the lock keeps it from being
		// paused, given another URL or deleted before these deliveries are
		// queued.
		var (
			state      domain.SubscriptionState
			urlChanged time.Time
		)
		if err := tx.QueryRow(ctx, `SELECT state, url_changed_at FROM subscriptions
			WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2) FOR KEY SHARE`, f.SubscriptionID, scope.arg()).Scan(&state, &urlChanged); err != nil {
			return notFound(err)
		}
		if state != domain.SubscriptionActive {
			return fmt.Errorf("subscription is %s: %w", state, domain.ErrConflict)
		}
		if f.SinceURLChange {
			// Every page asks about all it has left, so a walk is refused
			// at its start rather than halfway.
			var old query
			old.and(`subscription_id = ` + old.arg(f.SubscriptionID))
			old.and(`status = ANY(` + old.arg(statuses) + `::text[])`)
			old.page(`created_at`, `event_id`, f.From, f.To, f.After)
			old.and(`created_at < ` + old.arg(urlChanged))
			var before bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries`+old.whereSQL()+`)`, old.args...).Scan(&before); err != nil {
				return err
			}
			if before {
				return domain.ErrBeforeURLChange
			}
		}
		tag, err := tx.Exec(ctx, `
			UPDATE deliveries
			SET status = 'pending', next_attempt_at = now(), enqueued_at = '-infinity', updated_at = now(), seq = NULL
			WHERE id = ANY($1::bigint[])`, locked)
		out.Queued = tag.RowsAffected()
		return err
	})
	if err != nil {
		return BulkRedelivery{}, fmt.Errorf("bulk redeliver for %q: %w", f.SubscriptionID, err)
	}
	return out, nil
}

// MarkUnpublished records that deliveries' Kafka records were not
// published after all, so the retry scheduler publishes them on its next
// pass instead of waiting for them to go stale.
func (s *Store) MarkUnpublished(ctx context.Context, ids ...int64) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE deliveries SET enqueued_at = '-infinity'
		WHERE id = ANY($1) AND status IN `+openStatuses, ids)
	if err != nil {
		return fmt.Errorf("mark %d deliveries unpublished: %w", len(ids), err)
	}
	return nil
}
