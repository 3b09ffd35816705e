package session

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// issue begins a session as sign-in does.
func issue(t *testing.T, v *Revocations) Session {
	t.Helper()
	issued, err := v.Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return Session{ID: Nonce(), Issued: issued, APIKey: "k", Expires: time.Now().Add(time.Hour)}
}

func wantCheck(t *testing.T, v *Revocations, s Session, want error) {
	t.Helper()
	if err := v.Check(context.Background(), s); !errors.Is(err, want) {
		t.Fatalf("check: %v, want %v", err, want)
	}
}

func TestRevocations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testkit.Redis(t)
	v := NewRevocations(rdb, prefix, nil)

	a, b := issue(t, v), issue(t, v)
	wantCheck(t, v, a, nil)
	if err := v.End(ctx, a); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, v, a, ErrEnded)
	wantCheck(t, v, b, nil)
	if ttl := rdb.PTTL(ctx, prefix+":{dashboard}:ended:"+a.ID).Val(); ttl < time.Hour || ttl > time.Hour+time.Minute {
		t.Errorf("an ended session is kept %v, want until it would have expired and a minute", ttl)
	}

	if err := v.EndAll(ctx); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, v, b, ErrEnded)
	c := issue(t, v)
	wantCheck(t, v, c, nil)
	if !c.Issued.After(b.Issued) {
		t.Errorf("issue times by Redis's clock do not advance: %v then %v", b.Issued, c.Issued)
	}

	// The not-before time never moves back: one set ahead (by an instance
	// whose Redis clock was ahead) stays.
	ahead := strconv.FormatInt(time.Now().Add(time.Hour).UnixMicro(), 10)
	rdb.Set(ctx, prefix+":{dashboard}:not-before", ahead, 0)
	if err := v.EndAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rdb.Get(ctx, prefix+":{dashboard}:not-before").Val(); got != ahead {
		t.Errorf("not-before moved back from %s to %s", ahead, got)
	}
}

// TestRevocationsAfterRedisLostItsData: without the not-before time (a
// Redis restarted empty, or emptied) a sign-out could have been lost, so
// every session issued before is ended; sessions issued afterwards are
// not.
func TestRevocationsAfterRedisLostItsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testkit.Redis(t)
	v := NewRevocations(rdb, prefix, nil)
	before := issue(t, v)
	wantCheck(t, v, before, nil)
	if err := rdb.Del(ctx, prefix+":{dashboard}:not-before").Err(); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, v, before, ErrEnded)
	after := issue(t, v)
	wantCheck(t, v, after, nil)
	// Signing in on an emptied Redis sets the time too, so the first
	// session after is not taken for an earlier one.
	rdb.Del(ctx, prefix+":{dashboard}:not-before")
	first := issue(t, v)
	wantCheck(t, v, first, nil)
	wantCheck(t, v, after, ErrEnded)
}

func TestRevocationsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testkit.StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	v := NewRevocations(rdb, "dispatch", nil)
	s := issue(t, v)
	srv.Stop()
	if _, err := v.Issue(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("issue: %v", err)
	}
	wantCheck(t, v, s, ErrUnavailable)
	for name, err := range map[string]error{"end": v.End(ctx, s), "end all": v.EndAll(ctx)} {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
