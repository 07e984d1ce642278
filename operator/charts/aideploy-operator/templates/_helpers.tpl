{{/* Names, labels and the operator's arguments, shared by the templates. */}}

{{- define "aideploy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aideploy.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "aideploy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aideploy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "aideploy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "aideploy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: aideploy
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "aideploy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aideploy.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "aideploy.peeringName" -}}
{{- default (include "aideploy.fullname" .) .Values.peering.name -}}
{{- end -}}

{{- define "aideploy.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The operator's arguments. The first part (health endpoint, metrics port, log format) is the
image's default CMD (operator/Dockerfile); a test keeps the two equal.
*/}}
{{- define "aideploy.args" -}}
- --liveness
- {{ printf "http://0.0.0.0:%d/healthz" (int .Values.health.port) | quote }}
{{- if .Values.metrics.enabled }}
- --metrics-port
- {{ .Values.metrics.port | quote }}
{{- end }}
- --log-format
- {{ .Values.logFormat | quote }}
{{- range .Values.watchNamespaces }}
- --namespace
- {{ . | quote }}
{{- end }}
{{- if gt (int .Values.replicas) 1 }}
- --peering
- {{ include "aideploy.peeringName" . | quote }}
{{- end }}
{{- if .Values.verbose }}
- --verbose
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* RBAC rules the operator needs in every namespace it serves (ClusterRole or Role). */}}
{{- define "aideploy.namespacedRules" -}}
# The AIDeployments: kopf lists and watches them; the reconciler reads them and writes
# their status (PUT with the resourceVersion read: optimistic locking).
- apiGroups: ["aideploy.io"]
  resources: ["aideployments"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["aideploy.io"]
  resources: ["aideployments/status"]
  verbs: ["get", "update", "patch"]
# The procedure's evidence records: written once, never changed or deleted by the operator.
- apiGroups: ["aideploy.io"]
  resources: ["aideploymentrecords"]
  verbs: ["get", "list", "create"]
# The model server the operator rolls out (server-side apply) and watches.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "update"]
# An Event on every phase change.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* kopf's keep-alives in the peering object, only when peering (replicas > 1). */}}
{{- define "aideploy.peeringRule" -}}
- apiGroups: ["kopf.dev"]
  resources: [{{ . | quote }}]
  verbs: ["get", "list", "watch", "patch"]
{{- end -}}
