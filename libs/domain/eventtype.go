package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// SchemaValidation is what ingest does with an event whose data does not
// validate against its type's schema.
type SchemaValidation string

// Validation modes of an event type.
const (
	// ValidationOff stores the event as if its type had no schema.
	ValidationOff SchemaValidation = "off"
	// ValidationWarn stores the event, marked schema_valid false, and
	// counts it.
	ValidationWarn SchemaValidation = "warn"
	// ValidationEnforce refuses the event with a 422.
	ValidationEnforce SchemaValidation = "enforce"
)

// Bounds of an event type. A schema is compiled on every API instance and
// run on every event of its type, so its size and nesting are bounded;
// examples are shown to receivers and sent by POST /subscriptions/{id}/test.
const (
	MaxSchemaBytes       = 64 << 10
	MaxSchemaDepth       = 32
	MaxExamples          = 10
	MaxExampleBytes      = 64 << 10
	MaxDescriptionLength = 16 << 10
)

// ReservedTypeName is the one name that no event type may have: its path,
// /event-types/openapi.json, is the catalog's OpenAPI document.
const ReservedTypeName = "openapi.json"

// EventType is a catalog entry: what events of one type mean and the JSON
// Schema their data must follow. Event types are global: every tenant's
// events of the type are held to the same schema.
type EventType struct {
	Name string
	// Description is Markdown.
	Description string
	// Schema is the latest version's JSON Schema, as sent.
	Schema json.RawMessage
	// Examples are data objects that validate against Schema.
	Examples   []json.RawMessage
	Deprecated bool
	Validation SchemaValidation
	// Version is the latest schema version; 1 for a new type.
	Version int
	// ArchivedAt is set once the type is deleted: its name stays reserved
	// and its versions readable.
	ArchivedAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// EventTypeVersion is one version of an event type's schema.
type EventTypeVersion struct {
	Version   int
	Schema    json.RawMessage
	Examples  []json.RawMessage
	CreatedAt time.Time
}

// ValidateEventTypeName checks an event type's name: the rules of event
// types, and not the reserved name.
func ValidateEventTypeName(field, name string) error {
	if err := validName(field, name, MaxTypeLength); err != nil {
		return err
	}
	if name == ReservedTypeName {
		return invalid(field, fmt.Sprintf("%q is reserved: /event-types/%s is the catalog's OpenAPI document", name, name))
	}
	return nil
}

// ValidateEventType checks the parts of an event type that need no schema
// compiler: the name, the description, the mode and the bounds. Whether
// the schema is a valid schema and the examples follow it is the
// catalog's to check.
func ValidateEventType(t EventType) error {
	if err := ValidateEventTypeName("name", t.Name); err != nil {
		return err
	}
	if len(t.Description) > MaxDescriptionLength {
		return invalid("description", fmt.Sprintf("must be at most %d bytes", MaxDescriptionLength))
	}
	if err := ValidateText("description", stripNewlines(t.Description)); err != nil {
		return err
	}
	switch t.Validation {
	case ValidationOff, ValidationWarn, ValidationEnforce:
	default:
		return invalid("validation", "must be one of off, warn, enforce")
	}
	if len(t.Schema) > MaxSchemaBytes {
		return invalid("schema", fmt.Sprintf("must be at most %d bytes of JSON; this one has %d", MaxSchemaBytes, len(t.Schema)))
	}
	if err := ValidateJSONText("schema", t.Schema, MaxSchemaDepth); err != nil {
		return err
	}
	if len(t.Examples) == 0 {
		return invalid("examples", "must hold at least one example")
	}
	if len(t.Examples) > MaxExamples {
		return invalid("examples", fmt.Sprintf("must hold at most %d examples", MaxExamples))
	}
	for i, ex := range t.Examples {
		field := fmt.Sprintf("examples[%d]", i)
		if len(ex) > MaxExampleBytes {
			return invalid(field, fmt.Sprintf("must be at most %d bytes of JSON", MaxExampleBytes))
		}
		if err := ValidateJSONText(field, ex, MaxJSONDepth); err != nil {
			return err
		}
	}
	return nil
}

// stripNewlines drops the line breaks and tabs that Markdown needs, so the
// rest of the text can be held to ValidateText.
func stripNewlines(s string) string {
	b := make([]byte, 0, len(s))
	for i := range len(s) {
		if c := s[i]; c != '\n' && c != '\r' && c != '\t' {
			b = append(b, c)
		}
	}
	return string(b)
}
