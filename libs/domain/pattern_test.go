package domain_test

import (
	"slices"
	"testing"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, eventType string
		want               bool
	}{
		{"*", "order.created", true},
		{"*", "x", true},
		{"order.created", "order.created", true},
		{"order.created", "order.updated", false},
		{"order.*", "order.created", true},
		{"order.*", "order.item.added", true},
		{"order.*", "order", false},
		{"order.*", "order.", false},
		{"order.*", "orders.created", false},
		{"order.item.*", "order.item.added", true},
		{"order.item.*", "order.created", false},
		{"order", "order.created", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.eventType, func(t *testing.T) {
			t.Parallel()
			if got := domain.Match(tt.pattern, tt.eventType); got != tt.want {
				t.Fatalf("Match(%q, %q) = %v, want %v", tt.pattern, tt.eventType, got, tt.want)
			}
		})
	}
}

func TestMatchKeys(t *testing.T) {
	t.Parallel()
	got := domain.MatchKeys("order.item.added")
	want := []string{"*", "order.*", "order.item.*", "order.item.added"}
	if !slices.Equal(got, want) {
		t.Fatalf("MatchKeys = %q, want %q", got, want)
	}
}

// FuzzMatchKeys pins the property the store relies on: a valid pattern
// matches a type exactly when it is one of the type's match keys.
func FuzzMatchKeys(f *testing.F) {
	for _, s := range [][2]string{{"*", "a"}, {"order.*", "order.created"}, {"a.b.*", "a.b"}, {"a.b", "a.b"}, {"x.*", "x."}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, eventType string) {
		if domain.ValidatePattern("p", pattern) != nil {
			return
		}
		if err := domain.ValidateEvent(domain.Event{ID: "e", Type: eventType, Data: []byte("{}")}); err != nil {
			return
		}
		inKeys := slices.Contains(domain.MatchKeys(eventType), pattern)
		if m := domain.Match(pattern, eventType); m != inKeys {
			t.Fatalf("Match(%q, %q) = %v but key membership = %v", pattern, eventType, m, inKeys)
		}
	})
}

func TestPatternPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, prefix string
		ok              bool
	}{
		{"order.*", "order.", true},
		{"order.item.*", "order.item.", true},
		{"*", "", false},
		{"order.created", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			t.Parallel()
			prefix, ok := domain.PatternPrefix(tt.pattern)
			if prefix != tt.prefix || ok != tt.ok {
				t.Fatalf("PatternPrefix(%q) = %q, %v; want %q, %v", tt.pattern, prefix, ok, tt.prefix, tt.ok)
			}
			for _, typ := range []string{"order.created", "order.item.added", "order", "order.", "orders.x"} {
				inRange := ok && len(typ) > len(prefix) && typ[:min(len(typ), len(prefix))] == prefix
				if ok && inRange != domain.Match(tt.pattern, typ) {
					t.Fatalf("prefix %q disagrees with Match(%q, %q)", prefix, tt.pattern, typ)
				}
			}
		})
	}
}
