package deploy_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int           `json:"id"`
	Title      string        `json:"title"`
	Datasource datasourceRef `json:"datasource"`
	Targets    []struct {
		RefID      string        `json:"refId"`
		Datasource datasourceRef `json:"datasource"`
		Expr       string        `json:"expr"`
	} `json:"targets"`
}

const dashboardFile = "deploy/grafana/dashboards/dispatch.json"

func dashboardPanels(t *testing.T) []panel {
	t.Helper()
	var d struct {
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(readFile(t, dashboardFile), &d), dashboardFile)
	require.NotEmpty(t, d.UID)
	return d.Panels
}

// panelQueries are the dashboard's queries, by panel and target.
func panelQueries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range dashboardPanels(t) {
		for _, q := range p.Targets {
			out[fmt.Sprintf("panel %q target %s", p.Title, q.RefID)] = q.Expr
		}
	}
	return out
}

// TestDashboard: the panels the issue asks for, each querying the
// provisioned Prometheus data source with PromQL that parses.
func TestDashboard(t *testing.T) {
	t.Parallel()
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	require.NoError(t, yaml.Unmarshal(readFile(t, "deploy/grafana/provisioning/datasources/prometheus.yml"), &ds))
	require.Len(t, ds.Datasources, 1)
	source := ds.Datasources[0]
	require.Equal(t, "prometheus", source.Type)

	p := loadCompose(t, nil)
	prom := composeService(t, p, "prometheus")
	host, port := hostPort(t, source.URL)
	require.Equal(t, "prometheus", host, "the data source is the compose service")
	require.Equal(t, strconv.Itoa(int(prom.Ports[0].Target)), port)

	panels := dashboardPanels(t)
	ids := map[int]bool{}
	selected := map[string]bool{}
	for _, pn := range panels {
		require.False(t, ids[pn.ID], "panel id %d twice", pn.ID)
		ids[pn.ID] = true
		require.Equal(t, datasourceRef{Type: source.Type, UID: source.UID}, pn.Datasource, pn.Title)
		require.NotEmpty(t, pn.Targets, pn.Title)
		for _, q := range pn.Targets {
			require.Equal(t, pn.Datasource, q.Datasource, pn.Title)
			for _, name := range parsePromQL(t, pn.Title, q.Expr) {
				selected[name] = true
			}
		}
	}
	for _, name := range []string{
		"dispatch_events_received_total", "dispatch_events_delivered_total", "dispatch_events_retrying_total", "dispatch_events_failed_total",
		"dispatch_delivery_duration_seconds_bucket", "dispatch_events_throttled_total", "dispatch_circuit_breaker_state",
		"dispatch_resilience_fallback", "dispatch_publish_failures_total", "dispatch_scheduler_publish_failures_total",
		"dispatch_scheduler_republished_total", "dispatch_scheduler_claimed_total",
		"dispatch_backlog_deliveries", "dispatch_backlog_oldest_due_seconds",
	} {
		require.True(t, selected[name], "no panel shows %s", name)
	}
}

// TestGrafanaProvisioning: the provider loads the folder the compose file
// mounts the dashboards at, and every provisioning file is mounted.
func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	var prov struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	require.NoError(t, yaml.Unmarshal(readFile(t, "deploy/grafana/provisioning/dashboards/dispatch.yml"), &prov))
	require.Len(t, prov.Providers, 1)
	require.Equal(t, "file", prov.Providers[0].Type)

	grafana := composeService(t, loadCompose(t, nil), "grafana")
	mounted := func(src, target string) bool {
		return slices.ContainsFunc(grafana.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Source == filepath.Join(root, src) && v.Target == target && v.ReadOnly
		})
	}
	require.True(t, mounted("deploy/grafana/dashboards", prov.Providers[0].Options.Path), "the dashboards are mounted where the provider reads")
	require.True(t, mounted("deploy/grafana/provisioning/datasources", "/etc/grafana/provisioning/datasources"))
	require.True(t, mounted("deploy/grafana/provisioning/dashboards", "/etc/grafana/provisioning/dashboards"))
	require.Equal(t, prov.Providers[0].Options.Path+"/dispatch.json", environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
	require.Equal(t, "admin", environment(grafana)["GF_SECURITY_ADMIN_USER"], "the seed README's admin/admin")
	require.Equal(t, "admin", environment(grafana)["GF_SECURITY_ADMIN_PASSWORD"])
}
