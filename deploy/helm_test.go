package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"helm.sh/helm/v4/pkg/strvals"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// chartDir is the Helm chart, relative to the repository root.
const chartDir = "deploy/helm/dispatch"

// chartCase is a values file the chart is checked with, and the Secrets
// it names that the operator creates, as they would be in the cluster.
type chartCase struct {
	name     string
	values   string
	external map[string]map[string]string // Secret name → key → value
}

var chartCases = []chartCase{
	{name: "minimal", values: "ci/minimal-values.yaml"},
	{name: "production", values: "ci/production-values.yaml", external: map[string]map[string]string{
		"dispatch-database": {"url": "postgres://dispatch:s3cret@pg.data.svc:5432/dispatch?sslmode=require"},
		"dispatch-redis":    {"url": "rediss://:s3cret@redis.data.svc:6380/0"},
		"dispatch-keys": {
			"SECRETS_ENCRYPTION_KEY": "nLehg2pe3A7x9d3LsF6w0Azd47fwAZxgZx1hrye4QPI=",
			"ADMIN_API_KEY":          "prod-admin-key-of-at-least-24-characters",
			"DASHBOARD_SESSION_KEY":  "16xWBaScIMVsrdSAe47JK6LC7B4QBZxMNeeCbzJrd0Q=",
		},
	}},
}

// manifests is a rendered release: every object, hooks included, decoded
// strictly into its Kubernetes type.
type manifests struct {
	values       map[string]any
	deployments  map[string]*appsv1.Deployment
	jobs         map[string]*batchv1.Job
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	accounts     map[string]*corev1.ServiceAccount
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs         map[string]*policyv1.PodDisruptionBudget
	ingresses    map[string]*networkingv1.Ingress
	scaledObject map[string]*scaledObject
	monitors     map[string]*serviceMonitor
	rules        map[string]*prometheusRule
	// hooks are the names of objects that are Helm hooks, by kind/name,
	// with their weight.
	hooks map[string]int
}

// scaledObject is the part of KEDA's ScaledObject the chart writes.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount"`
		MaxReplicaCount *int32 `json:"maxReplicaCount"`
		PollingInterval *int32 `json:"pollingInterval"`
		CooldownPeriod  *int32 `json:"cooldownPeriod"`
		Triggers        []struct {
			Type              string            `json:"type"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
			} `json:"authenticationRef"`
		} `json:"triggers"`
	} `json:"spec"`
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// the chart writes.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// prometheusRule is the Prometheus Operator's PrometheusRule.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// chartValues reads a values file of the chart and applies sets
// (name=value, as `helm --set` takes them).
func chartValues(t *testing.T, file string, sets ...string) map[string]any {
	t.Helper()
	vals, err := common.ReadValuesFile(filepath.Join(root, chartDir, file))
	require.NoError(t, err)
	for _, s := range sets {
		require.NoError(t, strvals.ParseInto(s, vals), s)
	}
	return vals
}

// renderChart renders the chart as `helm install --dry-run=client` does,
// hooks included, and returns it with the values it was rendered with
// (the chart's defaults under vals).
func renderChart(t *testing.T, vals map[string]any) (*release.Release, map[string]any, error) {
	t.Helper()
	chrt, err := loader.Load(filepath.Join(root, chartDir))
	require.NoError(t, err)
	coalesced, err := chartutil.CoalesceValues(chrt, vals)
	require.NoError(t, err)
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = "dispatch"
	install.Namespace = "webhooks"
	install.KubeVersion = oldestKubernetes(t)
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return nil, nil, err
	}
	r, ok := rel.(*release.Release)
	require.True(t, ok, "release of type %T", rel)
	return r, coalesced.AsMap(), nil
}

// oldestKubernetes is the oldest version the chart supports (Chart.yaml's
// kubeVersion): rendering for it keeps newer APIs out.
func oldestKubernetes(t *testing.T) *common.KubeVersion {
	t.Helper()
	v, err := common.ParseKubeVersion("v1.27.0")
	require.NoError(t, err)
	return v
}

// number is a numeric value of the chart's values, however it was read.
func number(t *testing.T, v any) int64 {
	t.Helper()
	switch n := v.(type) {
	case float64:
		return int64(n)
	case int64:
		return n
	case int:
		return int64(n)
	}
	t.Fatalf("%v (%T) is not a number", v, v)
	return 0
}

// decodeStrict decodes a manifest's JSON into obj, failing on any field
// obj's type does not have.
func decodeStrict(t *testing.T, where string, doc []byte, obj any) {
	t.Helper()
	strict, err := kjson.UnmarshalStrict(doc, obj)
	require.NoError(t, err, where)
	require.Empty(t, strict, "%s has fields its type does not know", where)
}

// render renders the chart with vals and decodes every object.
func render(t *testing.T, vals map[string]any) *manifests {
	t.Helper()
	rel, coalesced, err := renderChart(t, vals)
	require.NoError(t, err)
	m := &manifests{
		values:       coalesced,
		deployments:  map[string]*appsv1.Deployment{},
		jobs:         map[string]*batchv1.Job{},
		services:     map[string]*corev1.Service{},
		configMaps:   map[string]*corev1.ConfigMap{},
		secrets:      map[string]*corev1.Secret{},
		accounts:     map[string]*corev1.ServiceAccount{},
		hpas:         map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs:         map[string]*policyv1.PodDisruptionBudget{},
		ingresses:    map[string]*networkingv1.Ingress{},
		scaledObject: map[string]*scaledObject{},
		monitors:     map[string]*serviceMonitor{},
		rules:        map[string]*prometheusRule{},
		hooks:        map[string]int{},
	}
	docs := slices.Collect(maps.Values(releaseutil.SplitManifests(rel.Manifest)))
	for _, h := range rel.Hooks {
		docs = append(docs, h.Manifest)
		m.hooks[h.Kind+"/"+h.Name] = h.Weight
	}
	require.NotEmpty(t, docs)
	for _, doc := range docs {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		js, err := yaml.YAMLToJSON([]byte(doc))
		require.NoError(t, err, doc)
		var tm metav1.TypeMeta
		_, err = kjson.UnmarshalStrict(js, &tm) // only the type: other fields are expected
		require.NoError(t, err)
		where := tm.Kind + " in\n" + doc
		want, known := apiVersions[tm.Kind]
		require.True(t, known, "the chart renders a %s, which this test does not check", tm.Kind)
		require.Equal(t, want, tm.APIVersion, "%s's apiVersion", tm.Kind)
		var meta struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		_, err = kjson.UnmarshalStrict(js, &meta)
		require.NoError(t, err)
		name := meta.Metadata.Name
		require.NotEmpty(t, name, where)
		switch tm.Kind {
		case "Deployment":
			m.deployments[name] = decodeInto[appsv1.Deployment](t, where, js, m.deployments, name)
		case "Job":
			m.jobs[name] = decodeInto[batchv1.Job](t, where, js, m.jobs, name)
		case "Service":
			m.services[name] = decodeInto[corev1.Service](t, where, js, m.services, name)
		case "ConfigMap":
			m.configMaps[name] = decodeInto[corev1.ConfigMap](t, where, js, m.configMaps, name)
		case "Secret":
			m.secrets[name] = decodeInto[corev1.Secret](t, where, js, m.secrets, name)
		case "ServiceAccount":
			m.accounts[name] = decodeInto[corev1.ServiceAccount](t, where, js, m.accounts, name)
		case "HorizontalPodAutoscaler":
			m.hpas[name] = decodeInto[autoscalingv2.HorizontalPodAutoscaler](t, where, js, m.hpas, name)
		case "PodDisruptionBudget":
			m.pdbs[name] = decodeInto[policyv1.PodDisruptionBudget](t, where, js, m.pdbs, name)
		case "Ingress":
			m.ingresses[name] = decodeInto[networkingv1.Ingress](t, where, js, m.ingresses, name)
		case "ScaledObject":
			m.scaledObject[name] = decodeInto[scaledObject](t, where, js, m.scaledObject, name)
		case "ServiceMonitor":
			m.monitors[name] = decodeInto[serviceMonitor](t, where, js, m.monitors, name)
		case "PrometheusRule":
			m.rules[name] = decodeInto[prometheusRule](t, where, js, m.rules, name)
		}
	}
	return m
}

// decodeInto decodes a manifest strictly into a new T, which must be the
// only object of its kind with that name.
func decodeInto[T any](t *testing.T, where string, js []byte, seen map[string]*T, name string) *T {
	t.Helper()
	require.NotContains(t, seen, name, "two objects named %s", name)
	obj := new(T)
	decodeStrict(t, where, js, obj)
	return obj
}

// apiVersions are the kinds the chart may render and their API versions.
var apiVersions = map[string]string{
	"Deployment":              "apps/v1",
	"Job":                     "batch/v1",
	"Service":                 "v1",
	"ConfigMap":               "v1",
	"Secret":                  "v1",
	"ServiceAccount":          "v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"PodDisruptionBudget":     "policy/v1",
	"Ingress":                 "networking.k8s.io/v1",
	"ScaledObject":            "keda.sh/v1alpha1",
	"ServiceMonitor":          "monitoring.coreos.com/v1",
	"PrometheusRule":          "monitoring.coreos.com/v1",
}

// component is the Prometheus job and service a chart object belongs to.
func component(meta metav1.ObjectMeta) string {
	return meta.Labels["app.kubernetes.io/component"]
}

// chartService is the entry of services for a chart component: the
// component is the image's binary.
func chartService(t *testing.T, name string) service {
	t.Helper()
	i := slices.IndexFunc(services, func(s service) bool { return s.binary == name })
	require.GreaterOrEqual(t, i, 0, "no Dispatch service %s", name)
	return services[i]
}

// TestChartLints runs Helm's linter, strict (warnings fail), with each
// values file.
func TestChartLints(t *testing.T) {
	t.Parallel()
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = "webhooks"
			lint.KubeVersion = oldestKubernetes(t)
			res := lint.Run([]string{filepath.Join(root, chartDir)}, chartValues(t, tc.values))
			for _, msg := range res.Messages {
				t.Log(msg)
			}
			require.Empty(t, res.Errors)
			require.Equal(t, 1, res.TotalChartsLinted)
		})
	}
}

// TestChartObjects renders the chart with each values file and checks what
// Kubernetes would be given: every object decodes strictly into its API
// type, every service is a Deployment of its own with its image, probes,
// resources and a locked-down security context, and every name one object
// gives another resolves.
func TestChartObjects(t *testing.T) {
	t.Parallel()
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := render(t, chartValues(t, tc.values))

			// One Deployment per long-running service, named after it.
			var components []string
			for _, d := range m.deployments {
				components = append(components, component(d.ObjectMeta))
			}
			slices.Sort(components)
			require.Equal(t, []string{"dashboard", "delivery-worker", "ingest-api", "retry-scheduler"}, components)

			for name, d := range m.deployments {
				t.Run(name, func(t *testing.T) { checkDeployment(t, m, tc, d) })
			}
			for name, j := range m.jobs {
				t.Run(name, func(t *testing.T) {
					require.Contains(t, m.hooks, "Job/"+name, "%s is a hook", name)
					require.Equal(t, "pre-install,pre-upgrade", j.Annotations["helm.sh/hook"], name)
					require.Equal(t, corev1.RestartPolicyNever, j.Spec.Template.Spec.RestartPolicy)
					checkPod(t, m, tc, "Job/"+name, j.Spec.Template.Spec, false)
				})
			}
			require.Contains(t, m.jobs, "dispatch-migrate")
			require.Equal(t, []string{"up"}, m.jobs["dispatch-migrate"].Spec.Template.Spec.Containers[0].Args)
			require.True(t, strings.HasPrefix(m.jobs["dispatch-migrate"].Spec.Template.Spec.Containers[0].Image, "dispatch/migrate:"))

			checkServices(t, m)
			checkScaling(t, m)
			checkIngresses(t, m)
			checkMonitoring(t, m)
			checkSecrets(t, m)
		})
	}
}

// checkDeployment checks one service's Deployment.
func checkDeployment(t *testing.T, m *manifests, tc chartCase, d *appsv1.Deployment) {
	t.Helper()
	name := component(d.ObjectMeta)
	svc := chartService(t, name)
	require.NotNil(t, d.Spec.Selector)
	require.Empty(t, d.Spec.Selector.MatchExpressions)
	require.NotEmpty(t, d.Spec.Selector.MatchLabels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	require.NoError(t, err)
	require.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)), "%s's selector %s does not select its own pods %v", d.Name, sel, d.Spec.Template.Labels)
	require.Equal(t, name, d.Spec.Template.Labels["app.kubernetes.io/component"], "the selector tells the services apart")
	for other, o := range m.deployments {
		if other != d.Name {
			require.False(t, sel.Matches(labels.Set(o.Spec.Template.Labels)), "%s's selector also selects %s's pods", d.Name, other)
		}
	}

	pod := d.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	require.Equal(t, name, c.Name)
	require.True(t, strings.HasPrefix(c.Image, "dispatch/"+svc.binary+":"), "%s runs its own image, not %s", name, c.Image)
	require.Equal(t, c.Image[strings.LastIndex(c.Image, ":")+1:], d.Spec.Template.Labels["app.kubernetes.io/version"], "%s's pods are labelled with the version they run", name)
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		require.NotNil(t, p, "%s has liveness and readiness probes", name)
		require.NotNil(t, p.HTTPGet, "%s probes over HTTP", name)
		require.Equal(t, "http", p.HTTPGet.Port.String(), "%s probes the port it listens on", name)
		require.Contains(t, []string{"/healthz", "/readyz"}, p.HTTPGet.Path)
	}
	require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path, "liveness asks whether the process runs, not its dependencies")
	require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path, "readiness asks for the dependencies")
	require.Len(t, c.Ports, 1)
	require.Equal(t, "http", c.Ports[0].Name)

	// Services that use the database wait for the schema their release needs.
	env := podEnv(t, m, tc, c)
	if _, ok := env["DATABASE_URL"]; ok {
		require.Len(t, pod.InitContainers, 1, "%s waits for the schema", name)
		ic := pod.InitContainers[0]
		require.Equal(t, m.jobs["dispatch-migrate"].Spec.Template.Spec.Containers[0].Image, ic.Image, "%s waits with the migrations' own image", name)
		require.Equal(t, "wait", ic.Args[0])
		require.Equal(t, env["DATABASE_URL"], podEnv(t, m, tc, ic)["DATABASE_URL"], "%s waits on the database it uses", name)
	} else {
		require.Empty(t, pod.InitContainers, "%s does not use the database", name)
	}
	require.Equal(t, fmt.Sprintf(":%d", c.Ports[0].ContainerPort), env["ADDR"], "%s listens where its port says", name)

	key := map[string]string{"ingest-api": "ingestApi", "delivery-worker": "deliveryWorker", "retry-scheduler": "retryScheduler", "dashboard": "dashboard"}[name]
	v := m.values[key].(map[string]any)
	if scaled(m, d.Name) {
		require.Nil(t, d.Spec.Replicas, "%s is scaled by an autoscaler: the Deployment leaves its replicas alone", name)
	} else {
		require.NotNil(t, d.Spec.Replicas)
		require.Equal(t, number(t, v["replicas"]), int64(*d.Spec.Replicas), "%s's replicas", name)
	}
	checkPod(t, m, tc, "Deployment/"+d.Name, pod, true)
}

// scaled reports whether an HPA or a ScaledObject scales the Deployment.
func scaled(m *manifests, deployment string) bool {
	for _, h := range m.hpas {
		if h.Spec.ScaleTargetRef.Name == deployment {
			return true
		}
	}
	for _, s := range m.scaledObject {
		if s.Spec.ScaleTargetRef.Name == deployment {
			return true
		}
	}
	return false
}

// checkPod checks what every pod needs: resources, a locked-down security
// context, no service account token, and references that resolve.
func checkPod(t *testing.T, m *manifests, tc chartCase, where string, pod corev1.PodSpec, serving bool) {
	t.Helper()
	_, hook := m.hooks[where]
	require.NotNil(t, pod.AutomountServiceAccountToken)
	require.False(t, *pod.AutomountServiceAccountToken, "%s mounts no service account token", where)
	if sa := pod.ServiceAccountName; sa != "" && sa != "default" {
		require.Contains(t, m.accounts, sa, "%s's service account", where)
		require.NotContains(t, m.hooks, "ServiceAccount/"+sa)
		require.False(t, hook, "%s is a hook, which runs before the release's service account exists", where)
	}
	psc := pod.SecurityContext
	require.NotNil(t, psc, where)
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		what := where + " container " + c.Name
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			q, ok := c.Resources.Requests[r]
			require.True(t, ok && !q.IsZero(), "%s requests %s", what, r)
			q, ok = c.Resources.Limits[r]
			require.True(t, ok && !q.IsZero(), "%s limits %s", what, r)
		}
		require.LessOrEqual(t, c.Resources.Requests.Memory().Cmp(*c.Resources.Limits.Memory()), 0, "%s requests more memory than its limit", what)
		sc := c.SecurityContext
		require.NotNil(t, sc, what)
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = psc.RunAsNonRoot
		}
		require.True(t, nonRoot != nil && *nonRoot, "%s runs as non-root", what)
		if sc.RunAsUser != nil || psc.RunAsUser != nil {
			uid := psc.RunAsUser
			if sc.RunAsUser != nil {
				uid = sc.RunAsUser
			}
			require.NotZero(t, *uid, "%s's user is not root", what)
		}
		require.True(t, sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "%s has a read-only root filesystem", what)
		require.True(t, sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "%s may not escalate privileges", what)
		require.True(t, sc.Privileged == nil || !*sc.Privileged, "%s is not privileged", what)
		require.NotNil(t, sc.Capabilities, what)
		require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s drops every capability", what)
		require.Empty(t, sc.Capabilities.Add, what)
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		require.True(t, seccomp != nil && seccomp.Type == corev1.SeccompProfileTypeRuntimeDefault, "%s has the runtime's seccomp profile", what)
		if !serving || slices.ContainsFunc(pod.InitContainers, func(ic corev1.Container) bool { return ic.Name == c.Name }) {
			require.Nil(t, c.LivenessProbe, what)
			require.Nil(t, c.ReadinessProbe, what)
		}
		// Every reference resolves, and a hook's only to what exists before it.
		podEnv(t, m, tc, c)
		for _, ref := range references(c) {
			if ext, ok := tc.external[ref.name]; ok && ref.kind == "Secret" {
				_, has := ext[ref.key]
				require.True(t, has || ref.key == "" || ref.optional, "%s: the Secret %s an operator creates has no %s", what, ref.name, ref.key)
				continue
			}
			weight, isHook := m.hooks[ref.kind+"/"+ref.name]
			if hook {
				require.True(t, isHook && weight < m.hooks[where], "%s runs before the release's objects exist, but needs %s %s", what, ref.kind, ref.name)
			} else {
				require.False(t, isHook, "%s needs %s %s, a hook that is deleted once the hooks have run", what, ref.kind, ref.name)
			}
		}
	}
}

// reference is a Secret or ConfigMap (and key) a container reads.
type reference struct {
	kind, name, key string
	optional        bool
}

func references(c corev1.Container) []reference {
	var refs []reference
	for _, e := range c.EnvFrom {
		if e.ConfigMapRef != nil {
			refs = append(refs, reference{"ConfigMap", e.ConfigMapRef.Name, "", e.ConfigMapRef.Optional != nil && *e.ConfigMapRef.Optional})
		}
		if e.SecretRef != nil {
			refs = append(refs, reference{"Secret", e.SecretRef.Name, "", e.SecretRef.Optional != nil && *e.SecretRef.Optional})
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			refs = append(refs, reference{"Secret", r.Name, r.Key, r.Optional != nil && *r.Optional})
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			refs = append(refs, reference{"ConfigMap", r.Name, r.Key, r.Optional != nil && *r.Optional})
		}
	}
	return refs
}

// podEnv is a container's environment as Kubernetes would give it: envFrom
// from the rendered ConfigMaps and Secrets (or the operator's), then env,
// whose entries win. It fails on a reference that does not resolve.
func podEnv(t *testing.T, m *manifests, tc chartCase, c corev1.Container) map[string]string {
	t.Helper()
	secret := func(name, key string, optional bool) (string, bool) {
		if ext, ok := tc.external[name]; ok {
			v, ok := ext[key]
			require.True(t, ok || optional, "container %s: the operator's Secret %s has no key %s", c.Name, name, key)
			return v, ok
		}
		s, ok := m.secrets[name]
		require.True(t, ok || optional, "container %s reads the Secret %s, which is neither rendered nor the operator's", c.Name, name)
		if !ok {
			return "", false
		}
		v, ok := s.Data[key]
		if !ok {
			sv, sok := s.StringData[key]
			v, ok = []byte(sv), sok
		}
		require.True(t, ok || optional, "container %s: the Secret %s has no key %s", c.Name, name, key)
		return string(v), ok
	}
	env := map[string]string{}
	for _, e := range c.EnvFrom {
		require.Empty(t, e.Prefix)
		switch {
		case e.ConfigMapRef != nil:
			cm, ok := m.configMaps[e.ConfigMapRef.Name]
			require.True(t, ok, "container %s reads the ConfigMap %s, which is not rendered", c.Name, e.ConfigMapRef.Name)
			maps.Copy(env, cm.Data)
		case e.SecretRef != nil:
			s, ok := m.secrets[e.SecretRef.Name]
			require.True(t, ok, "container %s reads the Secret %s, which is not rendered", c.Name, e.SecretRef.Name)
			for k, v := range s.Data {
				env[k] = string(v)
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			if v, ok := secret(r.Name, r.Key, r.Optional != nil && *r.Optional); ok {
				env[e.Name] = v
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			cm, ok := m.configMaps[r.Name]
			require.True(t, ok, "container %s reads the ConfigMap %s, which is not rendered", c.Name, r.Name)
			v, ok := cm.Data[r.Key]
			require.True(t, ok || (r.Optional != nil && *r.Optional), "container %s: the ConfigMap %s has no key %s", c.Name, r.Name, r.Key)
			if ok {
				env[e.Name] = v
			}
		default:
			t.Fatalf("container %s: %s comes from a source this test does not resolve", c.Name, e.Name)
		}
	}
	return env
}

// checkServices: each Service selects exactly one Deployment's pods, on a
// port those pods name.
func checkServices(t *testing.T, m *manifests) {
	t.Helper()
	for name, s := range m.services {
		require.NotEmpty(t, s.Spec.Selector, name)
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var selected []*appsv1.Deployment
		for _, d := range m.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				selected = append(selected, d)
			}
		}
		require.Len(t, selected, 1, "Service %s selects the pods of one Deployment", name)
		d := selected[0]
		require.Equal(t, component(d.ObjectMeta), component(s.ObjectMeta), "Service %s is labelled as the component it selects", name)
		for _, p := range s.Spec.Ports {
			require.True(t, slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool {
				return cp.Name == p.TargetPort.String() || cp.ContainerPort == p.TargetPort.IntVal
			}), "Service %s targets port %s, which %s does not have", name, p.TargetPort.String(), d.Name)
		}
	}
	// The API and the dashboard are reachable, and every service's metrics.
	for _, d := range m.deployments {
		require.Contains(t, m.services, d.Name, "%s has a Service", d.Name)
	}
	// The dashboard reaches the API through its Service.
	dash := m.configMaps["dispatch-dashboard"].Data["DISPATCH_API_URL"]
	host, port := hostPort(t, dash)
	api, ok := m.services[host]
	require.True(t, ok, "DISPATCH_API_URL %s names no Service", dash)
	require.Equal(t, "ingest-api", component(api.ObjectMeta))
	require.Equal(t, port, fmt.Sprint(api.Spec.Ports[0].Port))
}

// checkScaling: every HPA, ScaledObject and PDB points at a rendered
// Deployment, and the workers never outnumber the partitions.
func checkScaling(t *testing.T, m *manifests) {
	t.Helper()
	partitions := int32(number(t, m.values["kafka"].(map[string]any)["partitions"]))
	for name, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		require.Equal(t, "apps/v1", ref.APIVersion)
		require.Equal(t, "Deployment", ref.Kind)
		require.Contains(t, m.deployments, ref.Name, "HPA %s scales a rendered Deployment", name)
		require.Contains(t, []string{"ingest-api", "delivery-worker"}, component(m.deployments[ref.Name].ObjectMeta))
		require.Len(t, h.Spec.Metrics, 1)
		require.Equal(t, corev1.ResourceCPU, h.Spec.Metrics[0].Resource.Name, "HPA %s scales on CPU", name)
		require.NotNil(t, h.Spec.MinReplicas)
		require.LessOrEqual(t, *h.Spec.MinReplicas, h.Spec.MaxReplicas)
		if component(m.deployments[ref.Name].ObjectMeta) == "delivery-worker" {
			require.LessOrEqual(t, h.Spec.MaxReplicas, partitions, "no more workers than partitions")
		}
	}
	for name, s := range m.scaledObject {
		ref := s.Spec.ScaleTargetRef
		require.Contains(t, m.deployments, ref.Name, "ScaledObject %s scales a rendered Deployment", name)
		require.Equal(t, "delivery-worker", component(m.deployments[ref.Name].ObjectMeta))
		require.LessOrEqual(t, *s.Spec.MaxReplicaCount, partitions, "no more workers than partitions")
		require.Len(t, s.Spec.Triggers, 1)
		trig := s.Spec.Triggers[0]
		require.Equal(t, "kafka", trig.Type)
		worker := m.configMaps[ref.Name].Data
		require.Equal(t, worker["KAFKA_BROKERS"], trig.Metadata["bootstrapServers"], "KEDA reads the workers' brokers")
		require.Equal(t, worker["KAFKA_CONSUMER_GROUP"], trig.Metadata["consumerGroup"], "KEDA reads the workers' group's lag")
		require.Equal(t, worker["KAFKA_TOPIC"], trig.Metadata["topic"])
		require.NotEmpty(t, trig.Metadata["lagThreshold"])
		for _, h := range m.hpas {
			require.NotEqual(t, ref.Name, h.Spec.ScaleTargetRef.Name, "KEDA and an HPA both scale %s", ref.Name)
		}
	}
	covered := map[string]bool{}
	for name, p := range m.pdbs {
		require.NotNil(t, p.Spec.MaxUnavailable, "PDB %s lets pods go one at a time", name)
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		require.NoError(t, err)
		n := 0
		for dn, d := range m.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
				covered[dn] = true
			}
		}
		require.Equal(t, 1, n, "PDB %s covers the pods of one Deployment", name)
	}
	for dn := range m.deployments {
		require.True(t, covered[dn], "%s has a PodDisruptionBudget", dn)
	}
}

// checkIngresses: each Ingress routes to a rendered Service's named port.
func checkIngresses(t *testing.T, m *manifests) {
	t.Helper()
	for name, ing := range m.ingresses {
		require.NotEmpty(t, ing.Spec.Rules, name)
		for _, r := range ing.Spec.Rules {
			require.NotEmpty(t, r.Host, name)
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				require.NotNil(t, b, name)
				s, ok := m.services[b.Name]
				require.True(t, ok, "Ingress %s routes to %s, which is not rendered", name, b.Name)
				require.True(t, slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == b.Port.Name }), "Ingress %s: %s has no port %s", name, b.Name, b.Port.Name)
				require.Contains(t, []string{"ingest-api", "dashboard"}, component(s.ObjectMeta))
			}
		}
	}
}

// checkMonitoring: the ServiceMonitor scrapes every Service under the job
// names the alerts select, and the PrometheusRule holds the alerts file's
// rules.
func checkMonitoring(t *testing.T, m *manifests) {
	t.Helper()
	for name, sm := range m.monitors {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		require.NoError(t, err)
		require.Equal(t, "app.kubernetes.io/component", sm.Spec.JobLabel)
		require.Equal(t, []string{"webhooks"}, sm.Spec.NamespaceSelector.MatchNames)
		require.Len(t, sm.Spec.Endpoints, 1)
		require.Equal(t, "/metrics", sm.Spec.Endpoints[0].Path)
		jobs := []string{}
		for sn, s := range m.services {
			if !sel.Matches(labels.Set(s.Labels)) {
				continue
			}
			require.True(t, slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == sm.Spec.Endpoints[0].Port }), "ServiceMonitor %s scrapes port %s, which %s does not have", name, sm.Spec.Endpoints[0].Port, sn)
			jobs = append(jobs, s.Labels[sm.Spec.JobLabel])
		}
		var want []string
		for _, svc := range services {
			if !svc.oneShot() {
				want = append(want, svc.job)
			}
		}
		require.ElementsMatch(t, want, jobs, "ServiceMonitor %s scrapes each service as the job Prometheus knows it by", name)
	}
	for name, r := range m.rules {
		got := map[string]alertRule{}
		for _, g := range r.Spec.Groups {
			for _, rule := range g.Rules {
				got[rule.Alert] = alertRule{Expr: rule.Expr, For: rule.For, Labels: rule.Labels, Annotations: rule.Annotations}
			}
		}
		require.Equal(t, alertRules(t), got, "PrometheusRule %s holds the alerts of %s", name, alertsFile)
	}
}

// checkSecrets: keys the chart generates are kept across upgrades and an
// uninstall, and the secrets the operator manages are not rendered.
func checkSecrets(t *testing.T, m *manifests) {
	t.Helper()
	for name, s := range m.secrets {
		if _, ok := s.Data["SECRETS_ENCRYPTION_KEY"]; ok {
			require.Equal(t, "keep", s.Annotations["helm.sh/resource-policy"], "%s outlives an uninstall: without it the stored secrets are lost", name)
		}
	}
	if existing := m.values["secrets"].(map[string]any)["existingSecret"]; existing != "" {
		require.NotContains(t, m.secrets, existing)
	}
}

// TestChartConfigAccepted gives each service the environment its rendered
// pod would have and runs the service's own configuration code on it
// (its configcheck subcommand, built as its image builds it): the chart's
// settings are ones the service accepts.
func TestChartConfigAccepted(t *testing.T) {
	t.Parallel()
	bins := buildImages(t)
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := render(t, chartValues(t, tc.values))
			require.Len(t, m.deployments, 4)
			for _, d := range m.deployments {
				c := d.Spec.Template.Spec.Containers[0]
				svc := chartService(t, c.Name)
				env := podEnv(t, m, tc, c)
				for _, name := range svc.required {
					require.NotEmpty(t, env[name], "%s needs %s", c.Name, name)
				}
				out, err := runWith(bins[svc.compose], env, "configcheck")
				require.NoError(t, err, "%s refuses the chart's settings:\n%s", c.Name, out)
				require.Equal(t, "configuration accepted\n", out)
			}
			// The services that share settings get the same ones.
			api, worker := m.configMaps["dispatch-ingest-api"].Data, m.configMaps["dispatch-delivery-worker"].Data
			for _, name := range []string{"KAFKA_BROKERS", "KAFKA_TOPIC", "REDIS_KEY_PREFIX", "DELIVERY_ALLOW_CIDRS", "RETRY_MAX_ATTEMPTS"} {
				require.Equal(t, api[name], worker[name], "the API and the workers share %s", name)
			}
		})
	}
}

// TestChartHooksRun runs the hook Jobs' commands with the environment they
// are rendered with, against this machine's PostgreSQL and an in-process
// Kafka: the migrations Job migrates an empty database, after which the
// services' init container finds the schema it waits for, and the topic
// Job makes the topic with kafka.partitions partitions.
func TestChartHooksRun(t *testing.T) {
	t.Parallel()
	bins := buildImages(t)
	tc := chartCases[0]
	m := render(t, chartValues(t, tc.values, "kafka.partitions=7"))
	db := emptyDatabase(t)
	kafka := testkit.Kafka(t, 1)

	// The rendered URLs name the cluster's hosts; the test's stand in.
	local := func(env map[string]string) map[string]string {
		if _, ok := env["DATABASE_URL"]; ok {
			env["DATABASE_URL"] = db
		}
		if _, ok := env["KAFKA_BROKERS"]; ok {
			env["KAFKA_BROKERS"] = strings.Join(kafka.ListenAddrs(), ",")
		}
		return env
	}
	wait := m.deployments["dispatch-ingest-api"].Spec.Template.Spec.InitContainers[0]
	waitEnv := local(podEnv(t, m, tc, wait))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	out, err := runWithContext(ctx, bins["migrate"], waitEnv, wait.Args...)
	require.Error(t, err, "the init container waits while the database is empty:\n%s", out)
	require.Contains(t, out, "no migration applied yet")

	migrate := m.jobs["dispatch-migrate"].Spec.Template.Spec.Containers[0]
	out, err = runWith(bins["migrate"], local(podEnv(t, m, tc, migrate)), migrate.Args...)
	require.NoError(t, err, "the migrations Job:\n%s", out)
	out, err = runWith(bins["migrate"], waitEnv, wait.Args...)
	require.NoError(t, err, "the init container, once migrated:\n%s", out)

	topic := m.jobs["dispatch-kafka-topic"].Spec.Template.Spec.Containers[0]
	require.Equal(t, m.deployments["dispatch-ingest-api"].Spec.Template.Spec.Containers[0].Image, topic.Image, "the topic Job runs the API's image")
	out, err = runWith(bins["api"], local(podEnv(t, m, tc, topic)), topic.Args...)
	require.NoError(t, err, "the topic Job:\n%s", out)
	require.Equal(t, "created topic events.pending with 7 partitions\n", out)
}

// runWith runs a binary with exactly env (and PATH) and returns its output.
func runWith(bin string, env map[string]string, args ...string) (string, error) {
	return runWithContext(context.Background(), bin, env, args...)
}

func runWithContext(ctx context.Context, bin string, env map[string]string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestChartRefusesBadValues: values the chart cannot work with fail the
// render with a message that names the value, from the values schema or,
// for what a schema cannot say, the templates.
func TestChartRefusesBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		sets []string
		want string
	}{
		{"a negative replica count", []string{"ingestApi.replicas=-1"}, "at '/ingestApi/replicas': minimum: got -1, want 0"},
		{"no database URL", []string{"postgresql.url="}, "at '/postgresql/url': '' does not match pattern '^postgres(ql)?://.+'"},
		{"a database URL that is not one", []string{"postgresql.url=pg.data.svc:5432"}, "at '/postgresql/url': 'pg.data.svc:5432' does not match pattern"},
		{"no Redis URL", []string{"redis.url="}, "at '/redis/url': '' does not match pattern '^rediss?://.+'"},
		{"no brokers", []string{"kafka.brokers=null"}, "at '/kafka': missing property 'brokers'"},
		{"an empty broker", []string{"kafka.brokers={}"}, "at '/kafka/brokers/0': '' does not match pattern"},
		{"a broker without a port", []string{"kafka.brokers={kafka}"}, "at '/kafka/brokers/0': 'kafka' does not match pattern"},
		{"partitions as a word", []string{"kafka.partitions=twelve"}, "at '/kafka/partitions': got string, want integer"},
		{"no partitions", []string{"kafka.partitions=0"}, "at '/kafka/partitions': minimum: got 0, want 1"},
		{"a setting that is not a string", []string{"env.RETRY_MAX_ATTEMPTS=12"}, "at '/env/RETRY_MAX_ATTEMPTS': got number, want string"},
		{"replicas as a word", []string{"deliveryWorker.replicas=two"}, "at '/deliveryWorker/replicas': got string, want integer"},
		{"a misspelt key", []string{"ingestAPI.replicas=2"}, "additional properties 'ingestAPI' not allowed"},
		{"root in the container", []string{"securityContext.runAsNonRoot=false"}, "at '/securityContext/runAsNonRoot': value must be true"},
		{"workers past the partitions", []string{"deliveryWorker.autoscaling.enabled=true", "deliveryWorker.autoscaling.maxReplicas=20"},
			"deliveryWorker.autoscaling.maxReplicas (20) is more than kafka.partitions (12)"},
		{"KEDA past the partitions", []string{"deliveryWorker.keda.enabled=true", "deliveryWorker.keda.maxReplicaCount=13"},
			"deliveryWorker.keda.maxReplicaCount (13) is more than kafka.partitions (12)"},
		{"KEDA and an HPA", []string{"deliveryWorker.keda.enabled=true", "deliveryWorker.autoscaling.enabled=true"},
			"deliveryWorker.autoscaling.enabled and deliveryWorker.keda.enabled both scale the workers"},
		{"an ingress without a host", []string{"dashboard.ingress.enabled=true"}, "dashboard.ingress.host is required when dashboard.ingress.enabled is true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := renderChart(t, chartValues(t, "ci/minimal-values.yaml", tc.sets...))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestChartAlertsAreOneFile: the chart packages the alerts file the
// compose stack's Prometheus loads and promtool tests, not a copy.
func TestChartAlertsAreOneFile(t *testing.T) {
	t.Parallel()
	chrt, err := loader.Load(filepath.Join(root, chartDir))
	require.NoError(t, err)
	i := slices.IndexFunc(chrt.Files, func(f *common.File) bool { return f.Name == "files/alerts.yml" })
	require.GreaterOrEqual(t, i, 0, "the chart packages files/alerts.yml")
	require.Equal(t, readFile(t, chartDir+"/files/alerts.yml"), chrt.Files[i].Data)
	_, err = os.Stat(filepath.Join(root, "deploy", "prometheus", "alerts.yml"))
	require.ErrorIs(t, err, fs.ErrNotExist, "deploy/prometheus has no copy of the alerts")
	var tests struct {
		RuleFiles []string `json:"rule_files"`
	}
	require.NoError(t, yaml.Unmarshal(readFile(t, "deploy/prometheus/alerts_test.yml"), &tests))
	require.Equal(t, []string{alertsFile}, tests.RuleFiles, "promtool tests the chart's alerts")
}
