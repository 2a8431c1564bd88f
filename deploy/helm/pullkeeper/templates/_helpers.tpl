{{/* The names and labels every object shares. */}}
{{- define "pullkeeper.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pullkeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pullkeeper.labels" -}}
{{ include "pullkeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pullkeeper.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "pullkeeper.fullname" .) -}}
{{- end -}}

{{/* PostgreSQL when a database is given; else SQLite on a volume. */}}
{{- define "pullkeeper.postgres" -}}
{{- if or .Values.database.url .Values.database.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "pullkeeper.replicas" -}}
{{- if not (kindIs "invalid" .Values.replicaCount) -}}
{{- .Values.replicaCount -}}
{{- else if include "pullkeeper.postgres" . -}}
2
{{- else -}}
1
{{- end -}}
{{- end -}}

{{- define "pullkeeper.webhookService" -}}
{{- printf "%s-webhook" (include "pullkeeper.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pullkeeper.webhookSecret" -}}
{{- .Values.webhook.tls.existingSecret | default (printf "%s-webhook-tls" (include "pullkeeper.fullname" .)) -}}
{{- end -}}

{{- define "pullkeeper.adminSecret" -}}
{{- .Values.admin.existingSecret | default (printf "%s-admin" (include "pullkeeper.fullname" .)) -}}
{{- end -}}

{{/* Values that cannot work together stop the install here, each naming the value. */}}
{{- define "pullkeeper.validate" -}}
{{- $replicas := int (include "pullkeeper.replicas" .) -}}
{{- if and (gt $replicas 1) (not (include "pullkeeper.postgres" .)) -}}
{{- fail (printf "replicaCount: SQLite (no database.url or database.existingSecret) runs one replica, not %d; give a PostgreSQL database for more" $replicas) -}}
{{- end -}}
{{- if and (gt $replicas 1) (not .Values.keys.existingSecret) -}}
{{- fail (printf "keys.existingSecret: %d replicas must share one key source; create a Secret of *.key files and name it here (docs/operations.md)" $replicas) -}}
{{- end -}}
{{- if and .Values.database.url .Values.database.existingSecret -}}
{{- fail "database: give database.url or database.existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.database.url (regexMatch "^[a-z0-9+]+://[^/@]*:[^/@]*@" .Values.database.url) -}}
{{- fail "database.url: it holds a password, which would be stored in the Deployment; put the URL in a Secret and name it in database.existingSecret" -}}
{{- end -}}
{{- if .Values.webhook.enabled -}}
{{- if and (eq .Values.webhook.tls.mode "existingSecret") (not .Values.webhook.tls.existingSecret) -}}
{{- fail "webhook.tls.existingSecret: with webhook.tls.mode existingSecret, name the kubernetes.io/tls Secret the webhook serves" -}}
{{- end -}}
{{- if and (eq .Values.webhook.tls.mode "existingSecret") (not .Values.webhook.tls.caBundle) -}}
{{- fail "webhook.tls.caBundle: with webhook.tls.mode existingSecret, give the base64 PEM CA that signed its certificate (the API server must trust it)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
