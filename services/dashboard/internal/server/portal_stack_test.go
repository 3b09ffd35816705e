package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/dashboard/internal/session"
)

// The portal's tests run against the real ingest-api: the portal's
// safety rests on the API's scoping of a portal session's key, so that is
// what they exercise, with the real PostgreSQL, Redis and kfake.

const (
	stackAdminKey   = "portal-test-admin-key-0123456789"
	stackSecretsKey = "ZTJlLXNlY3JldHMta2V5LTAxMjM0NTY3ODlhYmNkZWY="
)

var (
	apiBinaryOnce sync.Once
	apiBinaryDir  string
	apiBinaryErr  error
)

// ingestAPIBinary builds the ingest-api once for the package's tests.
func ingestAPIBinary(t *testing.T) string {
	t.Helper()
	apiBinaryOnce.Do(func() {
		apiBinaryDir, apiBinaryErr = os.MkdirTemp("", "dispatch-portal-test")
		if apiBinaryErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(apiBinaryDir, "ingest-api"), ".")
		cmd.Dir = filepath.Join("..", "..", "..", "ingest-api")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			apiBinaryErr = fmt.Errorf("build ingest-api: %w\n%s", err, out.String())
		}
	})
	if apiBinaryErr != nil {
		t.Fatal(apiBinaryErr)
	}
	return filepath.Join(apiBinaryDir, "ingest-api")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if apiBinaryDir != "" {
		_ = os.RemoveAll(apiBinaryDir)
	}
	os.Exit(code)
}

// portalStack is a real ingest-api and a dashboard serving the portal in
// front of it.
type portalStack struct {
	apiURL string
	dash   string
	db     *testkit.Database
	server *Server
}

// startPortalStack starts the ingest-api on its own database, Kafka and
// Redis prefix, and a dashboard with portal in front of it.
func startPortalStack(t *testing.T, portal PortalConfig) *portalStack {
	t.Helper()
	bin := ingestAPIBinary(t)
	db := testkit.Postgres(t)
	cluster := testkit.Kafka(t, 2, "events.pending")
	rdb, prefix := testkit.Redis(t)

	dash := httptest.NewUnstartedServer(http.NotFoundHandler())
	t.Cleanup(dash.Close)
	dashURL := "http://" + dash.Listener.Addr().String()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "ADDR=" + addr, "DATABASE_URL=" + db.URL, "DB_MAX_CONNS=4",
		"KAFKA_BROKERS=" + cluster.ListenAddrs()[0], "KAFKA_TOPIC=events.pending", "REDIS_URL=" + testkit.RedisURL(),
		"REDIS_KEY_PREFIX=" + prefix, "DELIVERY_ALLOW_CIDRS=127.0.0.0/8", "ADMIN_API_KEY=" + stackAdminKey,
		"SECRETS_ENCRYPTION_KEY=" + stackSecretsKey, "LOG_FORMAT=text", "SHUTDOWN_TIMEOUT=2s",
		"PORTAL_URL=" + dashURL + "/portal", "PORTAL_RETURN_ORIGINS=https://app.example.com"}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("ingest-api output:\n%s", logs.String())
		}
	})
	apiURL := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(apiURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("ingest-api exited:\n%s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest-api never became ready:\n%s", logs.String())
		}
	}

	sealer, err := session.NewSealer(bytes.Repeat([]byte{2}, session.KeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{APIURL: apiURL, Sealer: sealer, Revocations: session.NewRevocations(rdb, prefix, nil), SessionTTL: time.Hour, Portal: portal})
	dash.Config.Handler = srv.Handler()
	dash.Start()
	return &portalStack{apiURL: apiURL, dash: dashURL, db: db, server: srv}
}

// call sends a JSON request to the API as the admin key.
func (s *portalStack) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.apiURL+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+stackAdminKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// must is call that fails the test unless the API answers want.
func (s *portalStack) must(t *testing.T, want int, method, path, body string) map[string]any {
	t.Helper()
	status, out := s.call(t, method, path, body)
	if status != want {
		t.Fatalf("%s %s: %d %v", method, path, status, out)
	}
	return out
}

// link asks the API for a portal link to tenant and returns its URL.
func (s *portalStack) link(t *testing.T, tenant, body string) string {
	t.Helper()
	return s.must(t, http.StatusCreated, "POST", "/tenants/"+tenant+"/portal-links", body)["url"].(string)
}

// count runs a counting query on the stack's database.
func (s *portalStack) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	if err := s.db.Pool.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// snapshot is every row of tenant's (every tenant's for ""), as text:
// what a refused request must leave as it was.
func (s *portalStack) snapshot(t *testing.T, tenant string) string {
	t.Helper()
	var out string
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT concat_ws(' | ',
		(SELECT string_agg(t::text, ',' ORDER BY id) FROM tenants t WHERE $1 = '' OR id = $1),
		(SELECT string_agg(s::text, ',' ORDER BY id) FROM subscriptions s WHERE $1 = '' OR tenant_id = $1),
		(SELECT string_agg(e::text, ',' ORDER BY id) FROM events e WHERE $1 = '' OR tenant_id = $1),
		(SELECT string_agg(d::text, ',' ORDER BY d.id) FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id WHERE $1 = '' OR s.tenant_id = $1),
		(SELECT string_agg(a::text, ',' ORDER BY a.id) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
			JOIN subscriptions s ON s.id = d.subscription_id WHERE $1 = '' OR s.tenant_id = $1))`, tenant).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// open opens a portal link in a fresh browser and checks that it leads
// to the portal's home.
func (s *portalStack) open(t *testing.T, link string) *bundle {
	t.Helper()
	b := &bundle{url: s.dash, client: browserClient()}
	resp, err := b.client.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/" {
		t.Fatalf("opening %s: %d to %q", link, resp.StatusCode, resp.Header.Get("Location"))
	}
	return b
}
