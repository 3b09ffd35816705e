module github.com/dispatch-webhooks/dispatch/examples/portal-embed

go 1.26.4

require github.com/dispatch-webhooks/dispatch/libs/client v0.0.0

require (
	github.com/apapsch/go-jsonmerge/v2 v2.0.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/oapi-codegen/runtime v1.9.0 // indirect
)

replace github.com/dispatch-webhooks/dispatch/libs/client => ../../libs/client
