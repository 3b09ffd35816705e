package deploy_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// promtool runs Debian's promtool in deploy/prometheus. A machine without
// it fails the test and says how to install it.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	return promtoolIn(t, filepath.Join(root, "deploy", "prometheus"), args...)
}

// promtoolIn runs promtool in dir.
func promtoolIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed; it checks the Prometheus configuration and tests the alerts. " +
			"Install it with `apt-get install -y prometheus` (Debian's package ships promtool); .ci/run does.")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// TestPrometheusConfig checks the configuration as the compose stack's
// Prometheus sees it: its /etc/prometheus made of the files the compose
// file mounts there.
func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	etc := t.TempDir()
	for _, v := range composeService(t, loadCompose(t, nil), "prometheus").Volumes {
		if rel, ok := strings.CutPrefix(v.Target, "/etc/prometheus/"); ok {
			b, err := os.ReadFile(v.Source)
			require.NoError(t, err, "prometheus mounts %s", v.Source)
			require.NoError(t, os.WriteFile(filepath.Join(etc, rel), b, 0o644))
		}
	}
	out := promtoolIn(t, etc, "check", "config", "prometheus.yml")
	require.Contains(t, out, "SUCCESS: 1 rule files found")
	promtool(t, "check", "rules", alertsFile)
}

// TestAlerts runs the alerts' unit tests, and checks every alert has a
// test in which it fires and a runbook in docs/operations.md.
func TestAlerts(t *testing.T) {
	t.Parallel()
	out := promtool(t, "test", "rules", "alerts_test.yml")
	require.Contains(t, out, "SUCCESS")

	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(readFile(t, "deploy/prometheus/alerts_test.yml"), &tests))
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	runbooks := string(readFile(t, "docs/operations.md"))
	alerts := alertRules(t)
	require.Len(t, alerts, 9)
	for name, rule := range alerts {
		require.True(t, fires[name], "alerts_test.yml has no case in which %s fires", name)
		require.True(t, quiet[name], "alerts_test.yml has no case in which %s stays quiet", name)
		require.Contains(t, runbooks, "\n### "+name+"\n", "docs/operations.md has no runbook for %s", name)
		require.Equal(t, "docs/operations.md#"+strings.ToLower(name), rule.Annotations["runbook"], name)
		require.Contains(t, []string{"warning", "critical"}, rule.Labels["severity"], name)
	}
}

type alertRule struct {
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// alertsFile is the rules file, relative to deploy/prometheus: the chart's,
// which the compose stack's Prometheus loads too.
const alertsFile = "../helm/dispatch/files/alerts.yml"

// alertRules reads the alerts by name.
func alertRules(t *testing.T) map[string]alertRule {
	t.Helper()
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert     string `yaml:"alert"`
				alertRule `yaml:",inline"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(readFile(t, "deploy/helm/dispatch/files/alerts.yml"), &file))
	rules := map[string]alertRule{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "only alerts in alerts.yml")
			rules[r.Alert] = r.alertRule
		}
	}
	return rules
}

// scrapeConfig is the part of a Prometheus scrape configuration checked here.
type scrapeConfig struct {
	JobName       string `yaml:"job_name"`
	StaticConfigs []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
	DNSSDConfigs []struct {
		Names []string `yaml:"names"`
		Type  string   `yaml:"type"`
		Port  int      `yaml:"port"`
	} `yaml:"dns_sd_configs"`
}

// TestScrapeTargets: Prometheus scrapes every long-running Dispatch service
// at the compose service's name and the port its ADDR listens on, and
// finds every delivery-worker replica.
func TestScrapeTargets(t *testing.T) {
	t.Parallel()
	var cfg struct {
		RuleFiles     []string       `yaml:"rule_files"`
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(readFile(t, "deploy/prometheus/prometheus.yml"), &cfg))
	require.Equal(t, []string{"alerts.yml"}, cfg.RuleFiles)
	p := loadCompose(t, nil)
	for _, svc := range services {
		if svc.oneShot() {
			continue
		}
		s := composeService(t, p, svc.compose)
		port := addrPort(t, environment(s)["ADDR"])
		i := slices.IndexFunc(cfg.ScrapeConfigs, func(c scrapeConfig) bool { return c.JobName == svc.job })
		require.GreaterOrEqual(t, i, 0, "prometheus.yml has no job %s", svc.job)
		sc := cfg.ScrapeConfigs[i]
		if s.GetScale() > 1 {
			require.Len(t, sc.DNSSDConfigs, 1, "%s has replicas: Prometheus finds them by DNS", svc.compose)
			require.Equal(t, []string{svc.compose}, sc.DNSSDConfigs[0].Names)
			require.Equal(t, "A", sc.DNSSDConfigs[0].Type)
			require.Equal(t, port, sc.DNSSDConfigs[0].Port)
			continue
		}
		require.Len(t, sc.StaticConfigs, 1)
		require.Equal(t, []string{net.JoinHostPort(svc.compose, strconv.Itoa(port))}, sc.StaticConfigs[0].Targets)
	}
	// The compose file mounts the configuration where the command line
	// looks, and the chart's alerts where the configuration does.
	prom := composeService(t, p, "prometheus")
	require.Contains(t, prom.Command, "--config.file=/etc/prometheus/prometheus.yml")
	for src, target := range map[string]string{
		"deploy/prometheus/prometheus.yml":      "/etc/prometheus/prometheus.yml",
		"deploy/helm/dispatch/files/alerts.yml": "/etc/prometheus/" + cfg.RuleFiles[0],
	} {
		require.True(t, slices.ContainsFunc(prom.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Source == filepath.Join(root, src) && v.Target == target && v.ReadOnly
		}), "prometheus mounts %s at %s", src, target)
	}
}

// grafanaVars are the dashboard variables Grafana replaces before querying.
var grafanaVars = regexp.MustCompile(`\$__(rate_interval|interval|range)\b`)

// parsePromQL parses a query as Prometheus does and returns the metric
// names it selects.
func parsePromQL(t *testing.T, where, query string) []string {
	t.Helper()
	expr, err := parser.ParseExpr(grafanaVars.ReplaceAllString(query, "5m"))
	require.NoError(t, err, "%s: %s", where, query)
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			require.NotEmpty(t, vs.Name, "%s selects series without a metric name: %s", where, vs)
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// queries are every PromQL query of the dashboards and alerts, by where
// they are.
func queries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, rule := range alertRules(t) {
		out["alert "+name] = rule.Expr
	}
	for where, q := range panelQueries(t) {
		out[where] = q
	}
	return out
}

func TestQueriesParse(t *testing.T) {
	t.Parallel()
	for where, q := range queries(t) {
		require.NotEmpty(t, parsePromQL(t, where, q), where)
	}
}
