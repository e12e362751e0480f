{{- define "agenttype.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agenttype.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "agenttype.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agenttype.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "agenttype.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "agenttype.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: agenttype
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "agenttype.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agenttype.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image REPOSITORY TAG ROOT: repository:tag, the tag defaulting to the appVersion. */}}
{{- define "agenttype.image" -}}
{{- $image := index . 0 }}{{- $root := index . 1 }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}

{{/* The rules the operator needs in a namespace it watches (ClusterRole or Role), generated
     by `make generate` from operator/kube/resources.ts. */}}
{{- define "agenttype.rules" -}}
{{ .Files.Get "files/rbac/rules.yaml" | trim }}
{{- end }}
