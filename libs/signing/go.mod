module github.com/dispatch-webhooks/dispatch/libs/signing

go 1.26.4
