module github.com/dispatch-webhooks/dispatch/libs/config

go 1.26.4

replace github.com/dispatch-webhooks/dispatch/libs/domain => ../../libs/domain

replace github.com/dispatch-webhooks/dispatch/libs/observability => ../../libs/observability

replace github.com/dispatch-webhooks/dispatch/libs/queue => ../../libs/queue

replace github.com/dispatch-webhooks/dispatch/libs/signing => ../../libs/signing

replace github.com/dispatch-webhooks/dispatch/libs/store => ../../libs/store

replace github.com/dispatch-webhooks/dispatch/libs/testkit => ../../libs/testkit

replace github.com/dispatch-webhooks/dispatch/migrations => ../../migrations

replace github.com/dispatch-webhooks/dispatch/libs/retry => ../../libs/retry

replace github.com/dispatch-webhooks/dispatch/libs/resilience => ../../libs/resilience

replace github.com/dispatch-webhooks/dispatch/libs/lifecycle => ../../libs/lifecycle

replace github.com/dispatch-webhooks/dispatch/libs/egress => ../../libs/egress

replace github.com/dispatch-webhooks/dispatch/libs/apikey => ../../libs/apikey

replace github.com/dispatch-webhooks/dispatch/libs/seal => ../../libs/seal

require (
	github.com/dispatch-webhooks/dispatch/libs/retry v0.0.0
	github.com/dispatch-webhooks/dispatch/libs/seal v0.0.0
)
