package delivery

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// loopback lets tests deliver to receivers on 127.0.0.1.
var loopback = egress.NewPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})

func testSender() *Sender { return testSenderOn(clock.Real()) }

// testSenderOn is testSender on clk.
func testSenderOn(clk clock.Clock) *Sender {
	return NewSender(SenderConfig{Version: "test", Policy: loopback, Clock: clk})
}

// heldHandshake holds each TLS handshake of a receiver until the test lets
// it end, announcing it on started, so that a connection is ready when the
// test says rather than after a guessed time.
type heldHandshake struct {
	started chan struct{}
	release chan struct{}
}

func newHeldHandshake() *heldHandshake {
	return &heldHandshake{started: make(chan struct{}, 1), release: make(chan struct{})}
}

func (h *heldHandshake) hold() {
	h.started <- struct{}{}
	<-h.release
}

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

	a := testSender().Send(context.Background(), job(srv.URL, secret), 5*time.Second, Turn{}).Attempt
	require.True(t, a.Succeeded(), "%+v", a)
	require.Equal(t, "thanks", a.ResponseBody)
	r := <-got
	require.Equal(t, "evt_1", r.Header.Get("X-Dispatch-Event-ID"))
	require.Equal(t, "order.created", r.Header.Get("X-Dispatch-Event-Type"))
	require.Equal(t, "sub_1", r.Header.Get("X-Dispatch-Subscription-ID"))
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
		w.WriteHeader(http.StatusInternalServerError)
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
	mux.HandleFunc("/ok", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/hang", func(_ http.ResponseWriter, r *http.Request) {
		// Once the body is read the server notices the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	})
	mux.HandleFunc("/big-headers", func(w http.ResponseWriter, _ *http.Request) {
		for i := range 40 {
			w.Header().Set(fmt.Sprintf("X-Junk-%d", i), strings.Repeat("j", 4000))
		}
	})
	mux.HandleFunc("/not-http", func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_, _ = buf.WriteString("SSH-2.0-OpenSSH_9.6\r\n\r\n")
			_ = buf.Flush()
			_ = conn.Close()
		}
	})
	mux.HandleFunc("/reset", func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.(*net.TCPConn).SetLinger(0) // RST instead of FIN
			_ = conn.Close()
		}
	})
	mux.HandleFunc("/switch", switchProtocols)
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
		{srv.URL + "/big-headers", domain.ErrorResponseTooLarge, 0, 0, 0},
		{srv.URL + "/not-http", domain.ErrorInvalidResponse, 0, 0, 0},
		{srv.URL + "/switch", domain.ErrorInformational, http.StatusSwitchingProtocols, 0, 0},
	}
	sender := testSender()
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			res := sender.Send(context.Background(), job(tt.url, secret), timeout, Turn{})
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

// switchProtocols answers 101 Switching Protocols, as a WebSocket server
// would, sends the first byte of a frame and then keeps the connection
// open, never finishing the frame, until the client hangs up.
func switchProtocols(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81")
	_ = buf.Flush()
	_, _ = io.Copy(io.Discard, conn) // until the client closes the connection
}

// TestSendEndsAnUpgradeWithinTheTimeout: a 101 hands the raw connection
// back as the body, out of the request context's reach; an attempt that
// read it would never end.
func TestSendEndsAnUpgradeWithinTheTimeout(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(switchProtocols))
	t.Cleanup(srv.Close)
	const timeout = time.Second
	done := make(chan Result, 1)
	go func() {
		done <- testSender().Send(context.Background(), job(srv.URL, signing.GenerateSecret()), timeout, Turn{})
	}()
	select {
	case res := <-done:
		require.Equal(t, domain.ErrorInformational, res.Attempt.ErrorClass, res.Attempt.Error)
		require.Equal(t, http.StatusSwitchingProtocols, *res.Attempt.StatusCode)
		require.Less(t, res.Attempt.Duration, timeout)
	case <-time.After(timeout + 10*time.Second):
		t.Fatalf("an attempt answered with 101 was still running %v after its %v timeout", 10*time.Second, timeout)
	}
}

func TestSendRefusesInternalAddressesByDefault(t *testing.T) {
	t.Parallel()
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	t.Cleanup(srv.Close)
	strict := NewSender(SenderConfig{Version: "test"})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, u := range []string{
		srv.URL,
		"http://localhost:" + port,  // a name that resolves to loopback
		"http://[::1%25lo]:" + port, // a zone must not hide loopback
		"http://[::ffff:127.0.0.1]:" + port,
		"http://2130706433:" + port,
		"http://169.254.169.254/latest/meta-data/", // refused before any packet leaves
	} {
		a := strict.Send(context.Background(), job(u, signing.GenerateSecret()), 5*time.Second, Turn{}).Attempt
		require.Contains(t, []domain.ErrorClass{domain.ErrorBlocked, domain.ErrorDNS}, a.ErrorClass, "%s: %s", u, a.Error)
		require.NotContains(t, a.Error, "127.0.0.1:"+port, "the error names the internal address")
	}
	require.False(t, hit, "no request may reach the internal address")
}

func TestSenderNeverUsesAProxy(t *testing.T) {
	t.Parallel()
	// HTTP_PROXY would have the proxy resolve and connect on the worker's
	// behalf: only the proxy's address would be judged (ADR 13).
	tr := testSender().transports.shared.Transport.(*http.Transport)
	require.Nil(t, tr.Proxy)
}

func TestSnippetReplacesInvalidBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string
	}{
		{"latin-1", "Fehler: ung\xfcltige Anfrage", "Fehler: ung\uFFFDltige Anfrage"},
		{"nul bytes", "a\x00b", "ab"},
		{"utf-8", "héllo ✓", "héllo ✓"},
		{"binary", "\xff\xfe\x00x", "\uFFFD\uFFFDx"},
		{"long", strings.Repeat("\xe9", 5000), strings.Repeat("\uFFFD", maxResponseSnippet)},
		// A character that starts before the cut is kept whole.
		{"rune across the cut", strings.Repeat("a", maxResponseSnippet-1) + "✓tail", strings.Repeat("a", maxResponseSnippet-1) + "✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readSnippet(strings.NewReader(tt.body))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// internalAddress matches an IPv4 address with a port, as a resolver's
// address or a worker's own address would appear in Go's errors.
var internalAddress = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

func TestErrorsDoNotNameThisNetwork(t *testing.T) {
	t.Parallel()
	a := testSender().Send(context.Background(), job("http://no-such-host.invalid/hook", signing.GenerateSecret()), 5*time.Second, Turn{}).Attempt
	require.Equal(t, domain.ErrorDNS, a.ErrorClass, a.Error)
	require.Contains(t, a.Error, "no-such-host.invalid")
	require.NotRegexp(t, internalAddress, a.Error, "the error names this network's resolver")

	// A connection reset mid-response names only the destination.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Read(make([]byte, 4096))
			_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"))
			_ = conn.(*net.TCPConn).SetLinger(0)
			_ = conn.Close()
		}
	}()
	err = &net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 4), Port: 51234},
		Addr: &net.TCPAddr{IP: net.IPv4(93, 184, 216, 34), Port: 443}, Err: syscall.ECONNRESET}
	require.Equal(t, "read tcp 93.184.216.34:443: connection reset by peer", errorText(err))
	a = testSender().Send(context.Background(), job("http://"+ln.Addr().String()+"/", signing.GenerateSecret()), 5*time.Second, Turn{}).Attempt
	require.Equal(t, 200, *a.StatusCode, "a 200 whose body is cut short was still answered")
	require.Equal(t, "partial", a.ResponseBody)
}

// A request is written at its turn, on a connection made ready meanwhile,
// and its attempt starts when it was written: the receiver's TLS handshake
// (taking 300 ms of the sender's clock here) is neither part of a started
// attempt nor a delay after a turn it had time to precede.
func TestSendWritesAtItsTurn(t *testing.T) {
	t.Parallel()
	const handshake = 300 * time.Millisecond
	tests := []struct {
		name string
		wait time.Duration
	}{
		{"turn now: written once the connection is ready", 0},
		{"turn later: the connection is ready before it", time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
			held := newHeldHandshake()
			arrived := make(chan time.Time, 1)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				arrived <- clk.Now()
				w.WriteHeader(http.StatusNoContent)
			}))
			srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				held.hold()
				return nil, nil
			}}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			sender := testSenderOn(clk)
			sender.transports.shared.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()

			start := clk.Now()
			turn := start.Add(tt.wait)
			done := make(chan domain.Attempt, 1)
			go func() {
				done <- sender.Send(context.Background(), job(srv.URL, signing.GenerateSecret()), 5*time.Second, TurnAt(turn)).Attempt
			}()
			<-held.started
			clk.Advance(handshake)
			ready := clk.Now()
			close(held.release)
			if tt.wait > handshake {
				// Ready before its turn, the request waits for it on the
				// sender's clock, and nothing reaches the receiver until then.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				require.NoError(t, clk.BlockUntilWaiting(ctx, 1), "the request does not wait for its turn")
				require.Empty(t, arrived, "written before its turn")
				clk.Set(turn)
			}
			a := <-done
			require.True(t, a.Succeeded(), "%+v", a)
			at := <-arrived
			require.False(t, a.StartedAt.Before(ready), "started %v before the handshake ended", ready.Sub(a.StartedAt))
			require.False(t, a.StartedAt.Before(turn), "started %v before its turn", turn.Sub(a.StartedAt))
			require.False(t, at.Before(a.StartedAt), "arrived before it started")
			if tt.wait > handshake {
				require.True(t, a.StartedAt.Equal(turn), "started %v after its turn, on a connection ready before it", a.StartedAt.Sub(turn))
			}
		})
	}
}

// A request that misses its turn by more than TurnSlack is not written:
// neither when its handler comes to it late nor when its HTTP/2
// connection is ready late (the TLS handshake held 300 ms past a turn
// 10 ms away). Nothing reaches the receiver, and the sender's pool still
// serves the next request. (A fresh HTTP/1 connection ready late is
// written at once: TestSendWritesAtItsTurn.)
func TestSendDoesNotWriteALateRequest(t *testing.T) {
	t.Parallel()
	const handshake = 300 * time.Millisecond
	tests := []struct {
		name  string
		http2 bool
		turn  time.Duration // from the call
	}{
		{"turn long past when called", false, -time.Second},
		{"turn long past when called, HTTP/2", true, -time.Second},
		{"connection ready after its turn, HTTP/2", true, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
			held := newHeldHandshake()
			var arrived, proto atomic.Int64
			var slow atomic.Bool
			slow.Store(tt.turn > 0)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived.Add(1)
				proto.Store(int64(r.ProtoMajor))
				w.WriteHeader(http.StatusNoContent)
			}))
			srv.EnableHTTP2 = tt.http2
			srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				if slow.Load() {
					held.hold()
				}
				return nil, nil
			}}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			sender := testSenderOn(clk)
			sender.transports.shared.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()

			done := make(chan Result, 1)
			go func() {
				done <- sender.Send(context.Background(), job(srv.URL, signing.GenerateSecret()), 5*time.Second, TurnAt(clk.Now().Add(tt.turn)))
			}()
			if slow.Load() {
				<-held.started
				clk.Advance(handshake)
				close(held.release)
			}
			res := <-done
			require.True(t, res.Late, "%+v", res.Attempt)
			require.Zero(t, arrived.Load(), "a late request reached the receiver")

			slow.Store(false)
			res = sender.Send(context.Background(), job(srv.URL, signing.GenerateSecret()), 5*time.Second, TurnAt(clk.Now()))
			require.False(t, res.Late)
			require.True(t, res.Attempt.Succeeded(), "%+v", res.Attempt)
			require.Equal(t, int64(1), arrived.Load())
			if tt.http2 {
				require.Equal(t, int64(2), proto.Load(), "the receiver spoke HTTP/2")
			}
		})
	}
}

// A turn is placed from both ends of the limiter's call: the request waits
// until the latest its turn can be and is late after the earliest plus
// TurnSlack, so an answer read late (its worker descheduled after the
// limiter answered) neither moves its turns onto the next answer's nor
// writes them late.
func TestTurnOfAnAnswer(t *testing.T) {
	t.Parallel()
	asked := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	const delay = 100 * time.Millisecond
	tests := []struct {
		name     string
		call     time.Duration // from asked to answered
		writable bool          // whether any moment is within the turn
	}{
		{"answered at once", 0, true},
		{"answered within the slack", 30 * time.Millisecond, true},
		{"answered after the slack", 200 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			turn := turnOf(asked, asked.Add(tt.call), delay)
			require.Equal(t, asked.Add(tt.call+delay), turn.At, "not before the latest the limiter's turn can be")
			require.Equal(t, asked.Add(delay+TurnSlack), turn.Deadline, "not after the earliest plus the slack")
			require.Equal(t, tt.writable, !turn.late(turn.At))
		})
	}
	require.False(t, Turn{}.late(asked.Add(time.Hour)), "the zero turn is never late")
}

// A request Dispatch cannot make itself is its own failure, classed
// `internal`, not a network error of the destination's, and nothing
// reaches the receiver.
func TestSendClassesItsOwnFailures(t *testing.T) {
	t.Parallel()
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() {
		srv.Close()
		require.Zero(t, arrived.Load(), "a request reached the receiver")
	})
	tests := []struct {
		name string
		job  store.Job
	}{
		{"a signing secret that does not parse", job(srv.URL, "whsec_not base64!")},
		{"no signing secret", job(srv.URL)},
		{"a URL no request can be made of", job("http://[::1]:namedport/", signing.GenerateSecret())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := testSender().Send(context.Background(), tt.job, 5*time.Second, Turn{}).Attempt
			require.Equal(t, domain.ErrorInternal, a.ErrorClass, a.Error)
		})
	}
}

// TestSendAddsCustomHeaders pins that a subscription's custom headers
// arrive as set and never replace Dispatch's own, signature included.
func TestSendAddsCustomHeaders(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	verifier, err := signing.NewVerifier([]string{secret})
	require.NoError(t, err)
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifier.VerifyHeaders(r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got <- r.Header
	}))
	t.Cleanup(srv.Close)

	j := job(srv.URL, secret)
	j.Headers = map[string]string{
		"X-Api-Key": "k3y", "authorization": "Basic dTpw", "X-Empty": "",
		// Refused by the API; a row written around it still cannot win.
		"webhook-signature": "v1,forged", "X-Dispatch-Event-ID": "forged", "User-Agent": "forged",
	}
	a := testSender().Send(context.Background(), j, 5*time.Second, Turn{}).Attempt
	require.True(t, a.Succeeded(), "%+v", a)
	h := <-got
	require.Equal(t, []string{"k3y"}, h.Values("X-Api-Key"))
	require.Equal(t, []string{"Basic dTpw"}, h.Values("Authorization"))
	require.Equal(t, []string{""}, h.Values("X-Empty"))
	require.Len(t, h.Values("webhook-signature"), 1)
	require.NotEqual(t, "v1,forged", h.Get("webhook-signature"))
	require.Equal(t, []string{"evt_1"}, h.Values("X-Dispatch-Event-ID"))
	require.Equal(t, "Dispatch/test", h.Get("User-Agent"))
	for _, name := range []string{"Authorization", "X-Api-Key", "X-Empty"} {
		require.Contains(t, a.RequestHeaders, "\n"+name+": "+domain.MaskedValue, "the attempt stores %s by name, masked", name)
	}
	for _, name := range []string{"Webhook-Signature", "X-Dispatch-Event-Id", "User-Agent"} {
		require.NotContains(t, a.RequestHeaders, name+": "+domain.MaskedValue, "%s was Dispatch's own", name)
	}
	require.NotContains(t, a.RequestHeaders, "k3y")
	require.NotContains(t, a.RequestHeaders, "dTpw")
}

// TestSendWithClientCertificate delivers to a receiver that requires a
// client certificate from a CA the test makes, and whose own certificate
// chains to that CA only: delivered with the subscription's certificate
// and CA bundle; refused and classified as tls without a certificate,
// with an expired one, or without the CA bundle.
func TestSendWithClientCertificate(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.IssueValid(t, "receiver").TLS}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	good := ca.IssueValid(t, "dispatch")
	expired := ca.Issue(t, "dispatch-old", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	tests := []struct {
		name      string
		tls       *domain.ClientTLS
		wantClass domain.ErrorClass
	}{
		{"with the certificate", &domain.ClientTLS{Certificate: good.CertPEM, Key: good.KeyPEM, CABundle: ca.PEM}, domain.ErrorNone},
		{"without a certificate", &domain.ClientTLS{CABundle: ca.PEM}, domain.ErrorTLS},
		{"with an expired certificate", &domain.ClientTLS{Certificate: expired.CertPEM, Key: expired.KeyPEM, CABundle: ca.PEM}, domain.ErrorTLS},
		{"without the CA bundle", &domain.ClientTLS{Certificate: good.CertPEM, Key: good.KeyPEM}, domain.ErrorTLS},
		{"without any settings", nil, domain.ErrorTLS},
	}
	s := testSender()
	for _, tt := range tests {
		j := job(srv.URL, signing.GenerateSecret())
		j.TLS = tt.tls
		a := s.Send(context.Background(), j, 5*time.Second, Turn{}).Attempt
		require.Equal(t, tt.wantClass, a.ErrorClass, "%s: %+v", tt.name, a)
		if tt.wantClass == domain.ErrorNone {
			require.Equal(t, "hello dispatch", a.ResponseBody, tt.name)
		}
	}
	require.Equal(t, 4, s.transports.len(), "one transport per distinct TLS settings")
}

// TestTLSTransportsAreBounded pins that the transports kept for TLS
// settings are at most their bound, the least recently used evicted, and
// that the same settings share one.
func TestTLSTransportsAreBounded(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	shared := &http.Client{}
	tr := newTransports(&http.Transport{}, shared, 2)
	c0, err := tr.client(nil)
	require.NoError(t, err)
	require.Same(t, shared, c0, "no settings: the shared client")
	settings := []*domain.ClientTLS{{CABundle: ca.PEM}, {CABundle: ca.PEM + "\n"}, {CABundle: ca.PEM + "\n\n"}}
	a, err := tr.client(settings[0])
	require.NoError(t, err)
	again, err := tr.client(&domain.ClientTLS{CABundle: ca.PEM})
	require.NoError(t, err)
	require.Same(t, a, again, "equal settings share a transport")
	_, err = tr.client(settings[1])
	require.NoError(t, err)
	_, err = tr.client(settings[0]) // most recently used: settings[1] goes next
	require.NoError(t, err)
	_, err = tr.client(settings[2])
	require.NoError(t, err)
	require.Equal(t, 2, tr.len())
	still, err := tr.client(settings[0])
	require.NoError(t, err)
	require.Same(t, a, still, "the recently used one was kept")
	_, err = tr.client(&domain.ClientTLS{CABundle: "not PEM"})
	require.ErrorIs(t, err, errTLSSettings)
}

// TestSendThroughAConnectProxy delivers through a CONNECT proxy the test
// runs: http and https destinations alike go through a tunnel asked for by
// name, with the proxy's credentials; a name the worker's policy refuses is
// never asked of the proxy; a destination the proxy refuses (403) is
// blocked, and a proxy that cannot reach one (502) a network failure.
func TestSendThroughAConnectProxy(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	got := make(chan string, 10)
	handler := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Get("X-Dispatch-Event-ID") })
	plain := httptest.NewServer(handler)
	t.Cleanup(plain.Close)
	secure := httptest.NewUnstartedServer(handler)
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{ca.IssueValid(t, "receiver").TLS}}
	secure.StartTLS()
	t.Cleanup(secure.Close)
	closed := httptest.NewServer(handler)
	closed.Close()

	_, refusedPort, _ := net.SplitHostPort(strings.TrimPrefix(plain.URL, "http://"))
	proxy := testkit.NewConnectProxy(t, testkit.ProxyOptions{
		Refuse: func(target string) bool { return target == "refused.example:"+refusedPort },
		Hosts:  map[string]string{"receiver.example": "127.0.0.1"},
	})
	u, err := egress.ParseProxyURL(strings.Replace(proxy.URL, "http://", "http://dispatch:s3cret@", 1))
	require.NoError(t, err)
	names := fakeResolver{
		"receiver.example": {netip.MustParseAddr("127.0.0.1")},
		"refused.example":  {netip.MustParseAddr("127.0.0.1")},
		"internal.example": {netip.MustParseAddr("10.0.0.1")},
	}
	s := NewSender(SenderConfig{Version: "test", Policy: loopback, Proxy: u, Resolver: names})

	port := func(raw string) string {
		_, p, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(raw, "https://"), "http://"))
		return p
	}
	tests := []struct {
		name      string
		url       string
		tls       *domain.ClientTLS
		wantClass domain.ErrorClass
		asked     string // the CONNECT target, "" when the proxy must not be asked
	}{
		{"http by name", "http://receiver.example:" + port(plain.URL) + "/hook", nil, domain.ErrorNone, "receiver.example:" + port(plain.URL)},
		{"https by address", secure.URL + "/hook", &domain.ClientTLS{CABundle: ca.PEM}, domain.ErrorNone, "127.0.0.1:" + port(secure.URL)},
		{"refused by the worker's policy", "http://internal.example:" + port(plain.URL) + "/", nil, domain.ErrorBlocked, ""},
		{"a name that does not resolve", "http://nowhere.example/", nil, domain.ErrorDNS, ""},
		{"refused by the proxy", "http://refused.example:" + refusedPort + "/", nil, domain.ErrorBlocked, "refused.example:" + refusedPort},
		{"unreachable behind the proxy", closed.URL + "/", nil, domain.ErrorNetwork, "127.0.0.1:" + port(closed.URL)},
	}
	for _, tt := range tests {
		before, _ := proxy.Asked()
		j := job(tt.url, signing.GenerateSecret())
		j.TLS = tt.tls
		a := s.Send(context.Background(), j, 5*time.Second, Turn{}).Attempt
		require.Equal(t, tt.wantClass, a.ErrorClass, "%s: %+v", tt.name, a)
		if tt.wantClass == domain.ErrorNone {
			require.Equal(t, "evt_1", <-got, tt.name)
		}
		asked, headers := proxy.Asked()
		if tt.asked == "" {
			require.Len(t, asked, len(before), "%s: the proxy was asked", tt.name)
			continue
		}
		require.Len(t, asked, len(before)+1, tt.name)
		require.Equal(t, tt.asked, asked[len(asked)-1], tt.name)
		require.Equal(t, "Basic ZGlzcGF0Y2g6czNjcmV0", headers[len(headers)-1].Get("Proxy-Authorization"), tt.name)
		if tt.name == "refused by the proxy" {
			require.Contains(t, a.Error, "403", tt.name)
		}
	}
}

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
