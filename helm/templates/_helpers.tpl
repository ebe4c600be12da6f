{{/*
Names, labels and the derived settings every template shares.
*/}}

{{- define "chatstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name alone when it already contains the chart name.
Truncated to 63 characters because some name fields are limited to that (DNS labels).
*/}}
{{- define "chatstream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "chatstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object; add app.kubernetes.io/component per object. */}}
{{- define "chatstream.labels" -}}
helm.sh/chart: {{ include "chatstream.chart" . }}
{{ include "chatstream.baseSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: chatstream
{{- end }}

{{- define "chatstream.baseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "chatstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The server pods only (not the migration Job, the database or the test pod). Immutable. */}}
{{- define "chatstream.selectorLabels" -}}
{{ include "chatstream.baseSelectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "chatstream.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "chatstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chatstream.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with session-secret and api-keys (the chart's own or secrets.existingSecret). */}}
{{- define "chatstream.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "chatstream.fullname" .) }}
{{- end }}

{{- define "chatstream.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "chatstream.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chatstream.postgresql.url" -}}
{{- $pg := .Values.postgresql -}}
{{- printf "postgresql+asyncpg://%s:%s@%s.%s.svc:5432/%s" (urlquery $pg.auth.username) (urlquery $pg.auth.password) (include "chatstream.postgresql.fullname" .) .Release.Namespace $pg.auth.database }}
{{- end }}

{{/* "true" when the service has a database (bundled or external), else empty. */}}
{{- define "chatstream.database.enabled" -}}
{{- if or .Values.postgresql.enabled .Values.externalDatabase.url .Values.externalDatabase.existingSecret }}true{{ end }}
{{- end }}

{{/* Where CHATSTREAM_DATABASE_URL comes from: {"name": secret, "key": key}. */}}
{{- define "chatstream.database.secretRef" -}}
{{- if .Values.externalDatabase.existingSecret }}
{{- dict "name" .Values.externalDatabase.existingSecret "key" .Values.externalDatabase.existingSecretKey | toJson }}
{{- else if .Values.postgresql.enabled }}
{{- dict "name" (include "chatstream.postgresql.fullname" .) "key" "database-url" | toJson }}
{{- else }}
{{- dict "name" (include "chatstream.fullname" .) "key" "database-url" | toJson }}
{{- end }}
{{- end }}

{{/* "true" when the migration Job runs. */}}
{{- define "chatstream.migrations.enabled" -}}
{{- if and .Values.migrations.enabled (include "chatstream.database.enabled" .) (ne (include "chatstream.history" .) "memory") }}true{{ end }}
{{- end }}

{{/*
"true" when the migration Job needs its own hook Secret: the URL lives in the chart's Secret, which
Helm creates only after pre-install hooks have run.
*/}}
{{- define "chatstream.migrations.hookSecret" -}}
{{- if and (include "chatstream.migrations.enabled" .) .Values.externalDatabase.url (not .Values.externalDatabase.existingSecret) }}true{{ end }}
{{- end }}

{{- define "chatstream.migrations.secretRef" -}}
{{- if include "chatstream.migrations.hookSecret" . }}
{{- dict "name" (printf "%s-migrate" (include "chatstream.fullname" .)) "key" "database-url" | toJson }}
{{- else }}
{{- include "chatstream.database.secretRef" . }}
{{- end }}
{{- end }}

{{/*
The bundled database is part of the release, so on install the migration can only run after it
(post-install); an external database exists before the release (pre-install).
*/}}
{{- define "chatstream.migrations.hooks" -}}
{{- if .Values.postgresql.enabled }}post-install,pre-upgrade{{ else }}pre-install,pre-upgrade{{ end }}
{{- end }}

{{/* The history store the service uses: config.history, or sql with a database and memory without. */}}
{{- define "chatstream.history" -}}
{{- $history := .Values.config.history | default "" }}
{{- $db := include "chatstream.database.enabled" . }}
{{- if and (has $history (list "sql" "auto")) (not $db) }}
{{- fail (printf "config.history=%s needs a database: set externalDatabase.url, externalDatabase.existingSecret or postgresql.enabled (the embedded SQLite file cannot live on the read-only root filesystem)" $history) }}
{{- end }}
{{- if $history }}{{ $history }}{{ else if $db }}sql{{ else }}memory{{ end }}
{{- end }}

{{- define "chatstream.device" -}}
{{- if .Values.config.device }}{{ .Values.config.device }}{{ else if .Values.gpu.enabled }}cuda{{ end }}
{{- end }}

{{/* A settings value as an environment string: maps and lists as JSON, scalars as text. */}}
{{- define "chatstream.envValue" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the preStop sleep plus the drain timeout plus a margin, or the value
given, which must be larger than the sleep plus the drain timeout.
*/}}
{{- define "chatstream.terminationGracePeriodSeconds" -}}
{{- $sleep := int .Values.lifecycle.preStopSleepSeconds }}
{{- $needed := add $sleep (int (ceil .Values.config.drain_timeout_sec)) }}
{{- $given := .Values.lifecycle.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $given }}
{{- add $needed (int .Values.lifecycle.terminationGraceMarginSeconds) }}
{{- else if le (int $given) $needed }}
{{- fail (printf "lifecycle.terminationGracePeriodSeconds=%d must be larger than lifecycle.preStopSleepSeconds + config.drain_timeout_sec = %d, or the kubelet kills running streams before they drain" (int $given) $needed) }}
{{- else }}
{{- int $given }}
{{- end }}
{{- end }}

{{/*
Conversation affinity. The header is the service's CONVERSATION_HEADER and the cookie its
session_cookie_name (tests/deploy check both against the code).
*/}}
{{- define "chatstream.affinity.header" -}}
X-ChatStream-Conversation-Id
{{- end }}

{{- define "chatstream.affinity.cookie" -}}
{{- .Values.config.session_cookie_name | default "chatstream_session" }}
{{- end }}

{{/*
The ingress-nginx hash key: conversationAffinity.ingressNginx.hashBy, or the conversation header's
variable followed by the session cookie's. nginx concatenates them: API clients send only the header,
browsers only the cookie, so each hashes on what it has; a client sending both hashes on the pair,
which is as stable as either.
*/}}
{{- define "chatstream.affinity.nginxHashBy" -}}
{{- $cookie := include "chatstream.affinity.cookie" . }}
{{- if .Values.conversationAffinity.ingressNginx.hashBy }}
{{- .Values.conversationAffinity.ingressNginx.hashBy }}
{{- else if not (regexMatch "^[A-Za-z0-9_]+$" $cookie) }}
{{- fail (printf "config.session_cookie_name=%q cannot be named by an nginx $cookie_ variable (letters, digits and _ only): rename the cookie or set conversationAffinity.ingressNginx.hashBy" $cookie) }}
{{- else }}
{{- printf "$http_%s$cookie_%s" (include "chatstream.affinity.header" . | lower | replace "-" "_") $cookie }}
{{- end }}
{{- end }}

{{/* "true" when n is a prime (Envoy refuses a Maglev table of any other size). */}}
{{- define "chatstream.isPrime" -}}
{{- $n := int . }}
{{- $prime := gt $n 1 }}
{{- range $d := untilStep 2 2237 1 }}{{/* 2237² is past the schema's maximum */}}
{{- if and $prime (le (mul $d $d) $n) (eq (mod $n $d) 0) }}{{ $prime = false }}{{ end }}
{{- end }}
{{- if $prime }}true{{ end }}
{{- end }}

{{/* Combinations the schema cannot express; rendered once from the Deployment. */}}
{{- define "chatstream.validate" -}}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled }}
{{- fail "autoscaling.enabled and keda.enabled are both true: KEDA creates its own HPA for the Deployment, and two autoscalers would fight over the replica count. Enable one." }}
{{- end }}
{{- if and .Values.postgresql.enabled (or .Values.externalDatabase.url .Values.externalDatabase.existingSecret) }}
{{- fail "postgresql.enabled and externalDatabase are both set: choose the bundled database (development) or the external one." }}
{{- end }}
{{- if and .Values.externalDatabase.url .Values.externalDatabase.existingSecret }}
{{- fail "externalDatabase.url and externalDatabase.existingSecret are both set: give the URL in one place." }}
{{- end }}
{{- if and .Values.secrets.existingSecret .Values.externalDatabase.url }}
{{- fail "secrets.existingSecret is set, so the chart creates no Secret to hold externalDatabase.url: put the URL in a Secret and set externalDatabase.existingSecret (and existingSecretKey)." }}
{{- end }}
{{- if and .Values.secrets.existingSecret (or .Values.secrets.sessionSecret .Values.secrets.apiKeys) }}
{{- fail "secrets.existingSecret is set together with secrets.sessionSecret or secrets.apiKeys: put them in the existing Secret (keys session-secret, api-keys)." }}
{{- end }}
{{- if and (not .Values.config.use_mock_response) (not .Values.config.model) }}
{{- fail "config.model is empty: set a HuggingFace hub id or a path on the model cache volume, or config.use_mock_response: true to serve canned replies." }}
{{- end }}
{{- if and .Values.gpu.enabled (hasPrefix "cpu" (.Values.config.device | default "")) }}
{{- fail "gpu.enabled is true but config.device is cpu: set config.device to cuda (or leave it null)." }}
{{- end }}
{{- if and (eq .Values.modelCache.type "existingClaim") (not .Values.modelCache.existingClaim) }}
{{- fail "modelCache.type is existingClaim but modelCache.existingClaim names no claim." }}
{{- end }}
{{- $affinity := .Values.conversationAffinity }}
{{- if and $affinity.ingressNginx.enabled (not .Values.ingress.enabled) }}
{{- fail "conversationAffinity.ingressNginx.enabled is true but ingress.enabled is false: the hash is an annotation on the chart's Ingress. Enable the Ingress, or annotate your own with nginx.ingress.kubernetes.io/upstream-hash-by." }}
{{- end }}
{{- if and $affinity.ingressNginx.enabled (hasKey (.Values.ingress.annotations | default dict) "nginx.ingress.kubernetes.io/upstream-hash-by") }}
{{- fail "ingress.annotations sets nginx.ingress.kubernetes.io/upstream-hash-by and conversationAffinity.ingressNginx.enabled is true: give the hash key in one place (conversationAffinity.ingressNginx.hashBy)." }}
{{- end }}
{{- if and $affinity.istio.enabled (eq $affinity.istio.algorithm "maglev") (not (include "chatstream.isPrime" $affinity.istio.maglevTableSize)) }}
{{- fail (printf "conversationAffinity.istio.maglevTableSize=%d is not a prime: Envoy refuses a Maglev table of that size (65537 is the default)." (int $affinity.istio.maglevTableSize)) }}
{{- end }}
{{- $_ := include "chatstream.history" . }}
{{- $_ := include "chatstream.terminationGracePeriodSeconds" . }}
{{- end }}
