package deploy_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

// root is the repository root, where docker-compose.yml is.
var root = func() string {
	dir, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return dir
}()

// service is one of Dispatch's images and the compose service that runs it.
type service struct {
	compose    string // compose service name
	binary     string // the image's binary, /app/<binary>
	module     string // module directory, relative to the root
	dockerfile string // relative to the root
	job        string // Prometheus job that scrapes it; "" for one-shots
	// required are the variables the compose file must give it: those the
	// service refuses to start without, and those whose defaults point at
	// localhost, which inside a container is the container itself.
	required []string
}

// oneShot reports whether the service runs to completion instead of serving.
func (s service) oneShot() bool { return s.job == "" }

// needs reports whether the compose file must give the service a variable.
func (s service) needs(name string) bool { return slices.Contains(s.required, name) }

var services = []service{
	{compose: "migrate", binary: "dispatch-migrate", module: "migrations", dockerfile: "migrations/Dockerfile",
		required: []string{"DATABASE_URL"}},
	{compose: "api", binary: "ingest-api", module: "services/ingest-api", dockerfile: "services/ingest-api/Dockerfile", job: "ingest-api",
		required: []string{"ADDR", "DATABASE_URL", "KAFKA_BROKERS", "KAFKA_TOPIC", "REDIS_URL", "SECRETS_ENCRYPTION_KEY", "ADMIN_API_KEY"}},
	{compose: "delivery-worker", binary: "delivery-worker", module: "services/delivery-worker", dockerfile: "services/delivery-worker/Dockerfile", job: "delivery-worker",
		required: []string{"ADDR", "DATABASE_URL", "KAFKA_BROKERS", "KAFKA_TOPIC", "KAFKA_CONSUMER_GROUP", "REDIS_URL", "SECRETS_ENCRYPTION_KEY"}},
	{compose: "retry-scheduler", binary: "retry-scheduler", module: "services/retry-scheduler", dockerfile: "services/retry-scheduler/Dockerfile", job: "retry-scheduler",
		required: []string{"ADDR", "DATABASE_URL", "KAFKA_BROKERS", "KAFKA_TOPIC"}},
	{compose: "dashboard", binary: "dashboard", module: "services/dashboard", dockerfile: "services/dashboard/Dockerfile", job: "dashboard",
		required: []string{"ADDR", "DISPATCH_API_URL", "DASHBOARD_SESSION_KEY", "REDIS_URL"}},
}

// loadCompose loads docker-compose.yml as `docker compose` does, with env
// as the only environment for interpolation (no .env file, not the
// test's own environment), so that the defaults are what is tested.
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnv(list), cli.WithInterpolation(true), cli.WithConsistency(true))
	require.NoError(t, err)
	project, err := opts.LoadProject(context.Background())
	require.NoError(t, err, "docker-compose.yml does not load")
	return project
}

// composeService returns a service of the project, failing when it is missing.
func composeService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	require.True(t, ok, "docker-compose.yml has no service %q", name)
	return s
}

// environment is a compose service's environment as a map.
func environment(s types.ServiceConfig) map[string]string {
	env := make(map[string]string, len(s.Environment))
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// addrPort is the port of a service's ADDR (":8080" → 8080).
func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, "ADDR %q", addr)
	n, err := strconv.Atoi(port)
	require.NoError(t, err, "ADDR %q", addr)
	return n
}

// hostPort splits a URL's or address's host and port.
func hostPort(t *testing.T, raw string) (string, string) {
	t.Helper()
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		raw = u.Host
	}
	host, port, err := net.SplitHostPort(raw)
	require.NoError(t, err, raw)
	return host, port
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	require.NoError(t, err)
	return b
}
