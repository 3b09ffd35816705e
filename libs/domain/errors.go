package domain

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors shared by the store, the services and their handlers.
// Callers test for them with errors.Is.
var (
	// ErrNotFound means the addressed event, subscription or delivery does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a resource with the same identity already exists
	// and the request would change it.
	ErrConflict = errors.New("conflict")
	// ErrNotClaimable means a delivery is not in a state where a worker may
	// attempt it now (already delivered, failed, not yet due or held by
	// another worker).
	ErrNotClaimable = errors.New("delivery not claimable")
	// ErrUnavailable means a dependency (the database) could not be reached
	// or dropped the connection; the same request may succeed if repeated.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrSecretUnavailable means a subscription's stored secret cannot be
	// opened with the configured keys (SECRETS_ENCRYPTION_KEY and
	// SECRETS_ENCRYPTION_PREVIOUS_KEYS): a configuration error that no
	// retry of the request mends.
	ErrSecretUnavailable = errors.New("subscription secret cannot be opened with the configured keys")
	// ErrBeforeURLChange means a request would send deliveries accepted
	// before their subscription's URL changed to the URL it has now (or is
	// given): history meant for another receiver, which only a caller that
	// may read it may send there.
	ErrBeforeURLChange = errors.New("deliveries accepted before the subscription's URL changed")
)

// ValidationError names the input field that is wrong and why. Handlers
// turn it into a 4xx problem+json answer.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }

// TooSoonError means an action was refused because it was taken too often
// lately; it may be taken again after RetryAfter. Handlers answer it as
// 429 with a Retry-After header.
type TooSoonError struct {
	// What names the bound, in words for the caller.
	What       string
	RetryAfter time.Duration
}

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("%s; try again in %s", e.What, e.RetryAfter.Round(time.Second))
}
