// Package deploy holds no code. Its folder has the Helm chart
// (helm/dispatch, whose files/alerts.yml are the alerts everywhere), the
// Prometheus configuration and the Grafana provisioning of the compose
// stack (docker-compose.yml at the repository root), and its tests check
// them without a Docker engine or a cluster: the compose file loads and
// validates with the library Docker Compose uses, each Dockerfile's build
// stage is run on this machine and its result started with the
// environment the compose file gives it, against PostgreSQL, Redis and an
// in-process Kafka, the Dockerfiles are parsed with BuildKit's parser,
// Prometheus' files pass promtool, every metric a panel or an alert names
// is exported, and the chart is linted and rendered with Helm's own
// packages, every object decoded into its Kubernetes type and checked, and
// each service's rendered settings accepted by the service itself.
package deploy
