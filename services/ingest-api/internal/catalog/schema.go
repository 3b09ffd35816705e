// Package catalog compiles the event-type catalog's JSON Schemas, checks
// event data against them, and keeps each API instance's compiled copy of
// the catalog fresh (ADR 0033).
package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// MaxFailures is the most validation failures reported for one event.
const MaxFailures = 20

// MaxExpansion bounds a schema's size once every $ref is followed, each
// node counted every time it is reached: a schema that names one
// subschema twice, which names the next twice, and so on, is small to
// write but doubles the work of checking a value at each step.
const MaxExpansion = 100_000

// schemaURL is where a schema is registered in its compiler. Its scheme
// has no loader, and refs outside the document are refused before
// compiling, so compiling never reads a file or the network.
const schemaURL = "urn:dispatch:event-type"

// drafts are the meta-schemas a schema may name in $schema; without one
// it is a 2020-12 schema.
var drafts = map[string]bool{
	"https://json-schema.org/draft/2020-12/schema":  true,
	"https://json-schema.org/draft/2020-12/schema#": true,
	"http://json-schema.org/draft-07/schema":        true,
	"http://json-schema.org/draft-07/schema#":       true,
}

var printer = message.NewPrinter(language.English)

// Failure is one reason data does not follow a schema: where (a JSON
// pointer into the data) and the schema's message.
type Failure struct {
	Pointer string
	Message string
}

// Schema is a compiled event-type schema.
type Schema struct {
	compiled *jsonschema.Schema
	// fast proves valid data valid without the library's allocations
	// (fast.go); nil when the schema uses keywords it does not prove.
	fast *check
}

// noLoader refuses every document a schema names: schemas cannot make the
// API fetch URLs or read files.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schemas may not refer to other documents (%s)", url)
}

// Compile checks that schema is a JSON Schema (2020-12, or draft-07 when
// its $schema says so) that refers to nothing outside itself and is not
// pathological, and compiles it. The error is a *domain.ValidationError
// on "schema".
func Compile(schema json.RawMessage) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, &domain.ValidationError{Field: "schema", Reason: "must be JSON: " + err.Error()}
	}
	switch d := doc.(type) {
	case bool:
	case map[string]any:
		if s, ok := d["$schema"]; ok {
			if str, _ := s.(string); !drafts[str] {
				return nil, &domain.ValidationError{Field: "schema.$schema", Reason: "must be https://json-schema.org/draft/2020-12/schema or http://json-schema.org/draft-07/schema"}
			}
		}
		if _, ok := d["$id"]; ok {
			return nil, &domain.ValidationError{Field: "schema.$id", Reason: "is not allowed: the catalog names each schema itself"}
		}
	default:
		return nil, &domain.ValidationError{Field: "schema", Reason: "must be a JSON object or boolean"}
	}
	if err := checkRefs(doc, doc, "schema"); err != nil {
		return nil, err
	}
	if n := expansion(doc); n > MaxExpansion {
		return nil, &domain.ValidationError{Field: "schema", Reason: fmt.Sprintf("expands to more than %d schema nodes once its $refs are followed (applicators that repeat a $ref multiply the work); simplify it", MaxExpansion)}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("add schema: %w", err)
	}
	compiled, err := c.Compile(schemaURL)
	if err != nil {
		return nil, compileError(err)
	}
	return &Schema{compiled: compiled, fast: buildFast(compiled)}, nil
}

// compileError is why a schema did not compile, as a validation error
// naming the place in the schema.
func compileError(err error) error {
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			fs := failures(ve, "", 1)
			if len(fs) > 0 {
				return &domain.ValidationError{Field: "schema" + dotted(fs[0].Pointer), Reason: "is not a valid JSON Schema: " + fs[0].Message}
			}
		}
	}
	msg := err.Error()
	msg = strings.ReplaceAll(msg, schemaURL, "schema")
	return &domain.ValidationError{Field: "schema", Reason: "is not a valid JSON Schema: " + msg}
}

// dotted turns a JSON pointer into the dotted form of problem locations.
func dotted(pointer string) string {
	if pointer == "" {
		return ""
	}
	return strings.ReplaceAll(pointer, "/", ".")
}

// Validate checks data, a JSON value, against the schema and returns at
// most MaxFailures failures, each at prefix followed by the pointer into
// data ("/data/amount" for prefix "/data"). data that is not JSON is one
// failure at prefix.
func (s *Schema) Validate(data []byte, prefix string) []Failure {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return []Failure{{Pointer: prefix, Message: "must be JSON: " + err.Error()}}
	}
	return s.ValidateValue(v, prefix)
}

// ValidateValue is Validate for a value decoded with jsonschema.UnmarshalJSON
// (or encoding/json with UseNumber). Data the fast path proves valid is
// accepted at once; anything else is the library's to judge, so failures
// and their messages are always the library's.
func (s *Schema) ValidateValue(v any, prefix string) []Failure {
	if s.fast != nil && s.fast.valid(v) {
		return nil
	}
	err := s.compiled.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Failure{{Pointer: prefix, Message: err.Error()}}
	}
	return failures(ve, prefix, MaxFailures)
}

// failures are the leaves of a validation error's tree, at most limit.
func failures(ve *jsonschema.ValidationError, prefix string, limit int) []Failure {
	var out []Failure
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(out) >= limit {
			return
		}
		if len(e.Causes) == 0 {
			out = append(out, Failure{Pointer: prefix + pointer(e.InstanceLocation), Message: e.ErrorKind.LocalizedString(printer)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

// pointer is a JSON pointer (RFC 6901) of tokens.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// checkRefs refuses a $ref or $dynamicRef that does not point inside the
// schema (a fragment: "#/$defs/x", "#anchor"), or a JSON pointer fragment
// that leads nowhere.
func checkRefs(root, v any, at string) error {
	switch n := v.(type) {
	case map[string]any:
		for _, kw := range []string{"$ref", "$dynamicRef", "$recursiveRef"} {
			r, ok := n[kw]
			if !ok {
				continue
			}
			ref, _ := r.(string)
			if !strings.HasPrefix(ref, "#") {
				return &domain.ValidationError{Field: at + "." + kw, Reason: fmt.Sprintf("must point inside the schema (start with '#'): %q would make the API fetch a document, which it never does", ref)}
			}
			if strings.HasPrefix(ref, "#/") || ref == "#" {
				if resolve(root, ref) == nil {
					return &domain.ValidationError{Field: at + "." + kw, Reason: fmt.Sprintf("%q points at nothing in the schema", ref)}
				}
			}
		}
		for k, child := range n {
			if err := checkRefs(root, child, at+"."+k); err != nil {
				return err
			}
		}
	case []any:
		for i, child := range n {
			if err := checkRefs(root, child, at+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve follows a "#/..." JSON pointer fragment in root; nil if it leads
// nowhere.
func resolve(root any, ref string) any {
	frag := strings.TrimPrefix(ref, "#")
	if frag == "" {
		return root
	}
	cur := root
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := cur.(type) {
		case map[string]any:
			cur = n[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return nil
			}
			cur = n[i]
		default:
			return nil
		}
		if cur == nil {
			return nil
		}
	}
	return cur
}

// anchors maps each $anchor and $dynamicAnchor of the schema to its
// subschema.
func anchors(v any, into map[string]any) {
	switch n := v.(type) {
	case map[string]any:
		for _, kw := range []string{"$anchor", "$dynamicAnchor"} {
			if a, ok := n[kw].(string); ok {
				into[a] = n
			}
		}
		for _, child := range n {
			anchors(child, into)
		}
	case []any:
		for _, child := range n {
			anchors(child, into)
		}
	}
}

// expansion is how many subschemas the worst value may be checked against,
// following refs, each counted every time it is reached. A ref back to a
// subschema being expanded (a recursive schema) counts once: recursion
// advances into the data, whose depth is bounded.
func expansion(root any) int {
	named := map[string]any{}
	anchors(root, named)
	visiting := map[string]bool{}
	var cost func(v any) int
	cost = func(v any) int {
		n, ok := v.(map[string]any)
		if !ok {
			if arr, ok := v.([]any); ok {
				total := 1
				for _, c := range arr {
					total += cost(c)
					if total > MaxExpansion {
						return total
					}
				}
				return total
			}
			return 1
		}
		key := fmt.Sprintf("%p", n)
		if visiting[key] {
			return 1
		}
		visiting[key] = true
		defer delete(visiting, key)
		total := 1
		for k, child := range n {
			switch k {
			case "$ref", "$dynamicRef", "$recursiveRef":
				ref, _ := child.(string)
				var target any
				if strings.HasPrefix(ref, "#/") || ref == "#" {
					target = resolve(root, ref)
				} else {
					target = named[strings.TrimPrefix(ref, "#")]
				}
				total += cost(target)
			case "enum", "const", "examples", "default", "required", "$defs", "definitions":
				// Values or definitions, not subschemas applied here.
			default:
				total += cost(child)
			}
			if total > MaxExpansion {
				return total
			}
		}
		return total
	}
	return cost(root)
}
