// Package testkit gives every test its own real infrastructure: a fresh
// PostgreSQL database cloned from a migrated template, and an in-process
// Kafka cluster (kfake) listening on 127.0.0.1. Nothing is mocked; tests in
// parallel never see each other's data.
//
// TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
// names the server's maintenance database. When the server cannot be
// reached the test fails with a message that says how to start it.
package testkit
