package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// TestEveryDriverAnswersTheSamePage: ListEvents races the drivers of a
// combined filter and takes the first answer, which is only right if each
// driver answers the same page.
func TestEveryDriverAnswersTheSamePage(t *testing.T) {
	t.Parallel()
	st := New(testkit.Postgres(t).Pool)
	ctx := context.Background()
	for _, sub := range []struct{ id, pattern string }{{"all", "*"}, {"orders", "order.*"}, {"rare", "audit.*"}} {
		_, err := st.CreateSubscription(ctx, domain.Subscription{ID: sub.id, URL: "https://" + sub.id + ".example/", EventTypes: []string{sub.pattern}, Secret: "secret-value"})
		require.NoError(t, err)
	}
	types := []string{"order.created", "order.paid", "audit.export", "user.signup"}
	for i := range 60 {
		_, err := st.IngestEvent(ctx, domain.Event{ID: fmt.Sprintf("e%02d", i), Type: types[i%len(types)], Data: []byte(`{}`)})
		require.NoError(t, err)
	}
	_, err := st.pool.Exec(ctx, `UPDATE deliveries SET status = (ARRAY['delivered', 'retrying', 'failed', 'pending'])[1 + (substr(event_id, 2)::int / 4) % 4]`)
	require.NoError(t, err)

	filters := []EventFilter{
		{SubscriptionID: "all", Type: "order.*", Limit: 7},
		{SubscriptionID: "orders", Status: domain.EventFailed, Type: "order.paid", Limit: 5},
		{SubscriptionID: "all", Status: domain.EventRetrying, Type: "audit.*", Limit: 3},
		{Status: domain.EventPending, Type: "order.paid", Limit: 4},
		{SubscriptionID: "rare", Type: "audit.export", Limit: 2},
	}
	for _, f := range filters {
		drivers := eventDrivers(Unscoped, f)
		require.Greater(t, len(drivers), 1, "%+v has one driver", f)
		var pages [][]EventSummary
		for _, d := range drivers {
			all := []EventSummary{}
			g := f
			for {
				page, err := st.listEvents(ctx, Unscoped, g, d)
				require.NoError(t, err)
				all = append(all, page...)
				if len(page) < g.Limit {
					break
				}
				p := page[len(page)-1].Position()
				g.After = &p
			}
			pages = append(pages, all)
		}
		require.NotEmpty(t, pages[0], "%+v selects nothing: the test data should make it select some", f)
		for i := 1; i < len(pages); i++ {
			require.Equal(t, pages[0], pages[i], "%+v: driver %d answers differently from driver %d", f, drivers[i], drivers[0])
		}
		raced, err := st.ListEvents(ctx, Unscoped, f)
		require.NoError(t, err)
		require.Equal(t, pages[0][:min(f.Limit, len(pages[0]))], raced)
	}
}

func TestUnmatchedEventsHaveNoSubscription(t *testing.T) {
	t.Parallel()
	st := New(testkit.Postgres(t).Pool)
	ctx := context.Background()
	_, err := st.IngestEvent(ctx, domain.Event{ID: "lonely", Type: "t", Data: []byte(`{}`)})
	require.NoError(t, err)
	all, err := st.ListEvents(ctx, Unscoped, EventFilter{Status: domain.EventUnmatched, Limit: 5})
	require.NoError(t, err)
	require.Len(t, all, 1)
	none, err := st.ListEvents(ctx, Unscoped, EventFilter{Status: domain.EventUnmatched, SubscriptionID: "any", Limit: 5})
	require.NoError(t, err)
	require.Empty(t, none)
}
