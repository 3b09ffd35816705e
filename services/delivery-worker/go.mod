module github.com/dispatch-webhooks/dispatch/services/delivery-worker

go 1.26.4
