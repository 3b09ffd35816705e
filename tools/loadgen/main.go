// Command loadgen measures a running Dispatch end to end: it starts a
// receiver that verifies every delivery, subscribes it, posts events as fast
// as -concurrency clients can (or at -rate per second), waits until every
// accepted event has been delivered (or -timeout passes), and prints a
// summary. With -batch N each request carries N events to POST /events/batch.
// It talks to 127.0.0.1 only by default.
//
//	go tool task load -- -n 20000 -concurrency 64
//	go tool task load -- -n 50000 -concurrency 8 -batch 100
//	go tool task load -- -n 20000 -concurrency 8 -batch 100 -sub-rate 0
//	go tool task load -- -n 20000 -concurrency 64 -keys 1000
//
// With -keys N the subscription is ordered per key (ADR 43) and event i
// carries the ordering key "k<i mod N>"; -keys 1 is one hot key.
// While it runs it writes one line a second to stderr: time elapsed, events
// posted (and failed), events delivered, the posted and delivered rates over
// that second and the post→delivery p99 of that second's deliveries.
//
// At the end it writes a Markdown table to stdout: events posted and
// failed, the ingest rate, POST latency (p50, p99, max), distinct deliveries
// and their rate (over the time from the first post to the last first
// delivery), post→delivery latency (p50, p90, p99, max), events lost
// (accepted by the API but not delivered when it stopped waiting),
// duplicates (receipts beyond the first of an event id), rejected signatures
// and the peak resident memory of each service in -metrics, read from
// process_resident_memory_bytes on its /metrics every 250 ms ("n/a" when
// it could not be read).
//
// The subscription asks for -sub-rate deliveries a second and
// -sub-concurrency in flight (0: leave it to the service's default, 100
// and 100), so -sub-rate 0 measures a burst against a destination held at
// the default rate.
//
// Exit status: 0 when every accepted event was delivered and every signature
// verified; 3 when events were lost, a signature was rejected or -timeout
// stopped the posting; 2 for bad flags; 1 when the run could not be made
// (e.g. the API refused the subscription).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// Exit statuses.
const (
	exitFailed   = 1 // the run could not be made
	exitUsage    = 2 // bad flags
	exitProblems = 3 // the run was made and lost events, rejected signatures or timed out
)

// defaultMetrics are the dev stack's health and metrics ports.
const defaultMetrics = "ingest-api=http://127.0.0.1:8080,delivery-worker=http://127.0.0.1:8081,retry-scheduler=http://127.0.0.1:8082"

type options struct {
	api            string
	n              int
	batch          int
	concurrency    int
	rate           int
	listen         string
	timeout        time.Duration
	settle         time.Duration
	pause          string
	key            string
	subRate        int
	subConcurrency int
	keys           int
	keep           bool
	metrics        []target
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(exitUsage)
	}
	rep, err := run(o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(exitFailed)
	}
	rep.writeTable(os.Stdout)
	if problems := rep.problems(); len(problems) > 0 {
		fmt.Fprintln(os.Stderr, "loadgen: "+strings.Join(problems, "; "))
		os.Exit(exitProblems)
	}
}

// parseFlags reads the command line; errors are bad flags.
func parseFlags(args []string, output io.Writer) (options, error) {
	var (
		o       options
		metrics string
		fs      = flag.NewFlagSet("loadgen", flag.ContinueOnError)
	)
	fs.SetOutput(output)
	fs.StringVar(&o.api, "api", "http://127.0.0.1:8080", "ingest API base URL")
	fs.IntVar(&o.n, "n", 10000, "events to post")
	fs.IntVar(&o.batch, "batch", 1, "events per request; above 1 they go to POST /events/batch (at most 500)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent posting clients")
	fs.IntVar(&o.rate, "rate", 0, "events per second in all (0: as fast as the clients go)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "receiver address")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long; accepted events not delivered by then count as lost")
	fs.DurationVar(&o.settle, "settle", time.Second, "once every event is delivered, keep receiving this long to count late duplicates")
	fs.StringVar(&o.pause, "pause", "demo", "subscription to pause during the run so it does not share the load (empty: none)")
	fs.StringVar(&o.key, "key", "", "API key with the write and read scopes (default: $DISPATCH_API_KEY, else the dev stack's .data/dev-api-key)")
	fs.IntVar(&o.subRate, "sub-rate", 100000, "the subscription's rate_limit_per_second (0: omit it, the service's default of 100/s applies)")
	fs.IntVar(&o.subConcurrency, "sub-concurrency", 10000, "the subscription's max_concurrency (0: omit it, the service's default of 100 applies)")
	fs.IntVar(&o.keys, "keys", 0, "spread the events over this many ordering keys (event i takes key i mod keys) and make the subscription ordered per key (0: no keys, an unordered subscription)")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's subscription, and with it its deliveries and attempts, instead of deleting it at the end (to measure what the run stored)")
	fs.StringVar(&metrics, "metrics", defaultMetrics, "comma-separated [name=]base URLs whose /metrics give each service's peak resident memory (empty: none)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.key == "" {
		o.key = os.Getenv("DISPATCH_API_KEY")
	}
	if o.key == "" {
		if b, err := os.ReadFile(filepath.Join(".data", "dev-api-key")); err == nil {
			o.key = strings.TrimSpace(string(b))
		}
	}
	switch {
	case o.n < 1:
		return o, errors.New("-n must be at least 1")
	case o.batch < 1 || o.batch > 500:
		return o, errors.New("-batch must be 1 to 500")
	case o.concurrency < 1:
		return o, errors.New("-concurrency must be at least 1")
	case o.rate < 0:
		return o, errors.New("-rate must not be negative")
	case o.subRate < 0:
		return o, errors.New("-sub-rate must not be negative")
	case o.subConcurrency < 0:
		return o, errors.New("-sub-concurrency must not be negative")
	case o.keys < 0:
		return o, errors.New("-keys must not be negative")
	}
	var err error
	o.metrics, err = parseTargets(metrics)
	return o, err
}

// run makes one measured run and returns its report, writing progress to
// log. Errors are runs that could not be made; lost events and rejected
// signatures are in the report.
func run(o options, log io.Writer) (*report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	runID := fmt.Sprintf("load_%d", time.Now().UnixNano())
	led := newLedger(runID, o.n)
	secret := signing.GenerateSecret()
	verifier, err := signing.NewVerifier([]string{secret})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: &receiver{verifier: verifier, led: led}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	client := &http.Client{Transport: bearer{key: o.key, next: &http.Transport{MaxIdleConnsPerHost: o.concurrency}}, Timeout: 30 * time.Second}
	typ := "load." + runID
	sub := subscription(runID, "http://"+ln.Addr().String()+"/", typ, secret, o.subRate, o.subConcurrency)
	if o.keys > 0 {
		sub["ordering"] = "per_key"
	}
	if err := call(ctx, client, http.MethodPost, o.api+"/subscriptions", sub, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("subscribe the receiver: %w", err)
	}
	if !o.keep {
		defer call(context.Background(), client, http.MethodDelete, o.api+"/subscriptions/"+runID, nil, http.StatusNoContent) //nolint:errcheck // best effort clean-up
	}
	if o.pause != "" {
		if err := call(ctx, client, http.MethodPatch, o.api+"/subscriptions/"+o.pause, map[string]any{"state": "paused"}, http.StatusOK); err == nil {
			defer call(context.Background(), client, http.MethodPatch, o.api+"/subscriptions/"+o.pause, map[string]any{"state": "active"}, http.StatusOK) //nolint:errcheck // best effort
		}
	}

	watchCtx, stopWatching := context.WithCancel(context.Background())
	rss := watchRSS(watchCtx, &http.Client{Timeout: time.Second}, o.metrics, 250*time.Millisecond, log)
	prog := startProgress(watchCtx, log, led, time.Second)

	p := &poster{client: client, api: o.api, led: led, typ: typ, n: o.n, batch: o.batch, rate: o.rate, keys: o.keys}
	posting := p.run(ctx, o.concurrency)
	poll := time.NewTicker(20 * time.Millisecond)
	delivered := led.waitDelivered(ctx, poll.C)
	poll.Stop()
	if delivered && o.settle > 0 {
		select {
		case <-time.After(o.settle):
		case <-ctx.Done():
		}
	}
	stopWatching()
	prog.Wait()
	rep := summarize(led, posting, rss.result())
	rep.settings = o.settings()
	rep.timeout, rep.timedOut = o.timeout, posting.stopped
	return rep, nil
}

// settings are the flags that shape a run, for the report.
func (o options) settings() string {
	return fmt.Sprintf("-n %d -batch %d -concurrency %d -rate %d -sub-rate %d -sub-concurrency %d", o.n, o.batch, o.concurrency, o.rate, o.subRate, o.subConcurrency)
}

// subscription is the body that subscribes the receiver to the run's event
// type; a zero rate or concurrency is left out so the service's default
// applies.
func subscription(id, url, typ, secret string, rate, concurrency int) map[string]any {
	sub := map[string]any{"id": id, "url": url, "event_types": []string{typ}, "secret": secret}
	if rate > 0 {
		sub["rate_limit_per_second"] = rate
	}
	if concurrency > 0 {
		sub["max_concurrency"] = concurrency
	}
	return sub
}
