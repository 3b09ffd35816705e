package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// DeliveryRef names one delivery, for publishing.
type DeliveryRef struct {
	ID             int64
	EventID        string
	SubscriptionID string
	// Held is a delivery waiting behind an earlier one of its ordering
	// key: it has no due time and no Kafka record until it is released.
	Held bool
}

// IngestResult is what IngestEvent did.
type IngestResult struct {
	// Event is the stored event: the new one, or the one already stored
	// under the same id.
	Event domain.Event
	// Created is false when the id existed and nothing was written.
	Created bool
	// Deliveries are the deliveries created for the new event, one per
	// matching active subscription. Empty when Created is false.
	Deliveries []DeliveryRef
}

// ingestSQL stores the event and fans it out in one statement, so the
// event and its deliveries commit together or not at all. The event id is
// the idempotency key: on conflict nothing is inserted and no row returns.
// Subscriptions are matched by array overlap with the match keys of the
// event's type prefixed with its tenant (domain.TenantKeys), which the
// partial GIN index on active subscriptions' match_keys answers: one
// lookup whatever the number of tenants.
var ingestSQL = fanOutSQL(`s.match_keys`, false)

// ingestAllSQL is ingestSQL for an event sent to every tenant ($6 NULL):
// plain match keys against the index on active subscriptions' patterns.
var ingestAllSQL = fanOutSQL(`s.event_types`, false)

// ingestOrderedSQL and ingestOrderedAllSQL are ingestSQL and ingestAllSQL
// for an event with an ordering key ($10); only such events pay for
// ordering.
var (
	ingestOrderedSQL    = orderedFanOutSQL(`s.match_keys`)
	ingestOrderedAllSQL = orderedFanOutSQL(`s.event_types`)
)

// orderedFanOutSQL is fanOutSQL for an event with an ordering key ($10).
// Its deliveries to subscriptions with ordering per_key take their place
// in the key (ADR 43): the key's row in ordering_keys counts one more
// sequence number under the row's lock, which orders concurrent ingests
// of one key by their commits, and the delivery is stored held (pending
// with no due time). headSQL, the next statement of the same transaction,
// makes it the key's head when the one before it is final. A
// subscription's keys are locked in subscription id order, as every
// statement that takes them does.
func orderedFanOutSQL(patterns string) string {
	return `
WITH ev AS (
	INSERT INTO events (id, type, source, data, tenant_id, schema_version, schema_valid, traceparent, ordering_key)
	VALUES ($1, $2, $3, $4, $6, $7, $8, $9, $10)
	ON CONFLICT (id) DO NOTHING
	RETURNING id, received_at
), m AS (
	SELECT s.id, s.ordering = 'per_key' AS ordered FROM ev, subscriptions s
	WHERE s.state = 'active' AND ` + patterns + ` && $5::text[]
), k AS (
	INSERT INTO ordering_keys AS k (subscription_id, key, last_seq)
	SELECT id, $10, 1 FROM m WHERE ordered ORDER BY id
	ON CONFLICT (subscription_id, key) DO UPDATE SET last_seq = k.last_seq + 1, updated_at = now()
	RETURNING subscription_id, last_seq
), d AS (
	INSERT INTO deliveries (event_id, subscription_id, next_attempt_at, ordering_key, seq)
	SELECT ev.id, m.id, CASE WHEN m.ordered THEN NULL ELSE now() END, CASE WHEN m.ordered THEN $10 END, k.last_seq
	FROM ev, m LEFT JOIN k ON k.subscription_id = m.id
	RETURNING id, subscription_id, next_attempt_at IS NULL AS held
)
SELECT ev.received_at, d.id, d.subscription_id, d.held FROM ev LEFT JOIN d ON true`
}

// headSQL follows an ordered ingest statement in its transaction: each
// held delivery of the events in $1 whose key has nothing open before it
// (the delivery before it in its key is final, or there is none) becomes
// the key's head, due at once; it returns their ids. It is a statement of
// its own so that its snapshot, taken after the ingest statement took the
// key rows' locks, sees every earlier delivery of those keys (ingests of a
// key commit one after the other under its row's lock).
//
// The delivery before each is locked FOR SHARE, in id order, and its
// status read from the locked row; one missing from the locked rows is
// not final (a row this statement updates before the lock reaches it,
// the head of a batch's key, is skipped by the lock). The lock is what
// keeps a key from stalling without the worker taking its row's lock
// (ADR 43): the statement that makes a head final locks it first, so
// either that statement commits before the lock is granted, and this one
// sees the head final, or this one commits first, and the worker's
// nextSQL, later in its own transaction, sees the delivery this one left
// held and releases it.
// Only the deliveries this transaction stored count (created_at is its
// start, now()): those of an event posted again are left as they are.
// The events' deliveries are read by event id alone and filtered as a
// copy (own), for the reason nextSQL gives; no other statement can
// release one of them meanwhile, since they are not committed.
var headSQL = `
WITH own AS MATERIALIZED (
	SELECT id, subscription_id, ordering_key, seq, created_at FROM deliveries WHERE event_id = ANY($1::text[])
), mine AS MATERIALIZED (
	SELECT o.id, (` + keyNeighbourSQL("o", "- 1") + `) AS prev
	FROM own o WHERE o.created_at = now() AND o.seq IS NOT NULL
), before AS MATERIALIZED (
	SELECT id, status FROM deliveries WHERE id = ANY(ARRAY(SELECT prev FROM mine)) ORDER BY id FOR SHARE
)
UPDATE deliveries d SET next_attempt_at = now()
FROM mine LEFT JOIN before ON before.id = mine.prev
WHERE d.id = ANY(ARRAY(SELECT id FROM mine)) AND d.id = mine.id AND (mine.prev IS NULL OR before.status IN ('delivered', 'failed'))
RETURNING d.id`

// fanOutSQL is the statement that stores an event and fans it out,
// matching patterns against the event's keys. An operational event's
// deliveries are stored as needing a record (enqueued_at -infinity), for
// the retry scheduler that stores them to publish on its next pass, and
// with nothing to report when they fail (ADR 0037).
func fanOutSQL(patterns string, operational bool) string {
	cols, vals := `event_id, subscription_id, next_attempt_at`, `ev.id, s.id, now()`
	if operational {
		cols += `, enqueued_at, report_failure`
		vals += `, '-infinity', false`
	}
	return `
WITH ev AS (
	INSERT INTO events (id, type, source, data, tenant_id, schema_version, schema_valid, traceparent)
	VALUES ($1, $2, $3, $4, $6, $7, $8, $9)
	ON CONFLICT (id) DO NOTHING
	RETURNING id, received_at
), d AS (
	INSERT INTO deliveries (` + cols + `)
	SELECT ` + vals + ` FROM ev, subscriptions s
	WHERE s.state = 'active' AND ` + patterns + ` && $5::text[]
	RETURNING id, subscription_id
)
SELECT ev.received_at, d.id, d.subscription_id FROM ev LEFT JOIN d ON true`
}

// unknownTenant is the error for a tenant id that names no tenant.
func unknownTenant(id string) error {
	return &domain.ValidationError{Field: "tenant_id", Reason: fmt.Sprintf("no tenant %q exists", id)}
}

// withTenant gives an event that names no tenant the default one.
func withTenant(e domain.Event) domain.Event {
	if e.TenantID == "" {
		e.TenantID = domain.DefaultTenant
	}
	return e
}

// eventTenant is how an event's tenant is stored: NULL for every tenant.
func eventTenant(tenant string) pgtype.Text {
	return pgtype.Text{String: tenant, Valid: tenant != domain.AllTenants}
}

// schemaVersion is how an event's schema version is stored: NULL for none.
func schemaVersion(e domain.Event) pgtype.Int4 {
	return pgtype.Int4{Int32: int32(e.SchemaVersion), Valid: e.SchemaVersion > 0} //nolint:gosec // G115: a schema version is read from an int4 column
}

// traceParent is how an event's trace context is stored: NULL for none.
func traceParent(e domain.Event) pgtype.Text {
	return pgtype.Text{String: e.TraceParent, Valid: e.TraceParent != ""}
}

// fanOutKeys are the keys ingestSQL or ingestAllSQL match an event with.
func fanOutKeys(e domain.Event) []string {
	if e.TenantID == domain.AllTenants {
		return domain.MatchKeys(e.Type)
	}
	return domain.TenantKeys(e.TenantID, e.Type)
}

// IngestEvent stores a validated event and one pending delivery per matching
// active subscription, atomically. Posting an id that exists writes nothing
// and returns the stored event with Created false; concurrent posts of one id
// create exactly one event.
//
// A lost connection is retried: the statement is idempotent by event id. If
// a commit went through but its answer was lost, the retry finds the event
// and reports Created false; its deliveries are then published by the retry
// scheduler once they look stranded.
func (s *Store) IngestEvent(ctx context.Context, e domain.Event) (IngestResult, error) {
	var res IngestResult
	err := retryTransient(ctx, func() error {
		var err error
		res, err = s.ingestOnce(ctx, e)
		return err
	})
	return res, err
}

func (s *Store) ingestOnce(ctx context.Context, e domain.Event) (IngestResult, error) {
	e = withTenant(e)
	var (
		query = ingestSQL
		args  = []any{e.ID, e.Type, e.Source, e.Data, fanOutKeys(e), eventTenant(e.TenantID), schemaVersion(e), e.SchemaValid, traceParent(e)}
	)
	switch {
	case e.OrderingKey != "" && e.TenantID == domain.AllTenants:
		query, args = ingestOrderedAllSQL, append(args, e.OrderingKey)
	case e.OrderingKey != "":
		query, args = ingestOrderedSQL, append(args, e.OrderingKey)
	case e.TenantID == domain.AllTenants:
		query = ingestAllSQL
	}
	res := IngestResult{Event: e}
	err := s.runIngest(ctx, query, args, e.OrderingKey != "", []string{e.ID}, func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				id    pgtype.Int8
				subID pgtype.Text
				held  pgtype.Bool
				dest  = []any{&res.Event.ReceivedAt, &id, &subID}
			)
			if e.OrderingKey != "" {
				dest = append(dest, &held)
			}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			res.Created = true
			if id.Valid {
				res.Deliveries = append(res.Deliveries, DeliveryRef{ID: id.Int64, EventID: e.ID, SubscriptionID: subID.String, Held: held.Bool})
			}
		}
		return rows.Err()
	}, &res.Deliveries)
	if err != nil {
		if isForeignKeyViolation(err, "events_tenant_id_fkey") {
			return IngestResult{}, unknownTenant(e.TenantID)
		}
		return IngestResult{}, fmt.Errorf("ingest event %q: %w", e.ID, err)
	}
	if res.Created {
		return res, nil
	}
	existing, err := s.getEvent(ctx, e.ID)
	if err != nil {
		return IngestResult{}, fmt.Errorf("ingest event %q: read existing: %w", e.ID, err)
	}
	if existing.TenantID != e.TenantID {
		return IngestResult{}, fmt.Errorf("event %q was posted for another tenant: %w", e.ID, domain.ErrConflict)
	}
	return IngestResult{Event: existing}, nil
}

// runIngest runs an ingest statement, scanning its rows with scan. An
// ordered one (ordered) is followed, in the same implicit transaction and
// the same round trip, by headSQL for the events in ids, whose heads it
// marks as not held among the deliveries scan collected.
func (s *Store) runIngest(ctx context.Context, query string, args []any, ordered bool, ids []string,
	scan func(pgx.Rows) error, deliveries *[]DeliveryRef) (err error) {
	if !ordered {
		rows, err := s.ingest.Query(ctx, query, args...) //nolint:rowserrcheck // scan checks rows.Err
		if err != nil {
			return err
		}
		defer rows.Close()
		return scan(rows)
	}
	b := &pgx.Batch{}
	b.Queue(query, args...)
	b.Queue(headSQL, ids)
	br := s.ingest.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}()
	rows, err := br.Query() //nolint:rowserrcheck // scan checks rows.Err
	if err != nil {
		return err
	}
	err = scan(rows)
	rows.Close()
	if err != nil {
		return err
	}
	heads, err := collectSet(br)
	if err != nil {
		return err
	}
	for i, d := range *deliveries {
		if heads[d.ID] {
			(*deliveries)[i].Held = false
		}
	}
	return nil
}

// BatchResult is what IngestEvents did, event by event.
type BatchResult struct {
	// Created[i] reports whether events[i] was stored. It is false when an
	// event with its id was stored before or comes earlier in the batch.
	Created []bool
	// ReceivedAt[i] is when events[i] was stored, if Created[i].
	ReceivedAt []time.Time
	// OtherTenant[i] reports that events[i] was not stored because an
	// event with its id was stored before for another tenant.
	OtherTenant []bool
	// Deliveries are the deliveries created for the stored events, one per
	// event and matching active subscription.
	Deliveries []DeliveryRef
}

// ingestBatchSQL is ingestSQL for many events of tenants: it stores the
// events whose ids are new and fans each of them out, in one statement and
// so one commit. $1–$5 are the events' columns (data as JSON text) in the
// order they are inserted; $6 and $7 pair each event id with one of its
// tenant keys. Concurrent batches insert in the same order (sorted by id),
// so two batches that share ids wait for each other instead of
// deadlocking.
var ingestBatchSQL = batchSQL(false)

// ingestBatchAllSQL is ingestBatchSQL for a batch that holds events sent
// to every tenant (tenant NULL, with plain match keys), which a second
// insert fans out through the index on plain patterns. Only such batches
// pay for that second insert.
var ingestBatchAllSQL = batchSQL(true)

func batchSQL(everyTenant bool) string {
	all, union := ``, ``
	if everyTenant {
		all = `, dall AS (
	INSERT INTO deliveries (event_id, subscription_id, next_attempt_at)
	SELECT ev.id, s.id, now() FROM ev JOIN keys USING (id), subscriptions s
	WHERE ev.tenant_id IS NULL AND s.state = 'active' AND s.event_types && keys.keys
	RETURNING id, event_id, subscription_id
)`
		union = ` UNION ALL SELECT * FROM dall`
	}
	return `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $8::int[], $9::bool[], $10::text[])
		WITH ORDINALITY AS i(id, type, source, data, tenant_id, schema_version, schema_valid, traceparent, n)
), ev AS (
	INSERT INTO events (id, type, source, data, tenant_id, schema_version, schema_valid, traceparent)
	SELECT id, type, source, data::jsonb, tenant_id, schema_version, schema_valid, traceparent FROM input ORDER BY n
	ON CONFLICT (id) DO NOTHING
	RETURNING id, received_at, tenant_id
), keys AS (
	SELECT id, array_agg(key) AS keys FROM unnest($6::text[], $7::text[]) AS k(id, key) GROUP BY id
), d AS (
	INSERT INTO deliveries (event_id, subscription_id, next_attempt_at)
	SELECT ev.id, s.id, now() FROM ev JOIN keys USING (id), subscriptions s
	WHERE ev.tenant_id IS NOT NULL AND s.state = 'active' AND s.match_keys && keys.keys
	RETURNING id, event_id, subscription_id
)` + all + `
SELECT ev.id, ev.received_at, d.id, d.subscription_id
FROM ev LEFT JOIN (SELECT * FROM d` + union + `) d ON d.event_id = ev.id`
}

// ingestOrderedBatchSQL and ingestOrderedBatchAllSQL are ingestBatchSQL
// and ingestBatchAllSQL for a batch that holds events with an ordering key
// ($11, "" for none; $12 each event's place in the batch): only such
// batches pay for ordering.
var (
	ingestOrderedBatchSQL    = orderedBatchSQL(false)
	ingestOrderedBatchAllSQL = orderedBatchSQL(true)
)

// orderedBatchSQL is batchSQL for events with ordering keys. As in
// orderedFanOutSQL, each key of a per_key subscription counts its new
// deliveries under its row's lock; within the batch they take their places
// in the batch's order, all held, and headSQL makes the first the key's
// head when nothing before it is open.
func orderedBatchSQL(everyTenant bool) string {
	all := ``
	if everyTenant {
		all = `
	UNION ALL
	SELECT ev.id, ev.ordering_key, s.id, s.ordering = 'per_key' AND ev.ordering_key IS NOT NULL
	FROM ev JOIN keys USING (id), subscriptions s
	WHERE ev.tenant_id IS NULL AND s.state = 'active' AND s.event_types && keys.keys`
	}
	return `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $8::int[], $9::bool[], $10::text[], $11::text[], $12::int[])
		WITH ORDINALITY AS i(id, type, source, data, tenant_id, schema_version, schema_valid, traceparent, ordering_key, pos, n)
), ev AS (
	INSERT INTO events (id, type, source, data, tenant_id, schema_version, schema_valid, traceparent, ordering_key)
	SELECT id, type, source, data::jsonb, tenant_id, schema_version, schema_valid, traceparent, nullif(ordering_key, '') FROM input ORDER BY n
	ON CONFLICT (id) DO NOTHING
	RETURNING id, received_at, tenant_id, ordering_key
), keys AS (
	SELECT id, array_agg(key) AS keys FROM unnest($6::text[], $7::text[]) AS k(id, key) GROUP BY id
), m AS (
	SELECT ev.id AS event_id, ev.ordering_key, s.id AS subscription_id, s.ordering = 'per_key' AND ev.ordering_key IS NOT NULL AS ordered
	FROM ev JOIN keys USING (id), subscriptions s
	WHERE ev.tenant_id IS NOT NULL AND s.state = 'active' AND s.match_keys && keys.keys` + all + `
), r AS (
	SELECT m.event_id, m.subscription_id, m.ordering_key,
	       row_number() OVER (PARTITION BY m.subscription_id, m.ordering_key ORDER BY input.pos) AS rank,
	       count(*) OVER (PARTITION BY m.subscription_id, m.ordering_key) AS n
	FROM m JOIN input ON input.id = m.event_id WHERE m.ordered
), k AS (
	INSERT INTO ordering_keys AS k (subscription_id, key, last_seq)
	SELECT DISTINCT subscription_id, ordering_key, n FROM r ORDER BY 1, 2
	ON CONFLICT (subscription_id, key) DO UPDATE
		SET last_seq = k.last_seq + excluded.last_seq, updated_at = now()
	RETURNING subscription_id, key, last_seq
), d AS (
	INSERT INTO deliveries (event_id, subscription_id, next_attempt_at, ordering_key, seq)
	SELECT m.event_id, m.subscription_id,
	       CASE WHEN NOT m.ordered THEN now() END,
	       r.ordering_key, k.last_seq - r.n + r.rank
	FROM m LEFT JOIN r USING (event_id, subscription_id)
	       LEFT JOIN k ON k.subscription_id = r.subscription_id AND k.key = r.ordering_key
	RETURNING id, event_id, subscription_id, next_attempt_at IS NULL AS held
)
SELECT ev.id, ev.received_at, d.id, d.subscription_id, d.held
FROM ev LEFT JOIN d ON d.event_id = ev.id`
}

// IngestEvents stores validated events and one pending delivery per event
// and matching active subscription, all in one statement: a batch costs one
// commit, and it commits whole or not at all. An event whose id is stored
// already writes nothing, as in IngestEvent; an id that occurs more than
// once in events is stored from its first occurrence only.
//
// A lost connection is retried as in IngestEvent: if a commit went through
// but its answer was lost, the retry reports its events as not created and
// the retry scheduler publishes their deliveries once they look stranded.
func (s *Store) IngestEvents(ctx context.Context, events []domain.Event) (_ BatchResult, err error) {
	defer markUnavailable(&err)
	if len(events) == 0 {
		return BatchResult{}, nil
	}
	first := make(map[string]int, len(events)) // id → index of its first occurrence
	for i, e := range events {
		if _, dup := first[e.ID]; !dup {
			first[e.ID] = i
		}
	}
	order := make([]int, 0, len(first))
	for _, i := range first {
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(events[a].ID, events[b].ID) })
	var (
		ids, types, sources, data = make([]string, len(order)), make([]string, len(order)), make([]string, len(order)), make([]string, len(order))
		tenants                   = make([]pgtype.Text, len(order))
		versions                  = make([]pgtype.Int4, len(order))
		verdicts                  = make([]*bool, len(order))
		traceParents              = make([]pgtype.Text, len(order))
		orderingKeys              = make([]string, len(order))
		positions                 = make([]int32, len(order))
		keyIDs, keys              []string
		everyTenant, ordered      bool
	)
	for k, i := range order {
		e := withTenant(events[i])
		everyTenant = everyTenant || e.TenantID == domain.AllTenants
		ordered = ordered || e.OrderingKey != ""
		ids[k], types[k], sources[k], data[k], tenants[k] = e.ID, e.Type, e.Source, string(e.Data), eventTenant(e.TenantID)
		versions[k], verdicts[k], traceParents[k] = schemaVersion(e), e.SchemaValid, traceParent(e)
		orderingKeys[k], positions[k] = e.OrderingKey, int32(i) //nolint:gosec // G115: a batch holds at most domain.MaxBatchEvents
		for _, key := range fanOutKeys(e) {
			keyIDs, keys = append(keyIDs, e.ID), append(keys, key)
		}
	}
	var query string
	switch {
	case ordered && everyTenant:
		query = ingestOrderedBatchAllSQL
	case ordered:
		query = ingestOrderedBatchSQL
	case everyTenant:
		query = ingestBatchAllSQL
	default:
		query = ingestBatchSQL
	}
	args := []any{ids, types, sources, data, tenants, keyIDs, keys, versions, verdicts, traceParents}
	if ordered {
		args = append(args, orderingKeys, positions)
	}
	var res BatchResult
	err = retryTransient(ctx, func() error {
		res = BatchResult{Created: make([]bool, len(events)), ReceivedAt: make([]time.Time, len(events))}
		return s.runIngest(ctx, query, args, ordered, ids, func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					eventID    string
					receivedAt time.Time
					id         pgtype.Int8
					subID      pgtype.Text
					held       pgtype.Bool
					dest       = []any{&eventID, &receivedAt, &id, &subID}
				)
				if ordered {
					dest = append(dest, &held)
				}
				if err := rows.Scan(dest...); err != nil {
					return err
				}
				res.Created[first[eventID]] = true
				res.ReceivedAt[first[eventID]] = receivedAt
				if id.Valid {
					res.Deliveries = append(res.Deliveries, DeliveryRef{ID: id.Int64, EventID: eventID, SubscriptionID: subID.String, Held: held.Bool})
				}
			}
			return rows.Err()
		}, &res.Deliveries)
	})
	if isForeignKeyViolation(err, "events_tenant_id_fkey") {
		// A tenant deleted since the caller checked it.
		return BatchResult{}, &domain.ValidationError{Field: "tenant_id", Reason: "names a tenant that does not exist"}
	}
	if err != nil {
		return BatchResult{}, fmt.Errorf("ingest %d events: %w", len(events), err)
	}
	if err := s.markOtherTenants(ctx, events, first, &res); err != nil {
		return BatchResult{}, fmt.Errorf("ingest %d events: %w", len(events), err)
	}
	return res, nil
}

// markOtherTenants sets res.OtherTenant for the events of a batch that
// were not stored because their id is another tenant's. Only a batch with
// known ids pays for the look-up.
func (s *Store) markOtherTenants(ctx context.Context, events []domain.Event, first map[string]int, res *BatchResult) error {
	res.OtherTenant = make([]bool, len(events))
	var known []string
	for id, i := range first {
		if !res.Created[i] {
			known = append(known, id)
		}
	}
	if len(known) == 0 {
		return nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id FROM events WHERE id = ANY($1)`, known) //nolint:rowserrcheck // ForEachRow checks rows.Err
	if err != nil {
		return err
	}
	var (
		id     string
		tenant pgtype.Text
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &tenant}, func() error {
		i := first[id]
		res.OtherTenant[i] = storedTenant(tenant) != withTenant(events[i]).TenantID
		return nil
	})
	return err
}

func (s *Store) getEvent(ctx context.Context, id string) (domain.Event, error) {
	var (
		e      domain.Event
		tenant pgtype.Text
	)
	var (
		version pgtype.Int4
		key     pgtype.Text
	)
	err := s.pool.QueryRow(ctx, `SELECT id, type, source, data, received_at, tenant_id, schema_version, schema_valid, test, ordering_key FROM events WHERE id = $1`, id).
		Scan(&e.ID, &e.Type, &e.Source, &e.Data, &e.ReceivedAt, &tenant, &version, &e.SchemaValid, &e.Test, &key)
	e.OrderingKey = key.String
	e.TenantID = storedTenant(tenant)
	e.SchemaVersion = int(version.Int32)
	return e, notFound(err)
}

// storedTenant reads an event's stored tenant back (eventTenant).
func storedTenant(t pgtype.Text) string {
	if !t.Valid {
		return domain.AllTenants
	}
	return t.String
}

// GetEvent returns an event within scope and its status, derived from all
// of its deliveries within scope, or domain.ErrNotFound.
// ListEventDeliveries pages the deliveries themselves: an event may have
// one per subscription.
func (s *Store) GetEvent(ctx context.Context, scope Scope, id string) (_ domain.Event, _ domain.EventStatus, err error) {
	defer markUnavailable(&err)
	var (
		e        domain.Event
		tenant   pgtype.Text
		version  pgtype.Int4
		key      pgtype.Text
		statuses []domain.DeliveryStatus
	)
	err = s.pool.QueryRow(ctx, `
		SELECT id, type, source, data, received_at, tenant_id, schema_version, schema_valid, test, ordering_key,
		       ARRAY(SELECT DISTINCT d.status FROM deliveries d WHERE d.event_id = e.id AND `+deliveryInScope(2)+`)
		FROM events e WHERE id = $1 AND `+eventInScope(2), id, scope.arg()).
		Scan(&e.ID, &e.Type, &e.Source, &e.Data, &e.ReceivedAt, &tenant, &version, &e.SchemaValid, &e.Test, &key, &statuses)
	if err != nil {
		return domain.Event{}, "", fmt.Errorf("get event %q: %w", id, notFound(err))
	}
	e.OrderingKey = key.String
	e.TenantID = storedTenant(tenant)
	e.SchemaVersion = int(version.Int32)
	return e, domain.DeriveEventStatus(statuses), nil
}

// EventDeliveryFilter selects a page of one event's deliveries for
// ListEventDeliveries.
type EventDeliveryFilter struct {
	EventID string
	// After continues the listing after this subscription id; "" starts
	// at the first.
	After string
	Limit int
}

// ListEventDeliveries returns up to f.Limit of an event's deliveries within
// scope, ordered by subscription id (one delivery per event and
// subscription), or domain.ErrNotFound when the event does not exist
// within scope. The unique index on (event_id, subscription_id) holds them
// in page order.
func (s *Store) ListEventDeliveries(ctx context.Context, scope Scope, f EventDeliveryFilter) (_ []domain.Delivery, err error) {
	defer markUnavailable(&err)
	rows, err := s.pool.Query(ctx, `
		SELECT `+deliveryColumns+` FROM deliveries d
		WHERE event_id = $1 AND subscription_id > $2 AND `+deliveryInScope(4)+`
		ORDER BY subscription_id LIMIT $3`, f.EventID, f.After, f.Limit, scope.arg())
	if err != nil {
		return nil, fmt.Errorf("list deliveries of %q: %w", f.EventID, err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("list deliveries of %q: %w", f.EventID, err)
	}
	if len(ds) == 0 {
		if err := s.eventExists(ctx, scope, f.EventID); err != nil {
			return nil, fmt.Errorf("list deliveries of %q: %w", f.EventID, err)
		}
	}
	return ds, nil
}

// eventExists tells an event with nothing to list from no event within
// scope: domain.ErrNotFound for the latter.
func (s *Store) eventExists(ctx context.Context, scope Scope, id string) error {
	var found bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events e WHERE id = $1 AND `+eventInScope(2)+`)`, id, scope.arg()).Scan(&found); err != nil {
		return err
	}
	if !found {
		return domain.ErrNotFound
	}
	return nil
}

// attemptsQuery is ListAttempts' statement for f within scope and its
// arguments.
func attemptsQuery(scope Scope, f AttemptFilter) (string, []any) {
	var q query
	event := q.arg(f.EventID)
	q.and(`d.event_id = ` + event)
	if scope.tenant != "" {
		q.and(`d.subscription_id IN (SELECT id FROM subscriptions WHERE tenant_id = ` + q.arg(scope.tenant) + `)`)
	}
	if f.SubscriptionID != "" {
		q.and(`d.subscription_id = ` + q.arg(f.SubscriptionID))
	}
	order, cmp := `a.started_at, a.id`, `>`
	if f.Newest {
		order, cmp = `a.started_at DESC, a.id DESC`, `<`
	}
	keyset := ``
	if f.After != nil {
		keyset = ` AND (a.started_at, a.id) ` + cmp + ` (` + q.arg(f.After.StartedAt) + `, ` + q.arg(f.After.ID) + `)`
	}
	limit := q.arg(f.Limit)
	return `
		SELECT a.id, a.delivery_id, d.subscription_id, a.number, a.started_at,
		       coalesce(a.duration_us, a.duration_ms::bigint * 1000), a.status_code, a.error_class, a.error, a.response_body, a.instance,
		       a.request_headers, a.response_headers, (SELECT type FROM events WHERE id = ` + event + `)
		FROM deliveries d CROSS JOIN LATERAL (
			SELECT * FROM attempts a WHERE a.delivery_id = d.id` + keyset + `
			ORDER BY ` + order + ` LIMIT ` + limit + `
		) a` + q.whereSQL() + `
		ORDER BY ` + order + ` LIMIT ` + limit, q.args
}

// AttemptPosition is an attempt's place in a listing: when it started,
// then its id, which breaks ties.
type AttemptPosition struct {
	StartedAt time.Time
	ID        int64
}

// AttemptPositionOf returns where a listed attempt stands.
func AttemptPositionOf(a domain.Attempt) AttemptPosition {
	return AttemptPosition{StartedAt: a.StartedAt, ID: a.ID}
}

// AttemptFilter selects a page of one event's attempts for ListAttempts.
type AttemptFilter struct {
	EventID string
	// SubscriptionID keeps the attempts of the event's delivery to this
	// subscription; "" keeps every delivery's.
	SubscriptionID string
	// Newest lists the newest first; otherwise the oldest come first.
	Newest bool
	// After continues the listing after this attempt, in the listing's
	// order.
	After *AttemptPosition
	Limit int
}

// ListAttempts returns up to f.Limit attempts of an event's deliveries
// within scope by started_at, then id, or domain.ErrNotFound when the
// event does not exist within scope.
//
// Each of the event's deliveries gives at most f.Limit attempts, the first
// in page order, from the index on attempts (delivery_id, started_at, id);
// the page is the first f.Limit of those. A page therefore reads at most
// f.Limit attempts per delivery, however long a delivery's history is.
func (s *Store) ListAttempts(ctx context.Context, scope Scope, f AttemptFilter) (_ []domain.Attempt, err error) {
	defer markUnavailable(&err)
	sql, args := attemptsQuery(scope, f)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list attempts of %q: %w", f.EventID, err)
	}
	attempts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Attempt, error) {
		a := domain.Attempt{EventID: f.EventID}
		var (
			durUS int64
			code  pgtype.Int4
		)
		err := r.Scan(&a.ID, &a.DeliveryID, &a.SubscriptionID, &a.Number, &a.StartedAt, &durUS,
			&code, &a.ErrorClass, &a.Error, &a.ResponseBody, &a.Instance, &a.RequestHeaders, &a.ResponseHeaders, &a.EventType)
		a.Duration = time.Duration(durUS) * time.Microsecond
		if code.Valid {
			c := int(code.Int32)
			a.StatusCode = &c
		}
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts of %q: %w", f.EventID, err)
	}
	if len(attempts) == 0 {
		if err := s.eventExists(ctx, scope, f.EventID); err != nil {
			return nil, fmt.Errorf("list attempts of %q: %w", f.EventID, err)
		}
	}
	return attempts, nil
}
