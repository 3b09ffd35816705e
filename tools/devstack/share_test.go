package main

import (
	"runtime"
	"testing"
)

// The environment is process-wide, so these cases run one after another.
func TestProcsEach(t *testing.T) {
	share := max(1, runtime.NumCPU()/services)
	for _, tc := range []struct {
		name, env string
		want      int
	}{
		{"a share of the cores when unset", "", share},
		{"the user's setting wins", "3", 3},
		{"a setting that is not a count is ignored", "many", share},
		{"zero is not a setting", "0", share},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tc.env)
			if got := procsEach(); got != tc.want {
				t.Errorf("procsEach() with GOMAXPROCS=%q = %d, want %d", tc.env, got, tc.want)
			}
		})
	}
}
