{{/* Names, labels and the configuration the chart writes. */}}

{{- define "inferplane.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "inferplane.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "inferplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inferplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "inferplane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "inferplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "inferplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "inferplane.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "inferplane.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Several gateways share one truth: PostgreSQL and Redis, or the chart refuses. */}}
{{- define "inferplane.shared" -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled (gt (int .Values.server.workers) 1) -}}
true
{{- end -}}
{{- end -}}

{{- define "inferplane.storeUrl" -}}
{{- if .Values.store.urlSecret.name -}}
env:INFERPLANE_STORE_URL
{{- else if .Values.store.url -}}
{{- .Values.store.url -}}
{{- else if include "inferplane.shared" . -}}
{{- fail "several gateways (replicaCount > 1, autoscaling or server.workers > 1) share one PostgreSQL: set store.url or store.urlSecret" -}}
{{- else -}}
sqlite:////var/lib/inferplane/inferplane.db
{{- end -}}
{{- end -}}

{{- define "inferplane.redisUrl" -}}
{{- if .Values.redis.urlSecret.name -}}
env:INFERPLANE_REDIS_URL
{{- else if .Values.redis.url -}}
{{- .Values.redis.url -}}
{{- else if include "inferplane.shared" . -}}
{{- fail "several gateways (replicaCount > 1, autoscaling or server.workers > 1) share rate limits and budgets through Redis: set redis.url or redis.urlSecret" -}}
{{- end -}}
{{- end -}}

{{/* inferplane.yaml: the user's configuration with the sections the chart owns. */}}
{{- define "inferplane.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $_ := set $config "server" (dict "host" "0.0.0.0" "port" (int .Values.server.port) "shutdown_grace_s" (float64 .Values.server.shutdownGraceSeconds)) -}}
{{- $_ := set $config "store" (dict "url" (include "inferplane.storeUrl" .)) -}}
{{- $redis := include "inferplane.redisUrl" . -}}
{{- if $redis -}}
{{- $_ := set $config "redis" (dict "url" $redis) -}}
{{- end -}}
{{- $ledger := default (dict) (get $config "ledger") -}}
{{- $_ := set $ledger "dir" "/var/lib/inferplane/wal" -}}
{{- $_ := set $config "ledger" $ledger -}}
{{- if .Values.audit.signerKeySecret.name -}}
{{- $audit := default (dict) (get $config "audit") -}}
{{- $_ := set $audit "key_file" (printf "/etc/inferplane-audit/%s" .Values.audit.signerKeySecret.key) -}}
{{- $_ := set $config "audit" $audit -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
