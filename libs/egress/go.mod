module github.com/dispatch-webhooks/dispatch/libs/egress

go 1.26.4
