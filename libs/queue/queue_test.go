package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

const topic = "events.pending"

type seen struct {
	mu    sync.Mutex
	count map[int64]int
}

func (s *seen) add(id int64) {
	s.mu.Lock()
	s.count[id]++
	s.mu.Unlock()
}

func (s *seen) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

func (s *seen) has(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[id] > 0
}

func publish(t *testing.T, brokers []string, from, to int64) {
	t.Helper()
	p, err := queue.NewProducer(queue.ProducerConfig{Brokers: brokers, Topic: topic})
	require.NoError(t, err)
	var msgs []queue.Message
	for i := from; i <= to; i++ {
		msgs = append(msgs, queue.Message{DeliveryID: i, EventID: fmt.Sprint("evt_", i), SubscriptionID: fmt.Sprint("sub_", i%7)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.PublishSync(ctx, msgs...))
	require.NoError(t, p.Close(ctx))
}

func startConsumer(t *testing.T, brokers []string, h queue.Handler) (stop func()) {
	t.Helper()
	c, err := queue.NewConsumer(queue.ConsumerConfig{
		Brokers: brokers, Topics: []string{topic}, Group: "g", Concurrency: 16, DrainTimeout: 2 * time.Second,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestEveryMessageHandledAndCommitted(t *testing.T) {
	t.Parallel()
	cluster := testkit.Kafka(t, 3, topic)
	brokers := cluster.ListenAddrs()
	publish(t, brokers, 1, 300)

	s := &seen{count: map[int64]int{}}
	var failedOnce sync.Map
	stop := startConsumer(t, brokers, func(_ context.Context, m queue.Message) error {
		if m.DeliveryID%10 == 0 {
			if _, loaded := failedOnce.LoadOrStore(m.DeliveryID, true); !loaded {
				return errors.New("transient: database unavailable")
			}
		}
		s.add(m.DeliveryID)
		return nil
	})
	require.Eventually(t, func() bool { return s.distinct() == 300 }, 30*time.Second, 20*time.Millisecond)
	stop()

	// A new member of the group starts after the committed offsets: it sees
	// only what is published now.
	s2 := &seen{count: map[int64]int{}}
	startConsumer(t, brokers, func(_ context.Context, m queue.Message) error { s2.add(m.DeliveryID); return nil })
	publish(t, brokers, 301, 301)
	require.Eventually(t, func() bool { return s2.has(301) }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, s2.distinct(), "messages handled before the restart were committed")
}

func TestUnfinishedMessageIsHandedOutAgain(t *testing.T) {
	t.Parallel()
	cluster := testkit.Kafka(t, 1, topic)
	brokers := cluster.ListenAddrs()
	publish(t, brokers, 1, 5)

	s := &seen{count: map[int64]int{}}
	stuck := make(chan struct{})
	stop := startConsumer(t, brokers, func(ctx context.Context, m queue.Message) error {
		if m.DeliveryID == 3 {
			close(stuck)
			<-ctx.Done() // never finishes: the worker is stopped mid-message
			return ctx.Err()
		}
		s.add(m.DeliveryID)
		return nil
	})
	<-stuck
	require.Eventually(t, func() bool { return s.distinct() == 4 }, 30*time.Second, 20*time.Millisecond)
	stop()

	s2 := &seen{count: map[int64]int{}}
	startConsumer(t, brokers, func(_ context.Context, m queue.Message) error { s2.add(m.DeliveryID); return nil })
	require.Eventually(t, func() bool { return s2.has(3) && s2.has(5) }, 30*time.Second, 20*time.Millisecond)
	require.False(t, s2.has(1), "messages before the unfinished one stay committed")
}

// TestStopsWithinTheDrainTimeout: a handler that ignores its context (a
// read that nothing bounds) cannot keep the consumer from stopping, nor
// can brokers that are gone when it commits and leaves the group.
func TestStopsWithinTheDrainTimeout(t *testing.T) {
	t.Parallel()
	for _, brokersGone := range []bool{false, true} {
		t.Run(fmt.Sprintf("brokers gone %v", brokersGone), func(t *testing.T) {
			t.Parallel()
			stopsWithinTheDrainTimeout(t, brokersGone)
		})
	}
}

func stopsWithinTheDrainTimeout(t *testing.T, brokersGone bool) {
	cluster := testkit.Kafka(t, 1, topic)
	brokers := cluster.ListenAddrs()
	publish(t, brokers, 1, 3)

	const drain = time.Second
	c, err := queue.NewConsumer(queue.ConsumerConfig{Brokers: brokers, Topics: []string{topic}, Group: "g", Concurrency: 4, DrainTimeout: drain})
	require.NoError(t, err)
	stuck, release := make(chan struct{}, 3), make(chan struct{})
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(context.Context, queue.Message) error {
			stuck <- struct{}{}
			<-release
			return nil
		})
	}()
	<-stuck
	if brokersGone {
		cluster.Close()
	}
	cancel()
	stopping := time.Now()
	select {
	case err := <-done:
		require.NoError(t, err)
		require.Less(t, time.Since(stopping), drain+500*time.Millisecond)
	case <-time.After(drain + 10*time.Second):
		t.Fatalf("the consumer was still stopping %v after its %v drain timeout", 10*time.Second, drain)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	m := queue.Message{DeliveryID: 42, EventID: "e", SubscriptionID: "s"}
	got, err := queue.Decode(m.Encode())
	require.NoError(t, err)
	require.Equal(t, m, got)
	for _, bad := range []string{"", "{", `{"event_id":"e"}`, `[]`} {
		_, err := queue.Decode([]byte(bad))
		require.Error(t, err, bad)
	}
}

// TestFailedMessageBacksOffOnTheClock: a message whose handler fails is
// handled again after a backoff on the consumer's clock (100 ms, then
// twice as long each time), not before.
func TestFailedMessageBacksOffOnTheClock(t *testing.T) {
	t.Parallel()
	cluster := testkit.Kafka(t, 1, topic)
	brokers := cluster.ListenAddrs()
	publish(t, brokers, 1, 1)
	clk := clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	c, err := queue.NewConsumer(queue.ConsumerConfig{Brokers: brokers, Topics: []string{topic}, Group: "g", DrainTimeout: time.Second, Clock: clk})
	require.NoError(t, err)
	// Each try tells the test it began, then fails (the last succeeds)
	// when the test lets it: until then it starts no backoff. Once the
	// test is over, a try stores its message at once.
	tries, proceed := make(chan struct{}), make(chan error)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, func(context.Context, queue.Message) error {
			select {
			case tries <- struct{}{}:
			case <-runCtx.Done():
				return nil
			}
			select {
			case err := <-proceed:
				return err
			case <-runCtx.Done():
				return nil
			}
		})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second): // a backoff left on the fake clock would hold the drain
			t.Error("the consumer did not stop")
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	<-tries
	proceed <- errors.New("not stored")
	for i, backoff := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		require.NoError(t, clk.BlockUntilWaiting(ctx, 1), "the failed message does not back off")
		clk.Advance(backoff - time.Nanosecond)
		require.Equal(t, 1, clk.Waiting(), "handled again before its backoff of %v", backoff)
		clk.Advance(time.Nanosecond)
		require.Zero(t, clk.Waiting())
		select {
		case <-tries:
		case <-ctx.Done():
			t.Fatalf("not handled again after its backoff of %v", backoff)
		}
		if i == 0 {
			proceed <- errors.New("not stored again")
		} else {
			proceed <- nil
		}
	}
}
