module github.com/dispatch-webhooks/dispatch/tests/e2e

go 1.26.4
