package main

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		check   func(o options) bool
		wantErr bool
	}{
		{"defaults", nil, func(o options) bool {
			return o.n == 10000 && o.batch == 1 && o.concurrency == 32 && o.subRate == 100000 && o.subConcurrency == 10000 &&
				o.timeout == 5*time.Minute && o.settle == time.Second && len(o.metrics) == 3 && o.metrics[1].name == "delivery-worker" && !o.keep
		}, false},
		{"keep the subscription", []string{"-keep"}, func(o options) bool { return o.keep }, false},
		{"service default limits", []string{"-sub-rate", "0", "-sub-concurrency", "0"}, func(o options) bool {
			return o.subRate == 0 && o.subConcurrency == 0
		}, false},
		{"no metrics", []string{"-metrics", ""}, func(o options) bool { return len(o.metrics) == 0 }, false},
		{"key", []string{"-key", "dsp_x"}, func(o options) bool { return o.key == "dsp_x" }, false},
		{"negative sub-rate", []string{"-sub-rate", "-1"}, nil, true},
		{"negative sub-concurrency", []string{"-sub-concurrency", "-1"}, nil, true},
		{"batch too big", []string{"-batch", "501"}, nil, true},
		{"no events", []string{"-n", "0"}, nil, true},
		{"no clients", []string{"-concurrency", "0"}, nil, true},
		{"bad metrics URL", []string{"-metrics", "localhost:8080"}, nil, true},
		{"stray argument", []string{"20000"}, nil, true},
		{"unknown flag", []string{"-subrate", "5"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.check != nil && !tt.check(o) {
				t.Errorf("options %+v", o)
			}
		})
	}
}

func TestSubscription(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		rate, concurrency int
		want              map[string]any
	}{
		{"raised", 100000, 10000, map[string]any{"rate_limit_per_second": 100000, "max_concurrency": 10000}},
		{"service default rate", 0, 10000, map[string]any{"max_concurrency": 10000}},
		{"service defaults", 0, 0, map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := subscription("id", "http://r/", "load.id", "whsec_x", tt.rate, tt.concurrency)
			limits := map[string]any{}
			for _, k := range []string{"rate_limit_per_second", "max_concurrency"} {
				if v, ok := got[k]; ok {
					limits[k] = v
				}
			}
			if !maps.Equal(limits, tt.want) {
				t.Errorf("limits = %v, want %v", limits, tt.want)
			}
			if got["id"] != "id" || got["url"] != "http://r/" || got["secret"] != "whsec_x" {
				t.Errorf("subscription = %v", got)
			}
		})
	}
}

// fakeAPI is enough of the ingest API for a run: it takes the
// subscription, accepts events and delivers each, signed, copies(i) times
// (0: never), and serves /metrics.
type fakeAPI struct {
	t      *testing.T
	copies func(i int) int
	forge  func(i int) bool // sign event i with another secret

	mu     sync.Mutex
	sub    map[string]any
	gone   bool // the subscription was deleted
	signer *signing.Signer
	wg     sync.WaitGroup
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		_, _ = io.WriteString(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.048576e+06\n")
		return
	}
	if r.Header.Get("Authorization") != "Bearer dsp_test" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/subscriptions":
		var sub map[string]any
		if err := json.NewDecoder(r.Body).Decode(&sub); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		signer, err := signing.NewSigner(sub["secret"].(string))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.sub, f.signer = sub, signer
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodDelete:
		f.mu.Lock()
		f.gone = true
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && r.URL.Path == "/events":
		var e map[string]any
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		f.deliver(e)
	case r.Method == http.MethodPost && r.URL.Path == "/events/batch":
		var b struct{ Events []map[string]any }
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ans batchAnswer
		for _, e := range b.Events {
			ans.Data = append(ans.Data, struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			}{e["id"].(string), "stored"})
			f.deliver(e)
		}
		_ = json.NewEncoder(w).Encode(ans)
	default:
		w.WriteHeader(http.StatusNotFound) // PATCH of the demo subscription: there is none
	}
}

// deliver sends event e to the subscriber in the background.
func (f *fakeAPI) deliver(e map[string]any) {
	f.mu.Lock()
	url, signer := f.sub["url"].(string), f.signer
	f.mu.Unlock()
	id := e["id"].(string)
	i, _ := strconv.Atoi(id[strings.LastIndex(id, "_")+1:])
	if f.forge != nil && f.forge(i) {
		signer, _ = signing.NewSigner(signing.GenerateSecret())
	}
	body, _ := json.Marshal(e)
	f.wg.Go(func() {
		for range f.copies(i) {
			now := time.Now()
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set(signing.HeaderID, id)
			req.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			req.Header.Set(signing.HeaderSignature, signer.Sign(id, now, body))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
}

func TestRun(t *testing.T) {
	t.Parallel()
	once := func(int) int { return 1 }
	tests := []struct {
		name   string
		n      int
		batch  int
		copies func(i int) int
		forge  func(i int) bool
		check  func(t *testing.T, r *report)
	}{
		{"single posts, all delivered", 20, 1, once, nil, func(t *testing.T, r *report) {
			if r.posted != 20 || r.accepted != 20 || r.distinct != 20 || r.lost != 0 || r.duplicates != 0 || len(r.postLatency) != 20 || len(r.e2e) != 20 {
				t.Errorf("report %+v", *r)
			}
		}},
		{"batches, all delivered", 23, 5, once, nil, func(t *testing.T, r *report) {
			if r.posted != 23 || r.accepted != 23 || r.distinct != 23 || r.lost != 0 || len(r.postLatency) != 5 || r.batch != 5 {
				t.Errorf("report %+v", *r)
			}
		}},
		{"one lost, one duplicated", 10, 1, func(i int) int {
			switch i {
			case 3:
				return 0
			case 4:
				return 2
			}
			return 1
		}, nil, func(t *testing.T, r *report) {
			if r.lost != 1 || r.duplicates != 1 || r.distinct != 9 || r.receipts != 10 {
				t.Errorf("lost %d duplicates %d distinct %d receipts %d; want 1, 1, 9, 10", r.lost, r.duplicates, r.distinct, r.receipts)
			}
		}},
		{"a forged signature", 10, 2, once, func(i int) bool { return i == 7 }, func(t *testing.T, r *report) {
			if r.rejected != 1 || r.lost != 1 || r.distinct != 9 {
				t.Errorf("rejected %d lost %d distinct %d; want 1, 1, 9", r.rejected, r.lost, r.distinct)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeAPI{t: t, copies: tt.copies, forge: tt.forge}
			api := httptest.NewServer(f)
			defer api.Close()
			o := options{
				api: api.URL, n: tt.n, batch: tt.batch, concurrency: 4, listen: "127.0.0.1:0",
				timeout: 2 * time.Second, settle: 100 * time.Millisecond, pause: "demo", key: "dsp_test",
				subRate: 0, subConcurrency: 50, metrics: []target{{"api", api.URL}, {"", "http://127.0.0.1:1"}},
			}
			var log strings.Builder
			r, err := run(o, &syncWriter{w: &log})
			f.wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
			f.mu.Lock()
			sub, gone := f.sub, f.gone
			f.mu.Unlock()
			if _, ok := sub["rate_limit_per_second"]; ok || sub["max_concurrency"] != float64(50) {
				t.Errorf("subscription %v: want no rate limit and max_concurrency 50", sub)
			}
			if !gone {
				t.Error("the subscription was not deleted")
			}
			if len(r.rss) != 2 || r.rss[0] != (peak{"api", 1 << 20, true}) || r.rss[1].ok {
				t.Errorf("peaks %+v; want api at 1 MiB and the other n/a", r.rss)
			}
			var table strings.Builder
			r.writeTable(&table)
			if !strings.Contains(table.String(), "| peak RSS http://127.0.0.1:1 ") || !strings.Contains(table.String(), "| n/a ") {
				t.Errorf("table:\n%s", table.String())
			}
			if (r.lost > 0 || r.rejected > 0) != (len(r.problems()) > 0) {
				t.Errorf("problems %q for lost %d rejected %d", r.problems(), r.lost, r.rejected)
			}
		})
	}
}

func TestRunFailsWhenTheSubscriptionIsRefused(t *testing.T) {
	t.Parallel()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer api.Close()
	_, err := run(options{api: api.URL, n: 1, batch: 1, concurrency: 1, listen: "127.0.0.1:0", timeout: time.Second, key: "x"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("err = %v, want the 401", err)
	}
}

// TestRunTimedOut posts to an API that never answers: -timeout ends the
// posting and the report says so.
func TestRunTimedOut(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/subscriptions":
			w.WriteHeader(http.StatusCreated)
		case "/events":
			<-stop
		}
	}))
	defer api.Close()
	defer close(stop) // before Close, which waits for the handlers
	o := options{api: api.URL, n: 100, batch: 1, concurrency: 2, listen: "127.0.0.1:0", timeout: 300 * time.Millisecond, key: "x"}
	r, err := run(o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !r.timedOut || r.posted != 2 || r.failed != 2 || r.lost != 0 || len(r.problems()) != 1 {
		t.Errorf("timed out %v, posted %d, failed %d, lost %d, problems %q; want true, 2, 2, 0, one", r.timedOut, r.posted, r.failed, r.lost, r.problems())
	}
}
