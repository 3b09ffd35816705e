module github.com/dispatch-webhooks/dispatch/libs/observability

go 1.26.4

require github.com/prometheus/client_golang v1.25.0 // indirect
