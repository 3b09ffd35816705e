package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Input limits. They bound what one request may make Dispatch store and send.
const (
	MaxIDLength        = 255
	MaxOrderingKey     = 256
	MaxTypeLength      = 255
	MaxSourceLength    = 255
	MaxURLLength       = 2048
	MaxEventTypes      = 64
	MaxRequestBodySize = 256 << 10
	// MaxBatchEvents and MaxBatchBodySize bound POST /events/batch. Each
	// event in a batch is held to the limits of a single event, its JSON
	// text to MaxRequestBodySize included.
	MaxBatchEvents   = 500
	MaxBatchBodySize = 5 << 20
)

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

func validName(field, s string, maxLen int) error {
	if s == "" {
		return invalid(field, "must not be empty")
	}
	if len(s) > maxLen {
		return invalid(field, fmt.Sprintf("must be at most %d characters", maxLen))
	}
	for i := range len(s) {
		if !isNameByte(s[i]) {
			return invalid(field, "may contain only letters, digits, '_', '.' and '-'")
		}
	}
	return nil
}

// validID checks an id: a name that is also a URL path segment, so "."
// and ".." (which clients and routers resolve away) are refused.
func validID(id string) error {
	if id == "." || id == ".." {
		return invalid("id", "must not be '.' or '..'")
	}
	return validName("id", id, MaxIDLength)
}

// ValidateEventID checks a producer-chosen event id. Ids travel in URL paths
// and HTTP headers, so they are restricted to the same safe alphabet as types.
func ValidateEventID(id string) error {
	return validID(id)
}

// ValidateOrderingKey checks an event's ordering key: 1–256 bytes of the
// ids' alphabet, since it travels in a URL path and a header as they do.
func ValidateOrderingKey(key string) error {
	if key == "." || key == ".." {
		return invalid("ordering_key", "must not be '.' or '..'")
	}
	return validName("ordering_key", key, MaxOrderingKey)
}

// ValidateOrdering checks a subscription's ordering mode.
func ValidateOrdering(o Ordering) error {
	if o != OrderingNone && o != OrderingPerKey {
		return invalid("ordering", `must be "none" or "per_key"`)
	}
	return nil
}

// ValidateText checks free text a client sends: UTF-8 without control
// characters. PostgreSQL refuses NUL in text, and the others have no place
// in a name or label that is shown and logged.
func ValidateText(field, s string) error {
	if !utf8.ValidString(s) {
		return invalid(field, "must be UTF-8 text")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, fmt.Sprintf("must not contain control characters (found %U)", r))
		}
	}
	return nil
}

// ValidateEvent checks an event before anything is written.
func ValidateEvent(e Event) error {
	if err := ValidateEventID(e.ID); err != nil {
		return err
	}
	if strings.HasPrefix(e.ID, OperationalIDPrefix) {
		return invalid("id", "ids starting with "+OperationalIDPrefix+" are reserved for Dispatch's operational events")
	}
	if err := validName("type", e.Type, MaxTypeLength); err != nil {
		return err
	}
	if IsOperationalType(e.Type) {
		return invalid("type", "dispatch.subscription.* and dispatch.delivery.* are reserved for Dispatch's operational events")
	}
	if len(e.Source) > MaxSourceLength {
		return invalid("source", fmt.Sprintf("must be at most %d characters", MaxSourceLength))
	}
	if err := ValidateText("source", e.Source); err != nil {
		return err
	}
	if e.OrderingKey != "" {
		if err := ValidateOrderingKey(e.OrderingKey); err != nil {
			return err
		}
	}
	data := bytes.TrimSpace(e.Data)
	if len(data) == 0 || data[0] != '{' || !json.Valid(data) {
		return invalid("data", "must be a JSON object")
	}
	return ValidateJSONText("data", data, MaxJSONDepth)
}

// ValidatePattern checks one event-type pattern (see Match).
func ValidatePattern(field, p string) error {
	if p == "*" {
		return nil
	}
	name := strings.TrimSuffix(p, ".*")
	if err := validName(field, name, MaxTypeLength); err != nil {
		return err
	}
	if strings.Contains(name, "*") {
		return invalid(field, "'*' may only stand alone or as the last segment, as in 'order.*'")
	}
	return nil
}

// ValidateSubscriptionID checks a client-chosen subscription id.
func ValidateSubscriptionID(id string) error {
	return validID(id)
}

// ValidateURL checks a destination URL: absolute, http or https, with a host.
func ValidateURL(raw string) error {
	if raw == "" {
		return invalid("url", "must not be empty")
	}
	if len(raw) > MaxURLLength {
		return invalid("url", fmt.Sprintf("must be at most %d characters", MaxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return invalid("url", "must be an absolute http or https URL")
	}
	if u.User != nil {
		return invalid("url", "must not contain credentials")
	}
	return nil
}

// ValidateSubscription checks a subscription before it is stored.
func ValidateSubscription(s Subscription) error {
	if err := ValidateSubscriptionID(s.ID); err != nil {
		return err
	}
	if s.TenantID != "" {
		if err := ValidateTenantID("tenant_id", s.TenantID); err != nil {
			return err
		}
	}
	if err := ValidateURL(s.URL); err != nil {
		return err
	}
	if err := ValidateOrdering(s.Ordering.Or()); err != nil {
		return err
	}
	if len(s.EventTypes) == 0 {
		return invalid("event_types", "must list at least one pattern")
	}
	if len(s.EventTypes) > MaxEventTypes {
		return invalid("event_types", fmt.Sprintf("must list at most %d patterns", MaxEventTypes))
	}
	for i, p := range s.EventTypes {
		if err := ValidatePattern(fmt.Sprintf("event_types[%d]", i), p); err != nil {
			return err
		}
	}
	if err := ValidateHeaders(s.Headers); err != nil {
		return err
	}
	return ValidateSettings(s.Settings)
}

// Bounds of per-subscription delivery settings.
const (
	MaxMaxAttempts = 100
	MinTimeout     = 100 * time.Millisecond
	MaxTimeout     = 5 * time.Minute
	MaxRetryDelay  = 7 * 24 * time.Hour
	MaxRateLimit   = 100000
	MaxConcurrency = 10000
)

// ValidateSettings checks per-subscription delivery settings.
func ValidateSettings(st DeliverySettings) error {
	switch {
	case st.MaxAttempts < 0 || st.MaxAttempts > MaxMaxAttempts:
		return invalid("max_attempts", fmt.Sprintf("must be between 1 and %d", MaxMaxAttempts))
	case st.Timeout != 0 && (st.Timeout < MinTimeout || st.Timeout > MaxTimeout):
		return invalid("timeout_ms", fmt.Sprintf("must be between %d and %d", MinTimeout.Milliseconds(), MaxTimeout.Milliseconds()))
	case st.RetryBaseDelay < 0 || st.RetryBaseDelay > MaxRetryDelay:
		return invalid("retry_base_delay_ms", fmt.Sprintf("must be between 1 and %d", MaxRetryDelay.Milliseconds()))
	case st.RetryMaxDelay < 0 || st.RetryMaxDelay > MaxRetryDelay:
		return invalid("retry_max_delay_ms", fmt.Sprintf("must be between 1 and %d", MaxRetryDelay.Milliseconds()))
	case st.RetryBaseDelay > 0 && st.RetryMaxDelay > 0 && st.RetryMaxDelay < st.RetryBaseDelay:
		return invalid("retry_max_delay_ms", "must not be below retry_base_delay_ms")
	case st.RatePerSecond < 0 || st.RatePerSecond > MaxRateLimit:
		return invalid("rate_limit_per_second", fmt.Sprintf("must be between 1 and %d", MaxRateLimit))
	case st.MaxConcurrency < 0 || st.MaxConcurrency > MaxConcurrency:
		return invalid("max_concurrency", fmt.Sprintf("must be between 1 and %d", MaxConcurrency))
	}
	return nil
}
