package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
	"github.com/dispatch-webhooks/dispatch/libs/retry"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Response reading limits: the body is drained up to maxResponseRead so the
// connection can be reused, and its first maxResponseSnippet bytes are kept.
const (
	maxResponseRead    = 64 << 10
	maxResponseSnippet = 1 << 10
)

// DefaultMaxResponseHeaderBytes bounds a receiver's response headers unless
// SenderConfig says otherwise. Go's own default is 10 MB, which a hostile
// receiver can make every one of a worker's slots hold at once.
const DefaultMaxResponseHeaderBytes = 64 << 10

// SenderConfig tunes a Sender.
type SenderConfig struct {
	// Version goes into the User-Agent.
	Version string
	// Policy decides which addresses may be dialled.
	Policy egress.Policy
	// MaxResponseHeaderBytes bounds a response's headers; zero means
	// DefaultMaxResponseHeaderBytes.
	MaxResponseHeaderBytes int
	// Traceparent sends the attempt's W3C trace context (traceparent and
	// tracestate, never baggage) to the receiver, so that a receiver that
	// traces joins the trace (DELIVERY_TRACEPARENT).
	Traceparent bool
	// TracerProvider traces each POST as a client span; nil means
	// OpenTelemetry's global provider, a no-op unless tracing is on.
	TracerProvider trace.TracerProvider
	// Proxy, if set, is an HTTP CONNECT proxy every delivery goes through
	// (DELIVERY_PROXY_URL, ADR 13), as egress.ParseProxyURL reads it.
	Proxy *url.URL
	// Resolver resolves destination names to judge them before asking
	// Proxy for them; nil means net.DefaultResolver. Unused without Proxy.
	Resolver egress.Resolver
	// Clock times attempts, OAuth2 tokens' lifetimes and Retry-After
	// dates, and turns are on it: a request waits on it for its turn
	// [clock.Real()]. Network deadlines and timeouts stay on the system
	// clock, which net/http and the kernel keep.
	Clock clock.Clock
}

// Sender makes one signed HTTP POST per attempt.
type Sender struct {
	clock       clock.Clock
	transports  *transports
	tokens      *tokens
	userAgent   string
	traceparent bool
	tracer      trace.Tracer
}

// NewSender returns a Sender whose connections are pooled per host and
// reused across deliveries. Every address dialled is judged by the policy
// after DNS resolution. Redirects are not followed: a 3xx is a failed
// attempt, as receivers are expected to answer at the URL they registered,
// and following one would lead wherever the receiver likes. HTTP_PROXY is
// never used: a proxy would resolve and connect on our behalf, out of the
// policy's sight (ADR 13). Only cfg.Proxy, an explicit setting, sends
// deliveries through a proxy, each destination name judged first.
func NewSender(cfg SenderConfig) *Sender {
	if cfg.MaxResponseHeaderBytes <= 0 {
		cfg.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: cfg.Policy.Control}).DialContext,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    128,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: int64(cfg.MaxResponseHeaderBytes),
		ForceAttemptHTTP2:      true,
	}
	if cfg.Proxy != nil {
		transport.DialContext = newConnectDialer(cfg.Proxy, cfg.Policy, cfg.Resolver).DialContext
	}
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Sender{
		clock:       cfg.Clock,
		transports:  newTransports(transport, client, MaxTLSTransports),
		tokens:      newTokens(client, cfg.Clock),
		userAgent:   "Dispatch/" + cfg.Version,
		traceparent: cfg.Traceparent,
		tracer:      tracerOf(cfg.TracerProvider),
	}
}

// Now reads the Sender's clock, which turns are on.
func (s *Sender) Now() time.Time { return s.clock.Now() }

// payload is the JSON body every delivery carries.
type payload struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Source    string    `json:"source,omitempty"`
	Timestamp time.Time `json:"timestamp"`
	// OrderingKey is signed with the rest, so a receiver can trust it.
	OrderingKey string          `json:"ordering_key,omitempty"`
	Data        json.RawMessage `json:"data"`
}

// Body returns the exact bytes delivered (and signed) for an event.
func Body(e domain.Event) ([]byte, error) {
	return json.Marshal(payload{ID: e.ID, Type: e.Type, Source: e.Source, Timestamp: e.ReceivedAt.UTC(), OrderingKey: e.OrderingKey, Data: e.Data})
}

// Result is what one attempt found out.
type Result struct {
	Attempt domain.Attempt
	// RetryAfter is the receiver's Retry-After on a 429 or 503, or zero.
	RetryAfter time.Duration
	// Late reports that the request missed its turn by more than
	// TurnSlack (its worker or its connection was not ready in time) and
	// was not written: nothing reached the receiver, and Attempt is no
	// attempt.
	Late bool
}

// TurnSlack is how long after its turn a request may still be written
// (ADR 29). A later one is not written, so that requests whose turns
// passed while their worker could not run do not reach the receiver
// together: a request goes at most TurnSlack after its turn, which lets
// a destination see at most 5 % more than its limit in a second. The one
// exception is a request on an HTTP/1 connection dialled for it and
// ready only after its turn: it goes when the connection is ready.
const TurnSlack = 50 * time.Millisecond

// Turn is when a request may be written, on the Sender's clock: not before
// At, and not after Deadline. The zero Turn is at once.
type Turn struct {
	At, Deadline time.Time
}

// TurnAt is the turn at t with the whole of TurnSlack.
func TurnAt(t time.Time) Turn { return Turn{At: t, Deadline: t.Add(TurnSlack)} }

// turnOf places a turn answered as delay from the limiter's now, which
// lies somewhere between asked (just before the call) and answered (just
// after it). The request waits until the latest the turn can be and is
// late after the earliest it can be plus TurnSlack: a turn whose answer
// took long to read does not move later and overlap the next answer's
// turns, which the limiter spaced after it (ADR 29). An answer that took
// longer than TurnSlack has no window left: its requests ask again.
func turnOf(asked, answered time.Time, delay time.Duration) Turn {
	return Turn{At: answered.Add(delay), Deadline: asked.Add(delay + TurnSlack)}
}

// late reports whether a request ready at now has missed its turn.
func (t Turn) late(now time.Time) bool {
	return !t.Deadline.IsZero() && now.After(t.Deadline)
}

// errLate cancels a request that missed its turn.
var errLate = errors.New("the request missed its turn")

// Send attempts the job once within timeout and describes what happened.
// It never returns an error: every failure is an attempt outcome. The
// request is written within turn (the zero Turn: at once), its turn in
// the destination's pace (resilience.Admission.Delay after the limiter's
// now): its connection is taken from the pool or dialled at
// once, and the request waits on it, so that it reaches the receiver at
// its turn rather than a dial later (ADR 29). The wait does not count
// against timeout. A request that is ready after its turn's
// deadline is not written (Result.Late), unless it waited for a dial made for
// it over HTTP/1 (see TurnSlack). The POST is a client span, which names the
// destination's host but not the URL's path or query: those may hold the
// receiver's tokens.
func (s *Sender) Send(ctx context.Context, job store.Job, timeout time.Duration, turn Turn) Result {
	ctx, span := s.tracer.Start(ctx, http.MethodPost, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	res := s.send(ctx, job, timeout, turn)
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPRequestMethodPost)
		if u, err := url.Parse(job.URL); err == nil {
			span.SetAttributes(semconv.URLScheme(u.Scheme), semconv.ServerAddress(u.Hostname()))
			if p, err := strconv.Atoi(u.Port()); err == nil {
				span.SetAttributes(semconv.ServerPort(p))
			}
		}
		if res.Late {
			span.SetStatus(codes.Error, errLate.Error())
		} else {
			endSpan(span, res.Attempt)
		}
	}
	return res
}

func (s *Sender) send(ctx context.Context, job store.Job, timeout time.Duration, turn Turn) Result {
	start := s.clock.Now()
	wait := max(turn.At.Sub(start), 0)
	a := domain.Attempt{DeliveryID: job.DeliveryID, EventID: job.Event.ID, SubscriptionID: job.SubscriptionID, Number: job.Attempt}
	var (
		retryAfter time.Duration
		written    writtenAt
	)
	finish := func(class domain.ErrorClass, msg string) Result {
		// An attempt that never had a connection started when it began to
		// connect.
		a.StartedAt = written.get(start)
		a.Duration, a.ErrorClass, a.Error = s.clock.Now().Sub(a.StartedAt), class, msg
		return Result{Attempt: a, RetryAfter: retryAfter}
	}
	if turn.late(start) {
		// Its handler woke too late: no connection is taken for it.
		return Result{Attempt: a, Late: true}
	}

	body, err := Body(job.Event)
	if err != nil {
		return finish(domain.ErrorInternal, "encode body: "+err.Error())
	}
	signer, err := signing.NewSigner(job.Secrets...)
	if err != nil {
		return finish(domain.ErrorInternal, "subscription secret unusable: "+err.Error())
	}
	client, err := s.transports.client(job.TLS)
	if err != nil {
		return finish(domain.ErrorTLS, err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+wait)
	defer cancel()
	ctx, abandon := context.WithCancelCause(ctx)
	defer abandon(nil)
	var bearer string
	if job.OAuth2 != nil {
		// Before the trace below: the token's own request is no turn's.
		if bearer, err = s.tokens.get(ctx, job.SubscriptionID, job.OAuth2, timeout); err != nil {
			return finish(domain.ErrorAuth, err.Error())
		}
	}
	// A second request within the attempt (a token refreshed after a 401)
	// is sent on plain: its turn was the first one's.
	plain := ctx
	var missed atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		// net/http writes the request as soon as this returns: waiting
		// here holds the request, connected, until its turn.
		http1 := !multiplexed(info.Conn)
		if now := s.clock.Now(); http1 && !info.Reused && turn.late(now) {
			// Dialled for this request and ready only after its turn: it
			// goes now. Abandoning it would close the connection, and the
			// next try would dial again, so a destination whose handshake
			// outlasts the booking would never be sent to.
			written.set(now)
			return
		}
		if d := turn.At.Sub(s.clock.Now()); d >= minTurnWait {
			clock.Sleep(ctx, s.clock, d)
		}
		now := s.clock.Now()
		if turn.late(now) {
			// Too late to go: the request is abandoned unwritten. HTTP/2
			// checks the context before it writes a stream's headers;
			// HTTP/1 writes regardless, but the connection is this
			// request's alone until it is written, so closing it is what
			// keeps the request from going.
			missed.Store(true)
			abandon(errLate)
			if http1 {
				info.Conn.Close()
			}
			return
		}
		written.set(now)
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.URL, bytes.NewReader(body))
	if err != nil {
		return finish(domain.ErrorInternal, "build request: "+err.Error())
	}
	sig := signer.Sign(job.Event.ID, start, body)
	ts := strconv.FormatInt(start.Unix(), 10)
	h := req.Header
	// The subscription's own headers go first, so that Dispatch's, set
	// after them, win even over a name the API's check let through.
	for name, value := range job.Headers {
		h.Set(name, value)
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", s.userAgent)
	h.Set("X-Dispatch-Event-ID", job.Event.ID)
	h.Set("X-Dispatch-Event-Type", job.Event.Type)
	// One event reaches each matching subscription with the same
	// webhook-id; this tells a receiver behind several of them which one
	// a delivery is for.
	h.Set("X-Dispatch-Subscription-ID", job.SubscriptionID)
	h.Set("X-Dispatch-Timestamp", ts)
	h.Set("X-Dispatch-Signature", sig)
	h.Set(signing.HeaderID, job.Event.ID)
	h.Set(signing.HeaderTimestamp, ts)
	h.Set(signing.HeaderSignature, sig)
	// What an attempt's page cannot derive of these headers is stored with
	// it (ADR 38): the rest follows from the event and the subscription.
	a.RequestHeaders = domain.HeaderUserAgent + ": " + s.userAgent + "\n" +
		domain.HeaderTimestamp + ": " + ts + "\n" + domain.HeaderSignature + ": " + sig
	if key := job.Event.OrderingKey; key != "" {
		// Headers are not signed; the body's ordering_key, which is, says
		// the same.
		h.Set(domain.HeaderOrderingKey, key)
		a.RequestHeaders += "\n" + domain.HeaderOrderingKey + ": " + key
	}
	if s.traceparent {
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
		for _, name := range []string{"traceparent", "tracestate"} {
			if v := h.Get(name); v != "" {
				a.RequestHeaders += "\n" + name + ": " + v
			}
		}
	}

	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	// The subscription's own headers and the token were sent too: stored
	// by name, their values masked, never kept.
	if len(job.Headers) > 0 || bearer != "" {
		a.RequestHeaders += maskedLines(h, job.Headers, bearer != "")
	}

	resp, err := client.Do(req)
	if missed.Load() {
		if err == nil {
			resp.Body.Close()
		}
		return Result{Attempt: a, Late: true}
	}
	if err == nil && resp.StatusCode == http.StatusUnauthorized && bearer != "" {
		// The destination refused the token (revoked, or expired early):
		// one fresh token, one more request, within the same attempt.
		_, _ = readSnippet(resp.Body)
		resp.Body.Close()
		if bearer, err = s.tokens.refresh(plain, job.SubscriptionID, job.OAuth2, bearer, timeout); err != nil {
			return finish(domain.ErrorAuth, "after the destination answered 401: "+err.Error())
		}
		again, rerr := http.NewRequestWithContext(plain, http.MethodPost, job.URL, bytes.NewReader(body))
		if rerr != nil {
			return finish(domain.ErrorNetwork, "build request: "+rerr.Error())
		}
		again.Header = h.Clone()
		again.Header.Set("Authorization", "Bearer "+bearer)
		resp, err = client.Do(again)
	}
	if err != nil {
		return finish(classify(err), errorText(err))
	}
	code := resp.StatusCode
	a.StatusCode = &code
	a.ResponseHeaders = domain.ResponseHeaderExcerpt(resp.Header)
	if code < 200 {
		// Only 101 ends the exchange this way (net/http reads past the other
		// 1xx answers itself). Its body is the raw connection, which the
		// request's context no longer bounds: it is closed unread.
		resp.Body.Close()
		return finish(domain.ErrorInformational, "HTTP "+strconv.Itoa(code)+": an informational answer ended the exchange")
	}
	// Any other body is read through net/http, which closes the connection
	// when the attempt's context ends (the trickling receivers' tests pin it).
	snippet, readErr := readSnippet(resp.Body)
	resp.Body.Close()
	a.ResponseBody = snippet
	if retry.HonoursRetryAfter(code) {
		retryAfter = retry.ParseRetryAfter(resp.Header.Get("Retry-After"), s.clock.Now())
	}
	if code > 299 {
		return finish(domain.ErrorHTTPStatus, "HTTP "+strconv.Itoa(code))
	}
	if readErr != nil && classify(readErr) == domain.ErrorTimeout {
		return finish(domain.ErrorTimeout, "reading response: "+errorText(readErr))
	}
	return finish(domain.ErrorNone, "")
}

// minTurnWait is the shortest wait for a turn worth a timer: a request
// whose turn is nearer goes at once, which lets a destination have at most
// a thousandth of its limit more in a second, and spares the busiest
// destinations (whose turns are microseconds apart) a timer each.
const minTurnWait = time.Millisecond

// multiplexed reports whether conn carries HTTP/2, whose streams share it.
func multiplexed(conn net.Conn) bool {
	tc, ok := conn.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}

// writtenAt is when a request began to be written on its connection: net/http
// may call its trace hooks from other goroutines.
type writtenAt struct {
	mu sync.Mutex
	at time.Time
}

func (w *writtenAt) set(t time.Time) {
	w.mu.Lock()
	w.at = t
	w.mu.Unlock()
}

// get returns the time set, or otherwise.
func (w *writtenAt) get(otherwise time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.at.IsZero() {
		return otherwise
	}
	return w.at
}

// readSnippet drains up to maxResponseRead bytes and keeps the first
// maxResponseSnippet as text PostgreSQL accepts: each byte that is not part
// of valid UTF-8 (a Latin-1 error page, binary) becomes U+FFFD rather than
// ending the text, and NUL bytes are dropped.
func readSnippet(r io.Reader) (string, error) {
	buf, err := io.ReadAll(io.LimitReader(r, maxResponseRead))
	var b strings.Builder
	for i := 0; i < len(buf) && i < maxResponseSnippet; {
		c, size := utf8.DecodeRune(buf[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case c != 0:
			b.WriteRune(c)
		}
		i += size
	}
	return b.String(), err
}

// classify names the kind of transport failure for operators.
func classify(err error) domain.ErrorClass {
	var (
		dnsErr  *net.DNSError
		netErr  net.Error
		certErr *tls.CertificateVerificationError
		hostErr x509.HostnameError
		authErr x509.UnknownAuthorityError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
		opErr   *net.OpError
	)
	switch {
	case errors.Is(err, egress.ErrBlocked):
		return domain.ErrorBlocked
	case errors.As(err, &dnsErr):
		return domain.ErrorDNS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return domain.ErrorTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return domain.ErrorConnectionRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return domain.ErrorConnectionReset
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &authErr), errors.As(err, &recErr), errors.As(err, &alert),
		// The destination's TLS alert, such as "certificate required"
		// when no client certificate (or an expired one) was presented.
		errors.As(err, &opErr) && opErr.Op == "remote error":
		return domain.ErrorTLS
	// net/http reports these two only as text; the sender tests pin the wording.
	case strings.Contains(err.Error(), "response headers exceeded"):
		return domain.ErrorResponseTooLarge
	case strings.Contains(err.Error(), "malformed HTTP"):
		return domain.ErrorInvalidResponse
	default:
		return domain.ErrorNetwork
	}
}

// errorText renders a transport error for the attempt record, which API
// callers read. It keeps what the destination did and drops what describes
// this network: the resolver's address in DNS errors, the worker's own
// address in connection errors, and the address a refused destination
// resolved to.
func errorText(err error) string {
	var blocked *egress.BlockedError
	if errors.As(err, &blocked) {
		return blocked.Error()
	}
	msg := err.Error()
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.Server != "" {
		msg = strings.ReplaceAll(msg, " on "+dnsErr.Server, "")
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Source != nil {
		msg = strings.ReplaceAll(msg, opErr.Source.String()+"->", "")
	}
	return msg
}

// describe renders an attempt outcome for logs.
func describe(a domain.Attempt) string {
	if a.StatusCode != nil {
		return fmt.Sprintf("HTTP %d", *a.StatusCode)
	}
	return string(a.ErrorClass)
}

// maskedLines are the stored lines ("\nName: ********") of the
// subscription's custom headers that went as set (not replaced by one of
// Dispatch's in sent), sorted by name, and of the OAuth2 Authorization
// header when a token was sent.
func maskedLines(sent http.Header, custom map[string]string, bearer bool) string {
	var names []string
	for name, value := range custom {
		if !(bearer && http.CanonicalHeaderKey(name) == "Authorization") && sent.Get(name) == value {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if bearer {
		names = append(names, "Authorization")
	}
	var b strings.Builder
	for _, name := range names {
		b.WriteString("\n")
		b.WriteString(http.CanonicalHeaderKey(name))
		b.WriteString(": ")
		b.WriteString(domain.MaskedValue)
	}
	return b.String()
}
