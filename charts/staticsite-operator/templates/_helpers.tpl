{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "staticsite-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: <release>-<chart>, or the release name alone when it already contains
the chart name. Truncated to 63 characters (the DNS label limit of some names).
*/}}
{{- define "staticsite-operator.fullname" -}}
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

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "staticsite-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels on every object. app.kubernetes.io/managed-by is "Helm", never
"staticsite-operator": the operator watches objects carrying that value as its children.
*/}}
{{- define "staticsite-operator.labels" -}}
helm.sh/chart: {{ include "staticsite-operator.chart" . }}
{{ include "staticsite-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: staticsite-operator
{{- end }}

{{/*
Selector labels: a stable subset (a Deployment's selector is immutable). The component
keeps the `helm test` pod out of the Service's endpoints.
*/}}
{{- define "staticsite-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "staticsite-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "staticsite-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "staticsite-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "staticsite-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
What the operator may do, and nothing more. The same rules back the ClusterRole
(all namespaces) and each namespaced Role (watchNamespaces); tests/integration/test_rbac.py
runs the operator under exactly these rules and checks what it can and cannot do.
*/}}
{{- define "staticsite-operator.rules" -}}
# kopf lists and watches the sites (its indexes and event handlers).
- apiGroups: [staticsite.dev]
  resources: [staticsites]
  verbs: [list, watch]
# Conditions, observedGeneration and url are written with a merge PATCH of /status.
- apiGroups: [staticsite.dev]
  resources: [staticsites/status]
  verbs: [patch]
# Children carry ownerReferences with blockOwnerDeletion: true; where the
# OwnerReferencesPermissionEnforcement admission plugin is on, that needs update here.
- apiGroups: [staticsite.dev]
  resources: [staticsites/finalizers]
  verbs: [update]
# Children: watched (label-selected) and read, then server-side applied. Apply is a PATCH;
# applying an object that does not exist yet also needs create.
# A site's content ConfigMap is deleted when the site moves to a git or archive source.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch, delete]
# Deleting a Service or Deployment is needed only with pools: a site's when it moves to
# the shared tier, a pool's when the pool moves to another namespace. Without pools the
# garbage collector removes them with their site.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch{{ if .Values.pools.enabled }}, delete{{ end }}]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch{{ if .Values.pools.enabled }}, delete{{ end }}]
# The shared tier: a pool's autoscaler (watched only where the cluster serves it).
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes, referencegrants]
  verbs: [get, list, watch, create, patch, delete]
# An Ingress is deleted when a site drops its last domain.
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, patch, delete]
# The sites' own pods (label-selected), watched only to report an init container that
# failed to fetch git or archive content. Never created, changed or deleted.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# Events on the StaticSite (Created, Ready, Degraded...): what `kubectl describe ss` shows.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if .Values.gitCredentials.enabled }}
# Opt-in (gitCredentials.enabled): read, by name, the Secret a site's content.git.secretRef
# names, to resolve a private repository's ref. No list or watch: it cannot enumerate them.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}
{{- end }}

{{/*
The nginx image of sites that name none: sites.nginxImage, else the operator's pinned
default (api/models.py DEFAULT_NGINX_IMAGE; a test keeps the two equal).
*/}}
{{- define "staticsite-operator.nginxImage" -}}
{{- .Values.sites.nginxImage | default "docker.io/nginxinc/nginx-unprivileged:1.28.0-alpine-slim" }}
{{- end }}

{{/* The name of the policy ConfigMap (the admission policy's parameter, and the operator's). */}}
{{- define "staticsite-operator.policyName" -}}
{{- printf "%s-policy" (include "staticsite-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A CEL expression: does glob `p` match the string `v`? The same semantics as
core/policy.py glob_match: '*' anything, '*x*' contains, 'x*' starts with, '*x' ends
with, else equal. Callers lower-case both sides. Call with (dict "p" EXPR "v" EXPR).
*/}}
{{- define "staticsite-operator.celGlob" -}}
({{ .p }} == '*' || {{ .p }} == {{ .v }} || (size({{ .p }}) > 1 && {{ .p }}.startsWith('*') && {{ .p }}.endsWith('*') && {{ .v }}.contains({{ .p }}.substring(1, size({{ .p }}) - 1))) || (!{{ .p }}.startsWith('*') && {{ .p }}.endsWith('*') && {{ .v }}.startsWith({{ .p }}.substring(0, size({{ .p }}) - 1))) || ({{ .p }}.startsWith('*') && !{{ .p }}.endsWith('*') && {{ .v }}.endsWith({{ .p }}.substring(1))))
{{- end }}

{{/*
The StaticSitePools: cluster-scoped, so a ClusterRole in both RBAC modes. The operator
only reads them and writes their status; the platform creates them.
*/}}
{{- define "staticsite-operator.poolRules" -}}
- apiGroups: [staticsite.dev]
  resources: [staticsitepools]
  verbs: [list, watch]
- apiGroups: [staticsite.dev]
  resources: [staticsitepools/status]
  verbs: [patch]
# The objects in a pool's namespace are owned by the pool (blockOwnerDeletion).
- apiGroups: [staticsite.dev]
  resources: [staticsitepools/finalizers]
  verbs: [update]
{{- end }}

{{/* The namespaces that get the pool agent's RBAC: pools.agentNamespaces and the default pool's. */}}
{{- define "staticsite-operator.agentNamespaces" -}}
{{- $namespaces := .Values.pools.agentNamespaces }}
{{- if and .Values.pools.enabled .Values.pools.default.enabled }}
{{- $namespaces = append $namespaces .Values.pools.default.namespace }}
{{- end }}
{{- uniq $namespaces | toJson }}
{{- end }}

{{/* The Lease the replicas elect their leader on (in the release namespace). */}}
{{- define "staticsite-operator.leaseName" -}}
{{- include "staticsite-operator.fullname" . }}
{{- end }}
