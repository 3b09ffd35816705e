module github.com/dispatch-webhooks/dispatch/libs/seal

go 1.26.4
