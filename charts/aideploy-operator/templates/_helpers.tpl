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
- --peering-lifetime
- {{ .Values.peering.lifetime | quote }}
{{- end }}
{{- if .Values.verbose }}
- --verbose
{{- end }}
{{- if .Values.adoptUnsignedReleases }}
- --adopt-unsigned-releases
{{- end }}
- --approvers-config
- {{ printf "%s/%s" (include "aideploy.approversDir" .) (include "aideploy.approversFile" .) | quote }}
{{- if .Values.webhook.enabled }}
- --webhook-port
- {{ .Values.webhook.port | quote }}
- --webhook-cert
- {{ printf "%s/tls.crt" (include "aideploy.webhookCertDir" .) | quote }}
- --webhook-key
- {{ printf "%s/tls.key" (include "aideploy.webhookCertDir" .) | quote }}
{{- end }}
- --provenance-key-file
- "/etc/aideploy/provenance/key"
{{- with .Values.notifications.clusterName }}
- --cluster-name
- {{ . | quote }}
{{- end }}
{{- with .Values.notifications.defaultNotifier }}
- --default-notifier
- {{ . | quote }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* ---- Approval provenance: the approvers configuration and the admission webhook. ---- */}}

{{- define "aideploy.approversDir" -}}/etc/aideploy/approvers{{- end -}}
{{- define "aideploy.approversFile" -}}approvers.yaml{{- end -}}
{{- define "aideploy.webhookCertDir" -}}/etc/aideploy/webhook{{- end -}}

{{- define "aideploy.approversConfigMapName" -}}
{{- printf "%s-approvers" (include "aideploy.fullname" .) | trunc 253 -}}
{{- end -}}

{{/* The operator's own identity, as the API server authenticates its ServiceAccount. */}}
{{- define "aideploy.operatorUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "aideploy.serviceAccountName" .) -}}
{{- end -}}

{{/*
The operator's approvers configuration (aideploy/admission/config.py): .Values.approvers,
with the operator's ServiceAccount added to `operator.users`, and checklist/goLive only when
set (absent means unrestricted).
*/}}
{{- define "aideploy.podPolicy" -}}
{{- $p := default dict .podPolicy -}}
{{- toYaml (dict
      "forbidHostNamespaces" (default false $p.forbidHostNamespaces)
      "forbidHostPath" (default false $p.forbidHostPath)
      "serviceAccounts" (default list $p.serviceAccounts)
      "requireImageDigest" (dict "environments" (default list (default dict $p.requireImageDigest).environments))) -}}
{{- end -}}

{{- define "aideploy.approversConfig" -}}
{{- $a := .Values.approvers -}}
{{- $roles := dict -}}
{{- range $role, $holders := $a.roles -}}
{{- $_ := set $roles $role (dict "users" (default list $holders.users) "groups" (default list $holders.groups)) -}}
{{- end -}}
{{- $operator := default dict $a.operator -}}
{{- $config := dict
      "roles" $roles
      "separationOfDuties" (dict
        "riskLevels" (default list $a.separationOfDuties.riskLevels)
        "roles" (default dict $a.separationOfDuties.roles))
      "operator" (dict
        "users" (concat (list (include "aideploy.operatorUser" .)) (default list $operator.users) | uniq)
        "groups" (default list $operator.groups))
      "requireAuthenticatedApprovals" (default false $a.requireAuthenticatedApprovals)
      "lowerGate" (dict "riskLevels" (default list (default dict $a.lowerGate).riskLevels))
      "podPolicy" (include "aideploy.podPolicy" $a | fromYaml) -}}
{{- range $key := list "checklist" "goLive" "registration" "recordRetention" -}}
{{- with (index $a $key) -}}
{{- $_ := set $config $key (dict "users" (default list .users) "groups" (default list .groups)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{- define "aideploy.webhookServiceName" -}}
{{- printf "%s-webhook" (include "aideploy.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aideploy.provenanceSecretName" -}}
{{- default (printf "%s-provenance-key" (include "aideploy.fullname" .)) .Values.webhook.provenanceKey.existingSecret -}}
{{- end -}}

{{/* The provenance signing key: the one already in the cluster (lookup), else a new one. */}}
{{- define "aideploy.provenanceKey" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "aideploy.provenanceSecretName" .) -}}
{{- if and $existing $existing.data (index $existing.data "key") -}}
{{- index $existing.data "key" | b64dec -}}
{{- else -}}
{{- randAlphaNum 64 -}}
{{- end -}}
{{- end -}}

{{- define "aideploy.webhookSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "aideploy.fullname" .)) .Values.webhook.certificate.existingSecret -}}
{{- end -}}

{{/*
The names the serving certificate must cover: the Service's (the API server calls
<service>.<namespace>.svc), or webhook.url's host.
*/}}
{{- define "aideploy.webhookHosts" -}}
{{- if .Values.webhook.url -}}
{{- list (urlParse .Values.webhook.url).hostname | toJson -}}
{{- else -}}
{{- $svc := include "aideploy.webhookServiceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list (printf "%s.%s.svc" $svc $ns) $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}
{{- end -}}

{{/*
The webhook's TLS material as JSON {ca, crt, key, caBundle}: the generated Secret's when it
exists, is for the same names and has more than 30 days left (lookup; empty offline), else a
new CA and certificate. Generated once per render and kept in the render's values, so that
the Secret, the webhook's caBundle and the pod's checksum all see the same certificate.
With webhook.certificate.existingSecret: only caBundle (the value, else the Secret's ca.crt).
*/}}
{{- define "aideploy.webhookTLS" -}}
{{- $cache := .Values.webhook -}}
{{- if not (hasKey $cache "_tls") -}}
{{- $cert := .Values.webhook.certificate -}}
{{- $secretName := include "aideploy.webhookSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $secretName -}}
{{- $data := dict -}}
{{- if $existing -}}{{- $data = default dict $existing.data -}}{{- end -}}
{{- $tls := dict -}}
{{- if $cert.existingSecret -}}
{{- $ca := $cert.caBundle -}}
{{- if and (not $ca) (hasKey $data "ca.crt") -}}{{- $ca = index $data "ca.crt" | b64dec -}}{{- end -}}
{{- $_ := set $tls "caBundle" $ca -}}
{{- else -}}
{{- $hosts := include "aideploy.webhookHosts" . | fromJsonArray -}}
{{- $annotations := dict -}}
{{- if $existing -}}{{- $annotations = default dict $existing.metadata.annotations -}}{{- end -}}
{{- $notAfter := index $annotations "aideploy.io/not-after" | default "0" | int64 -}}
{{- $renewAt := now | dateModify "+720h" | unixEpoch | int64 -}}
{{- $reuse := and (hasKey $data "ca.crt") (hasKey $data "tls.crt") (hasKey $data "tls.key")
      (eq (index $annotations "aideploy.io/hosts" | default "") (join "," $hosts))
      (gt $notAfter $renewAt) -}}
{{- if $reuse -}}
{{- $tls = dict "ca" (index $data "ca.crt" | b64dec) "crt" (index $data "tls.crt" | b64dec) "key" (index $data "tls.key" | b64dec) "notAfter" (toString $notAfter) -}}
{{- else -}}
{{- $days := int $cert.validityDays -}}
{{- $ca := genCA (printf "%s-webhook-ca" (include "aideploy.fullname" .)) $days -}}
{{- $ips := list -}}
{{- $names := list -}}
{{- range $hosts -}}
{{- if regexMatch "^[0-9.]+$|:" . -}}{{- $ips = append $ips . -}}{{- else -}}{{- $names = append $names . -}}{{- end -}}
{{- end -}}
{{- $served := genSignedCert (first $hosts) $ips $names $days $ca -}}
{{- $expiry := now | dateModify (printf "+%dh" (mul $days 24)) | unixEpoch -}}
{{- $tls = dict "ca" $ca.Cert "crt" $served.Cert "key" $served.Key "notAfter" $expiry -}}
{{- end -}}
{{- $_ := set $tls "caBundle" $tls.ca -}}
{{- $_ := set $tls "hosts" (join "," $hosts) -}}
{{- end -}}
{{- $_ := set $cache "_tls" $tls -}}
{{- end -}}
{{- toJson $cache._tls -}}
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
# The model server the operator rolls out (server-side apply) and watches: one Deployment
# per release, scaled to zero and deleted once it no longer serves; the stable and preview
# Services, whose selectors it switches, and deletes the preview when it is turned off.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# A canary under trafficRouting.gatewayAPI writes the weights of the HTTPRoute it names.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "patch"]
# An Event on every phase change; a repeat patches its count and lastTimestamp.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# Notifications: the notifiers are listed; each sink's cursor and condition are merged into
# their status. A sink's URL is read from the Secret key it names: only the Secrets listed in
# notifications.secretNames, by name (get, never list); none by default.
- apiGroups: ["aideploy.io"]
  resources: ["aideploymentnotifiers"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["aideploy.io"]
  resources: ["aideploymentnotifiers/status"]
  verbs: ["get", "patch"]
{{- with .Values.notifications.secretNames }}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson . }}
  verbs: ["get"]
{{- end }}
{{- end -}}

{{/* kopf's keep-alives in the peering object, only when peering (replicas > 1). */}}
{{- define "aideploy.peeringRule" -}}
- apiGroups: ["kopf.dev"]
  resources: [{{ . | quote }}]
  verbs: ["get", "list", "watch", "patch"]
{{- end -}}
