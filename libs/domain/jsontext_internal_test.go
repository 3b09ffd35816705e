package domain

import (
	"strings"
	"testing"
)

// TestNamedReadsOnlyTheObjectsNames pins the look-up that confirms a
// repeated hash: only the object's own member names before the new one
// count, not strings in its values or names of nested objects.
func TestNamedReadsOnlyTheObjectsNames(t *testing.T) {
	t.Parallel()
	const raw = `{"a":"\"b\":,{","c":{"b":1},"d":["b",{"b":2}],"e\u0062":1,"\u0066":2,"b":3,"c":4,"eb":5,"f":6}`
	s := jsonScanner{raw: []byte(raw)}
	nameAt := func(quoted string) jsonName {
		i := strings.LastIndex(raw, quoted)
		return jsonName{start: i + 1, end: i + len(quoted) - 1, escaped: strings.Contains(quoted, `\`)}
	}
	tests := []struct {
		quoted string
		want   bool
	}{
		{`"b"`, false}, // in a value and in nested objects only
		{`"c"`, true},
		{`"eb"`, true}, // "e\u0062"
		{`"f"`, true},  // "\u0066"
	}
	for _, tt := range tests {
		if got := s.named(1, nameAt(tt.quoted)); got != tt.want {
			t.Errorf("named(%s) = %v, want %v", tt.quoted, got, tt.want)
		}
	}
}

// TestNameHashesGrow checks that the set keeps every hash through its
// growth, and tells a new one from a known one.
func TestNameHashesGrow(t *testing.T) {
	t.Parallel()
	var set nameHashes
	const n = 5000
	hash := func(i int) uint64 { return uint64(i) * 0x2545f4914f6cdd1d << 32 } // distinct in the 32 bits kept
	for i := range n {
		if set.add(hash(i)) {
			t.Fatalf("hash %d reported known on first add", i)
		}
	}
	for i := range n {
		if !set.add(hash(i)) {
			t.Fatalf("hash %d forgotten after growth to %d slots", i, len(set.slots))
		}
	}
	if set.n != n || 2*set.n > len(set.slots) {
		t.Fatalf("%d hashes in %d slots", set.n, len(set.slots))
	}
}
