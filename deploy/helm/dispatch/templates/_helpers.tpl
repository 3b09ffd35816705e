{{/* The release's full name, the prefix of every object's name. */}}
{{- define "dispatch.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 45 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "dispatch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.imageTag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component's pods; dict "root" $ "component" name. */}}
{{- define "dispatch.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
The services, each with its values key and what it is given. The
component name is also the Prometheus job the alerts name.
*/}}
{{- define "dispatch.components" -}}
ingest-api:
  key: ingestApi
  binary: ingest-api
  database: true
  kafka: true
  redis: true
  sealKeys: true
  adminKey: true
delivery-worker:
  key: deliveryWorker
  binary: delivery-worker
  database: true
  kafka: true
  redis: true
  sealKeys: true
retry-scheduler:
  key: retryScheduler
  binary: retry-scheduler
  database: true
  kafka: true
dashboard:
  key: dashboard
  binary: dashboard
  redis: true
  sessionKey: true
{{- end -}}

{{/* An image reference; dict "root" $ "image" .image. */}}
{{- define "dispatch.image" -}}
{{- $tag := .image.tag | default .root.Values.imageTag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" .image.repository (toString $tag) -}}
{{- end -}}

{{/* The Secret holding the connection URLs, and its keys. */}}
{{- define "dispatch.connectionsSecret" -}}
{{- printf "%s-connections" (include "dispatch.fullname" .) -}}
{{- end -}}

{{- define "dispatch.databaseSecretRef" -}}
name: {{ .Values.postgresql.existingSecret | default (include "dispatch.connectionsSecret" .) }}
key: {{ ternary .Values.postgresql.existingSecretKey "DATABASE_URL" (ne .Values.postgresql.existingSecret "") }}
{{- end -}}

{{- define "dispatch.redisSecretRef" -}}
name: {{ .Values.redis.existingSecret | default (include "dispatch.connectionsSecret" .) }}
key: {{ ternary .Values.redis.existingSecretKey "REDIS_URL" (ne .Values.redis.existingSecret "") }}
{{- end -}}

{{/* The Secret holding the keys: generated, or existingSecret. */}}
{{- define "dispatch.keysSecret" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-keys" (include "dispatch.fullname" .)) -}}
{{- end -}}

{{- define "dispatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "dispatch.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/*
A component's settings that are not secret, as a ConfigMap's data:
what the chart derives from its values, then the shared env, then the
component's own env. dict "root" $ "component" name "c" its entry.
*/}}
{{- define "dispatch.settings" -}}
{{- $root := .root -}}
{{- $v := index $root.Values .c.key -}}
{{- $s := dict "ADDR" (printf ":%v" $v.service.port) -}}
{{- if .c.kafka -}}
{{- $_ := set $s "KAFKA_BROKERS" (join "," $root.Values.kafka.brokers) -}}
{{- $_ := set $s "KAFKA_TOPIC" $root.Values.kafka.topic -}}
{{- end -}}
{{- if eq .component "delivery-worker" -}}
{{- $_ := set $s "KAFKA_CONSUMER_GROUP" $root.Values.kafka.consumerGroup -}}
{{- end -}}
{{- if .c.redis -}}
{{- $_ := set $s "REDIS_KEY_PREFIX" $root.Values.redis.keyPrefix -}}
{{- end -}}
{{- if and (eq .component "ingest-api") $root.Values.dashboard.publicUrl -}}
{{- $_ := set $s "PORTAL_URL" (printf "%s/portal" (trimSuffix "/" $root.Values.dashboard.publicUrl)) -}}
{{- end -}}
{{- if eq .component "dashboard" -}}
{{- $_ := set $s "DISPATCH_API_URL" (printf "http://%s-ingest-api:%v" (include "dispatch.fullname" $root) $root.Values.ingestApi.service.port) -}}
{{- if $root.Values.dashboard.publicUrl -}}
{{- $_ := set $s "DASHBOARD_PUBLIC_URL" $root.Values.dashboard.publicUrl -}}
{{- end -}}
{{- end -}}
{{- range $k, $val := $root.Values.env -}}
{{- $_ := set $s $k (toString $val) -}}
{{- end -}}
{{- range $k, $val := $v.env -}}
{{- $_ := set $s $k (toString $val) -}}
{{- end -}}
{{- toYaml $s -}}
{{- end -}}

{{/* The secret settings of a component, as env entries. */}}
{{- define "dispatch.secretEnv" -}}
{{- $root := .root -}}
{{- if .c.database }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "dispatch.databaseSecretRef" $root | nindent 6 }}
{{- end }}
{{- if .c.redis }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- include "dispatch.redisSecretRef" $root | nindent 6 }}
{{- end }}
{{- if .c.sealKeys }}
- name: SECRETS_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "dispatch.keysSecret" $root }}
      key: SECRETS_ENCRYPTION_KEY
- name: SECRETS_ENCRYPTION_PREVIOUS_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "dispatch.keysSecret" $root }}
      key: SECRETS_ENCRYPTION_PREVIOUS_KEYS
      optional: true
{{- end }}
{{- if .c.adminKey }}
- name: ADMIN_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "dispatch.keysSecret" $root }}
      key: ADMIN_API_KEY
{{- end }}
{{- if .c.sessionKey }}
- name: DASHBOARD_SESSION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "dispatch.keysSecret" $root }}
      key: DASHBOARD_SESSION_KEY
{{- end }}
{{- end -}}

{{/*
The pod-level fields every pod shares; dict "root" $ "hook" bool. Hooks run
before the release's ServiceAccount exists, so they use the namespace's
default one unless an existing account is named; no pod mounts a token.
*/}}
{{- define "dispatch.podCommon" -}}
{{- $root := .root -}}
{{- if not (and .hook $root.Values.serviceAccount.create) }}
serviceAccountName: {{ include "dispatch.serviceAccountName" $root }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
