module github.com/dispatch-webhooks/dispatch/services/ingest-api

go 1.26.4

require github.com/danielgtaylor/huma/v2 v2.37.2 // indirect
