package domain

import (
	"fmt"
	"strconv"
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
// decoder would silently repair but PostgreSQL's jsonb and text types
// refuse: bytes that are not UTF-8, the escape \u0000, and UTF-16 surrogate
// escapes that are not a high surrogate followed by a low one. The error
// names the first bad place as field followed by its path, e.g.
// "data.items[2].name". Objects and arrays may nest maxDepth deep (the
// value itself counts as one); deeper text is refused as field.
func ValidateJSONText(field string, raw []byte, maxDepth int) error {
	s := jsonScanner{raw: raw, field: field, maxDepth: maxDepth}
	return s.scan()
}

// jsonFrame is one open object or array on the way to the current value.
type jsonFrame struct {
	object bool
	key    string // the current member's name, in an object
	index  int    // the current element's index, in an array
}

type jsonScanner struct {
	raw      []byte
	field    string
	stack    []jsonFrame
	maxDepth int
	// wantKey is true where the next string in an object is a member name.
	wantKey bool
}

func (s *jsonScanner) scan() error {
	for i := 0; i < len(s.raw); i++ {
		switch c := s.raw[i]; c {
		case '{', '[':
			if len(s.stack) == s.maxDepth {
				return invalid(s.field, fmt.Sprintf("must not nest objects and arrays more than %d deep", s.maxDepth))
			}
			s.stack = append(s.stack, jsonFrame{object: c == '{'})
			s.wantKey = c == '{'
		case '}', ']':
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
			end, text, err := s.str(i)
			if err != nil {
				return err
			}
			if s.wantKey {
				s.stack[len(s.stack)-1].key = text
				s.wantKey = false
			}
			i = end
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

// str checks the string starting at raw[start] (its opening quote) and
// returns the index of its closing quote and, for member names, its text.
func (s *jsonScanner) str(start int) (int, string, error) {
	key := s.wantKey
	var text []byte
	for i := start + 1; i < len(s.raw); {
		c := s.raw[i]
		switch {
		case c == '"':
			return i, string(text), nil
		case c == '\\':
			if i+1 < len(s.raw) && s.raw[i+1] == 'u' {
				r, n, err := s.escape(i)
				if err != nil {
					return 0, "", err
				}
				if key {
					text = utf8.AppendRune(text, r)
				}
				i += n
				continue
			}
			if key && i+1 < len(s.raw) {
				text = append(text, unescape(s.raw[i+1]))
			}
			i += 2
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(s.raw[i:])
			if r == utf8.RuneError && n <= 1 {
				return 0, "", s.textError(key, "must be UTF-8 text")
			}
			if key {
				text = append(text, s.raw[i:i+n]...)
			}
			i += n
		default:
			if key {
				text = append(text, c)
			}
			i++
		}
	}
	return len(s.raw), string(text), nil
}

// escape reads the \uXXXX escape (or surrogate pair) at raw[i] and returns
// the character and the bytes consumed.
func (s *jsonScanner) escape(i int) (rune, int, error) {
	key := s.wantKey
	r, ok := hex4(s.raw, i+2)
	if !ok {
		return 0, 0, s.textError(key, "has a malformed \\u escape")
	}
	switch {
	case r == 0:
		return 0, 0, s.textError(key, "must not contain \\u0000 (NUL)")
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, 0, s.textError(key, "has a UTF-16 low surrogate escape without a high one before it")
	case r >= 0xD800 && r <= 0xDBFF:
		if i+11 < len(s.raw) && s.raw[i+6] == '\\' && s.raw[i+7] == 'u' {
			if lo, ok := hex4(s.raw, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12, nil
			}
		}
		return 0, 0, s.textError(key, "has a UTF-16 high surrogate escape without a low one after it")
	}
	return r, 6, nil
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
			k := f.key
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
