package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

func TestComposeHasTheWholeStack(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)
	for _, name := range []string{"postgres", "redis", "kafka", "kafka-init", "migrate", "api", "delivery-worker", "retry-scheduler", "dashboard", "prometheus", "grafana"} {
		composeService(t, p, name)
	}
	worker := composeService(t, p, "delivery-worker")
	require.Equal(t, 2, worker.GetScale(), "two delivery workers")
	for _, svc := range services {
		s := composeService(t, p, svc.compose)
		require.NotNil(t, s.Build, "%s is built from its Dockerfile", svc.compose)
		require.Equal(t, root, s.Build.Context, "%s builds from the repository root", svc.compose)
		require.Equal(t, svc.dockerfile, s.Build.Dockerfile)
		require.Contains(t, s.Build.Args, "VERSION", "%s stamps its version", svc.compose)
	}
	// Kafka runs in KRaft mode: the broker is its own controller.
	kafka := environment(composeService(t, p, "kafka"))
	require.Equal(t, "broker,controller", kafka["KAFKA_PROCESS_ROLES"])
	require.NotContains(t, kafka, "KAFKA_ZOOKEEPER_CONNECT")
}

// TestComposeGivesEveryServiceItsSettings: each Dispatch service gets every
// variable it needs, and the values that must agree between services and
// with the infrastructure do. TestComposeServicesRun proves the values work.
func TestComposeGivesEveryServiceItsSettings(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)
	topic, _ := kafkaTopic(t, p)
	pg := environment(composeService(t, p, "postgres"))
	for _, svc := range services {
		env := environment(composeService(t, p, svc.compose))
		for _, name := range svc.required {
			require.NotEmpty(t, env[name], "%s needs %s", svc.compose, name)
		}
		if svc.needs("DATABASE_URL") {
			db := env["DATABASE_URL"]
			host, port := hostPort(t, db)
			require.Equal(t, "postgres:5432", host+":"+port, "%s DATABASE_URL", svc.compose)
			require.Contains(t, db, fmt.Sprintf("//%s:%s@", pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"]), "%s logs in as the postgres service's user", svc.compose)
			require.Contains(t, db, "/"+pg["POSTGRES_DB"]+"?", "%s uses the postgres service's database", svc.compose)
		} else {
			require.NotContains(t, env, "DATABASE_URL", "%s does not use the database", svc.compose)
		}
		if !svc.needs("KAFKA_TOPIC") {
			require.NotContains(t, env, "KAFKA_BROKERS", "%s does not use Kafka", svc.compose)
			continue
		}
		require.Equal(t, topic, env["KAFKA_TOPIC"], "%s uses the topic kafka-init creates", svc.compose)
		for _, b := range strings.Split(env["KAFKA_BROKERS"], ",") {
			require.Contains(t, environment(composeService(t, p, "kafka"))["KAFKA_ADVERTISED_LISTENERS"], "//"+b, "%s: %s is a listener the broker advertises", svc.compose, b)
		}
	}
	api, worker := environment(composeService(t, p, "api")), environment(composeService(t, p, "delivery-worker"))
	for _, name := range []string{"SECRETS_ENCRYPTION_KEY", "DELIVERY_ALLOW_CIDRS", "REDIS_URL", "REDIS_KEY_PREFIX"} {
		require.Equal(t, api[name], worker[name], "the API and the workers share %s", name)
	}
	require.Empty(t, worker["DELIVERY_ALLOW_CIDRS"], "no internal range is open by default")
	require.GreaterOrEqual(t, len(api["ADMIN_API_KEY"]), 24)

	// The dashboard reaches the API where the API listens, with a session key it accepts.
	dashboard := environment(composeService(t, p, "dashboard"))
	host, port := hostPort(t, dashboard["DISPATCH_API_URL"])
	require.Equal(t, "api", host, "the dashboard reaches the API by its compose name")
	require.Equal(t, strconv.Itoa(addrPort(t, api["ADDR"])), port, "the dashboard reaches the API on the port of its ADDR")
	sessionKey, err := base64.StdEncoding.DecodeString(dashboard["DASHBOARD_SESSION_KEY"])
	require.NoError(t, err, "DASHBOARD_SESSION_KEY is base64")
	require.Len(t, sessionKey, 32, "DASHBOARD_SESSION_KEY is 32 bytes")
	// It records ended sessions in the stack's Redis.
	for _, name := range []string{"REDIS_URL", "REDIS_KEY_PREFIX"} {
		require.Equal(t, api[name], dashboard[name], "the dashboard shares the API's %s", name)
	}

	// What an operator sets reaches every service that needs it.
	p = loadCompose(t, map[string]string{"SECRETS_ENCRYPTION_KEY": "operator-key", "ADMIN_API_KEY": "operator-admin", "DELIVERY_ALLOW_CIDRS": "172.16.0.0/12", "POSTGRES_PASSWORD": "s3cret", "DASHBOARD_SESSION_KEY": "operator-session-key"})
	api, worker = environment(composeService(t, p, "api")), environment(composeService(t, p, "delivery-worker"))
	require.Equal(t, "operator-key", api["SECRETS_ENCRYPTION_KEY"])
	require.Equal(t, "operator-key", worker["SECRETS_ENCRYPTION_KEY"])
	require.Equal(t, "operator-admin", api["ADMIN_API_KEY"])
	require.Equal(t, "172.16.0.0/12", worker["DELIVERY_ALLOW_CIDRS"])
	require.Equal(t, "operator-session-key", environment(composeService(t, p, "dashboard"))["DASHBOARD_SESSION_KEY"])
	require.Equal(t, "s3cret", environment(composeService(t, p, "postgres"))["POSTGRES_PASSWORD"])
	for _, svc := range services {
		if svc.needs("DATABASE_URL") {
			require.Contains(t, environment(composeService(t, p, svc.compose))["DATABASE_URL"], ":s3cret@", svc.compose)
		}
	}
}

// TestComposePorts: no two containers publish the same host port, published
// ports are on 127.0.0.1 only, and each service listens where it is
// published and scraped.
func TestComposePorts(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)
	published := map[string]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			require.NotEmpty(t, port.Published, "%s: publish a fixed host port", name)
			require.Equal(t, 1, s.GetScale(), "%s has replicas: they cannot share host port %s", name, port.Published)
			require.Equal(t, "127.0.0.1", port.HostIP, "%s: host ports are for this machine only", name)
			key := port.HostIP + ":" + port.Published + "/" + port.Protocol
			require.NotContains(t, published, key, "%s and %s both publish %s", name, published[key], key)
			published[key] = name
		}
	}
	// The seed README's addresses, and the dashboard's.
	for name, want := range map[string]string{"api": "8080", "dashboard": "8083", "prometheus": "9090", "grafana": "3000"} {
		ports := composeService(t, p, name).Ports
		require.Len(t, ports, 1, name)
		require.Equal(t, want, ports[0].Published, name)
	}
	for _, svc := range services {
		if svc.oneShot() {
			continue
		}
		s := composeService(t, p, svc.compose)
		port := addrPort(t, environment(s)["ADDR"])
		for _, pc := range s.Ports {
			require.Equal(t, uint32(port), pc.Target, "%s publishes the port its ADDR listens on", svc.compose)
		}
	}
}

// TestComposeHealthAndOrder: every long-running container has a health
// check (Dispatch's own through their healthcheck subcommand), one-shots
// are waited for until they complete, and every service waits for what its
// settings point at.
func TestComposeHealthAndOrder(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)
	oneShots := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				oneShots[dep] = true
			}
		}
	}
	require.Equal(t, map[string]bool{"kafka-init": true, "migrate": true}, oneShots)
	for name, s := range p.Services {
		if oneShots[name] {
			require.Equal(t, "no", s.Restart, "%s runs once", name)
			continue
		}
		require.NotNil(t, s.HealthCheck, "%s has a health check", name)
		require.False(t, s.HealthCheck.Disable, name)
		require.NotEmpty(t, s.HealthCheck.Test, name)
		require.Contains(t, []string{"CMD", "CMD-SHELL"}, s.HealthCheck.Test[0], name)
		require.NotEqual(t, "no", s.Restart, "%s comes back after a crash or a reboot", name)
		for dep, d := range s.DependsOn {
			if !oneShots[dep] {
				require.Equal(t, types.ServiceConditionHealthy, d.Condition, "%s waits until %s is healthy, not merely started", name, dep)
			}
		}
	}
	for _, svc := range services {
		s := composeService(t, p, svc.compose)
		if !svc.oneShot() {
			require.Equal(t, types.HealthCheckTest{"CMD", "/app/" + svc.binary, "healthcheck"}, s.HealthCheck.Test, svc.compose)
		}
		if !svc.oneShot() && svc.needs("DATABASE_URL") {
			require.Contains(t, s.DependsOn, "migrate", "%s waits for the schema", svc.compose)
		}
		if svc.needs("KAFKA_TOPIC") {
			require.Contains(t, s.DependsOn, "kafka-init", "%s waits for the topic", svc.compose)
		}
	}
	// Whoever names another service's host in its settings waits for it.
	for name, s := range p.Services {
		for key, value := range environment(s) {
			for other := range p.Services {
				if other != name && isHost(value, other) {
					require.Contains(t, s.DependsOn, other, "%s's %s points at %s: it must wait for it", name, key, other)
				}
			}
		}
	}
	require.Contains(t, composeService(t, p, "grafana").DependsOn, "prometheus")
	require.Contains(t, composeService(t, p, "kafka-init").DependsOn, "kafka")
	require.Contains(t, composeService(t, p, "migrate").DependsOn, "postgres")
}

// isHost reports whether value addresses host as a URL or host:port list.
func isHost(value, host string) bool {
	for _, part := range strings.Split(value, ",") {
		part = strings.TrimSpace(part)
		if i := strings.Index(part, "://"); i >= 0 {
			part = part[i+3:]
			if at := strings.LastIndex(strings.SplitN(part, "/", 2)[0], "@"); at >= 0 {
				part = part[at+1:]
			}
		}
		if strings.HasPrefix(part, host+":") {
			return true
		}
	}
	return false
}

// kafkaTopic is the topic kafka-init creates and its partitions.
func kafkaTopic(t *testing.T, p *types.Project) (string, int32) {
	t.Helper()
	init := composeService(t, p, "kafka-init")
	require.Equal(t, types.ShellCommand{"topic", "ensure"}, init.Command, "kafka-init runs the ingest-api's topic ensure")
	env := environment(init)
	n, err := strconv.Atoi(env["KAFKA_PARTITIONS"])
	require.NoError(t, err, "kafka-init's KAFKA_PARTITIONS")
	worker := composeService(t, p, "delivery-worker")
	require.GreaterOrEqual(t, n, worker.GetScale(), "a partition for every worker at least")
	require.NotEmpty(t, env["KAFKA_TOPIC"])
	return env["KAFKA_TOPIC"], int32(n)
}

// TestComposeKafkaPartitions: the topic's partitions are the project's
// setting, KAFKA_PARTITIONS, 12 unless an operator sets it.
func TestComposeKafkaPartitions(t *testing.T) {
	t.Parallel()
	_, n := kafkaTopic(t, loadCompose(t, nil))
	require.EqualValues(t, 12, n)
	_, n = kafkaTopic(t, loadCompose(t, map[string]string{"KAFKA_PARTITIONS": "48"}))
	require.EqualValues(t, 48, n)
	api, init := composeService(t, loadCompose(t, nil), "api"), composeService(t, loadCompose(t, nil), "kafka-init")
	require.Equal(t, api.Image, init.Image, "kafka-init runs the API's image")
	require.Equal(t, api.Build, init.Build, "kafka-init builds the API's image as the API does")
}

// TestEnvExample: every setting .env.example offers is one the compose file reads.
func TestEnvExample(t *testing.T) {
	t.Parallel()
	compose := string(readFile(t, "docker-compose.yml"))
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, ".env.example")))
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		require.True(t, ok, line)
		require.Contains(t, compose, "${"+name+":-", ".env.example offers %s, which docker-compose.yml does not read", name)
		n++
	}
	require.Positive(t, n)
}
