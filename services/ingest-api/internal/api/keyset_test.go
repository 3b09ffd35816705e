package api

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeysetPage(t *testing.T) {
	t.Parallel()
	cursor := func(n int) string { return "after-" + strconv.Itoa(n) }
	for _, tc := range []struct {
		rows   []int
		limit  int
		want   []int
		cursor string
	}{
		{nil, 2, nil, ""},
		{[]int{1, 2}, 2, []int{1, 2}, ""},
		{[]int{1, 2, 3}, 2, []int{1, 2}, "after-2"},
		{[]int{1}, 1, []int{1}, ""},
	} {
		got, next := keysetPage(tc.rows, tc.limit, cursor)
		require.Equal(t, tc.want, got)
		require.Equal(t, tc.cursor, next)
	}
}
