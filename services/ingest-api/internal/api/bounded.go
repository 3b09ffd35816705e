package api

// boundedMap is a map that holds at most about 2×half entries and finds,
// adds and evicts in constant time, so that no request ever scans it:
// entries go into the young generation; when that holds half entries it
// becomes the old one and the previous old generation is dropped whole.
// An entry found in the old generation moves to the young one, so entries
// in use stay while those nobody asks for go. Not safe for concurrent use.
type boundedMap[K comparable, V any] struct {
	half       int
	young, old map[K]V
}

func newBoundedMap[K comparable, V any](half int) *boundedMap[K, V] {
	return &boundedMap[K, V]{half: half, young: make(map[K]V), old: make(map[K]V)}
}

func (m *boundedMap[K, V]) get(k K) (V, bool) {
	if v, ok := m.young[k]; ok {
		return v, true
	}
	v, ok := m.old[k]
	if ok {
		delete(m.old, k)
		m.put(k, v)
	}
	return v, ok
}

func (m *boundedMap[K, V]) put(k K, v V) {
	if _, ok := m.young[k]; !ok && len(m.young) >= m.half {
		m.old, m.young = m.young, make(map[K]V, m.half)
	}
	delete(m.old, k)
	m.young[k] = v
}

func (m *boundedMap[K, V]) delete(k K) {
	delete(m.young, k)
	delete(m.old, k)
}

func (m *boundedMap[K, V]) len() int { return len(m.young) + len(m.old) }

// deleteWhere deletes the entries match picks. It scans: it is for the
// rare changes an administrator makes (a key revoked, a tenant deleted),
// never for a request's path.
func (m *boundedMap[K, V]) deleteWhere(match func(V) bool) {
	for _, g := range []map[K]V{m.young, m.old} {
		for k, v := range g {
			if match(v) {
				delete(g, k)
			}
		}
	}
}
