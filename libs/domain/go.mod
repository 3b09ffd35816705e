module github.com/dispatch-webhooks/dispatch/libs/domain

go 1.26.4
