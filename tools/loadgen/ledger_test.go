package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// syncWriter lets goroutines share a writer. When wrote is set, each
// write is announced on it as long as it has room.
type syncWriter struct {
	mu    sync.Mutex
	w     io.Writer
	wrote chan struct{}
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.w.Write(p)
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func TestLedgerIndex(t *testing.T) {
	t.Parallel()
	l := newLedger("load_1", 10)
	tests := []struct {
		id     string
		want   int
		wantOK bool
	}{
		{"load_1_0", 0, true},
		{"load_1_9", 9, true},
		{"load_1_10", 0, false},
		{"load_1_-1", 0, false},
		{"load_1_01", 0, false},
		{"load_1_+1", 0, false},
		{"load_1_", 0, false},
		{"load_2_1", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			got, ok := l.index(tt.id)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("index(%q) = %d, %v; want %d, %v", tt.id, got, ok, tt.want, tt.wantOK)
			}
			if ok && l.id(got) != tt.id {
				t.Errorf("id(%d) = %q, want %q", got, l.id(got), tt.id)
			}
		})
	}
}

// signed is a delivery of id signed with secret.
func signed(t *testing.T, secret, id string, body []byte) *http.Request {
	t.Helper()
	s, err := signing.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set(signing.HeaderID, id)
	r.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	r.Header.Set(signing.HeaderSignature, s.Sign(id, now, body))
	return r
}

func TestReceiver(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	v, err := signing.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	led := newLedger("run", 3)
	led.sent(0, 3)
	rc := &receiver{verifier: v, led: led}
	body := []byte(`{"i":0}`)
	deliveries := []struct {
		req  *http.Request
		want int
	}{
		{signed(t, secret, "run_0", body), http.StatusNoContent},
		{signed(t, secret, "run_0", body), http.StatusNoContent}, // duplicate
		{signed(t, secret, "run_2", body), http.StatusNoContent},
		{signed(t, secret, "other_1", body), http.StatusNoContent},                    // verified, not ours
		{signed(t, signing.GenerateSecret(), "run_1", body), http.StatusUnauthorized}, // wrong secret
		{httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)), http.StatusUnauthorized},
	}
	for i, d := range deliveries {
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, d.req)
		if w.Code != d.want {
			t.Errorf("delivery %d answered %d, want %d", i, w.Code, d.want)
		}
	}
	if got := led.distinct.Load(); got != 2 {
		t.Errorf("distinct = %d, want 2", got)
	}
	if got := led.receipts[0].Load(); got != 2 {
		t.Errorf("receipts of run_0 = %d, want 2", got)
	}
	if got := led.rejected.Load(); got != 2 {
		t.Errorf("rejected = %d, want 2", got)
	}
	if got := led.foreign.Load(); got != 1 {
		t.Errorf("foreign = %d, want 1", got)
	}
	if got := len(led.takeRecent()); got != 2 {
		t.Errorf("recent latencies = %d, want 2 (first deliveries only)", got)
	}
	if got := len(led.takeRecent()); got != 0 {
		t.Errorf("recent latencies after taking them = %d, want 0", got)
	}
}

func TestWaitDelivered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		accepted  []bool
		delivered []bool
		want      bool
	}{
		{"all delivered", []bool{true, true, true}, []bool{true, true, true}, true},
		{"failed posts are not waited for", []bool{true, false, true}, []bool{true, false, true}, true},
		{"one missing", []bool{true, true, true}, []bool{true, false, true}, false},
		{"nothing accepted", []bool{false, false}, []bool{false, false}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLedger("run", len(tt.accepted))
			for i := range tt.accepted {
				l.accepted[i].Store(tt.accepted[i])
				if tt.delivered[i] {
					l.firstAt[i].Store(1)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if got := l.waitDelivered(ctx, nil); got != tt.want { // no tick: checked once
				t.Errorf("waitDelivered = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWaitDeliveredSeesLateDeliveries(t *testing.T) {
	t.Parallel()
	l := newLedger("run", 3)
	for i := range 3 {
		l.accepted[i].Store(true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A tick is taken only once waitDelivered has checked and found an
	// event missing, so each delivery after the first arrives after a
	// check that did not see it.
	tick := make(chan time.Time)
	done := make(chan bool, 1)
	go func() { done <- l.waitDelivered(ctx, tick) }()
	for _, i := range []int{2, 0} {
		l.received(l.id(i))
		select {
		case tick <- time.Time{}:
		case ok := <-done:
			t.Fatalf("waitDelivered = %v with event 1 missing", ok)
		}
	}
	l.received(l.id(1))
	var ok bool
	select {
	case tick <- time.Time{}:
		ok = <-done
	case ok = <-done: // its check after the last tick already saw event 1
	}
	if !ok {
		t.Fatal("waitDelivered gave up")
	}
}
