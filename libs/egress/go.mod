module github.com/dispatch-webhooks/dispatch/libs/egress

go 1.26.4

replace github.com/dispatch-webhooks/dispatch/libs/apikey => ../../libs/apikey

replace github.com/dispatch-webhooks/dispatch/libs/seal => ../../libs/seal
