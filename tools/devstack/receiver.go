package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/seal"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// demoSecret returns the demo subscription's signing secret, kept under
// dataDir so that the README's examples can hand it to other subscriptions.
func demoSecret(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "demo-secret")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	secret := signing.GenerateSecret()
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	return secret, os.WriteFile(path, []byte(secret+"\n"), 0o600)
}

// secretsKey returns the dev stack's SECRETS_ENCRYPTION_KEY, kept in
// dataDir/secrets-key: the same key must open the secrets stored on every
// earlier run.
func secretsKey(dataDir string) (string, error) { return storedKey(dataDir, "secrets-key") }

// dashboardSessionKey returns the dev dashboard's DASHBOARD_SESSION_KEY,
// kept in dataDir/dashboard-session-key so sessions outlive a restart.
func dashboardSessionKey(dataDir string) (string, error) {
	return storedKey(dataDir, "dashboard-session-key")
}

// storedKey returns the base64 key of 32 random bytes kept in
// dataDir/name, making it on the first run.
func storedKey(dataDir, name string) (string, error) {
	path := filepath.Join(dataDir, name)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	key := seal.NewKey()
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	return key, os.WriteFile(path, []byte(key+"\n"), 0o600)
}

// startReceiver serves a webhook endpoint that verifies each delivery and
// prints it to out, as a user's own endpoint would. Each line names the
// subscription the delivery is for: an event that matches two
// subscriptions to this receiver arrives twice, with the same id.
func startReceiver(addr, secret string, out io.Writer) (*http.Server, error) {
	verifier, err := signing.NewVerifier([]string{secret})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if err := verifier.VerifyHeaders(r.Header, body); err != nil {
			fmt.Fprintf(out, "[receiver] REJECTED %s for %s: %v\n", r.Header.Get("webhook-id"), subscription(r), err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p struct {
			ID   string          `json:"id"`
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		fmt.Fprintf(out, "[receiver] %s delivered %s (%s) for %s, signature verified: %s\n", time.Now().Format("15:04:05"), p.ID, p.Type, subscription(r), p.Data)
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo receiver on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "[receiver]", err)
		}
	}()
	return srv, nil
}

// subscription names the subscription a delivery is for.
func subscription(r *http.Request) string {
	if id := r.Header.Get("X-Dispatch-Subscription-ID"); id != "" {
		return strconv.Quote(id)
	}
	return "an unnamed subscription"
}

func receiverOnly(ctx context.Context, s settings) error {
	secret, err := demoSecret(s.dataDir)
	if err != nil {
		return err
	}
	srv, err := startReceiver(s.receiverAddr, secret, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Printf("demo receiver on http://%s/webhook, verifying with the secret in %s\n", s.receiverAddr, filepath.Join(s.dataDir, "demo-secret"))
	<-ctx.Done()
	return srv.Close()
}
