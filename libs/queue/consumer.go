package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/codes"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
)

// Handler handles one message. It returns nil once the message's outcome is
// stored; an error means "not stored, try this message again".
type Handler func(ctx context.Context, m Message) error

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	Brokers []string
	Topics  []string
	Group   string
	// ClientID names this instance to the brokers.
	ClientID string
	// Concurrency is the most messages handled at once.
	Concurrency int
	// DrainTimeout bounds how long in-flight messages may take to finish
	// when partitions are revoked, and how long Run takes to return once
	// its context ends.
	DrainTimeout time.Duration
	// SessionTimeout is how long the group waits for a silent member (a
	// crashed worker) before giving its partitions to others; zero keeps
	// franz-go's default of 45 s.
	SessionTimeout time.Duration
	Logger         *slog.Logger
	// Tracing continues the trace a record's headers carry in a span
	// around the handler; the zero value follows the process's tracing.
	Tracing Tracing
	// Clock times the drain, the handler's backoff and the fetch errors'
	// log [clock.Real()]. The brokers' own timeouts stay on the system
	// clock, which franz-go keeps.
	Clock clock.Clock
}

// Consumer is an at-least-once Kafka group consumer. Messages are handled
// concurrently; an offset is committed only after the handler has stored the
// outcome of that message and of every earlier message in its partition.
type Consumer struct {
	cfg     ConsumerConfig
	client  *kgo.Client
	offsets *offsets
	tracer  tracer
	// stopped closes when Run has drained, so that leaving the group does
	// not wait for the same messages again.
	stopped chan struct{}
}

// NewConsumer joins the consumer group. Kafka need not be reachable yet.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	c := &Consumer{cfg: cfg, offsets: newOffsets(), tracer: cfg.Tracing.tracer(), stopped: make(chan struct{})}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
	}
	if cfg.ClientID != "" {
		opts = append(opts, kgo.ClientID(cfg.ClientID))
	}
	if cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(cfg.SessionTimeout), kgo.HeartbeatInterval(cfg.SessionTimeout/10))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	c.client = cl
	return c, nil
}

// Ping checks that a broker answers.
func (c *Consumer) Ping(ctx context.Context) error { return c.client.Ping(ctx) }

// onRevoked lets the revoked partitions' in-flight messages finish (within
// DrainTimeout) and commits what they marked, so the next owner starts right
// after them instead of handling them again.
func (c *Consumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	timeout, stop := c.after(c.cfg.DrainTimeout)
	defer stop()
	select {
	case <-c.offsets.forget(revoked):
	case <-c.stopped:
		// Run has drained already, within its own bound.
	case <-timeout:
		c.cfg.Logger.Warn("revoked partitions still busy; their messages will be handled again by the next owner")
	case <-ctx.Done():
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil && !errors.Is(err, context.Canceled) {
		c.cfg.Logger.Warn("commit on revoke failed; some messages will be handled again", "err", err)
	}
}

// after returns a channel closed once d has passed on the consumer's
// clock, and a function that stops the wait when it is no longer needed.
func (c *Consumer) after(d time.Duration) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	t := c.cfg.Clock.AfterFunc(d, func() { close(ch) })
	return ch, func() { t.Stop() }
}

func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.offsets.forget(lost)
}

// Run consumes until ctx ends, then stops polling, lets in-flight messages
// finish, commits and leaves the group, all within DrainTimeout. Handlers
// get a context that outlives ctx by most of DrainTimeout (see stopGrace).
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	var (
		wg           sync.WaitGroup
		slots        = make(chan struct{}, c.cfg.Concurrency)
		lastFetchErr time.Time
	)
	for ctx.Err() == nil {
		fetches := c.client.PollRecords(ctx, c.cfg.Concurrency)
		if fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			// While a broker is away every poll fails; one line per 10 s says so.
			if now := c.cfg.Clock.Now(); !errors.Is(err, context.Canceled) && now.Sub(lastFetchErr) > 10*time.Second {
				lastFetchErr = now
				c.cfg.Logger.Warn("kafka fetch error (repeats are not logged for 10s)", "topic", topic, "partition", partition, "err", err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return // not started, so never marked: Kafka hands it out again
			}
			pr := c.offsets.start(r)
			wg.Go(func() {
				defer func() { <-slots }()
				handled := c.handle(handlerCtx, r, h)
				if upTo := c.offsets.finish(pr, handled); upTo != nil {
					c.client.MarkCommitRecords(upTo)
				}
			})
		})
	}

	deadline := c.cfg.Clock.Now().Add(c.cfg.DrainTimeout)
	until := func(t time.Time) time.Duration { return t.Sub(c.cfg.Clock.Now()) }
	grace := stopGrace(c.cfg.DrainTimeout)
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	cancelAt, stopCancelAt := c.after(until(deadline.Add(-grace)))
	defer stopCancelAt()
	select {
	case <-drained:
	case <-cancelAt:
		c.cfg.Logger.Warn("drain timeout: cancelling in-flight messages", "timeout", c.cfg.DrainTimeout)
		cancelHandlers()
		giveUp, stopGiveUp := c.after(until(deadline.Add(-grace / 2)))
		defer stopGiveUp()
		select {
		case <-drained:
		case <-giveUp:
			// A handler that ignores its context must not keep the process
			// alive: its message is not marked, so it is handed out again.
			c.cfg.Logger.Error("in-flight messages did not end when cancelled; stopping without them")
		}
	}
	close(c.stopped)
	// The commit talks to the brokers, bounded on the system clock by what
	// is left of the drain on the consumer's.
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), until(deadline.Add(-grace/4)))
	defer cancel()
	if err := c.client.CommitMarkedOffsets(commitCtx); err != nil {
		c.cfg.Logger.Warn("final commit failed; some messages will be handled again", "err", err)
	}
	// Leaving the group waits for the brokers, which may be gone; the
	// partitions then move when the session times out instead.
	closed := make(chan struct{})
	go func() { c.client.Close(); close(closed) }()
	left, stopLeft := c.after(until(deadline))
	defer stopLeft()
	select {
	case <-closed:
	case <-left:
		c.cfg.Logger.Warn("leaving the consumer group took longer than the drain timeout; stopping without waiting for it")
	}
	return nil
}

// stopGrace is the end of a stop's drain kept for what follows it:
// handlers are cancelled this long before the drain's deadline and get
// half of it to give their work back; the final commit has a quarter, and
// leaving the group the last quarter.
func stopGrace(drain time.Duration) time.Duration {
	return min(drain/4, 2*time.Second)
}

// handle runs h until it succeeds, backing off between failures, and
// reports whether the message was handled. Undecodable messages are
// logged and skipped: no retry can make them valid. h runs in a span that
// continues the trace the record carries.
func (c *Consumer) handle(ctx context.Context, r *kgo.Record, h Handler) bool {
	m, err := Decode(r.Value)
	if err != nil {
		c.cfg.Logger.Error("skipping undecodable message", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		return true
	}
	ctx, span := c.tracer.startProcess(ctx, r, m, c.cfg.Group)
	defer span.End()
	backoff := 100 * time.Millisecond
	for {
		err := h(ctx, m)
		if err == nil {
			return true
		}
		span.RecordError(err)
		if ctx.Err() != nil {
			span.SetStatus(codes.Error, "not handled before the consumer stopped")
			return false
		}
		c.cfg.Logger.Warn("message not handled; retrying", "delivery_id", m.DeliveryID, "event_id", m.EventID,
			"subscription_id", m.SubscriptionID, "err", err, "backoff", backoff)
		if !clock.Sleep(ctx, c.cfg.Clock, backoff) {
			return false
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}
