package catalog

// FastValid reports whether s has a fast path and, if so, whether it
// proves v valid.
func (s *Schema) FastValid(v any) (hasFast, valid bool) {
	if s.fast == nil {
		return false, false
	}
	return true, s.fast.valid(v)
}

// LibraryValid is the library's verdict on v.
func (s *Schema) LibraryValid(v any) bool { return s.compiled.Validate(v) == nil }
