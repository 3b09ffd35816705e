package domain

import (
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bounds of a subscription's custom headers.
const (
	MaxCustomHeaders     = 20
	MaxCustomHeaderName  = 256
	MaxCustomHeaderValue = 4096
	customHeaderField    = "headers"
)

// reservedHeaders are the names a custom header may not take: those that
// describe the connection or the message's framing (a receiver would read
// a different request than the one signed), and those Dispatch sets on
// every delivery itself. Canonical form; the X-Dispatch- and webhook-
// prefixes are refused as a whole (reservedHeaderPrefixes).
var reservedHeaders = []string{
	"Connection", "Content-Encoding", "Content-Length", "Content-Type", "Expect", "Host", "Keep-Alive",
	"Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding",
	"Upgrade", "User-Agent", "Traceparent", "Tracestate",
}

// reservedHeaderPrefixes start the names of Dispatch's own headers and the
// Standard Webhooks ones, present and future.
var reservedHeaderPrefixes = []string{"X-Dispatch-", "Webhook-"}

// ValidateHeaders checks a subscription's custom headers: at most
// MaxCustomHeaders, each name an HTTP token that is not reserved (nor the
// same as another name but for case), each value at most
// MaxCustomHeaderValue bytes of text without control characters other
// than tab.
func ValidateHeaders(headers map[string]string) error {
	if len(headers) > MaxCustomHeaders {
		return invalid(customHeaderField, fmt.Sprintf("must have at most %d headers, has %d", MaxCustomHeaders, len(headers)))
	}
	seen := make(map[string]string, len(headers))
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		field := customHeaderField + "." + name
		if !validHeaderName(name) {
			// The name itself may hold what a problem must not print raw.
			return invalid(customHeaderField, fmt.Sprintf("header name %q must be 1 to %d characters of letters, digits and !#$%%&'*+-.^_`|~ (an HTTP token)", name, MaxCustomHeaderName))
		}
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		if other, ok := seen[canonical]; ok {
			return invalid(field, fmt.Sprintf("names the same header as %q: header names are case-insensitive", other))
		}
		seen[canonical] = name
		if reservedHeader(canonical) {
			return invalid(field, "is a header Dispatch sets itself or one that describes the connection (Host, Content-Length, hop-by-hop headers, X-Dispatch-*, webhook-*): it cannot be set")
		}
		if err := validHeaderValue(headers[name]); err != "" {
			return invalid(field, err)
		}
	}
	return nil
}

func reservedHeader(canonical string) bool {
	if slices.Contains(reservedHeaders, canonical) {
		return true
	}
	for _, p := range reservedHeaderPrefixes {
		if strings.HasPrefix(canonical, p) {
			return true
		}
	}
	return false
}

// validHeaderName reports whether name is an HTTP token (RFC 9110 5.1).
func validHeaderName(name string) bool {
	if name == "" || len(name) > MaxCustomHeaderName {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue returns why value cannot be sent as a header, or "".
func validHeaderValue(value string) string {
	switch {
	case len(value) > MaxCustomHeaderValue:
		return fmt.Sprintf("value must be at most %d bytes, is %d", MaxCustomHeaderValue, len(value))
	case !utf8.ValidString(value):
		return "value must be UTF-8 text"
	case strings.TrimSpace(value) != value:
		return "value must not start or end with white space"
	}
	for _, r := range value {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Sprintf("value must not contain control characters (found %U)", r)
		}
	}
	return ""
}
