package main

import (
	"os"
	"runtime"
	"strconv"
)

// services counts the services the dev stack runs side by side, beside
// itself (embedded Kafka and receiver), PostgreSQL and Redis.
const services = 4

// worker is the service that gets two shares of the cores (procsFor).
const worker = "delivery-worker"

// procsFor is a service's GOMAXPROCS on a machine of cores, or the dev
// stack's own for "": a quarter of the cores, at least one. A Go process
// that may run on every core hands each goroutine it wakes to another idle
// thread, one thread switch per hand-off, while its neighbours wait for
// those cores anyway. Where a switch is costly (seen: two virtual cores, a
// steady 200 deliveries/s, 40 switches per delivery in the worker) that was
// a fifth of the stack's CPU. The delivery worker gets two shares: at full
// load it is the one service that needs more than half a core, and with one
// thread it waited for a core as long as it ran (ADR 26). GOMAXPROCS set by
// the user wins.
func procsFor(service string, cores int) int {
	if v, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil && v > 0 {
		return v
	}
	shares := 1
	if service == worker {
		shares = 2
	}
	return shares * max(1, cores/services)
}

// shareMachine sets the dev stack's own GOMAXPROCS.
func shareMachine() {
	runtime.GOMAXPROCS(procsFor("", runtime.NumCPU()))
}

// procsEnv is the environment entry a service starts with.
func procsEnv(service string) string {
	return "GOMAXPROCS=" + strconv.Itoa(procsFor(service, runtime.NumCPU()))
}
