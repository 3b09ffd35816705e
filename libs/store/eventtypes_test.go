package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

func eventType(name, schema string, examples ...string) domain.EventType {
	t := domain.EventType{Name: name, Schema: json.RawMessage(schema), Validation: domain.ValidationEnforce}
	for _, ex := range examples {
		t.Examples = append(t.Examples, json.RawMessage(ex))
	}
	return t
}

func TestEventTypeVersionsAndArchive(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	rev0, err := st.CatalogRevision(ctx)
	require.NoError(t, err)

	in := eventType("order.created", `{"type": "object", "required": ["id"]}`, `{"id": 1}`)
	got, created, err := st.PutEventType(ctx, in)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, 1, got.Version)
	require.Equal(t, `{"type": "object", "required": ["id"]}`, string(got.Schema), "the schema is kept as written") //nolint:testifylint // encoded-compare: the bytes as written, spaces and all

	// The same schema, written otherwise, with other examples: no new version.
	in.Schema, in.Examples, in.Deprecated = json.RawMessage(`{"required":["id"],"type":"object"}`), []json.RawMessage{json.RawMessage(`{"id": 2}`)}, true
	got, created, err = st.PutEventType(ctx, in)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, 1, got.Version)
	require.True(t, got.Deprecated)
	require.JSONEq(t, `{"id": 2}`, string(got.Examples[0]))

	// Another schema: version 2.
	in.Schema = json.RawMessage(`{"type": "object"}`)
	got, _, err = st.PutEventType(ctx, in)
	require.NoError(t, err)
	require.Equal(t, 2, got.Version)
	versions, err := st.ListEventTypeVersions(ctx, "order.created")
	require.NoError(t, err)
	require.Len(t, versions, 2)
	require.Equal(t, 2, versions[0].Version)
	require.Equal(t, `{"type": "object", "required": ["id"]}`, string(versions[1].Schema)) //nolint:testifylint // encoded-compare: the bytes as written, spaces and all

	rev, types, err := st.Catalog(ctx)
	require.NoError(t, err)
	require.Equal(t, rev0+3, rev, "every change bumps the revision")
	require.Len(t, types, 1)

	require.NoError(t, st.ArchiveEventType(ctx, "order.created"))
	require.ErrorIs(t, st.ArchiveEventType(ctx, "nope"), domain.ErrNotFound)
	_, types, err = st.Catalog(ctx)
	require.NoError(t, err)
	require.Empty(t, types, "an archived type is not in the catalog ingest loads")
	archived, err := st.GetEventType(ctx, "order.created")
	require.NoError(t, err)
	require.NotNil(t, archived.ArchivedAt, "its history stays readable")
	_, _, err = st.PutEventType(ctx, in)
	require.ErrorIs(t, err, domain.ErrConflict, "an archived name stays reserved")
	_, err = st.ListEventTypeVersions(ctx, "nope")
	require.ErrorIs(t, err, domain.ErrNotFound)
}

func TestListEventTypesFilters(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	for _, n := range []string{"order.created", "order.paid", "order_x", "user.created"} {
		et := eventType(n, `{}`, `{}`)
		et.Deprecated = n == "order.paid"
		_, _, err := st.PutEventType(ctx, et)
		require.NoError(t, err)
	}
	require.NoError(t, st.ArchiveEventType(ctx, "user.created"))
	names := func(f store.EventTypeFilter) []string {
		f.Limit = max(f.Limit, 10)
		ts, err := st.ListEventTypes(ctx, f)
		require.NoError(t, err)
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return out
	}
	yes, no := true, false
	require.Equal(t, []string{"order.created", "order.paid", "order_x"}, names(store.EventTypeFilter{}))
	require.Equal(t, []string{"order.created", "order.paid"}, names(store.EventTypeFilter{Prefix: "order."}))
	require.Equal(t, []string{"order.paid"}, names(store.EventTypeFilter{Deprecated: &yes}))
	require.Equal(t, []string{"order.created", "order_x"}, names(store.EventTypeFilter{Deprecated: &no}))
	require.Equal(t, []string{"order_x"}, names(store.EventTypeFilter{After: "order.paid"}))
	require.Equal(t, []string{"user.created"}, names(store.EventTypeFilter{Archived: true}))
	known, deprecated, err := st.KnownEventTypes(ctx, []string{"order.paid", "user.created", "nope", "order.created"})
	require.NoError(t, err)
	require.Equal(t, []string{"order.created", "order.paid"}, known)
	require.Equal(t, []string{"order.paid"}, deprecated)
}

func TestEventsRecordSchemaVerdict(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	no := false
	_, err := st.IngestEvent(ctx, domain.Event{ID: "e1", Type: "a", Data: []byte(`{}`), SchemaVersion: 3, SchemaValid: &no})
	require.NoError(t, err)
	_, err = st.IngestEvents(ctx, []domain.Event{
		{ID: "e2", Type: "a", Data: []byte(`{}`), SchemaVersion: 3, SchemaValid: &no},
		{ID: "e3", Type: "a", Data: []byte(`{}`)},
	})
	require.NoError(t, err)
	e, _, err := st.GetEvent(ctx, store.Unscoped, "e1")
	require.NoError(t, err)
	require.Equal(t, 3, e.SchemaVersion)
	require.NotNil(t, e.SchemaValid)
	require.False(t, *e.SchemaValid)
	e, _, err = st.GetEvent(ctx, store.Unscoped, "e3")
	require.NoError(t, err)
	require.Zero(t, e.SchemaVersion)
	require.Nil(t, e.SchemaValid)
	list, err := st.ListEvents(ctx, store.Unscoped, store.EventFilter{SchemaValid: &no, Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "e2", list[0].ID)
}

// TestPutEventTypesIsAllOrNothing: a set of types whose last one cannot be
// stored (its name is archived) stores none of them, and the catalog's
// revision does not move; a set that can be stored is stored whole.
func TestPutEventTypesIsAllOrNothing(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	_, _, err := st.PutEventType(ctx, eventType("order.gone", `{}`, `{}`))
	require.NoError(t, err)
	require.NoError(t, st.ArchiveEventType(ctx, "order.gone"))
	_, _, err = st.PutEventType(ctx, eventType("order.kept", `{"type":"object"}`, `{}`))
	require.NoError(t, err)
	rev, err := st.CatalogRevision(ctx)
	require.NoError(t, err)

	_, err = st.PutEventTypes(ctx, []domain.EventType{
		eventType("order.new", `{}`, `{}`),
		eventType("order.kept", `{"type":"object","required":["id"]}`, `{"id":1}`),
		eventType("order.gone", `{}`, `{}`),
	})
	require.ErrorIs(t, err, domain.ErrConflict)
	_, err = st.GetEventType(ctx, "order.new")
	require.ErrorIs(t, err, domain.ErrNotFound, "a type of the failed set was stored")
	kept, err := st.GetEventType(ctx, "order.kept")
	require.NoError(t, err)
	require.Equal(t, 1, kept.Version, "a type of the failed set was changed")
	after, err := st.CatalogRevision(ctx)
	require.NoError(t, err)
	require.Equal(t, rev, after)

	created, err := st.PutEventTypes(ctx, []domain.EventType{
		eventType("order.new", `{}`, `{}`),
		eventType("order.kept", `{"type":"object","required":["id"]}`, `{"id":1}`),
	})
	require.NoError(t, err)
	require.Equal(t, []bool{true, false}, created)
	kept, err = st.GetEventType(ctx, "order.kept")
	require.NoError(t, err)
	require.Equal(t, 2, kept.Version)
}
