{{/* Names and labels shared by every template. */}}

{{- define "modelserve-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelserve-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "modelserve-operator.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "modelserve-operator.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* ClusterRoles and ClusterRoleBindings are cluster-wide: their names carry the namespace too, so the
same release name in two namespaces never collides. */}}
{{- define "modelserve-operator.clusterName" -}}
{{- printf "%s-%s" (include "modelserve-operator.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelserve-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelserve-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modelserve-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelserve-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "modelserve-operator.labels" -}}
{{ include "modelserve-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: modelserve
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "modelserve-operator.activatorLabels" -}}
app.kubernetes.io/name: {{ include "modelserve-operator.name" . }}-activator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: activator
app.kubernetes.io/part-of: modelserve
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "modelserve-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The operator's rules inside a namespace: exactly the verbs modelserve/kube.py and kopf use.
Rendered into the ClusterRole (cluster-wide mode) or into one Role per watched namespace.
*/}}
{{- define "modelserve-operator.namespacedRules" -}}
# ModelDeployments: kopf lists and watches them; the resync loop lists them.
- apiGroups: [modelserve.dev]
  resources: [modeldeployments]
  verbs: [list, watch]
# Status is written with a merge patch of the status subresource (never the spec).
- apiGroups: [modelserve.dev]
  resources: [modeldeployments/status]
  verbs: [patch]
# Children carry an ownerReference with blockOwnerDeletion; where the OwnerReferencesPermissionEnforcement
# admission plugin runs, setting it requires update on the owner's finalizers subresource.
- apiGroups: [modelserve.dev]
  resources: [modeldeployments/finalizers]
  verbs: [update]
# Children: server-side apply is a patch (and a create when the object is new); get reads one back
# before deleting it; list and watch feed the child-event watches; delete removes a disabled child.
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch, delete]
# The shared model cache's claim (spec.model.cache.size); its data is never read by the operator.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# KEDA ScaledObjects for load targets and scale to zero (KEDA owns the HPA it creates).
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [get, list, watch, create, patch, delete]
# The EndpointSlice routing a model at zero to the activator; the activator's own slices are read
# for its addresses.
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch, create, patch, delete]
# spec.rollout.gatewayAPI: the weighted HTTPRoute of a canary rollout (docs/rollouts.md).
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, create, patch, delete]
# Pods are only read: their scheduling and container states explain a Deployment that is not ready;
# the shared cache's sync pods (label modelserve.dev/model-sync) are watched, their exits being
# visible nowhere else.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# Events on ModelDeployments when Ready changes; the kubelet's FailedMount Events are listed only
# while a serving pod is stuck before start (a missing Secret or ConfigMap volume shows nowhere else:
# the operator never reads Secrets themselves).
- apiGroups: [""]
  resources: [events]
  verbs: [create, list]
{{- end -}}

{{/* Cluster-scoped reads every mode needs. */}}
{{- define "modelserve-operator.clusterRules" -}}
# CRDs: kopf scans them to resolve the resources it serves, and the operator watches for the
# ServiceMonitor CRD appearing or going away (monitoring then starts or reports CRDNotInstalled).
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if .Values.watchNamespaces }}
# Namespaced mode only: kopf lists and watches namespaces to match the watched names, and keeps
# retrying a 403 there before it starts any watch. A cluster-wide operator never lists them.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end -}}
