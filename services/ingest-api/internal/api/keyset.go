package api

// keysetPage trims rows, asked of the store with one more than limit, to
// limit, and returns the next page's cursor, made by cursor from the last
// row kept; "" when rows is the last page. Every listing pages this way:
// the extra row tells whether there is a next page without a count.
func keysetPage[T any](rows []T, limit int, cursor func(T) string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, cursor(rows[len(rows)-1])
}
