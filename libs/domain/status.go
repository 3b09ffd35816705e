package domain

// EventStatus summarises an event's deliveries for operators.
type EventStatus string

// Event statuses, derived from the event's deliveries.
const (
	// EventUnmatched means no subscription matched the event when it was accepted.
	EventUnmatched EventStatus = "unmatched"
	// EventPending means at least one delivery has not had its first outcome yet.
	EventPending EventStatus = "pending"
	// EventRetrying means at least one delivery failed and will be tried again.
	EventRetrying EventStatus = "retrying"
	// EventFailed means every delivery is final and at least one failed.
	EventFailed EventStatus = "failed"
	// EventDelivered means every delivery succeeded.
	EventDelivered EventStatus = "delivered"
)

// DeriveEventStatus computes an event's status from its deliveries' statuses:
// work still in flight wins over retries, retries over failures, and an event
// is delivered only when every delivery is.
func DeriveEventStatus(statuses []DeliveryStatus) EventStatus {
	if len(statuses) == 0 {
		return EventUnmatched
	}
	var retrying, failed bool
	for _, s := range statuses {
		switch s {
		case DeliveryPending, DeliveryProcessing:
			return EventPending
		case DeliveryRetrying:
			retrying = true
		case DeliveryFailed:
			failed = true
		}
	}
	switch {
	case retrying:
		return EventRetrying
	case failed:
		return EventFailed
	default:
		return EventDelivered
	}
}
