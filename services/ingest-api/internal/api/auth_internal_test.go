package api

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// testClient is the address the tests' requests come from.
const testClient = "192.0.2.1:40000"

// storeWithReadKey returns a store on a database of the test's own that
// holds one key with the read scope: the key, its hash and its record.
func storeWithReadKey(t *testing.T) (*store.Store, string, apikey.Hash, domain.APIKey) {
	t.Helper()
	st := store.New(testkit.Postgres(t).Pool)
	key, hash := apikey.New()
	k, err := st.CreateAPIKey(context.Background(), domain.APIKey{ID: apikey.NewID(), Name: "k", Scopes: []domain.Scope{domain.ScopeRead}, Prefix: apikey.Display(key)}, hash)
	require.NoError(t, err)
	return st, key, hash, k
}

// TestKeysAreCheckedThroughACache: within the cache's time a key costs no
// lookup, after it the key is read again, and its use is written to
// last_used_at at most once a minute.
func TestKeysAreCheckedThroughACache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	plain, key, _, k := storeWithReadKey(t)
	st := &touchedKeys{Store: plain, touched: make(chan error, 1)}

	clk := clock.NewFake(time.Now())
	a := newAuthenticator(st, "", clk)
	p, err := a.authenticate(ctx, "Bearer "+key, testClient)
	require.NoError(t, err)
	require.Equal(t, k.ID, p.keyID)

	require.NoError(t, st.RevokeAPIKey(ctx, k.ID))
	_, err = a.authenticate(ctx, "Bearer "+key, testClient)
	require.NoError(t, err, "within the cache's time the answer is reused")
	clk.Advance(keyCacheTTL + time.Millisecond)
	_, err = a.authenticate(ctx, "Bearer "+key, testClient)
	require.ErrorIs(t, err, errUnknownKey, "after it the key is read again")

	other, otherHash := apikey.New()
	_, err = st.CreateAPIKey(ctx, domain.APIKey{ID: apikey.NewID(), Name: "o", Scopes: []domain.Scope{domain.ScopeRead}, Prefix: apikey.Display(other)}, otherHash)
	require.NoError(t, err)
	lastUsed := func() *time.Time {
		keys, err := st.ListAPIKeys(ctx)
		require.NoError(t, err)
		require.Len(t, keys, 1)
		return keys[0].LastUsedAt
	}
	_, err = a.authenticate(ctx, "Bearer "+other, testClient)
	require.NoError(t, err)
	require.Nil(t, lastUsed(), "uses are written at most once a minute")
	clk.Advance(touchEvery)
	_, err = a.authenticate(ctx, "Bearer "+other, testClient)
	require.NoError(t, err)
	require.NoError(t, <-st.touched)
	require.NotNil(t, lastUsed())
}

// touchedKeys is the real key store, telling on touched when each write of
// last uses (which the authenticator makes in the background) is done.
type touchedKeys struct {
	*store.Store
	touched chan error
}

func (k *touchedKeys) TouchAPIKeys(ctx context.Context, ids []string, at time.Time) error {
	err := k.Store.TouchAPIKeys(ctx, ids, at)
	k.touched <- err
	return err
}

// gatedKeys is the real key store with its lookups counted, announced on
// started and held until release is closed.
type gatedKeys struct {
	*store.Store
	started chan struct{}
	release chan struct{}
	lookups atomic.Int32
}

func (g *gatedKeys) LookupAPIKey(ctx context.Context, hash apikey.Hash) (domain.APIKey, error) {
	g.lookups.Add(1)
	g.started <- struct{}{}
	<-g.release
	return g.Store.LookupAPIKey(ctx, hash)
}

// TestConcurrentRequestsShareOneLookup: requests that need a key while it is
// being read wait for that read instead of each reading it, so a crowd of
// clients starting at once, or an entry expiring under load, costs one
// round trip; a waiter that gives up does not fail the others.
func TestConcurrentRequestsShareOneLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, key, hash, k := storeWithReadKey(t)
	keys := &gatedKeys{Store: st, started: make(chan struct{}, 1), release: make(chan struct{})}
	a := newAuthenticator(keys, "", clock.Real())

	const crowd = 20
	quitter, quit := context.WithCancel(ctx)
	quitErr := make(chan error, 1)
	go func() {
		_, err := a.authenticate(quitter, "Bearer "+key, testClient)
		quitErr <- err
	}()
	<-keys.started
	results := make(chan error, crowd)
	for range crowd {
		go func() {
			p, err := a.authenticate(ctx, "Bearer "+key, testClient)
			if err == nil && p.keyID != k.ID {
				err = fmt.Errorf("principal %q, want %q", p.keyID, k.ID)
			}
			results <- err
		}()
	}
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.flights[hash] != nil && a.flights[hash].joined == crowd
	}, 5*time.Second, time.Millisecond)
	quit()
	require.ErrorIs(t, <-quitErr, context.Canceled, "the request that started the lookup gave up")
	close(keys.release)
	for range crowd {
		require.NoError(t, <-results)
	}
	require.EqualValues(t, 1, keys.lookups.Load(), "one lookup answered every request")
	_, err := a.authenticate(ctx, "Bearer "+key, testClient)
	require.NoError(t, err)
	require.EqualValues(t, 1, keys.lookups.Load(), "and its answer is cached")
}

// countedKeys is the real key store with its lookups counted.
type countedKeys struct {
	*store.Store
	lookups atomic.Int64
}

func (c *countedKeys) LookupAPIKey(ctx context.Context, hash apikey.Hash) (domain.APIKey, error) {
	c.lookups.Add(1)
	return c.Store.LookupAPIKey(ctx, hash)
}

// TestFloodOfMadeUpKeys: 100,000 made-up keys (well formed, so each could
// be real) from 100 clients cost the database failureBurst lookups per
// client, are answered 401 and then 429 with a wait, and leave the caches
// bounded; a real key is accepted even from a client that has used its
// failures, and answers within its usual latency: that of an authenticator
// no flood reached, on the same store, measured in turns with it in the
// same test, so that whatever else the machine does weighs on both.
//
// Not parallel: it compares latencies, which the heaviest tests running
// beside it would distort.
func TestFloodOfMadeUpKeys(t *testing.T) {
	ctx := context.Background()
	st, key, _, k := storeWithReadKey(t)
	keys := &countedKeys{Store: st}
	clk := clock.NewFake(time.Now())
	a, control := newAuthenticator(keys, "", clk), newAuthenticator(st, "", clk)

	const flood, clients, workers = 100_000, 100, 4
	var unknown, throttled atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < flood; i += workers {
				made, _ := apikey.New()
				client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i % clients)}), 1234).String()
				_, err := a.authenticate(ctx, "Bearer "+made, client)
				var tooMany *tooManyFailures
				switch {
				case errors.Is(err, errUnknownKey):
					unknown.Add(1)
				case errors.As(err, &tooMany) && tooMany.retryAfter > 0 && tooMany.retryAfter <= time.Second:
					throttled.Add(1)
				default:
					errs <- fmt.Errorf("made-up key %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	require.EqualValues(t, clients*failureBurst, unknown.Load(), "each client's first failures are 401")
	require.EqualValues(t, flood-clients*failureBurst, throttled.Load(), "the rest are 429")
	require.EqualValues(t, clients*failureBurst, keys.lookups.Load(), "a throttled key costs no lookup")
	a.mu.Lock()
	require.LessOrEqual(t, a.unknown.len(), maxCachedKeys)
	require.LessOrEqual(t, a.budgets.len(), maxFailingClients)
	a.mu.Unlock()

	flooded := "198.51.100.7:1234"
	_, err := a.authenticate(ctx, "Bearer "+key, testClient)
	require.NoError(t, err)
	clk.Advance(keyCacheTTL)
	_, err = a.authenticate(ctx, "Bearer "+key, flooded)
	require.NoError(t, err, "a key seen valid is looked up again for a client out of failures")

	// Each sample is a lookup (the clock passes the cache's time first),
	// the flooded authenticator's and the control's in alternating order.
	const samples = 1000
	took := map[*authenticator][]time.Duration{}
	for i := range samples {
		clk.Advance(keyCacheTTL)
		pair := []*authenticator{a, control}
		if i%2 == 1 {
			pair[0], pair[1] = control, a
		}
		for _, x := range pair {
			start := time.Now()
			p, err := x.authenticate(ctx, "Bearer "+key, testClient)
			took[x] = append(took[x], time.Since(start))
			require.NoError(t, err)
			require.Equal(t, k.ID, p.keyID)
		}
	}
	p90 := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)*9/10] }
	after, usual := p90(took[a]), p90(took[control])
	t.Logf("a real key's lookup, p90 of %d: %v after the flood, %v on an authenticator without one", samples, after, usual)
	require.LessOrEqual(t, after, 2*usual, "a real key answers within its usual latency after the flood")
}
