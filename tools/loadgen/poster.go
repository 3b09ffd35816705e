package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
)

// poster posts a run's events, -batch to a request, and records them in
// the ledger.
type poster struct {
	client *http.Client
	api    string
	led    *ledger
	typ    string
	n      int
	batch  int
	rate   int // events a second in all; 0: as fast as the clients go
	// keys spreads the events over this many ordering keys, event i
	// taking key i mod keys; 0: no key.
	keys int
	// clock paces the requests, so a test can move time instead of
	// waiting for it [clock.Real()]. Latencies are measured on the real
	// clock: they are the figures the run reports.
	clock clock.Clock
}

// posting is what the posting phase measured.
type posting struct {
	started time.Duration   // offset of the first request from the ledger's start
	took    time.Duration   // from the first request to the last answer
	batch   int             // events a request
	latency []time.Duration // per request made
	stopped bool            // the context ended before the posting did
}

// run posts with concurrency clients until every event is posted or ctx
// ends.
func (p *poster) run(ctx context.Context, concurrency int) posting {
	requests := (p.n + p.batch - 1) / p.batch
	var (
		next    atomic.Int64 // requests taken
		stopped atomic.Bool  // ctx ended a request or left some unmade
		latency = make([]time.Duration, requests)
		wg      sync.WaitGroup
		// every is the time between requests at p.rate. Request k is due
		// k*every after the start, whenever the one before it went: a
		// ticker drops the ticks no client is waiting for, and a loaded
		// machine then posts well below the rate asked (700/s for 1,000/s).
		every time.Duration
	)
	if p.rate > 0 {
		every = time.Duration(p.batch) * time.Second / time.Duration(p.rate)
	}
	clk := p.clock
	if clk == nil {
		clk = clock.Real()
	}
	begin := clk.Now()
	started := time.Since(p.led.start)
	for range concurrency {
		wg.Go(func() {
			for {
				req := int(next.Add(1) - 1)
				if req >= requests {
					return
				}
				if wait := begin.Add(time.Duration(req) * every).Sub(clk.Now()); wait > 0 {
					clock.Sleep(ctx, clk, wait)
				}
				if ctx.Err() != nil {
					stopped.Store(true)
					return
				}
				t0 := time.Now()
				p.post(ctx, req*p.batch, min((req+1)*p.batch, p.n))
				latency[req] = time.Since(t0)
				if ctx.Err() != nil { // the request may have been cut short
					stopped.Store(true)
				}
			}
		})
	}
	wg.Wait()
	var made []time.Duration // latencies of the requests made; 0 for the others
	for _, d := range latency {
		if d > 0 {
			made = append(made, d)
		}
	}
	return posting{
		started: started,
		batch:   p.batch,
		took:    time.Since(p.led.start) - started,
		latency: made,
		stopped: stopped.Load(),
	}
}

// post posts events [first, last), alone to POST /events or together to
// POST /events/batch, and records what the API answered for each.
func (p *poster) post(ctx context.Context, first, last int) {
	p.led.sent(first, last)
	if p.batch == 1 {
		status, err := send(ctx, p.client, http.MethodPost, p.api+"/events", p.event(first))
		// 202: stored now; 200: an event with this id is stored already.
		p.led.answered(first, err == nil && (status == http.StatusAccepted || status == http.StatusOK))
		return
	}
	events := make([]map[string]any, 0, last-first)
	for i := first; i < last; i++ {
		events = append(events, p.event(i))
	}
	accepted := postBatch(ctx, p.client, p.api, events)
	for i := first; i < last; i++ {
		p.led.answered(i, accepted[p.led.id(i)])
	}
}

func (p *poster) event(i int) map[string]any {
	e := map[string]any{
		"id": p.led.id(i), "type": p.typ, "source": "loadgen", "data": map[string]any{"i": i, "pad": "0123456789abcdef0123456789abcdef"},
	}
	if p.keys > 0 {
		e["ordering_key"] = fmt.Sprintf("k%d", i%p.keys)
	}
	return e
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

// batchAnswer is the part of POST /events/batch's answer the tool reads.
type batchAnswer struct {
	Data []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"data"`
}

// accepted returns the ids the API stored, now ("stored") or before
// ("exists").
func (a batchAnswer) accepted() map[string]bool {
	ids := make(map[string]bool, len(a.Data))
	for _, d := range a.Data {
		if d.Status == "stored" || d.Status == "exists" {
			ids[d.ID] = true
		}
	}
	return ids
}

// postBatch posts events to /events/batch and returns the ids it accepted:
// none if the request failed.
func postBatch(ctx context.Context, client *http.Client, api string, events []map[string]any) map[string]bool {
	b, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/events/batch", bytes.NewReader(b))
	if err != nil {
		return nil
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var ans batchAnswer
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ans) != nil {
		return nil
	}
	return ans.accepted()
}

// send sends body as JSON and returns the answer's status.
func send(ctx context.Context, client *http.Client, method, url string, body any) (int, error) {
	status, _, err := do(ctx, client, method, url, body)
	return status, err
}

// call sends body as JSON and fails unless the answer's status is want.
func call(ctx context.Context, client *http.Client, method, url string, body any, want int) error {
	status, msg, err := do(ctx, client, method, url, body)
	if err != nil {
		return err
	}
	if status != want {
		return fmt.Errorf("%d %s: %s", status, http.StatusText(status), msg)
	}
	return nil
}

// do sends body as JSON and returns the answer's status and the start of
// its body.
func do(ctx context.Context, client *http.Client, method, url string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body) // let the connection be reused
	return resp.StatusCode, msg, nil
}
