package main

import (
	"runtime"
	"testing"
)

// The environment is process-wide, so these cases run one after another.
func TestProcsFor(t *testing.T) {
	one := share(runtime.NumCPU())
	workerShare := 2 * one
	for _, tc := range []struct {
		name, service, env string
		want               int
	}{
		{"a share of the cores when unset", "ingest-api", "", one},
		{"the dev stack's own", "", "", one},
		{"two shares for the delivery worker", worker, "", workerShare},
		{"the user's setting wins", "ingest-api", "3", 3},
		{"the user's setting wins for the worker too", worker, "3", 3},
		{"a setting that is not a count is ignored", "ingest-api", "many", one},
		{"zero is not a setting", worker, "0", workerShare},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tc.env)
			if got := procsFor(tc.service); got != tc.want {
				t.Errorf("procsFor(%q) with GOMAXPROCS=%q = %d, want %d", tc.service, tc.env, got, tc.want)
			}
		})
	}
}

func TestShare(t *testing.T) {
	t.Parallel()
	for cores, want := range map[int]int{1: 1, 2: 1, 4: 1, 7: 1, 8: 2, 16: 4} {
		if got := share(cores); got != want {
			t.Errorf("share(%d) = %d, want %d", cores, got, want)
		}
	}
	if got := 2 * share(2); got != 2 {
		t.Errorf("the worker on two cores gets %d, want 2", got)
	}
}
