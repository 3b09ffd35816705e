package main

import "testing"

// The environment is process-wide, so these cases run one after another.
func TestProcsFor(t *testing.T) {
	for _, tc := range []struct {
		name, service, env string
		cores, want        int
	}{
		{"one on two cores", "ingest-api", "", 2, 1},
		{"the dev stack's own", "", "", 2, 1},
		{"two for the delivery worker on two cores", worker, "", 2, 2},
		{"still one below eight cores", "ingest-api", "", 7, 1},
		{"a quarter of the cores", "ingest-api", "", 16, 4},
		{"two quarters for the delivery worker", worker, "", 16, 8},
		{"the user's setting wins", "ingest-api", "3", 2, 3},
		{"the user's setting wins for the worker too", worker, "3", 2, 3},
		{"a setting that is not a count is ignored", "ingest-api", "many", 2, 1},
		{"zero is not a setting", worker, "0", 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tc.env)
			if got := procsFor(tc.service, tc.cores); got != tc.want {
				t.Errorf("procsFor(%q, %d) with GOMAXPROCS=%q = %d, want %d", tc.service, tc.cores, tc.env, got, tc.want)
			}
		})
	}
}
