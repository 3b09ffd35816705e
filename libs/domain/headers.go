package domain

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// Header is one HTTP header line of an attempt, as its page shows it.
type Header struct {
	Name  string
	Value string
	// Masked reports that Value is not the value sent or received: a
	// Set-Cookie's value, or a value kept secret.
	Masked bool
}

// MaskedValue stands for a value that is not shown.
const MaskedValue = "********"

// Bounds of an attempt's response headers as stored (ADR 38): a hostile
// receiver may answer with up to DELIVERY_MAX_RESPONSE_HEADER_BYTES of
// headers, of which an attempt keeps an excerpt, not the lot.
const (
	MaxResponseHeaders     = 32
	MaxResponseHeaderBytes = 4 << 10
	maxResponseHeaderValue = 1 << 10
)

const (
	headerSeparator = ": "
	setCookie       = "Set-Cookie"
)

// ResponseHeaderExcerpt renders a response's headers (an http.Header) as
// the "Name: value" lines an attempt stores: by name, one line per value,
// at most MaxResponseHeaders lines and MaxResponseHeaderBytes bytes, each
// value cut at 1 KiB. A Set-Cookie keeps its cookie's name and masks the
// rest, which may be a session. Values are made text PostgreSQL accepts
// and that cannot break the lines: control characters become spaces and
// bytes that are not UTF-8 become U+FFFD.
func ResponseHeaderExcerpt(h map[string][]string) string {
	if len(h) == 0 {
		return ""
	}
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	b.Grow(512)
	lines := 0
	for _, name := range names {
		n := cleanHeaderText(name)
		for _, v := range h[name] {
			if name == setCookie {
				v = maskCookie(v)
			}
			v = cleanHeaderText(cut(v, maxResponseHeaderValue))
			if lines == MaxResponseHeaders || b.Len()+len(n)+len(headerSeparator)+len(v)+1 > MaxResponseHeaderBytes {
				return b.String()
			}
			if lines > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(n)
			b.WriteString(headerSeparator)
			b.WriteString(v)
			lines++
		}
	}
	return b.String()
}

// maskCookie keeps a Set-Cookie value's cookie name.
func maskCookie(v string) string {
	name, _, _ := strings.Cut(v, "=")
	return strings.TrimSpace(name) + "=" + MaskedValue
}

// cut shortens s to at most n bytes, on a rune boundary, marking the cut
// with an ellipsis.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// cleanHeaderText makes s one line of valid UTF-8 without NUL.
func cleanHeaderText(s string) string {
	clean := true
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// HeaderLines renders headers as the "Name: value" lines an attempt
// stores; the values must be single lines (they are Dispatch's own).
func HeaderLines(headers ...Header) string {
	var b strings.Builder
	for i, h := range headers {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(h.Name)
		b.WriteString(headerSeparator)
		b.WriteString(h.Value)
	}
	return b.String()
}

// ParseHeaderLines reads the "Name: value" lines an attempt stores. A
// Set-Cookie's value is Masked (see ResponseHeaderExcerpt), and so is a
// value stored as MaskedValue (a subscription's custom header or token).
func ParseHeaderLines(s string) []Header {
	if s == "" {
		return nil
	}
	headers := make([]Header, 0, strings.Count(s, "\n")+1)
	for line := range strings.SplitSeq(s, "\n") {
		name, value, _ := strings.Cut(line, headerSeparator)
		headers = append(headers, Header{Name: name, Value: value, Masked: name == setCookie || value == MaskedValue})
	}
	return headers
}

// Request header names whose values an attempt stores (Attempt.RequestHeaders):
// they vary per attempt or per worker release. The signature is not a secret:
// it is sent to the receiver with every request and tells nothing of the key.
const (
	HeaderUserAgent = "User-Agent"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
	// HeaderOrderingKey carries the event's ordering key, when it has one.
	HeaderOrderingKey = "X-Dispatch-Ordering-Key"
)

// RequestHeaders returns the request headers Dispatch sent for a, in the
// order the worker sets them: custom first (a subscription's own headers,
// whose values the caller masks), then Dispatch's, derived from the event
// and the subscription, with the values a stored (User-Agent, the
// timestamp and signature, and the trace context when it was sent). An
// attempt that stored none (made before headers were stored, or that
// failed before its request was built) has none.
func RequestHeaders(a Attempt, custom ...Header) []Header {
	stored := ParseHeaderLines(a.RequestHeaders)
	if len(stored) == 0 {
		return nil
	}
	value := func(name string) string {
		for _, h := range stored {
			if h.Name == name {
				return h.Value
			}
		}
		return ""
	}
	ts, sig := value(HeaderTimestamp), value(HeaderSignature)
	headers := append(slices.Clip(custom),
		Header{Name: "Content-Type", Value: "application/json"},
		Header{Name: HeaderUserAgent, Value: value(HeaderUserAgent)},
		Header{Name: "X-Dispatch-Event-ID", Value: a.EventID},
		Header{Name: "X-Dispatch-Event-Type", Value: a.EventType},
		Header{Name: "X-Dispatch-Subscription-ID", Value: a.SubscriptionID},
		Header{Name: "X-Dispatch-Timestamp", Value: ts},
		Header{Name: "X-Dispatch-Signature", Value: sig},
		Header{Name: "webhook-id", Value: a.EventID},
		Header{Name: HeaderTimestamp, Value: ts},
		Header{Name: HeaderSignature, Value: sig},
	)
	for _, h := range stored {
		switch h.Name {
		case HeaderUserAgent, HeaderTimestamp, HeaderSignature:
		default:
			headers = append(headers, h)
		}
	}
	return headers
}
