package catalog_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/catalog"
)

// TestCacheSeesOtherInstancesWithinASecond has two instances' caches on one
// catalog: a change made through one is seen by the other's first lookup
// once a second has passed since it last read the revision, and an
// unchanged catalog is not loaded again.
func TestCacheSeesOtherInstancesWithinASecond(t *testing.T) {
	t.Parallel()
	st := store.New(testkit.Postgres(t).Pool)
	ctx := context.Background()
	put := func(schema string) {
		_, _, err := st.PutEventType(ctx, domain.EventType{Name: "order.created", Schema: json.RawMessage(schema),
			Examples: []json.RawMessage{json.RawMessage(`{}`)}, Validation: domain.ValidationEnforce})
		require.NoError(t, err)
	}
	put(`{"type":"object"}`)
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	other := catalog.NewCache(st, slog.New(slog.DiscardHandler), clk)
	e, err := other.Lookup(ctx, "order.created")
	require.NoError(t, err)
	require.Equal(t, 1, e.Version)
	first := e.Schema

	put(`{"type":"object","required":["id"]}`)
	clk.Advance(catalog.MaxStaleness + time.Millisecond)
	e, err = other.Lookup(ctx, "order.created")
	require.NoError(t, err)
	require.Equal(t, 2, e.Version, "the change is seen once a second has passed")
	require.NotEmpty(t, e.Schema.Validate([]byte(`{}`), "/data"))
	require.NotSame(t, first, e.Schema)

	second := e.Schema
	clk.Advance(catalog.MaxStaleness + time.Millisecond)
	e, err = other.Lookup(ctx, "order.created")
	require.NoError(t, err)
	require.Same(t, second, e.Schema, "an unchanged catalog keeps its compiled schemas")

	require.NoError(t, st.ArchiveEventType(ctx, "order.created"))
	clk.Advance(catalog.MaxStaleness + time.Millisecond)
	e, err = other.Lookup(ctx, "order.created")
	require.NoError(t, err)
	require.Nil(t, e, "an archived type is unknown to ingest")
}
