package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// OutcomeKind says what an Outcome does to its delivery.
type OutcomeKind string

// The kinds of Outcome, one per constructor.
const (
	OutcomeDelivered OutcomeKind = "delivered"
	OutcomeRetrying  OutcomeKind = "retrying"
	OutcomeFailed    OutcomeKind = "failed"
	OutcomeGone      OutcomeKind = "gone"
	OutcomeReleased  OutcomeKind = "released"
)

// Outcome is what became of one claim: an attempt and the delivery state it
// leads to, or the claim given back unspent. Its fields are unexported so
// that only the constructors (Delivered, Retrying, Failed, Gone, Released)
// make one, and each kind carries exactly what it needs: no retrying
// outcome without a due time, no released one with an attempt.
type Outcome struct {
	kind       OutcomeKind
	attempt    domain.Attempt // zero for Released
	deliveryID int64
	number     int
	at         time.Time // Retrying and Released: when the delivery is due again
	reason     string    // Gone: why the subscription is disabled
	// operational marks the attempt of an operational event, which leaves
	// its subscription's failing period as it is (see Operational).
	operational bool
	// inOrder marks the claim of a delivery that holds its ordering key
	// (see InOrder).
	inOrder bool
}

// InOrder marks o as the outcome of a claim of an ordered delivery
// (Job.Ordered): when o makes the delivery final, the next delivery of its
// ordering key is released in the same transaction and returned (Applied),
// for the caller to claim and attempt.
func (o Outcome) InOrder() Outcome {
	o.inOrder = true
	return o
}

// Applied is what ApplyOutcomes did with one outcome.
type Applied struct {
	// Err is nil when the outcome was applied (see ApplyOutcomes).
	Err error
	// Next is the delivery of the same ordering key that the outcome
	// released, due at once and counted as published: the caller claims
	// it, or the retry scheduler republishes it once it looks stranded.
	// Nil when none was released.
	Next *DeliveryRef
}

// Operational marks o as the outcome of an operational event's attempt
// (domain.IsOperationalType): it does not start or end its subscription's
// failing period, so an operator's subscription that fails to receive
// operational events is not reported failing through them, and reporting
// never feeds on itself.
func (o Outcome) Operational() Outcome {
	o.operational = true
	return o
}

// Delivered is an attempt that got a 2xx: the delivery is final.
func Delivered(a domain.Attempt) Outcome {
	return Outcome{kind: OutcomeDelivered, attempt: a, deliveryID: a.DeliveryID, number: a.Number}
}

// Retrying is a failed attempt that will be tried again: the delivery is
// due again at at.
func Retrying(a domain.Attempt, at time.Time) Outcome {
	return Outcome{kind: OutcomeRetrying, attempt: a, deliveryID: a.DeliveryID, number: a.Number, at: at}
}

// Failed is a failed attempt that is the last one (attempts exhausted, or
// an error no retry can mend): the delivery is final.
func Failed(a domain.Attempt) Outcome {
	return Outcome{kind: OutcomeFailed, attempt: a, deliveryID: a.DeliveryID, number: a.Number}
}

// Gone is Failed for an attempt whose answer retired the endpoint (410
// Gone): the delivery fails and, in the same transaction, its subscription
// is disabled with reason and its waiting (pending or retrying) deliveries
// fail, as DisableSubscription does. Doing both at once means a crash
// between them cannot leave a retired endpoint active.
func Gone(a domain.Attempt, reason string) Outcome {
	return Outcome{kind: OutcomeGone, attempt: a, deliveryID: a.DeliveryID, number: a.Number, reason: reason}
}

// Released gives back the claim for attempt of a delivery without making
// the attempt (the worker is stopping, or the destination's limits refused
// it): the attempt is not spent and the delivery is due again at at, when
// the retry scheduler republishes it.
func Released(deliveryID int64, attempt int, at time.Time) Outcome {
	return Outcome{kind: OutcomeReleased, deliveryID: deliveryID, number: attempt, at: at}
}

// Kind says which constructor made o ("" for the zero Outcome).
func (o Outcome) Kind() OutcomeKind { return o.kind }

// DeliveryID is the delivery o applies to.
func (o Outcome) DeliveryID() int64 { return o.deliveryID }

// Attempt is the attempt o records; zero for Released.
func (o Outcome) Attempt() domain.Attempt { return o.attempt }

// AttemptNumber is the number of the claim's attempt, made or given back.
func (o Outcome) AttemptNumber() int { return o.number }

// Status is the delivery's new status: delivered, retrying or failed (Gone
// too). It is "" for Released, whose status the database decides: pending
// if the given-back attempt was the first, retrying otherwise.
func (o Outcome) Status() domain.DeliveryStatus {
	switch o.kind {
	case OutcomeDelivered:
		return domain.DeliveryDelivered
	case OutcomeRetrying:
		return domain.DeliveryRetrying
	case OutcomeFailed, OutcomeGone:
		return domain.DeliveryFailed
	}
	return ""
}

// NextAttemptAt is when a Retrying or Released delivery is due again; zero
// for the others.
func (o Outcome) NextAttemptAt() time.Time { return o.at }

// Reason is why a Gone outcome disables its subscription; "" for the others.
func (o Outcome) Reason() string { return o.reason }

// String describes o briefly, for logs and test failures.
func (o Outcome) String() string {
	s := fmt.Sprintf("%s: delivery %d attempt %d", o.kind, o.deliveryID, o.number)
	switch o.kind {
	case OutcomeRetrying, OutcomeReleased:
		s += " due " + o.at.Format(time.RFC3339Nano)
	case OutcomeGone:
		s += fmt.Sprintf(" (%s)", o.reason)
	case "":
		s = "zero Outcome"
	}
	return s
}

// errZeroOutcome is a programming error: an Outcome not made by a constructor.
var errZeroOutcome = errors.New("zero Outcome: make one with Delivered, Retrying, Failed, Gone or Released")

// lockSQL takes, in id order, the row lock an UPDATE takes on the existing
// deliveries among $1, and returns their ids: those that do not come back
// were deleted (with their subscription). Holding the locks until the
// commit keeps the rest from being deleted meanwhile, so the attempts
// inserted afterwards never break their foreign key: a delivery deleted
// mid-batch would otherwise fail the whole multi-row insert (23503) and
// with it every neighbour. Locking in id order means two batches that share
// deliveries, or a batch and a subscription's deletion (which locks its
// deliveries in id order before deleting), wait for each other instead of
// deadlocking.
const lockSQL = `SELECT id FROM deliveries WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE`

// recordSQL stores attempts and moves their deliveries on, one row per
// attempt. Only attempts of deliveries that still exist (and that lockSQL
// holds) are inserted. A delivery changes only if its attempt's claim is
// still the current one; a worker whose lease lapsed still records the
// attempt it made. An attempt stored already (a call retried after its
// commit's answer was lost) is left as it is rather than failing the batch.
// It returns the ordinal (1-based) of each attempt whose delivery moved.
//
// nextSQL, later in the same transaction, releases the next delivery of
// the keys of the ordered deliveries (seq set) it makes final (ADR 43).
//
// It also keeps each subscription's failing_since (ADR 0037) from the
// attempts that count ($12: not those of operational events): a batch
// whose latest counting attempt of a subscription succeeded clears it, one
// whose latest failed sets it to the batch's first failure if it was not
// set. Each condition is on the stored value, so the row is written (and
// locked) only when the value changes: an endpoint that keeps succeeding,
// or keeps failing, costs a primary-key read per batch and no write.
//
// The deliveries' current state is read by primary key alone (cur), and
// every condition is on that copy, never on the updated row: see claimSQL
// for the plans a condition on status lets the planner choose. lockSQL,
// earlier in the same transaction, holds the rows, so the copy is current.
const recordSQL = `
WITH a AS (
	SELECT * FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::bigint[], $5::int[], $6::text[],
	                     $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $13::text[], $14::text[])
		WITH ORDINALITY AS a(delivery_id, number, started_at, duration_us, status_code, error_class,
		                     error, response_body, instance, status, next_at, request_headers, response_headers, n)
), cur AS MATERIALIZED (
	SELECT id, status, attempts, subscription_id FROM deliveries WHERE id = ANY($1::bigint[])
), health AS (
	SELECT cur.subscription_id,
	       (array_agg(a.status = 'delivered' ORDER BY a.started_at DESC))[1] AS ok,
	       min(a.started_at) FILTER (WHERE a.status <> 'delivered') AS failed_at
	FROM a JOIN cur ON cur.id = a.delivery_id JOIN unnest($12::bool[]) WITH ORDINALITY AS c(counts, n) ON c.n = a.n
	WHERE c.counts
	GROUP BY cur.subscription_id
), failing AS (
	UPDATE subscriptions s SET failing_since = CASE WHEN h.ok THEN NULL ELSE h.failed_at END
	FROM health h
	WHERE s.id = h.subscription_id AND (CASE WHEN h.ok THEN s.failing_since IS NOT NULL ELSE s.failing_since IS NULL END)
), ins AS (
	INSERT INTO attempts (delivery_id, number, started_at, duration_ms, duration_us, status_code, error_class, error, response_body, instance,
	                      request_headers, response_headers)
	SELECT a.delivery_id, a.number, a.started_at, a.duration_us / 1000, a.duration_us, a.status_code, a.error_class, a.error, a.response_body, a.instance,
	       a.request_headers, a.response_headers
	FROM a JOIN cur ON cur.id = a.delivery_id
	ORDER BY a.n
	ON CONFLICT (delivery_id, number) DO NOTHING
)
UPDATE deliveries d
SET status = a.status, next_attempt_at = a.next_at, enqueued_at = '-infinity',
    last_status_code = a.status_code, last_error = a.error, updated_at = now()
FROM a JOIN cur ON cur.id = a.delivery_id
WHERE d.id = ANY(ARRAY(SELECT id FROM cur)) AND d.id = cur.id AND cur.status = 'processing' AND cur.attempts = a.number
RETURNING a.n`

// releaseSQL gives claims back without spending their attempts: each
// delivery whose claim ($2) is still the current one goes back to pending
// (its first attempt) or retrying, due at $3. It returns the ordinal
// (1-based) of each claim given back. Its conditions are on a copy read by
// primary key, as in recordSQL.
const releaseSQL = `
WITH r AS (
	SELECT * FROM unnest($1::bigint[], $2::int[], $3::timestamptz[]) WITH ORDINALITY AS r(id, attempt, at, n)
), cur AS MATERIALIZED (
	SELECT id, status, attempts FROM deliveries WHERE id = ANY($1::bigint[])
)
UPDATE deliveries d
SET status = CASE WHEN cur.attempts = 1 THEN 'pending' ELSE 'retrying' END,
    attempts = cur.attempts - 1, next_attempt_at = r.at, enqueued_at = '-infinity', updated_at = now()
FROM r JOIN cur ON cur.id = r.id
WHERE d.id = ANY(ARRAY(SELECT id FROM cur)) AND d.id = cur.id AND cur.status = 'processing' AND cur.attempts = r.attempt
RETURNING r.n`

// goneSQL disables the subscriptions of the deliveries in $1, each with the
// reason of its first Gone outcome ($2), and fails their waiting
// deliveries (held ones too), as DisableSubscription does. It runs after
// recordSQL in the same transaction, so a delivery that batch just set
// retrying fails too, exactly as if the subscription had been disabled
// right after. The deliveries it fails are not reported exhausted one by
// one: the subscription's dispatch.subscription.disabled event reports
// them.
const goneSQL = `
WITH g AS (
	SELECT DISTINCT ON (d.subscription_id) d.subscription_id, g.reason
	FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS g(delivery_id, reason, n)
	JOIN deliveries d ON d.id = g.delivery_id
	ORDER BY d.subscription_id, g.n
), disabled AS (
	UPDATE subscriptions s SET state = 'disabled', state_reason = g.reason, updated_at = now()
	FROM g WHERE s.id = g.subscription_id
	RETURNING s.id, g.reason
)
UPDATE deliveries d
SET status = 'failed', next_attempt_at = NULL, last_error = 'subscription disabled: ' || disabled.reason,
    report_failure = false, updated_at = now()
FROM disabled
WHERE d.subscription_id = ANY (ARRAY(SELECT id FROM disabled)) AND d.subscription_id = disabled.id
  AND d.status IN ('pending', 'retrying')`

// nextSQL releases the next delivery of the ordering keys of the
// deliveries in $1, ordered ones that an earlier statement of the same
// transaction made final: the delivery after each in its key, if it is
// held. It becomes due at once and counted as published (the worker that
// made the head final claims it). Only a key's head
// becomes final while the key has held deliveries (a disabled
// subscription fails them all), so the delivery after a final one is the
// key's next; one released already, or a head that is not final (its
// lapsed claim taken over by another worker), releases nothing, so
// running it twice releases nothing more. It runs as a statement of its
// own so that its snapshot, taken after lockSQL locked the deliveries
// made final, sees every delivery of their keys that an ingest committed
// while it held one of them FOR SHARE (headSQL): an ingest that found the
// head not final left its delivery held for this statement to release. Each
// look-up is by seq (afterSQL); the deliveries in $1 and the released
// ones are read by primary key alone, their conditions on copies (f, cur),
// as in recordSQL: with f's conditions beside its id, statistics taken
// while deliveries was nearly empty made the planner read f through
// deliveries_ordered, every delivery of the key for each release (a hot
// key's second run of 5,000 events fell from over 400 to 158 a second). It
// returns, for each delivery released, the delivery in $1 before it.
var nextSQL = `
WITH f AS MATERIALIZED (
	SELECT id, subscription_id, ordering_key, seq, status FROM deliveries WHERE id = ANY($1::bigint[])
), nxt AS MATERIALIZED (
	SELECT f.id AS after, (` + afterSQL + `) AS id
	FROM f WHERE f.seq IS NOT NULL AND f.status IN ('delivered', 'failed')
), cur AS MATERIALIZED (
	SELECT id, status, next_attempt_at FROM deliveries WHERE id = ANY(ARRAY(SELECT id FROM nxt))
)
UPDATE deliveries d SET next_attempt_at = now(), enqueued_at = now(), updated_at = now()
FROM nxt JOIN cur USING (id)
WHERE d.id = ANY(ARRAY(SELECT id FROM cur)) AND d.id = cur.id AND cur.status = 'pending' AND cur.next_attempt_at IS NULL
RETURNING nxt.after, d.id, d.event_id, d.subscription_id`

// afterSQL is the id of the delivery after delivery f in its key.
var afterSQL = keyNeighbourSQL("f", "+ 1")

// keyNeighbourSQL is the id of the delivery step (+ 1 or - 1) from delivery
// d in its key: the newest with d's seq moved by step (a key forgotten
// while idle starts its sequence again). The look-up is on
// deliveries_ordered's three columns and nothing else, so that no plan
// reaches it through an index of held or open deliveries, which would pass
// every one of a hot key's.
func keyNeighbourSQL(d, step string) string {
	return `SELECT h.id FROM deliveries h
	WHERE h.subscription_id = ` + d + `.subscription_id AND h.ordering_key = ` + d + `.ordering_key AND h.seq = ` + d + `.seq ` + step + ` AND h.seq IS NOT NULL
	ORDER BY h.id DESC LIMIT 1`
}

// recordArgs are recordSQL's columns.
type recordArgs struct {
	deliveryIDs                                []int64
	numbers                                    []int32
	startedAt                                  []time.Time
	durationUS                                 []int64
	statusCodes                                []pgtype.Int4
	errorClasses, errs, bodies, instances, sts []string
	nextAt                                     []pgtype.Timestamptz
	counts                                     []bool
	requestHeaders, responseHeaders            []string
}

func (r *recordArgs) add(o Outcome) {
	a := o.attempt
	code := pgtype.Int4{}
	if a.StatusCode != nil {
		code = pgtype.Int4{Int32: int32(*a.StatusCode), Valid: true} //nolint:gosec // G115: an HTTP status code has three digits
	}
	r.deliveryIDs = append(r.deliveryIDs, o.deliveryID)
	r.numbers = append(r.numbers, int32(o.number)) //nolint:gosec // G115: attempt numbers come from the int4 column deliveries.attempts
	r.startedAt = append(r.startedAt, a.StartedAt)
	r.durationUS = append(r.durationUS, a.Duration.Microseconds())
	r.statusCodes = append(r.statusCodes, code)
	r.errorClasses = append(r.errorClasses, string(a.ErrorClass))
	r.errs = append(r.errs, a.Error)
	r.bodies = append(r.bodies, a.ResponseBody)
	r.instances = append(r.instances, a.Instance)
	r.sts = append(r.sts, string(o.Status()))
	r.nextAt = append(r.nextAt, pgtype.Timestamptz{Time: o.at, Valid: o.kind == OutcomeRetrying})
	r.counts = append(r.counts, !o.operational)
	r.requestHeaders = append(r.requestHeaders, a.RequestHeaders)
	r.responseHeaders = append(r.responseHeaders, a.ResponseHeaders)
}

func (r *recordArgs) args() []any {
	return []any{r.deliveryIDs, r.numbers, r.startedAt, r.durationUS, r.statusCodes, r.errorClasses,
		r.errs, r.bodies, r.instances, r.sts, r.nextAt, r.counts, r.requestHeaders, r.responseHeaders}
}

// releaseArgs are releaseSQL's columns.
type releaseArgs struct {
	ids      []int64
	attempts []int32
	at       []time.Time
}

func (r *releaseArgs) add(id int64, attempt int, at time.Time) {
	r.ids = append(r.ids, id)
	r.attempts = append(r.attempts, int32(attempt)) //nolint:gosec // G115: attempt numbers come from the int4 column deliveries.attempts
	r.at = append(r.at, at)
}

// ApplyOutcomes applies outcomes, typically those of a group of concurrent
// deliveries, in one round trip and one transaction: locks on their
// subscriptions and on the deliveries, then one multi-row statement for all the attempts, one for
// all the releases, one for all the Gone subscriptions and, when ordered
// deliveries became final, one that releases their keys' next deliveries,
// sent as one pgx.Batch. A batch without explicit transaction statements
// runs as one implicit transaction (the protocol's Sync ends it), so the
// outcomes commit together or not at all, without the round trips of
// BEGIN and COMMIT.
//
// It returns one Applied per outcome, in the same order. Its Err is nil
// when applied; wrapping domain.ErrNotClaimable when the claim had lapsed
// and another worker took the delivery over (an attempt is stored all the
// same, but the delivery does not move; a release changes nothing; a Gone
// outcome still disables its subscription, since the endpoint said what it
// said); wrapping domain.ErrNotFound when the delivery no longer exists
// (its subscription was deleted). A deleted delivery does not affect the
// others, and neither does an Outcome not made by a constructor, which is
// refused with an error of its own.
//
// The error is for the call as a whole (the database could not be
// reached, or the transaction failed): then nothing was applied, unless the
// connection broke while the commit was under way, in which case all of it
// may have been. Calling again with the same outcomes is safe either way:
// an attempt already stored is not stored twice, a delivery already
// moved reports domain.ErrNotClaimable, and a key whose next delivery was
// released has a head, so nothing more is released.
func (s *Store) ApplyOutcomes(ctx context.Context, outcomes []Outcome) ([]Applied, error) {
	applied := make([]Applied, len(outcomes))
	var (
		ids            []int64 // every delivery, for lockSQL
		rec            recordArgs
		rel            releaseArgs
		recIdx, relIdx []int // indexes into outcomes, by ordinal - 1
		goneIDs        []int64
		goneWhy        []string
		settled        []int64 // ordered deliveries made final, for nextSQL
	)
	for i, o := range outcomes {
		switch o.kind {
		case OutcomeDelivered, OutcomeRetrying, OutcomeFailed, OutcomeGone:
			rec.add(o)
			recIdx = append(recIdx, i)
			if o.kind == OutcomeGone {
				goneIDs = append(goneIDs, o.deliveryID)
				goneWhy = append(goneWhy, o.reason)
			}
			if o.inOrder && o.kind != OutcomeRetrying {
				settled = append(settled, o.deliveryID)
			}
		case OutcomeReleased:
			rel.add(o.deliveryID, o.number, o.at)
			relIdx = append(relIdx, i)
		default:
			applied[i].Err = fmt.Errorf("apply outcome %d: %w", i, errZeroOutcome)
			continue
		}
		ids = append(ids, o.deliveryID)
	}
	if len(ids) == 0 {
		return applied, nil
	}
	var (
		existing, recorded, released map[int64]bool
		nextOf                       map[int64]DeliveryRef // by the delivery whose key it is
	)
	err := retryDeadlock(ctx, func() (err error) {
		b := &pgx.Batch{}
		b.Queue(lockSQL, ids)
		if len(recIdx) > 0 {
			b.Queue(recordSQL, rec.args()...)
		}
		if len(relIdx) > 0 {
			b.Queue(releaseSQL, rel.ids, rel.attempts, rel.at)
		}
		if len(goneIDs) > 0 {
			b.Queue(goneSQL, goneIDs, goneWhy)
		}
		if len(settled) > 0 {
			b.Queue(nextSQL, settled)
		}
		br := s.pool.SendBatch(ctx, b)
		defer func() {
			if cerr := br.Close(); err == nil {
				err = cerr
			}
		}()
		if existing, err = collectSet(br); err != nil {
			return err
		}
		if len(recIdx) > 0 {
			if recorded, err = collectSet(br); err != nil {
				return err
			}
		}
		if len(relIdx) > 0 {
			if released, err = collectSet(br); err != nil {
				return err
			}
		}
		if len(goneIDs) > 0 {
			if _, err = br.Exec(); err != nil {
				return err
			}
		}
		if len(settled) > 0 {
			if nextOf, err = collectNext(br); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apply %d outcomes: %w", len(outcomes), err)
	}
	for k, i := range recIdx {
		o := outcomes[i]
		switch {
		case !existing[o.deliveryID]:
			applied[i].Err = fmt.Errorf("record attempt %d of delivery %d: %w", o.number, o.deliveryID, domain.ErrNotFound)
		case !recorded[int64(k+1)]:
			applied[i].Err = fmt.Errorf("record attempt %d of delivery %d: %w", o.number, o.deliveryID, domain.ErrNotClaimable)
		}
		if ref, ok := nextOf[o.deliveryID]; ok {
			applied[i].Next = &ref
		}
	}
	for k, i := range relIdx {
		o := outcomes[i]
		switch {
		case !existing[o.deliveryID]:
			applied[i].Err = fmt.Errorf("release delivery %d: %w", o.deliveryID, domain.ErrNotFound)
		case !released[int64(k+1)]:
			applied[i].Err = fmt.Errorf("release delivery %d: %w", o.deliveryID, domain.ErrNotClaimable)
		}
	}
	return applied, nil
}

// collectNext reads nextSQL's result: each released delivery by the
// delivery whose key it is.
func collectNext(br pgx.BatchResults) (map[int64]DeliveryRef, error) {
	rows, err := br.Query() //nolint:rowserrcheck // ForEachRow checks rows.Err
	if err != nil {
		return nil, err
	}
	next := map[int64]DeliveryRef{}
	var (
		after int64
		ref   DeliveryRef
	)
	_, err = pgx.ForEachRow(rows, []any{&after, &ref.ID, &ref.EventID, &ref.SubscriptionID}, func() error {
		next[after] = ref
		return nil
	})
	return next, err
}

// collectSet reads the next batch result, one bigint per row, as a set.
func collectSet(br pgx.BatchResults) (map[int64]bool, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	ns, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	set := make(map[int64]bool, len(ns))
	for _, n := range ns {
		set[n] = true
	}
	return set, nil
}

// retryDeadlock runs op, a transaction that changes nothing when it fails,
// again when PostgreSQL broke a deadlock by aborting it. Multi-row
// statements can deadlock with another that locks the same rows in another
// order (a subscription's deletion deletes its deliveries in its own order);
// the aborted one is simply run again.
func retryDeadlock(ctx context.Context, op func() error) error {
	var err error
	for range 3 {
		var pgErr *pgconn.PgError
		if err = op(); !errors.As(err, &pgErr) || pgErr.Code != "40P01" || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// RecordAttempt applies one outcome (see ApplyOutcomes), for callers that
// have one at a time: it returns the outcome's error, or the call's.
func (s *Store) RecordAttempt(ctx context.Context, o Outcome) error {
	applied, err := s.ApplyOutcomes(ctx, []Outcome{o})
	if err != nil {
		return err
	}
	return applied[0].Err
}

// ReleaseDelivery gives back one claim whose attempt was never made (see
// Released). A claim that was taken over, or a delivery deleted meanwhile,
// is no error: there is nothing left to give back.
func (s *Store) ReleaseDelivery(ctx context.Context, deliveryID int64, attempt int, at time.Time) error {
	err := s.RecordAttempt(ctx, Released(deliveryID, attempt, at))
	if errors.Is(err, domain.ErrNotClaimable) || errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	return err
}
