package domain

import "strings"

// Event-type patterns are what a subscription lists in event_types:
//
//   - "*" matches every event type;
//   - "order.*" matches every type that starts with "order." ("order.created",
//     "order.item.added") but not "order" itself;
//   - anything else matches exactly that type.
//
// This shape lets the store find every matching subscription with one
// indexed array-overlap query: MatchKeys lists the only patterns that can
// match a type, and a subscription matches when it lists one of them.

// Match reports whether pattern selects eventType.
func Match(pattern, eventType string) bool {
	if pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, ".*"); ok {
		return strings.HasPrefix(eventType, prefix+".") && len(eventType) > len(prefix)+1
	}
	return pattern == eventType
}

// MatchKeys returns every pattern that matches eventType: "*", one "p.*"
// for each proper dot-prefix p of the type, and the type itself.
func MatchKeys(eventType string) []string {
	keys := make([]string, 0, 2+strings.Count(eventType, "."))
	keys = append(keys, "*")
	for i := range len(eventType) {
		if eventType[i] == '.' && i+1 < len(eventType) {
			keys = append(keys, eventType[:i]+".*")
		}
	}
	return append(keys, eventType)
}

// PatternPrefix returns the prefix a "p.*" pattern selects ("p.") and true;
// for "*" and exact types it returns false. A type matches such a pattern
// when it starts with the prefix and is longer than it, which lets a store
// search one byte-wise range of types instead of testing each.
func PatternPrefix(pattern string) (string, bool) {
	name, ok := strings.CutSuffix(pattern, ".*")
	if !ok {
		return "", false
	}
	return name + ".", true
}
