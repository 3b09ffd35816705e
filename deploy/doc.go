// Package deploy holds no code. Its folder has the Prometheus configuration
// and alerts and the Grafana provisioning of the compose stack
// (docker-compose.yml at the repository root), and its tests check the
// stack without a Docker engine: the compose file loads and validates with
// the library Docker Compose uses, each Dockerfile's build stage is run on
// this machine and its result started with the environment the compose
// file gives it, against PostgreSQL, Redis and an in-process Kafka, the
// Dockerfiles are parsed with BuildKit's parser, Prometheus' files pass
// promtool, and every metric a panel or an alert names is exported.
package deploy
