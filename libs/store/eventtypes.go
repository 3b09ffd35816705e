package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// Event types are global (ADR 0033): the catalog is the operator's, and no
// method here takes a Scope.

const eventTypeColumns = `t.name, t.description, t.deprecated, t.validation, t.version, t.archived_at, t.created_at, t.updated_at, v.schema, v.examples`

const eventTypeFrom = ` FROM event_types t JOIN event_type_versions v ON v.name = t.name AND v.version = t.version`

func scanEventType(row pgx.Row) (domain.EventType, error) {
	var (
		t                domain.EventType
		mode             string
		archived         pgtype.Timestamptz
		schema, examples []byte
	)
	if err := row.Scan(&t.Name, &t.Description, &t.Deprecated, &mode, &t.Version, &archived, &t.CreatedAt, &t.UpdatedAt, &schema, &examples); err != nil {
		return domain.EventType{}, err
	}
	t.Validation = domain.SchemaValidation(mode)
	if archived.Valid {
		at := archived.Time
		t.ArchivedAt = &at
	}
	t.Schema = json.RawMessage(schema)
	if err := json.Unmarshal(examples, &t.Examples); err != nil {
		return domain.EventType{}, fmt.Errorf("examples of %q: %w", t.Name, err)
	}
	return t, nil
}

// examplesJSON is examples as one JSON array, each kept as written.
func examplesJSON(examples []json.RawMessage) []byte {
	b := []byte{'['}
	for i, ex := range examples {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ex...)
	}
	return append(b, ']')
}

// bumpCatalog makes every API instance load the catalog again.
const bumpCatalog = `UPDATE catalog_revision SET revision = revision + 1`

// PutEventType creates the event type (version 1) or replaces its
// description, examples, deprecation and validation mode. A schema that
// differs from the latest version's (as JSON values, not as text) adds a
// version; the same schema with other examples changes the latest
// version's examples. An archived type's name is taken: domain.ErrConflict.
// It reports whether the type was created.
func (s *Store) PutEventType(ctx context.Context, t domain.EventType) (_ domain.EventType, created bool, err error) {
	defer markUnavailable(&err)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		created, err = putEventType(ctx, tx, t)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, bumpCatalog)
		return err
	})
	if err != nil {
		return domain.EventType{}, false, putError(t.Name, err)
	}
	stored, err := s.GetEventType(ctx, t.Name)
	return stored, created, err
}

// PutEventTypes puts each of types as PutEventType does, all in one
// transaction: either every one is stored or, on any error, none is. It
// reports which were created.
func (s *Store) PutEventTypes(ctx context.Context, types []domain.EventType) (created []bool, err error) {
	defer markUnavailable(&err)
	created = make([]bool, len(types))
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for i, t := range types {
			c, err := putEventType(ctx, tx, t)
			if err != nil {
				return putError(t.Name, err)
			}
			created[i] = c
		}
		if len(types) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, bumpCatalog)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("put event types: %w", err)
	}
	return created, nil
}

// putError is the error of putting the event type name, a concurrent
// create being a conflict.
func putError(name string, err error) error {
	if isUniqueViolation(err) {
		// A concurrent PUT created it first; the caller may repeat.
		return fmt.Errorf("put event type %q: created concurrently: %w", name, domain.ErrConflict)
	}
	return fmt.Errorf("put event type %q: %w", name, err)
}

// putEventType is PutEventType's work in tx, without the revision bump.
func putEventType(ctx context.Context, tx pgx.Tx, t domain.EventType) (created bool, err error) {
	var (
		version  int
		archived pgtype.Timestamptz
		same     bool
	)
	err = tx.QueryRow(ctx, `
		SELECT t.version, t.archived_at, v.schema::jsonb = $2::jsonb
		FROM event_types t JOIN event_type_versions v ON v.name = t.name AND v.version = t.version
		WHERE t.name = $1 FOR UPDATE OF t`, t.Name, []byte(t.Schema)).Scan(&version, &archived, &same)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		created, version = true, 1
		if _, err := tx.Exec(ctx, `INSERT INTO event_types (name, description, deprecated, validation, version)
			VALUES ($1, $2, $3, $4, 1) ON CONFLICT (name) DO NOTHING`, t.Name, t.Description, t.Deprecated, string(t.Validation)); err != nil {
			return false, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO event_type_versions (name, version, schema, examples) VALUES ($1, 1, $2, $3)`,
			t.Name, []byte(t.Schema), examplesJSON(t.Examples)); err != nil {
			return false, err
		}
	case err != nil:
		return false, err
	case archived.Valid:
		return false, fmt.Errorf("event type %q is archived; its name stays reserved: %w", t.Name, domain.ErrConflict)
	case same:
		if _, err := tx.Exec(ctx, `UPDATE event_type_versions SET examples = $3 WHERE name = $1 AND version = $2`,
			t.Name, version, examplesJSON(t.Examples)); err != nil {
			return false, err
		}
	default:
		version++
		if _, err := tx.Exec(ctx, `INSERT INTO event_type_versions (name, version, schema, examples) VALUES ($1, $2, $3, $4)`,
			t.Name, version, []byte(t.Schema), examplesJSON(t.Examples)); err != nil {
			return false, err
		}
	}
	if !created {
		if _, err := tx.Exec(ctx, `UPDATE event_types SET description = $2, deprecated = $3, validation = $4, version = $5, updated_at = now()
			WHERE name = $1`, t.Name, t.Description, t.Deprecated, string(t.Validation), version); err != nil {
			return false, err
		}
	}
	return created, nil
}

// GetEventType returns an event type, archived or not, with its latest
// version, or domain.ErrNotFound.
func (s *Store) GetEventType(ctx context.Context, name string) (_ domain.EventType, err error) {
	defer markUnavailable(&err)
	t, err := scanEventType(s.pool.QueryRow(ctx, `SELECT `+eventTypeColumns+eventTypeFrom+` WHERE t.name = $1`, name))
	if err != nil {
		return domain.EventType{}, fmt.Errorf("get event type %q: %w", name, notFound(err))
	}
	return t, nil
}

// EventTypeFilter selects event types for ListEventTypes.
type EventTypeFilter struct {
	// Prefix keeps the types whose name starts with it.
	Prefix string
	// If Deprecated is set, only the types whose flag equals it are kept.
	Deprecated *bool
	// Archived lists the archived types instead of the others.
	Archived bool
	// After continues the listing after this name.
	After string
	Limit int
}

// ListEventTypes returns up to f.Limit event types ordered by name.
func (s *Store) ListEventTypes(ctx context.Context, f EventTypeFilter) (_ []domain.EventType, err error) {
	defer markUnavailable(&err)
	var q query
	q.and(`t.name > ` + q.arg(f.After))
	if f.Prefix != "" {
		// starts_with compares bytes; names have no LIKE wildcards to escape
		// but '_', which starts_with does not treat as one.
		q.and(`starts_with(t.name, ` + q.arg(f.Prefix) + `)`)
	}
	if f.Deprecated != nil {
		q.and(`t.deprecated = ` + q.arg(*f.Deprecated))
	}
	if f.Archived {
		q.and(`t.archived_at IS NOT NULL`)
	} else {
		q.and(`t.archived_at IS NULL`)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventTypeColumns+eventTypeFrom+q.whereSQL()+` ORDER BY t.name LIMIT `+q.arg(f.Limit), q.args...)
	if err != nil {
		return nil, fmt.Errorf("list event types: %w", err)
	}
	types, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.EventType, error) { return scanEventType(r) })
	if err != nil {
		return nil, fmt.Errorf("list event types: %w", err)
	}
	return types, nil
}

// ArchiveEventType archives an event type: ingest no longer knows it, and
// its name and versions stay. Archiving an archived type changes nothing.
// domain.ErrNotFound if there is no such type.
func (s *Store) ArchiveEventType(ctx context.Context, name string) (err error) {
	defer markUnavailable(&err)
	tag, err := s.pool.Exec(ctx, `
		WITH a AS (UPDATE event_types SET archived_at = coalesce(archived_at, now()), updated_at = now() WHERE name = $1 RETURNING 1)
		UPDATE catalog_revision SET revision = revision + 1 WHERE EXISTS (SELECT 1 FROM a)`, name)
	if err != nil {
		return fmt.Errorf("archive event type %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("archive event type %q: %w", name, domain.ErrNotFound)
	}
	return nil
}

// ListEventTypeVersions returns every version of an event type, newest
// first, or domain.ErrNotFound.
func (s *Store) ListEventTypeVersions(ctx context.Context, name string) (_ []domain.EventTypeVersion, err error) {
	defer markUnavailable(&err)
	rows, err := s.pool.Query(ctx, `SELECT version, schema, examples, created_at FROM event_type_versions WHERE name = $1 ORDER BY version DESC`, name)
	if err != nil {
		return nil, fmt.Errorf("list versions of %q: %w", name, err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.EventTypeVersion, error) {
		var (
			v                domain.EventTypeVersion
			schema, examples []byte
		)
		if err := r.Scan(&v.Version, &schema, &examples, &v.CreatedAt); err != nil {
			return v, err
		}
		v.Schema = json.RawMessage(schema)
		return v, json.Unmarshal(examples, &v.Examples)
	})
	if err != nil {
		return nil, fmt.Errorf("list versions of %q: %w", name, err)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("list versions of %q: %w", name, domain.ErrNotFound)
	}
	return vs, nil
}

// CatalogRevision is the catalog's revision: it grows with every change.
func (s *Store) CatalogRevision(ctx context.Context) (_ int64, err error) {
	defer markUnavailable(&err)
	var rev int64
	if err := s.pool.QueryRow(ctx, `SELECT revision FROM catalog_revision`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("catalog revision: %w", err)
	}
	return rev, nil
}

// Catalog returns the catalog's revision and every event type that is not
// archived, with its latest version, read together.
func (s *Store) Catalog(ctx context.Context) (_ int64, _ []domain.EventType, err error) {
	defer markUnavailable(&err)
	var (
		rev   int64
		types []domain.EventType
	)
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT revision FROM catalog_revision`).Scan(&rev); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+eventTypeColumns+eventTypeFrom+` WHERE t.archived_at IS NULL ORDER BY t.name`)
		if err != nil {
			return err
		}
		types, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.EventType, error) { return scanEventType(r) })
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("load catalog: %w", err)
	}
	return rev, types, nil
}

// KnownEventTypes returns which of names are event types that are not
// archived, and which of those are deprecated.
func (s *Store) KnownEventTypes(ctx context.Context, names []string) (known, deprecated []string, err error) {
	defer markUnavailable(&err)
	rows, err := s.pool.Query(ctx, `SELECT name, deprecated FROM event_types WHERE name = ANY($1) AND archived_at IS NULL ORDER BY name`, names) //nolint:rowserrcheck // ForEachRow checks rows.Err
	if err != nil {
		return nil, nil, fmt.Errorf("known event types: %w", err)
	}
	var (
		name string
		dep  bool
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &dep}, func() error {
		known = append(known, name)
		if dep {
			deprecated = append(deprecated, name)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("known event types: %w", err)
	}
	return known, deprecated, nil
}
