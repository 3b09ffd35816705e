package main

import (
	"runtime"
	"testing"
)

// The environment is process-wide, so these cases run one after another.
func TestProcsFor(t *testing.T) {
	share := max(1, runtime.NumCPU()/services)
	workerShare := max(1, runtime.NumCPU()*2/services)
	for _, tc := range []struct {
		name, service, env string
		want               int
	}{
		{"a share of the cores when unset", "ingest-api", "", share},
		{"the dev stack's own", "", "", share},
		{"two shares for the delivery worker", worker, "", workerShare},
		{"the user's setting wins", "ingest-api", "3", 3},
		{"the user's setting wins for the worker too", worker, "3", 3},
		{"a setting that is not a count is ignored", "ingest-api", "many", share},
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
