package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The types of Dispatch's operational events (ADR 0037): events Dispatch
// itself stores about its subscriptions and deliveries, delivered to the
// subscriptions that match them like any other event.
const (
	// OpSubscriptionFailing: every attempt of a subscription has failed
	// for a threshold's share (OpThresholds) of AUTO_DISABLE_AFTER.
	OpSubscriptionFailing = "dispatch.subscription.failing"
	// OpSubscriptionDisabled: the subscription was disabled, by
	// AUTO_DISABLE_AFTER or by its endpoint's 410 Gone.
	OpSubscriptionDisabled = "dispatch.subscription.disabled"
	// OpSubscriptionRecovered: an attempt succeeded after the
	// subscription had been reported failing.
	OpSubscriptionRecovered = "dispatch.subscription.recovered"
	// OpDeliveryExhausted: a delivery failed for good.
	OpDeliveryExhausted = "dispatch.delivery.exhausted"
)

// OperationalTypes are the operational event types, in the order the spec
// lists them.
var OperationalTypes = []string{OpSubscriptionFailing, OpSubscriptionDisabled, OpSubscriptionRecovered, OpDeliveryExhausted}

// OpThresholds are the shares of AUTO_DISABLE_AFTER, in per cent, at which
// a failing subscription is reported; at 100 it is disabled.
var OpThresholds = []int{50, 70, 90}

// OpDisabledLevel is the report level of a subscription reported disabled.
const OpDisabledLevel = 100

// operationalPrefixes are reserved for operational events: a producer may
// not post an event whose type starts with one, so an event of such a type
// was stored by Dispatch itself.
var operationalPrefixes = []string{"dispatch.subscription.", "dispatch.delivery."}

// IsOperationalType reports whether t is in the operational events'
// reserved namespaces. Attempts of such events do not count toward their
// subscription's failing period, and their failures are not reported, so
// reporting never feeds on itself.
func IsOperationalType(t string) bool {
	for _, p := range operationalPrefixes {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// OperationalData is the data of an operational event. Fields that do not
// apply to a type are left out of its JSON.
type OperationalData struct {
	SubscriptionID string `json:"subscription_id"`
	TenantID       string `json:"tenant_id"`
	// URL is the subscription's URL without user information, query or
	// fragment, which may hold credentials.
	URL    string `json:"url"`
	Reason string `json:"reason"`
	// FailingSince is when the run of failed attempts began (failing,
	// disabled by AUTO_DISABLE_AFTER, recovered).
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// ThresholdPercent is the share of AUTO_DISABLE_AFTER crossed (failing).
	ThresholdPercent int `json:"threshold_percent,omitempty"`
	// AutoDisableAfterSeconds is AUTO_DISABLE_AFTER (failing, disabled by it).
	AutoDisableAfterSeconds int64 `json:"auto_disable_after_seconds,omitempty"`
	// DisableAt is when the subscription is disabled if every attempt
	// keeps failing (failing).
	DisableAt *time.Time `json:"disable_at,omitempty"`
	// OpenDeliveries counts the subscription's deliveries still waiting
	// (failing, disabled): a disabled subscription keeps them until it is
	// re-enabled or deleted.
	OpenDeliveries *int64 `json:"open_deliveries,omitempty"`
	// The delivery that failed for good (exhausted).
	DeliveryID     int64  `json:"delivery_id,omitempty"`
	EventID        string `json:"event_id,omitempty"`
	EventType      string `json:"event_type,omitempty"`
	Attempts       int    `json:"attempts,omitempty"`
	LastStatusCode *int   `json:"last_status_code,omitempty"`
	LastError      string `json:"last_error,omitempty"`
	// OccurredAt is when Dispatch noticed what the event reports.
	OccurredAt time.Time `json:"occurred_at"`
}

// OperationalIDPrefix begins every operational event's id, and no
// producer's: an id a producer could post first would suppress the report
// it names, since a second event under an id stores nothing.
const OperationalIDPrefix = "dispatch_op_"

// OperationalEventID is the id of an operational event: a function of
// what it reports, so that reporting it again (a scheduler that crashed
// after storing it, two schedulers at once) stores nothing new. parts are
// the subscription or delivery id, the threshold and the failing period's
// start, whichever apply.
func OperationalEventID(eventType string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(eventType))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return OperationalIDPrefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// PeriodKey is a failing period's start as it goes into an event id:
// microseconds, the precision PostgreSQL keeps, so a time read back from
// the database names the same period.
func PeriodKey(t time.Time) string {
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// RedactURL returns raw without user information, query and fragment, the
// parts of a subscription URL that may carry credentials.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}
