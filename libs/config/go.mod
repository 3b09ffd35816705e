module github.com/dispatch-webhooks/dispatch/libs/config

go 1.26.4
