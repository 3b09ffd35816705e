package domain

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxJSONDepth bounds how deeply event data may nest objects and arrays.
// Real payloads stay far below it; the bound keeps a 256 KiB body of
// brackets from costing every reader of the event a deep recursion.
const MaxJSONDepth = 32

// maxPathKey shortens object keys quoted in a problem's location, so that a
// hostile key does not come back in full.
const maxPathKey = 64

// ValidateJSONText checks syntactically valid JSON text for what Go's
// decoder would silently repair or drop but PostgreSQL's jsonb and text
// types refuse or keep differently: bytes that are not UTF-8, the escape
// \u0000, UTF-16 surrogate escapes that are not a high surrogate followed
// by a low one, and an object that names a member twice (Go's decoder
// keeps the last, jsonb too, so what was posted and what is stored,
// signed and delivered would differ). Names are compared as decoded, so
// "a" and "\u0061" are the same name. The error names the first bad place
// as field followed by its path, e.g. "data.items[2].name". Objects and
// arrays may nest maxDepth deep (the value itself counts as one); deeper
// text is refused as field.
func ValidateJSONText(field string, raw []byte, maxDepth int) error {
	// Room for a typical event, so that most bodies cost two allocations.
	s := jsonScanner{raw: raw, field: field, maxDepth: maxDepth, stack: make([]jsonFrame, 0, 8), names: make([]jsonName, 0, 16)}
	return s.scan()
}

// RepeatedMember is the reason given for a member whose name its object
// already has.
const RepeatedMember = "repeats a member name: each name may appear once in an object"

// linearNames is how many member names an object's new name is compared
// with one by one; past it the object's names are looked up by hash, so
// that an object of many members costs in proportion to their number.
const linearNames = 8

// nameSeed seeds the hashes of member names; it is the process's own, so
// that a client cannot choose names that collide.
var nameSeed = maphash.MakeSeed()

// jsonFrame is one open object or array on the way to the current value.
type jsonFrame struct {
	object bool
	key    jsonName // the current member's name, in an object
	index  int      // the current element's index, in an array
	// names is where the object's member names start in jsonScanner.names.
	names int
	// hashes holds the hashes of the object's decoded names once it has
	// more than linearNames of them.
	hashes *nameHashes
}

// jsonName is a member name as it is written: raw[start:end], between its
// quotes, with escapes if escaped.
type jsonName struct {
	start, end int
	escaped    bool
}

type jsonScanner struct {
	raw      []byte
	field    string
	stack    []jsonFrame
	maxDepth int
	// wantKey is true where the next string in an object is a member name.
	wantKey bool
	// names holds the member names of the open objects that have no
	// hashes, each object's after its parent's.
	names []jsonName
	// buf holds decoded names while they are compared or hashed.
	buf []byte
}

func (s *jsonScanner) scan() error {
	for i := 0; i < len(s.raw); i++ {
		switch c := s.raw[i]; c {
		case '{', '[':
			if len(s.stack) == s.maxDepth {
				return invalid(s.field, fmt.Sprintf("must not nest objects and arrays more than %d deep", s.maxDepth))
			}
			s.stack = append(s.stack, jsonFrame{object: c == '{', names: len(s.names)})
			s.wantKey = c == '{'
		case '}', ']':
			s.names = s.names[:s.stack[len(s.stack)-1].names]
			s.stack = s.stack[:len(s.stack)-1]
			s.wantKey = false
		case ',':
			top := &s.stack[len(s.stack)-1]
			if top.object {
				s.wantKey = true
			} else {
				top.index++
			}
		case '"':
			end, escaped, err := s.str(i)
			if err != nil {
				return err
			}
			if s.wantKey {
				s.wantKey = false
				if err := s.member(jsonName{start: i + 1, end: end, escaped: escaped}); err != nil {
					return err
				}
			}
			i = end
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			end := i
			for end < len(s.raw) && isNumberByte(s.raw[end]) {
				end++
			}
			if err := s.number(s.raw[i:end]); err != nil {
				return err
			}
			i = end - 1
		default:
			if c >= utf8.RuneSelf {
				// Only possible inside strings in valid JSON; kept for
				// callers that skipped the syntax check.
				return invalid(s.path(), "must be UTF-8 text")
			}
		}
	}
	return nil
}

// Bounds of a JSON number. PostgreSQL's jsonb keeps a number's value, not
// its text, and writes it back in full: "1e131000" is stored in a few
// bytes and read back as 131,001 digits, and a number beyond numeric's
// range is refused as the statement runs. An event of such numbers would
// be read, signed and sent megabytes at a time, or fail every read and
// every claim of the deliveries beside it.
const (
	MaxJSONNumberLength = 128
	MaxJSONExponent     = 100
)

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// number checks a number's text against MaxJSONNumberLength and
// MaxJSONExponent.
func (s *jsonScanner) number(text []byte) error {
	if len(text) > MaxJSONNumberLength {
		return invalid(s.path(), fmt.Sprintf("numbers must be written in at most %d characters", MaxJSONNumberLength))
	}
	at := bytes.IndexAny(text, "eE")
	if at < 0 {
		return nil
	}
	exp := 0
	for _, c := range text[at+1:] {
		if c >= '0' && c <= '9' {
			exp = exp*10 + int(c-'0')
			if exp > MaxJSONExponent {
				return invalid(s.path(), fmt.Sprintf("numbers must have an exponent between -%d and %d", MaxJSONExponent, MaxJSONExponent))
			}
		}
	}
	return nil
}

// member makes n the current member of the innermost object, refusing it
// if the object already has a member of that name.
func (s *jsonScanner) member(n jsonName) error {
	top := &s.stack[len(s.stack)-1]
	top.key = n
	if top.hashes == nil {
		names := s.names[top.names:]
		if len(names) < linearNames {
			for _, m := range names {
				if s.sameName(m, n) {
					return s.duplicate()
				}
			}
			s.names = append(s.names, n)
			return nil
		}
		// From here on the object's names are known by their hashes, and
		// found again in the text when one comes up twice.
		top.hashes = &nameHashes{from: names[0].start - 1}
		for _, m := range names {
			top.hashes.add(maphash.Bytes(nameSeed, s.decoded(m)))
		}
		s.names = s.names[:top.names]
	}
	if top.hashes.add(maphash.Bytes(nameSeed, s.decoded(n))) && s.named(top.hashes.from, n) {
		return s.duplicate()
	}
	return nil
}

// named reports whether a member before n, in the object whose first
// member name has its opening quote at raw[from], has n's name. The text
// up to n has been checked.
func (s *jsonScanner) named(from int, n jsonName) bool {
	depth, key := 0, true
	for i := from; i < n.start-1; i++ {
		switch s.raw[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			key = depth == 0
		case '"':
			end, escaped, _ := s.str(i)
			if key && s.sameName(jsonName{start: i + 1, end: end, escaped: escaped}, n) {
				return true
			}
			key = false
			i = end
		}
	}
	return false
}

// nameHashes is a set of hashes of an object's member names: open
// addressing over a table of a power of two slots, at most half of them
// used. A slot keeps 32 bits of the hash, odd so that 0 marks a free slot,
// and the slot is found from them alone, so that the table grows without
// the names; the same bits for two names are rare, and cost only a
// comparison of the names.
type nameHashes struct {
	from  int // the opening quote of the object's first member name
	slots []uint32
	shift uint // 64 - log2(len(slots))
	n     int
}

// add puts h in the set and reports whether it was there already.
func (t *nameHashes) add(h uint64) bool {
	if 2*(t.n+1) > len(t.slots) {
		old := t.slots
		size := max(4*linearNames, 2*len(old))
		t.slots, t.shift, t.n = make([]uint32, size), uint(64-bits.TrailingZeros(uint(size))), 0
		for _, f := range old {
			if f != 0 {
				t.put(f)
			}
		}
	}
	return t.put(uint32(h>>32) | 1)
}

// put puts the fingerprint f in the set and reports whether it was there
// already.
func (t *nameHashes) put(f uint32) bool {
	mask := uint64(len(t.slots)) - 1
	for i := uint64(f) * 0x9e3779b97f4a7c15 >> t.shift; ; i = (i + 1) & mask {
		switch t.slots[i] {
		case f:
			return true
		case 0:
			t.slots[i] = f
			t.n++
			return false
		}
	}
}

// duplicate refuses the current member for its name.
func (s *jsonScanner) duplicate() error {
	return invalid(s.path(), RepeatedMember)
}

// sameName reports whether a and b decode to the same text.
func (s *jsonScanner) sameName(a, b jsonName) bool {
	if !a.escaped && !b.escaped {
		return bytes.Equal(s.raw[a.start:a.end], s.raw[b.start:b.end])
	}
	s.buf = s.appendName(s.buf[:0], a)
	n := len(s.buf)
	s.buf = s.appendName(s.buf, b)
	return bytes.Equal(s.buf[:n], s.buf[n:])
}

// decoded is n's text, in buf if it has escapes.
func (s *jsonScanner) decoded(n jsonName) []byte {
	if !n.escaped {
		return s.raw[n.start:n.end]
	}
	s.buf = s.appendName(s.buf[:0], n)
	return s.buf
}

// appendName appends n's text with its escapes decoded; str has checked
// them.
func (s *jsonScanner) appendName(dst []byte, n jsonName) []byte {
	b := s.raw[n.start:n.end]
	if !n.escaped {
		return append(dst, b...)
	}
	for i := 0; i < len(b); {
		switch {
		case b[i] != '\\':
			dst = append(dst, b[i])
			i++
		case i+1 == len(b): // only in text that is not JSON
			return dst
		case b[i+1] != 'u':
			dst = append(dst, unescape(b[i+1]))
			i += 2
		default:
			r, _ := hex4(b, i+2)
			i += 6
			if utf16.IsSurrogate(r) {
				lo, _ := hex4(b, i+2)
				r = utf16.DecodeRune(r, lo)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}

// str checks the string starting at raw[start] (its opening quote) and
// returns the index of its closing quote and whether it has escapes.
func (s *jsonScanner) str(start int) (int, bool, error) {
	key := s.wantKey
	escaped := false
	for i := start + 1; i < len(s.raw); {
		c := s.raw[i]
		switch {
		case c == '"':
			return i, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 < len(s.raw) && s.raw[i+1] == 'u' {
				n, err := s.escape(i)
				if err != nil {
					return 0, false, err
				}
				i += n
				continue
			}
			i += 2
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(s.raw[i:])
			if r == utf8.RuneError && n <= 1 {
				return 0, false, s.textError(key, "must be UTF-8 text")
			}
			i += n
		default:
			i++
		}
	}
	return len(s.raw), escaped, nil
}

// escape checks the \uXXXX escape (or surrogate pair) at raw[i] and
// returns the bytes it takes.
func (s *jsonScanner) escape(i int) (int, error) {
	key := s.wantKey
	r, ok := hex4(s.raw, i+2)
	if !ok {
		return 0, s.textError(key, "has a malformed \\u escape")
	}
	switch {
	case r == 0:
		return 0, s.textError(key, "must not contain \\u0000 (NUL)")
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, s.textError(key, "has a UTF-16 low surrogate escape without a high one before it")
	case r >= 0xD800 && r <= 0xDBFF:
		if i+11 < len(s.raw) && s.raw[i+6] == '\\' && s.raw[i+7] == 'u' {
			if lo, ok := hex4(s.raw, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				return 12, nil
			}
		}
		return 0, s.textError(key, "has a UTF-16 high surrogate escape without a low one after it")
	}
	return 6, nil
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[at:at+4]), 16, 16)
	return rune(v), err == nil
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	}
	return c // '"', '\\', '/'
}

// textError reports a bad string at the current path; a bad member name
// is reported at the object holding it.
func (s *jsonScanner) textError(key bool, reason string) error {
	if key {
		return invalid(s.path(), "member name "+reason)
	}
	return invalid(s.path(), reason)
}

// path is field followed by the members and indexes to the current value.
func (s *jsonScanner) path() string {
	p := []byte(s.field)
	for i, f := range s.stack {
		if f.object {
			if i == len(s.stack)-1 && s.wantKey {
				break // between members: the object itself
			}
			k := string(s.appendName(nil, f.key))
			if len(k) > maxPathKey {
				n := maxPathKey
				for !utf8.RuneStart(k[n]) {
					n--
				}
				k = k[:n] + "…"
			}
			p = append(append(p, '.'), k...)
		} else {
			p = strconv.AppendInt(append(p, '['), int64(f.index), 10)
			p = append(p, ']')
		}
	}
	return string(p)
}
