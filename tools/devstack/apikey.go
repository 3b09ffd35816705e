package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// devAPIKey returns the dev stack's admin key, kept in dataDir/dev-api-key.
// A key the database lacks (a new database, or a revoked key) is replaced
// by a new one, so every start leaves a key that works.
func devAPIKey(ctx context.Context, databaseURL, dataDir string) (string, error) {
	path := filepath.Join(dataDir, "dev-api-key")
	pool, err := store.Connect(ctx, databaseURL, 2)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	st := store.New(pool)
	if b, err := os.ReadFile(path); err == nil {
		key := strings.TrimSpace(string(b))
		if _, err := st.LookupAPIKey(ctx, apikey.HashOf(key)); err == nil {
			return key, nil
		} else if !errors.Is(err, domain.ErrNotFound) {
			return "", err
		}
	}
	key, hash := apikey.New()
	if _, err := st.CreateAPIKey(ctx, domain.APIKey{ID: apikey.NewID(), Name: "dev stack", Scopes: []domain.Scope{domain.ScopeAdmin}, Prefix: apikey.Display(key)}, hash); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", err
	}
	fmt.Printf("created an admin API key in %s\n", path)
	return key, nil
}
