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
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
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

// Sender makes one signed HTTP POST per attempt.
type Sender struct {
	client    *http.Client
	userAgent string
}

// NewSender returns a Sender whose connections are pooled per host and
// reused across deliveries. Redirects are not followed: a 3xx is a failed
// attempt, as receivers are expected to answer at the URL they registered.
// Loopback, private, link-local and other internal addresses are refused at
// dial time unless one of allow covers them.
func NewSender(version string, allow []netip.Prefix) *Sender {
	policy := addressPolicy{allow: allow}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: policy.control}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Sender{
		client: &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		userAgent: "Dispatch/" + version,
	}
}

// payload is the JSON body every delivery carries.
type payload struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Source    string          `json:"source,omitempty"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Body returns the exact bytes delivered (and signed) for an event.
func Body(e domain.Event) ([]byte, error) {
	return json.Marshal(payload{ID: e.ID, Type: e.Type, Source: e.Source, Timestamp: e.ReceivedAt.UTC(), Data: e.Data})
}

// Result is what one attempt found out.
type Result struct {
	Attempt domain.Attempt
	// RetryAfter is the receiver's Retry-After on a 429 or 503, or zero.
	RetryAfter time.Duration
}

// Send attempts the job once within timeout and describes what happened.
// It never returns an error: every failure is an attempt outcome.
func (s *Sender) Send(ctx context.Context, job store.Job, timeout time.Duration) Result {
	start := time.Now()
	a := domain.Attempt{DeliveryID: job.DeliveryID, EventID: job.Event.ID, SubscriptionID: job.SubscriptionID, Number: job.Attempt, StartedAt: start}
	var retryAfter time.Duration
	finish := func(class domain.ErrorClass, msg string) Result {
		a.Duration, a.ErrorClass, a.Error = time.Since(start), class, msg
		return Result{Attempt: a, RetryAfter: retryAfter}
	}

	body, err := Body(job.Event)
	if err != nil {
		return finish(domain.ErrorNetwork, "encode body: "+err.Error())
	}
	signer, err := signing.NewSigner(job.Secrets...)
	if err != nil {
		return finish(domain.ErrorNetwork, "subscription secret unusable: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.URL, bytes.NewReader(body))
	if err != nil {
		return finish(domain.ErrorNetwork, "build request: "+err.Error())
	}
	sig := signer.Sign(job.Event.ID, start, body)
	ts := strconv.FormatInt(start.Unix(), 10)
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", s.userAgent)
	h.Set("X-Dispatch-Event-ID", job.Event.ID)
	h.Set("X-Dispatch-Event-Type", job.Event.Type)
	h.Set("X-Dispatch-Timestamp", ts)
	h.Set("X-Dispatch-Signature", sig)
	h.Set(signing.HeaderID, job.Event.ID)
	h.Set(signing.HeaderTimestamp, ts)
	h.Set(signing.HeaderSignature, sig)

	resp, err := s.client.Do(req)
	if err != nil {
		return finish(classify(err), err.Error())
	}
	snippet, readErr := readSnippet(resp.Body)
	resp.Body.Close()
	code := resp.StatusCode
	a.StatusCode, a.ResponseBody = &code, snippet
	if retry.HonoursRetryAfter(code) {
		retryAfter = retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	if code < 200 || code > 299 {
		return finish(domain.ErrorHTTPStatus, "HTTP "+strconv.Itoa(code))
	}
	if readErr != nil && classify(readErr) == domain.ErrorTimeout {
		return finish(domain.ErrorTimeout, "reading response: "+readErr.Error())
	}
	return finish(domain.ErrorNone, "")
}

// readSnippet drains up to maxResponseRead bytes and keeps the start as
// valid UTF-8 text without NUL bytes, which PostgreSQL text rejects.
func readSnippet(r io.Reader) (string, error) {
	buf, err := io.ReadAll(io.LimitReader(r, maxResponseRead))
	if len(buf) > maxResponseSnippet {
		buf = buf[:maxResponseSnippet]
		for len(buf) > 0 && !utf8.Valid(buf) {
			buf = buf[:len(buf)-1]
		}
	}
	s := strings.ToValidUTF8(string(buf), "\uFFFD")
	return strings.ReplaceAll(s, "\x00", ""), err
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
	)
	switch {
	case errors.Is(err, ErrAddressNotAllowed):
		return domain.ErrorBlocked
	case errors.As(err, &dnsErr):
		return domain.ErrorDNS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return domain.ErrorTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return domain.ErrorConnectionRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return domain.ErrorConnectionReset
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &authErr), errors.As(err, &recErr), errors.As(err, &alert):
		return domain.ErrorTLS
	default:
		return domain.ErrorNetwork
	}
}

// String renders an attempt outcome for logs.
func describe(a domain.Attempt) string {
	if a.StatusCode != nil {
		return fmt.Sprintf("HTTP %d", *a.StatusCode)
	}
	return string(a.ErrorClass)
}
