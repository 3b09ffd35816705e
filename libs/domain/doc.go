// Package domain holds Dispatch's core types, the rules that validate them,
// event-type pattern matching and the sentinel errors every service branches
// on. It has no dependencies beyond the standard library so that every other
// module can import it.
package domain
