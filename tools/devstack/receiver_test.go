package main

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// syncBuffer is a bytes.Buffer the receiver's handlers may write to while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestReceiverNamesTheSubscription delivers one event as it reaches two
// subscriptions, and a delivery signed with another secret: each line of
// the receiver names the subscription, so the two deliveries do not look
// like a duplicate.
func TestReceiverNamesTheSubscription(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out syncBuffer
	srv, err := startReceiver(addr, secret, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	body := []byte(`{"id":"evt_1","type":"order.created","data":{"n":1}}`)
	post := func(sub, key string) int {
		t.Helper()
		signer, err := signing.NewSigner(key)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		req.Header.Set(signing.HeaderID, "evt_1")
		req.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(signing.HeaderSignature, signer.Sign("evt_1", now, body))
		req.Header.Set("X-Dispatch-Subscription-ID", sub)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("demo", secret); code != http.StatusNoContent {
		t.Fatalf("delivery for demo answered %d", code)
	}
	if code := post("orders", secret); code != http.StatusNoContent {
		t.Fatalf("delivery for orders answered %d", code)
	}
	if code := post("payments", signing.GenerateSecret()); code != http.StatusUnauthorized {
		t.Fatalf("delivery signed with another secret answered %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, want := range []string{`delivered evt_1 (order.created) for "demo"`, `delivered evt_1 (order.created) for "orders"`, `REJECTED evt_1 for "payments"`} {
		if i >= len(lines) || !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want it to contain %q\n%s", i+1, lines[min(i, len(lines)-1)], want, out.String())
		}
	}
}
