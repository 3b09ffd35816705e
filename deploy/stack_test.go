package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// testVersion is stamped into the binaries built here, as VERSION would be.
const testVersion = "deploy-test"

// TestComposeServicesRun builds every image's binary the way its
// Dockerfile does and runs the stack the compose file describes, as plain
// processes: each Dispatch service gets exactly the environment the compose
// file gives it, with the compose network's host names pointed at this
// machine's PostgreSQL and Redis, an in-process Kafka and the API started
// here, and its ADDR at a free port. The migrator migrates an empty
// database, every service becomes ready, its healthcheck subcommand says
// so, and every metric the Grafana dashboard and the alerts name is
// exported.
func TestComposeServicesRun(t *testing.T) {
	t.Parallel()
	bins := buildImages(t)

	// The documented way to let deliveries reach a receiver on a private
	// network; here the receiver is on loopback.
	p := loadCompose(t, map[string]string{"DELIVERY_ALLOW_CIDRS": "127.0.0.0/8"})
	topic, partitions := kafkaTopic(t, p)
	kafka := testkit.Kafka(t, 1) // without the topic: kafka-init makes it
	_, redisPrefix := testkit.Redis(t)
	dbURL := emptyDatabase(t)
	infra := infrastructure{
		database: dbURL, redis: testkit.RedisURL(), kafka: strings.Join(kafka.ListenAddrs(), ","),
		postgres: environment(composeService(t, p, "postgres")),
	}

	// migrate runs to completion first, as the services wait for it.
	migrate := composeService(t, p, "migrate")
	cmd := exec.Command(bins["migrate"], migrate.Command...)
	cmd.Env = infra.env(t, migrate, nil)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "migrate: %s", out)
	require.Contains(t, string(out), "now at version")

	// kafka-init makes the topic with the image it names, the API's.
	kafkaInit := composeService(t, p, "kafka-init")
	cmd = exec.Command(bins["api"], kafkaInit.Command...)
	cmd.Env = infra.env(t, kafkaInit, nil)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "kafka-init: %s", out)
	require.Equal(t, fmt.Sprintf("created topic %s with %d partitions\n", topic, partitions), string(out))

	var scrape []string
	var apiURL string
	for _, svc := range services {
		if svc.oneShot() {
			continue
		}
		s := composeService(t, p, svc.compose)
		for replica := 1; replica <= s.GetScale(); replica++ {
			addr := freeAddr(t)
			extra := map[string]string{
				"ADDR": addr,
				// Containers each have a host name; these processes share one.
				"INSTANCE_ID": fmt.Sprintf("%s-%d", svc.compose, replica),
				// Keys of this test only, on the shared Redis.
				"REDIS_KEY_PREFIX": redisPrefix,
			}
			if svc.compose == "delivery-worker" {
				// One failure opens a circuit, so its series are exported.
				extra["CIRCUIT_FAILURE_THRESHOLD"] = "1"
			}
			env := infra.env(t, s, extra)
			start(t, bins[svc.compose], env)
			waitReady(t, svc.compose, "http://"+addr)

			// The container's health check: the image's binary with the container's environment.
			hc := exec.Command(bins[svc.compose], "healthcheck")
			hc.Env = env
			out, err := hc.CombinedOutput()
			require.NoError(t, err, "%s healthcheck: %s", svc.compose, out)

			scrape = append(scrape, "http://"+addr+"/metrics")
			if svc.compose == "api" {
				apiURL = "http://" + addr
				infra.api = apiURL // for the dashboard, which comes later
			}
		}
	}

	t.Run("version stamped", func(t *testing.T) {
		out, err := exec.Command(bins["api"], "openapi").Output()
		require.NoError(t, err)
		var doc struct {
			Info struct{ Version string } `json:"info"`
		}
		require.NoError(t, json.Unmarshal(out, &doc))
		require.Equal(t, testVersion, doc.Info.Version)
	})

	t.Run("metrics named by the dashboard and alerts exist", func(t *testing.T) {
		// A delivery that fails exports the series that only exist once
		// something happened: attempt durations and a circuit.
		var hits atomic.Int32
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
		}))
		t.Cleanup(receiver.Close)
		adminKey := environment(composeService(t, p, "api"))["ADMIN_API_KEY"]
		post(t, apiURL+"/subscriptions", adminKey, `{"url":"`+receiver.URL+`/hook","event_types":["*"]}`, http.StatusCreated)
		post(t, apiURL+"/events", adminKey, `{"id":"evt_deploy_check","type":"deploy.check","source":"deploy","data":{}}`, http.StatusAccepted)
		// A subscription with a client certificate exports its expiry,
		// which an alert watches. It matches no event.
		cert := testkit.NewCA(t).IssueValid(t, "dispatch")
		tlsBody, err := json.Marshal(map[string]any{"url": "https://127.0.0.1:9/hook", "event_types": []string{"never.sent"},
			"tls": map[string]string{"client_certificate": cert.CertPEM, "client_key": cert.KeyPEM}})
		require.NoError(t, err)
		post(t, apiURL+"/subscriptions", adminKey, string(tlsBody), http.StatusCreated)

		exported := map[string]bool{}
		require.Eventually(t, func() bool {
			clear(exported)
			for _, u := range scrape {
				for name := range metricFamilies(t, u) {
					exported[name] = true
				}
			}
			return exported["dispatch_circuit_breaker_trips_total"] && exported["dispatch_delivery_duration_seconds_bucket"] &&
				exported["dispatch_client_certificate_expiry_timestamp_seconds"]
		}, time.Minute, 200*time.Millisecond, "the worker did not attempt the delivery (receiver hit %d times)", hits.Load())

		exported["up"] = true // written by Prometheus for each target
		for where, q := range queries(t) {
			for _, name := range parsePromQL(t, where, q) {
				require.True(t, exported[name], "%s names %s, which no service exports", where, name)
			}
		}
	})
}

// infrastructure is where the compose network's hosts are on this machine.
type infrastructure struct {
	database string            // an empty test database
	redis    string            // the test Redis server
	kafka    string            // the in-process Kafka's brokers
	postgres map[string]string // the postgres service's environment
	api      string            // the API started here, once it is
}

// env is a compose service's environment with the compose network's host
// names pointed at this machine, plus extra. It fails when a value points at
// a compose service it does not know how to stand in for.
func (in infrastructure) env(t *testing.T, s types.ServiceConfig, extra map[string]string) []string {
	t.Helper()
	env := environment(s)
	for k, v := range env {
		switch {
		case isHost(v, "postgres"):
			u, err := url.Parse(v)
			require.NoError(t, err, k)
			pw, _ := u.User.Password()
			require.Equal(t, in.postgres["POSTGRES_USER"], u.User.Username(), k)
			require.Equal(t, in.postgres["POSTGRES_PASSWORD"], pw, k)
			require.Equal(t, "/"+in.postgres["POSTGRES_DB"], u.Path, k)
			local, err := url.Parse(in.database)
			require.NoError(t, err)
			local.RawQuery = u.RawQuery // keep the compose file's options, such as sslmode
			env[k] = local.String()
		case isHost(v, "redis"):
			u, err := url.Parse(v)
			require.NoError(t, err, k)
			local, err := url.Parse(in.redis)
			require.NoError(t, err)
			u.Host = local.Host
			env[k] = u.String()
		case isHost(v, "kafka"):
			env[k] = in.kafka
		case isHost(v, "api"):
			require.NotEmpty(t, in.api, "%s points at the API, which has not been started yet: put it after api in services", k)
			u, err := url.Parse(v)
			require.NoError(t, err, k)
			local, err := url.Parse(in.api)
			require.NoError(t, err)
			u.Host = local.Host
			env[k] = u.String()
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	out := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		for other := range s.DependsOn {
			require.False(t, isHost(v, other), "%s=%s points at the compose service %s, which this test does not stand in for", k, v, other)
		}
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// buildImages runs the build stage of every Dockerfile on this machine: a
// context made of what its COPY lines copy, less what .dockerignore leaves
// out, and its RUN lines in their WORKDIR with VERSION set, writing to a
// directory of the test instead of /out. It returns each compose service's
// binary, checked to be static and built with -trimpath.
func buildImages(t *testing.T) map[string]string {
	t.Helper()
	ignore := dockerignore(t)
	out := t.TempDir()
	bins := map[string]string{}
	for _, svc := range services {
		stages := parseDockerfile(t, svc.dockerfile)
		build := stages[0]
		ctx := t.TempDir()
		for _, c := range build.all("copy") {
			src := strings.TrimSuffix(c.args[0], "/")
			err := filepath.WalkDir(filepath.Join(root, src), func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(root, p)
				if skip, err := ignore.MatchesOrParentMatches(filepath.ToSlash(rel)); err != nil || skip {
					if d.IsDir() && err == nil {
						return filepath.SkipDir
					}
					return err
				}
				if d.IsDir() {
					return os.MkdirAll(filepath.Join(ctx, "src", rel), 0o755)
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(ctx, "src", rel), b, 0o644)
			})
			require.NoError(t, err)
		}
		for _, run := range build.all("run") {
			script := strings.ReplaceAll(strings.Join(run.args, " "), "/out/", out+"/")
			dir := filepath.Join(ctx, workdirAt(build, run.line))
			cmd := exec.Command("sh", "-c", script)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "VERSION="+testVersion)
			b, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s:%d in %s: %s\n%s", svc.dockerfile, run.line, dir, script, b)
		}
		bin := filepath.Join(out, svc.binary)
		info, err := buildinfo.ReadFile(bin)
		require.NoError(t, err, "%s builds %s", svc.dockerfile, bin)
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		require.Equal(t, "0", settings["CGO_ENABLED"], "%s is static", svc.binary)
		require.Equal(t, "true", settings["-trimpath"], svc.binary)
		bins[svc.compose] = bin
	}
	return bins
}

// emptyDatabase creates a database with nothing in it, for the migrator,
// on the test PostgreSQL server (TEST_DATABASE_URL), dropped at the end.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = testkit.DefaultDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	require.NoError(t, err, "cannot reach PostgreSQL at %s; start it (Debian: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set TEST_DATABASE_URL", admin)
	defer conn.Close(context.Background())
	name := fmt.Sprintf("dispatch_deploy_%d", time.Now().UnixNano())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// start runs a binary until the test ends, then stops it with SIGTERM as
// `docker compose down` does, printing its output if the test failed.
func start(t *testing.T, bin string, env []string) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = env
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), logs.String())
		}
	})
}

func waitReady(t *testing.T, name, base string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "%s did not become ready", name)
}

func post(t *testing.T, u, key, body string, want int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, want, resp.StatusCode, "POST %s: %s", u, b)
}

// metricFamilies scrapes a /metrics endpoint and returns the names of the
// series it exports, as Prometheus stores them (a histogram's as _bucket,
// _sum and _count).
func metricFamilies(t *testing.T, u string) map[string]bool {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		names[name] = true
	}
	require.NoError(t, sc.Err())
	return names
}
