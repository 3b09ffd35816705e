// Package e2e runs Dispatch's real service binaries against the real
// PostgreSQL and an in-process Kafka (kfake) over TCP, with HTTP receivers
// on 127.0.0.1, and checks what a user would see.
package e2e
