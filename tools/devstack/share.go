package main

import (
	"os"
	"runtime"
	"strconv"
)

// services counts the services the dev stack runs side by side, beside
// itself (embedded Kafka and receiver), PostgreSQL and Redis.
const services = 4

// procsEach is each service's GOMAXPROCS, and the dev stack's own: a share
// of the machine's cores, at least one. A Go process that may run on every
// core hands each goroutine it wakes to another idle thread, one thread
// switch per hand-off, while its neighbours wait for those cores anyway.
// Where a switch is costly (seen: two virtual cores, a steady 200
// deliveries/s, 40 switches per delivery in the worker) that was a fifth of
// the stack's CPU. GOMAXPROCS set by the user wins (ADR 26).
func procsEach() int {
	if v, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil && v > 0 {
		return v
	}
	return max(1, runtime.NumCPU()/services)
}

// shareMachine sets the dev stack's own GOMAXPROCS and returns the
// environment entry its services start with.
func shareMachine() string {
	n := procsEach()
	runtime.GOMAXPROCS(n)
	return "GOMAXPROCS=" + strconv.Itoa(n)
}
