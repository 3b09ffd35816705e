module github.com/dispatch-webhooks/dispatch/libs/clock

go 1.26.4
