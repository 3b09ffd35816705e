// Command loadgen measures a running Dispatch end to end: it starts a
// receiver that verifies every delivery, subscribes it, posts events as fast
// as -concurrency clients can (or at -rate per second), and reports ingest
// and delivery throughput and latency. It talks to 127.0.0.1 only by
// default and stops after -n events or -timeout, whichever comes first.
//
//	go tool task load -- -n 20000 -concurrency 64
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

	var (
		next     atomic.Int64
		sentAt   = make([]time.Time, o.n)
		postLat  = make([]time.Duration, o.n)
		failures atomic.Int64
		wg       sync.WaitGroup
		tick     <-chan time.Time
	)
	if o.rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(o.rate))
		defer t.Stop()
		tick = t.C
	}
	start := time.Now()
	for range o.concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.n || ctx.Err() != nil {
					return
				}
				if tick != nil {
					select {
					case <-tick:
					case <-ctx.Done():
						return
					}
				}
				t0 := time.Now()
				sentAt[i] = t0
				err := call(ctx, client, http.MethodPost, o.api+"/events", map[string]any{
					"id": fmt.Sprintf("%s_%d", runID, i), "type": typ, "source": "loadgen", "data": map[string]any{"i": i, "pad": "0123456789abcdef0123456789abcdef"},
				}, http.StatusAccepted)
				postLat[i] = time.Since(t0)
				if err != nil {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	ingestTook := time.Since(start)
	posted := min(int(next.Load()), o.n)
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
	lat := slices.Clone(postLat[:posted])
	slices.Sort(lat)
	slices.Sort(e2e)
	fmt.Printf("events posted      %d (%d failed) with %d clients in %v: %.0f events/s\n", posted, failures.Load(), o.concurrency, ingestTook.Round(time.Millisecond), float64(posted)/ingestTook.Seconds())
	fmt.Printf("POST /events       p50 %v  p99 %v\n", pct(lat, 50), pct(lat, 99))
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
