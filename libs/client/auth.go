package client

import (
	"context"
	"net/http"
)

// WithAPIKey sends key as the bearer credential of every request.
func WithAPIKey(key string) ClientOption {
	return WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+key)
		return nil
	})
}
