// Package queue carries deliveries between Dispatch's services over Kafka
// with franz-go. Kafka is only the transport: every message names a delivery
// row in PostgreSQL, which is the truth, so a message that is lost, late or
// duplicated costs latency, never an event.
package queue

import (
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Message asks a worker to attempt one delivery. Records are keyed by event
// id, so one subscription's deliveries spread over every partition and
// worker (its limits are shared through Redis), while an event's deliveries
// and their retries stay together (ADR 11).
type Message struct {
	DeliveryID     int64  `json:"delivery_id"`
	EventID        string `json:"event_id"`
	SubscriptionID string `json:"subscription_id"`
	// TraceParent, when the publisher's context carries no span, is the
	// W3C traceparent to publish in: a retry's, its event's trace. It
	// travels in the record's headers as any trace context, not in the
	// value.
	TraceParent string `json:"-"`
}

func (m Message) record() *kgo.Record {
	return &kgo.Record{Key: []byte(m.EventID), Value: m.Encode()}
}

// Encode returns the record value for m.
func (m Message) Encode() []byte {
	b, _ := json.Marshal(m) // a struct of strings and ints always marshals
	return b
}

// Decode parses a record value.
func Decode(value []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(value, &m); err != nil {
		return Message{}, fmt.Errorf("decode queue message: %w", err)
	}
	if m.DeliveryID <= 0 {
		return Message{}, fmt.Errorf("decode queue message: delivery_id missing")
	}
	return m, nil
}
