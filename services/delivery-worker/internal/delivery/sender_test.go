package delivery

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

func job(url string, secrets ...string) store.Job {
	return store.Job{
		DeliveryID: 7, SubscriptionID: "sub_1", Attempt: 1, URL: url, Secrets: secrets,
		Event: domain.Event{ID: "evt_1", Type: "order.created", Source: "shop", Data: []byte(`{"total":12}`), ReceivedAt: time.Unix(1700000000, 0)},
	}
}

func TestSendSignsAndDescribesSuccess(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	verifier, err := signing.NewVerifier([]string{secret})
	require.NoError(t, err)
	got := make(chan *http.Request, 1)
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		if err := verifier.VerifyHeaders(r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got <- r
		_, _ = w.Write([]byte("thanks"))
	}))
	t.Cleanup(srv.Close)

	a := NewSender("test", loopback).Send(context.Background(), job(srv.URL, secret), 5*time.Second).Attempt
	require.True(t, a.Succeeded(), "%+v", a)
	require.Equal(t, "thanks", a.ResponseBody)
	r := <-got
	require.Equal(t, "evt_1", r.Header.Get("X-Dispatch-Event-ID"))
	require.Equal(t, "order.created", r.Header.Get("X-Dispatch-Event-Type"))
	require.Equal(t, r.Header.Get("webhook-timestamp"), r.Header.Get("X-Dispatch-Timestamp"))
	require.Equal(t, r.Header.Get("webhook-signature"), r.Header.Get("X-Dispatch-Signature"))
	require.Equal(t, "Dispatch/test", r.Header.Get("User-Agent"))
	var p map[string]any
	require.NoError(t, json.Unmarshal(body, &p))
	require.Equal(t, map[string]any{"id": "evt_1", "type": "order.created", "source": "shop", "timestamp": "2023-11-14T22:13:20Z", "data": map[string]any{"total": 12.0}}, p)
}

func TestSendClassifiesFailures(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	mux := http.NewServeMux()
	mux.HandleFunc("/500", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(500)
		_, _ = w.Write([]byte("db down" + strings.Repeat("x", 5000)))
	})
	mux.HandleFunc("/429", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "42")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	mux.HandleFunc("/500-retry-after", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "42") // only 429 and 503 are honoured
		w.WriteHeader(http.StatusInternalServerError)
	})
	mux.HandleFunc("/302", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("/hang", func(_ http.ResponseWriter, r *http.Request) {
		// Once the body is read the server notices the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	})
	mux.HandleFunc("/reset", func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.(*net.TCPConn).SetLinger(0) // RST instead of FIN
			_ = conn.Close()
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(mux) // its certificate is not trusted by the sender
	t.Cleanup(tlsSrv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String() + "/"
	require.NoError(t, ln.Close())

	tests := []struct {
		url        string
		class      domain.ErrorClass
		code       int
		retryAfter time.Duration
		timeout    time.Duration // default 5 s; short only where the timeout is the point
	}{
		{srv.URL + "/500", domain.ErrorHTTPStatus, 500, 0, 0},
		{srv.URL + "/429", domain.ErrorHTTPStatus, 429, 42 * time.Second, 0},
		{srv.URL + "/500-retry-after", domain.ErrorHTTPStatus, 500, 0, 0},
		{srv.URL + "/302", domain.ErrorHTTPStatus, 302, 0, 0},
		{srv.URL + "/hang", domain.ErrorTimeout, 0, 0, 300 * time.Millisecond},
		{srv.URL + "/reset", domain.ErrorConnectionReset, 0, 0, 0},
		{refused, domain.ErrorConnectionRefused, 0, 0, 0},
		{tlsSrv.URL + "/ok", domain.ErrorTLS, 0, 0, 0},
	}
	sender := NewSender("test", loopback)
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			res := sender.Send(context.Background(), job(tt.url, secret), timeout)
			a := res.Attempt
			require.Equal(t, tt.retryAfter, res.RetryAfter)
			require.False(t, a.Succeeded())
			require.Equal(t, tt.class, a.ErrorClass, a.Error)
			if tt.code != 0 {
				require.Equal(t, tt.code, *a.StatusCode)
			} else {
				require.Nil(t, a.StatusCode)
			}
			require.LessOrEqual(t, len(a.ResponseBody), maxResponseSnippet)
		})
	}
}
