// Command loadgen measures a running Dispatch end to end: it starts a
// receiver that verifies every delivery, subscribes it, posts events as fast
// as -concurrency clients can (or at -rate per second), and reports ingest
// and delivery throughput and latency. It talks to 127.0.0.1 only by
// default and stops after -n events or -timeout, whichever comes first.
// With -batch N each request carries N events to POST /events/batch.
//
//	go tool task load -- -n 20000 -concurrency 64
//	go tool task load -- -n 50000 -concurrency 8 -batch 100
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

type options struct {
	api         string
	n           int
	batch       int
	concurrency int
	rate        int
	listen      string
	timeout     time.Duration
	pause       string
	key         string
}

func main() {
	var o options
	flag.StringVar(&o.api, "api", "http://127.0.0.1:8080", "ingest API base URL")
	flag.IntVar(&o.n, "n", 10000, "events to post")
	flag.IntVar(&o.batch, "batch", 1, "events per request; above 1 they go to POST /events/batch (at most 500)")
	flag.IntVar(&o.concurrency, "concurrency", 32, "concurrent posting clients")
	flag.IntVar(&o.rate, "rate", 0, "events per second in all (0: as fast as the clients go)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:0", "receiver address")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	flag.StringVar(&o.pause, "pause", "demo", "subscription to pause during the run so it does not share the load (empty: none)")
	flag.StringVar(&o.key, "key", os.Getenv("DISPATCH_API_KEY"), "API key with the write and read scopes (default: $DISPATCH_API_KEY, else the dev stack's .data/dev-api-key)")
	flag.Parse()
	if o.key == "" {
		if b, err := os.ReadFile(filepath.Join(".data", "dev-api-key")); err == nil {
			o.key = strings.TrimSpace(string(b))
		}
	}
	if o.batch < 1 || o.batch > 500 {
		fmt.Fprintln(os.Stderr, "loadgen: -batch must be 1 to 500")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// receiver counts verified deliveries and when each event first arrived.
type receiver struct {
	verifier *signing.Verifier
	mu       sync.Mutex
	first    map[string]time.Time
	total    atomic.Int64
	rejected atomic.Int64
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || rc.verifier.VerifyHeaders(r.Header, body) != nil {
		rc.rejected.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	now := time.Now()
	id := r.Header.Get(signing.HeaderID)
	rc.mu.Lock()
	if _, seen := rc.first[id]; !seen {
		rc.first[id] = now
	}
	rc.mu.Unlock()
	rc.total.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) distinct() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.first)
}

func run(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	secret := signing.GenerateSecret()
	verifier, err := signing.NewVerifier([]string{secret})
	if err != nil {
		return err
	}
	rc := &receiver{verifier: verifier, first: make(map[string]time.Time, o.n)}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	client := &http.Client{Transport: bearer{key: o.key, next: &http.Transport{MaxIdleConnsPerHost: o.concurrency}}, Timeout: 30 * time.Second}
	runID := fmt.Sprintf("load_%d", time.Now().UnixNano())
	typ := "load." + runID
	if err := call(ctx, client, http.MethodPost, o.api+"/subscriptions", map[string]any{
		"id": runID, "url": "http://" + ln.Addr().String() + "/", "event_types": []string{typ}, "secret": secret,
		"rate_limit_per_second": 100000, "max_concurrency": 10000,
	}, http.StatusCreated); err != nil {
		return fmt.Errorf("subscribe the receiver: %w", err)
	}
	defer call(context.Background(), client, http.MethodDelete, o.api+"/subscriptions/"+runID, nil, http.StatusNoContent) //nolint:errcheck // best effort clean-up
	if o.pause != "" {
		if err := call(ctx, client, http.MethodPatch, o.api+"/subscriptions/"+o.pause, map[string]any{"state": "paused"}, http.StatusOK); err == nil {
			defer call(context.Background(), client, http.MethodPatch, o.api+"/subscriptions/"+o.pause, map[string]any{"state": "active"}, http.StatusOK) //nolint:errcheck // best effort
		}
	}

	requests := (o.n + o.batch - 1) / o.batch
	var (
		next     atomic.Int64 // requests taken
		sentAt   = make([]time.Time, o.n)
		postLat  = make([]time.Duration, requests)
		failures atomic.Int64 // events not stored
		wg       sync.WaitGroup
		tick     <-chan time.Time
	)
	if o.rate > 0 {
		t := time.NewTicker(time.Duration(o.batch) * time.Second / time.Duration(o.rate))
		defer t.Stop()
		tick = t.C
	}
	event := func(i int) map[string]any {
		return map[string]any{
			"id": fmt.Sprintf("%s_%d", runID, i), "type": typ, "source": "loadgen", "data": map[string]any{"i": i, "pad": "0123456789abcdef0123456789abcdef"},
		}
	}
	start := time.Now()
	for range o.concurrency {
		wg.Go(func() {
			for {
				req := int(next.Add(1) - 1)
				if req >= requests || ctx.Err() != nil {
					return
				}
				if tick != nil {
					select {
					case <-tick:
					case <-ctx.Done():
						return
					}
				}
				first, last := req*o.batch, min((req+1)*o.batch, o.n)
				t0 := time.Now()
				for i := first; i < last; i++ {
					sentAt[i] = t0
				}
				if o.batch == 1 {
					if err := call(ctx, client, http.MethodPost, o.api+"/events", event(first), http.StatusAccepted); err != nil {
						failures.Add(1)
					}
				} else {
					events := make([]map[string]any, 0, last-first)
					for i := first; i < last; i++ {
						events = append(events, event(i))
					}
					failures.Add(int64(postBatch(ctx, client, o.api, events)))
				}
				postLat[req] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	ingestTook := time.Since(start)
	taken := min(int(next.Load()), requests)
	posted := min(taken*o.batch, o.n)
	for rc.distinct() < posted-int(failures.Load()) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	deliverTook := time.Since(start)

	var e2e []time.Duration
	rc.mu.Lock()
	for i := range posted {
		if at, ok := rc.first[fmt.Sprintf("%s_%d", runID, i)]; ok {
			e2e = append(e2e, at.Sub(sentAt[i]))
		}
	}
	rc.mu.Unlock()
	lat := slices.Clone(postLat[:taken])
	slices.Sort(lat)
	slices.Sort(e2e)
	fmt.Printf("events posted      %d (%d failed) with %d clients in %v: %.0f events/s\n", posted, failures.Load(), o.concurrency, ingestTook.Round(time.Millisecond), float64(posted)/ingestTook.Seconds())
	if o.batch == 1 {
		fmt.Printf("POST /events       p50 %v  p99 %v\n", pct(lat, 50), pct(lat, 99))
	} else {
		fmt.Printf("POST /events/batch p50 %v  p99 %v  (%d requests of %d events)\n", pct(lat, 50), pct(lat, 99), taken, o.batch)
	}
	fmt.Printf("delivered          %d distinct (%d requests, %d rejected signatures) in %v: %.0f deliveries/s\n", len(e2e), rc.total.Load(), rc.rejected.Load(), deliverTook.Round(time.Millisecond), float64(len(e2e))/deliverTook.Seconds())
	fmt.Printf("post to delivery   p50 %v  p99 %v\n", pct(e2e, 50), pct(e2e, 99))
	if ctx.Err() != nil {
		return fmt.Errorf("stopped after %v with %d of %d delivered", o.timeout, len(e2e), posted)
	}
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)].Round(100 * time.Microsecond)
}

// bearer sends the API key with every request.
type bearer struct {
	key  string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.next.RoundTrip(r)
}

// postBatch posts events to /events/batch and returns how many of them
// were not stored: all of them if the request failed.
func postBatch(ctx context.Context, client *http.Client, api string, events []map[string]any) int {
	b, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		return len(events)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/events/batch", bytes.NewReader(b))
	if err != nil {
		return len(events)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return len(events)
	}
	defer resp.Body.Close()
	var res struct {
		Stored int `json:"stored"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&res) != nil {
		return len(events)
	}
	return len(events) - res.Stored
}

func call(ctx context.Context, client *http.Client, method, url string, body any, want int) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != want {
		return errors.New(resp.Status + ": " + string(msg))
	}
	return nil
}
