package catalog

import (
	"encoding/json"
	"errors"
	"math/big"
	"strconv"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The fast path (ADR 0033). The library walks data with about 129
// allocations per event of typical size, whether the data is valid or not.
// Most events are valid, and proving that needs no allocation: a check
// tree, built once per compiled schema from the library's own compiled
// form, answers "valid" only when the library would, and "not proven"
// otherwise, in which case the library validates and its answer and
// messages are the ones given. So the fast path decides nothing alone
// except accepting data that the library accepts too; FuzzFastPath holds
// it to that.
//
// It reads the library's compiled schema, not the schema's text, so
// $refs, drafts (a draft-07 $ref ignores its siblings, draft-07 asserts
// formats), the regexp engine (Go's regexp, the library's default, which
// Compile keeps) and formats mean exactly what they mean to the library:
// patterns and formats are checked by the library's own compiled values.

// errUnsupported is why a schema has no fast path: it uses a keyword the
// check tree does not prove (not, oneOf, if/then/else, $dynamicRef,
// unevaluated*, content*, maxContains, a draft other than 7 or 2020-12),
// or applies a subschema to the same value in a cycle.
var errUnsupported = errors.New("schema outside the fast path's keywords")

// JSON types as a bit set.
const (
	tNull uint8 = 1 << iota
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

var typeBits = map[string]uint8{"null": tNull, "boolean": tBoolean, "number": tNumber, "integer": tInteger, "string": tString, "array": tArray, "object": tObject}

// bound is a number of the schema (minimum, multipleOf, ...), kept in the
// forms the fast path compares with: an int64 when it is one, and the
// nearest float64.
type bound struct {
	isInt bool
	i     int64
	f     float64
}

func newBound(r *big.Rat) *bound {
	if r == nil {
		return nil
	}
	b := &bound{}
	if r.IsInt() && r.Num().IsInt64() {
		b.isInt, b.i = true, r.Num().Int64()
	}
	b.f, _ = r.Float64()
	return b
}

type patternCheck struct {
	re jsonschema.Regexp
	c  *check
}

// check is one compiled subschema of the fast path. Its fields mirror the
// library's Schema fields it proves; limits are -1 when absent.
type check struct {
	always *bool
	types  uint8
	enum   []any
	konst  *any
	format *jsonschema.Format

	ref     *check
	refOnly bool // draft-07: the siblings of $ref are ignored
	allOf   []*check
	anyOf   []*check

	minProps, maxProps int
	required           []string
	props              map[string]*check
	patternProps       []patternCheck
	noAdditional       bool
	additional         *check
	propertyNames      *check
	dependentRequired  map[string][]string
	dependentSchemas   map[string]*check

	minItems, maxItems int
	uniqueItems        bool
	prefixItems        []*check
	restItems          *check
	noRestItems        bool
	contains           *check
	minContains        int

	minLen, maxLen int
	pattern        jsonschema.Regexp

	minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf *bound
}

// buildFast returns the fast path of a compiled schema, or nil when the
// schema is outside it (errUnsupported): the library then validates every
// value.
func buildFast(root *jsonschema.Schema) *check {
	built := map[*jsonschema.Schema]*check{}
	c, err := buildCheck(root, built)
	if err != nil || inPlaceCycle(built) {
		return nil
	}
	return c
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func buildCheck(s *jsonschema.Schema, built map[*jsonschema.Schema]*check) (*check, error) {
	if c, ok := built[s]; ok {
		return c, nil
	}
	c := &check{}
	built[s] = c
	if s.Bool != nil {
		c.always = s.Bool
		return c, nil
	}
	if s.DraftVersion != 7 && s.DraftVersion != 2020 {
		return nil, errUnsupported
	}
	if s.RecursiveRef != nil || s.DynamicRef != nil || s.Not != nil || len(s.OneOf) > 0 ||
		s.If != nil || s.Then != nil || s.Else != nil || s.UnevaluatedProperties != nil || s.UnevaluatedItems != nil ||
		s.ContentEncoding != nil || s.ContentMediaType != nil || s.ContentSchema != nil || s.MaxContains != nil ||
		len(s.Extensions) > 0 {
		return nil, errUnsupported
	}
	sub := func(s *jsonschema.Schema) (*check, error) {
		if s == nil {
			return nil, nil
		}
		return buildCheck(s, built)
	}
	subs := func(ss []*jsonschema.Schema) ([]*check, error) {
		out := make([]*check, len(ss))
		for i, s := range ss {
			var err error
			if out[i], err = buildCheck(s, built); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var err error
	if s.Types != nil {
		for _, t := range s.Types.ToStrings() {
			c.types |= typeBits[t]
		}
	}
	if s.Enum != nil {
		c.enum = s.Enum.Values
		if c.enum == nil {
			c.enum = []any{}
		}
	}
	c.konst = s.Const
	c.format = s.Format
	if c.ref, err = sub(s.Ref); err != nil {
		return nil, err
	}
	c.refOnly = s.Ref != nil && s.DraftVersion < 2019
	if c.allOf, err = subs(s.AllOf); err != nil {
		return nil, err
	}
	if c.anyOf, err = subs(s.AnyOf); err != nil {
		return nil, err
	}

	c.minProps, c.maxProps = intOr(s.MinProperties, -1), intOr(s.MaxProperties, -1)
	c.required = s.Required
	if len(s.Properties) > 0 {
		c.props = make(map[string]*check, len(s.Properties))
		for name, ps := range s.Properties {
			if c.props[name], err = buildCheck(ps, built); err != nil {
				return nil, err
			}
		}
	}
	for re, ps := range s.PatternProperties {
		pc, err := buildCheck(ps, built)
		if err != nil {
			return nil, err
		}
		c.patternProps = append(c.patternProps, patternCheck{re: re, c: pc})
	}
	switch a := s.AdditionalProperties.(type) {
	case bool:
		c.noAdditional = !a
	case *jsonschema.Schema:
		if c.additional, err = buildCheck(a, built); err != nil {
			return nil, err
		}
	}
	if c.propertyNames, err = sub(s.PropertyNames); err != nil {
		return nil, err
	}
	c.dependentRequired = map[string][]string{}
	c.dependentSchemas = map[string]*check{}
	for name, req := range s.DependentRequired {
		c.dependentRequired[name] = req
	}
	for name, ds := range s.DependentSchemas {
		if c.dependentSchemas[name], err = buildCheck(ds, built); err != nil {
			return nil, err
		}
	}
	for name, dep := range s.Dependencies {
		switch d := dep.(type) {
		case []string:
			if _, dup := c.dependentRequired[name]; dup {
				return nil, errUnsupported
			}
			c.dependentRequired[name] = d
		case *jsonschema.Schema:
			if _, dup := c.dependentSchemas[name]; dup {
				return nil, errUnsupported
			}
			if c.dependentSchemas[name], err = buildCheck(d, built); err != nil {
				return nil, err
			}
		default:
			return nil, errUnsupported
		}
	}
	if len(c.dependentRequired) == 0 {
		c.dependentRequired = nil
	}
	if len(c.dependentSchemas) == 0 {
		c.dependentSchemas = nil
	}

	c.minItems, c.maxItems = intOr(s.MinItems, -1), intOr(s.MaxItems, -1)
	c.uniqueItems = s.UniqueItems
	if s.DraftVersion < 2020 {
		// Draft-07's items: one schema for every item, or an array of
		// schemas for the first items and additionalItems for the rest.
		switch items := s.Items.(type) {
		case *jsonschema.Schema:
			if c.restItems, err = buildCheck(items, built); err != nil {
				return nil, err
			}
		case []*jsonschema.Schema:
			if c.prefixItems, err = subs(items); err != nil {
				return nil, err
			}
		}
		if _, one := s.Items.(*jsonschema.Schema); !one {
			switch a := s.AdditionalItems.(type) {
			case bool:
				c.noRestItems = !a
			case *jsonschema.Schema:
				if c.restItems, err = buildCheck(a, built); err != nil {
					return nil, err
				}
			}
		}
	} else {
		if c.prefixItems, err = subs(s.PrefixItems); err != nil {
			return nil, err
		}
		if c.restItems, err = sub(s.Items2020); err != nil {
			return nil, err
		}
	}
	if c.contains, err = sub(s.Contains); err != nil {
		return nil, err
	}
	c.minContains = intOr(s.MinContains, 1)

	c.minLen, c.maxLen = intOr(s.MinLength, -1), intOr(s.MaxLength, -1)
	c.pattern = s.Pattern

	c.minimum, c.maximum = newBound(s.Minimum), newBound(s.Maximum)
	c.exclusiveMinimum, c.exclusiveMaximum = newBound(s.ExclusiveMinimum), newBound(s.ExclusiveMaximum)
	c.multipleOf = newBound(s.MultipleOf)
	return c, nil
}

// inPlaceCycle reports whether a check applies a subschema to the same
// value it is applied to in a cycle ({"$ref": "#"}): the library answers
// such schemas with an error, and the fast path would not end. Members,
// items and names are other values, so only $ref, allOf, anyOf and
// dependent schemas are edges here.
func inPlaceCycle(all map[*jsonschema.Schema]*check) bool {
	state := map[*check]int{} // 1 on the current path, 2 done
	var visit func(c *check) bool
	visit = func(c *check) bool {
		switch state[c] {
		case 1:
			return true
		case 2:
			return false
		}
		state[c] = 1
		next := append(append([]*check{c.ref}, c.allOf...), c.anyOf...)
		for _, d := range c.dependentSchemas {
			next = append(next, d)
		}
		for _, n := range next {
			if n != nil && visit(n) {
				return true
			}
		}
		state[c] = 2
		return false
	}
	for _, c := range all {
		if visit(c) {
			return true
		}
	}
	return false
}

// valid reports whether v, a value decoded with json.Number for numbers,
// is proven to follow the schema. false means "not proven": v may be
// valid or not, and the library decides.
func (c *check) valid(v any) bool {
	if c.always != nil {
		return *c.always
	}
	t := typeOf(v)
	if t == 0 {
		return false
	}
	if c.types != 0 && c.types&t == 0 {
		if c.types&tInteger == 0 || t != tNumber || !isInteger(v.(json.Number)) {
			return false
		}
	}
	if c.konst != nil && !equal(v, *c.konst) {
		return false
	}
	if c.enum != nil && !c.inEnum(v) {
		return false
	}
	if c.format != nil && c.format.Validate(v) != nil {
		return false
	}
	if c.ref != nil {
		if !c.ref.valid(v) {
			return false
		}
		if c.refOnly {
			return true
		}
	}
	switch v := v.(type) {
	case map[string]any:
		if !c.validObject(v) {
			return false
		}
	case []any:
		if !c.validArray(v) {
			return false
		}
	case string:
		if !c.validString(v) {
			return false
		}
	case json.Number:
		if !c.validNumber(v) {
			return false
		}
	}
	for _, a := range c.allOf {
		if !a.valid(v) {
			return false
		}
	}
	if len(c.anyOf) > 0 {
		for _, a := range c.anyOf {
			if a.valid(v) {
				return true
			}
		}
		return false
	}
	return true
}

func (c *check) inEnum(v any) bool {
	for _, e := range c.enum {
		if equal(v, e) {
			return true
		}
	}
	return false
}

func (c *check) validObject(obj map[string]any) bool {
	if c.minProps >= 0 && len(obj) < c.minProps || c.maxProps >= 0 && len(obj) > c.maxProps {
		return false
	}
	for _, name := range c.required {
		if _, ok := obj[name]; !ok {
			return false
		}
	}
	for name, req := range c.dependentRequired {
		if _, ok := obj[name]; ok {
			for _, r := range req {
				if _, ok := obj[r]; !ok {
					return false
				}
			}
		}
	}
	for name, ds := range c.dependentSchemas {
		if _, ok := obj[name]; ok && !ds.valid(obj) {
			return false
		}
	}
	for name, member := range obj {
		evaluated := false
		if p, ok := c.props[name]; ok {
			evaluated = true
			if !p.valid(member) {
				return false
			}
		}
		for _, pp := range c.patternProps {
			if pp.re.MatchString(name) {
				evaluated = true
				if !pp.c.valid(member) {
					return false
				}
			}
		}
		if !evaluated {
			if c.noAdditional {
				return false
			}
			if c.additional != nil && !c.additional.valid(member) {
				return false
			}
		}
		if c.propertyNames != nil && !c.propertyNames.valid(name) {
			return false
		}
	}
	return true
}

// maxUniqueItems bounds the arrays whose items the fast path compares
// pairwise for uniqueItems; longer ones go to the library.
const maxUniqueItems = 64

func (c *check) validArray(arr []any) bool {
	if c.minItems >= 0 && len(arr) < c.minItems || c.maxItems >= 0 && len(arr) > c.maxItems {
		return false
	}
	if c.uniqueItems && len(arr) > 1 {
		if len(arr) > maxUniqueItems {
			return false
		}
		for i := 1; i < len(arr); i++ {
			for j := range i {
				if !distinct(arr[i], arr[j]) {
					return false
				}
			}
		}
	}
	for i, item := range arr {
		switch {
		case i < len(c.prefixItems):
			if !c.prefixItems[i].valid(item) {
				return false
			}
		case c.noRestItems:
			return false
		case c.restItems != nil:
			if !c.restItems.valid(item) {
				return false
			}
		}
	}
	if c.contains != nil && c.minContains > 0 {
		matched := 0
		for _, item := range arr {
			if c.contains.valid(item) {
				matched++
				if matched >= c.minContains {
					break
				}
			}
		}
		if matched < c.minContains {
			return false
		}
	}
	return true
}

func (c *check) validString(s string) bool {
	if c.minLen >= 0 || c.maxLen >= 0 {
		// Lengths are in code points, as JSON Schema counts them.
		n := utf8.RuneCountInString(s)
		if c.minLen >= 0 && n < c.minLen || c.maxLen >= 0 && n > c.maxLen {
			return false
		}
	}
	return c.pattern == nil || c.pattern.MatchString(s)
}

// validNumber proves n within the bounds. Exact when n and the bound are
// both int64; otherwise through float64, only where the floats differ:
// rounding to the nearest float64 never reverses an order, so a strict
// order of the floats is the order of the numbers, and a tie is left to
// the library.
func (c *check) validNumber(n json.Number) bool {
	if c.minimum == nil && c.maximum == nil && c.exclusiveMinimum == nil && c.exclusiveMaximum == nil && c.multipleOf == nil {
		return true
	}
	i, isInt := asInt64(n)
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return false
	}
	// cmp is -1, 0 or 1 when n's order to b is proven, 2 when not.
	cmp := func(b *bound) int {
		if isInt && b.isInt {
			switch {
			case i < b.i:
				return -1
			case i > b.i:
				return 1
			}
			return 0
		}
		switch {
		case f < b.f:
			return -1
		case f > b.f:
			return 1
		}
		return 2
	}
	if c.minimum != nil {
		if r := cmp(c.minimum); r != 0 && r != 1 {
			return false
		}
	}
	if c.maximum != nil {
		if r := cmp(c.maximum); r != 0 && r != -1 {
			return false
		}
	}
	if c.exclusiveMinimum != nil && cmp(c.exclusiveMinimum) != 1 {
		return false
	}
	if c.exclusiveMaximum != nil && cmp(c.exclusiveMaximum) != -1 {
		return false
	}
	if c.multipleOf != nil {
		if !isInt || !c.multipleOf.isInt || c.multipleOf.i <= 0 || i%c.multipleOf.i != 0 {
			return false
		}
	}
	return true
}

// typeOf is v's JSON type, 0 for a Go value the fast path does not take
// (numbers not decoded as json.Number, or text that is not a JSON number).
func typeOf(v any) uint8 {
	switch v := v.(type) {
	case nil:
		return tNull
	case bool:
		return tBoolean
	case string:
		return tString
	case json.Number:
		if !isJSONNumber(string(v)) {
			return 0
		}
		return tNumber
	case []any:
		return tArray
	case map[string]any:
		return tObject
	}
	return 0
}

// isJSONNumber reports whether s follows the JSON number grammar.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// isInteger proves that n, a JSON number, is an integer: no fraction, or
// one of zeros, and no exponent. "1e2" is left to the library.
func isInteger(n json.Number) bool {
	s := string(n)
	dot := -1
	for i := range len(s) {
		switch s[i] {
		case 'e', 'E':
			return false
		case '.':
			dot = i
		}
	}
	if dot < 0 {
		return true
	}
	for i := dot + 1; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// asInt64 is n as an int64, when it is written as one.
func asInt64(n json.Number) (int64, bool) {
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// equal proves a and b the same JSON value. Numbers are proven equal when
// written alike or equal as int64s.
func equal(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case json.Number:
		bn, ok := b.(json.Number)
		if !ok {
			return false
		}
		if a == bn {
			return true
		}
		ai, aok := asInt64(a)
		bi, bok := asInt64(bn)
		return aok && bok && ai == bi
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return false
		}
		for i := range a {
			if !equal(a[i], bs[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, av := range a {
			bv, ok := bm[k]
			if !ok || !equal(av, bv) {
				return false
			}
		}
		return true
	}
	return false
}

// distinct proves a and b different JSON values, for uniqueItems: values
// of different types, different strings or booleans, different int64s.
func distinct(a, b any) bool {
	ta, tb := typeOf(a), typeOf(b)
	if ta == 0 || tb == 0 {
		return false
	}
	if ta != tb {
		return true
	}
	switch a := a.(type) {
	case bool:
		return a != b.(bool)
	case string:
		return a != b.(string)
	case json.Number:
		ai, aok := asInt64(a)
		bi, bok := asInt64(b.(json.Number))
		return aok && bok && ai != bi
	}
	return false
}
