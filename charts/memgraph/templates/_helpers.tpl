{{/* Names. fullname follows the official chart: the release name if it contains the chart name. */}}
{{- define "memgraph.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "memgraph.fullname" -}}
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

{{- define "memgraph.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "memgraph.selectorLabels" -}}
app.kubernetes.io/name: {{ include "memgraph.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The same selector as a label-selector string (HA_POD_SELECTOR). */}}
{{- define "memgraph.selectorString" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s" (include "memgraph.name" .) .Release.Name }}
{{- end }}

{{- define "memgraph.labels" -}}
helm.sh/chart: {{ include "memgraph.chart" . }}
{{ include "memgraph.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "memgraph.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "memgraph.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Headless Service over every pod (metrics scraping, endpoints); not the StatefulSet's serviceName. */}}
{{- define "memgraph.podsServiceName" -}}
{{- printf "%s-pods" (include "memgraph.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "memgraph.leaseName" -}}
{{- default (printf "%s-ha" (include "memgraph.fullname" .)) .Values.haAgent.leaseName }}
{{- end }}

{{/* The Secret holding the agents' fence token (HA_FENCE_TOKEN): the operator's, or the one this chart
generates (templates/fence-token-secret.yaml). */}}
{{- define "memgraph.fenceSecretName" -}}
{{- default (printf "%s-ha-fence" (include "memgraph.fullname" .) | trunc 63 | trimSuffix "-") .Values.haAgent.fenceToken.existingSecret }}
{{- end }}

{{- define "memgraph.hooksConfigMapName" -}}
{{- printf "%s-ha-hooks" (include "memgraph.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "memgraph.agentImage" -}}
{{- printf "%s:%s" .Values.haAgent.image.repository (default .Chart.Version .Values.haAgent.image.tag) }}
{{- end }}

{{- define "memgraph.logDir" -}}/var/log/memgraph{{- end }}
{{- define "memgraph.hooksDir" -}}/etc/memgraph-ha/hooks{{- end }}

{{/*
Memgraph args: memgraphConfig, plus (haAgent.enabled) the flags the agent relies on. A required flag
set to another value in memgraphConfig fails the render with a message naming it.
*/}}
{{- define "memgraph.args" -}}
{{- $args := list }}
{{- range .Values.memgraphConfig }}{{ $args = append $args (toString .) }}{{ end }}
{{- if .Values.haAgent.enabled }}
{{- $required := list "--replication-restore-state-on-startup=true" "--data-recovery-on-startup=true" "--storage-wal-enabled=true" }}
{{- range $req := $required }}
{{- $flag := first (splitList "=" $req) }}
{{- $found := false }}
{{- range $args }}
{{- if or (eq . $flag) (hasPrefix (printf "%s=" $flag) .) }}
{{- $found = true }}
{{- if not (or (eq . $req) (eq . $flag)) }}
{{- fail (printf "haAgent.enabled needs %s, but memgraphConfig has %q" $req .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not $found }}{{ $args = append $args $req }}{{ end }}
{{- end }}
{{- end }}
{{- if not .Values.persistentVolumeClaim.createLogStorage }}
{{- if not .Values.haAgent.enabled }}{{ $args = append $args "--log-file=" }}{{ end }}
{{- end }}
{{- if .Values.scrapeMemgraphDirectly }}{{ $args = append $args "--metrics-format=OpenMetrics" }}{{ end }}
{{- toJson $args }}
{{- end }}

{{/* Settings checks that the schema cannot express; each fails with a message naming the value. */}}
{{- define "memgraph.validate" -}}
{{- if .Values.haAgent.enabled }}
{{- $ha := .Values.haAgent }}
{{- $need := add (int $ha.prestopBudgetSeconds) 30 }}
{{- if lt (int .Values.container.terminationGracePeriodSeconds) (int $need) }}
{{- fail (printf "container.terminationGracePeriodSeconds (%d) must be >= haAgent.prestopBudgetSeconds + 30 (%d): the preStop hand-over runs inside the pod's grace period" (int .Values.container.terminationGracePeriodSeconds) (int $need)) }}
{{- end }}
{{- if not (gt (int $ha.leaseDurationSeconds) (int $ha.renewDeadlineSeconds)) }}
{{- fail (printf "haAgent.leaseDurationSeconds (%d) must be > haAgent.renewDeadlineSeconds (%d)" (int $ha.leaseDurationSeconds) (int $ha.renewDeadlineSeconds)) }}
{{- end }}
{{- if not (gt (mul (int $ha.renewDeadlineSeconds) 10) (mul (int $ha.retryPeriodSeconds) 12)) }}
{{- fail (printf "haAgent.renewDeadlineSeconds (%d) must be > 1.2 x haAgent.retryPeriodSeconds (%d)" (int $ha.renewDeadlineSeconds) (int $ha.retryPeriodSeconds)) }}
{{- end }}
{{- if and $ha.nativeSidecar (not (semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version)) }}
{{- fail (printf "haAgent.nativeSidecar needs Kubernetes >= 1.29 (native sidecar containers); this cluster is %s: set haAgent.nativeSidecar=false" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and .Values.lifecycleHooks (hasKey .Values.lifecycleHooks "preStop") }}
{{- fail "lifecycleHooks.preStop cannot be set with haAgent.enabled: the chart's preStop hands the MAIN role over" }}
{{- end }}
{{- if and (eq $ha.statusAuth "token") (not $ha.apiToken.existingSecret) }}
{{- fail "haAgent.statusAuth=token needs haAgent.apiToken.existingSecret (the token the status endpoint then asks for)" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Downward-API env shared by both containers. */}}
{{- define "memgraph.downwardEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_UID
  valueFrom:
    fieldRef:
      fieldPath: metadata.uid
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- end }}

{{/* MEMGRAPH_USER / MEMGRAPH_PASSWORD from the chart's Secret, as the official chart does. */}}
{{- define "memgraph.secretEnv" -}}
{{- if .Values.secrets.enabled }}
- name: MEMGRAPH_USER
  valueFrom:
    secretKeyRef:
      name: {{ tpl .Values.secrets.name . }}
      key: {{ .Values.secrets.userKey }}
- name: MEMGRAPH_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ tpl .Values.secrets.name . }}
      key: {{ .Values.secrets.passwordKey }}
{{- end }}
{{- end }}

{{/*
Pod affinity: `affinity` verbatim, plus the official `nodeAffinity`, plus (haAgent.enabled) an
anti-affinity that spreads the pods over nodes (haAgent.podAntiAffinity) unless `affinity` sets one.
*/}}
{{- define "memgraph.affinity" -}}
{{- $aff := deepCopy (default dict .Values.affinity) }}
{{- if and .Values.nodeAffinity (not (hasKey $aff "nodeAffinity")) }}
{{- $_ := set $aff "nodeAffinity" .Values.nodeAffinity }}
{{- end }}
{{- $mode := .Values.haAgent.podAntiAffinity | default "none" }}
{{- if and .Values.haAgent.enabled (ne $mode "none") (not (hasKey $aff "podAntiAffinity")) }}
{{- $term := dict "topologyKey" .Values.haAgent.podAntiAffinityTopologyKey "labelSelector" (dict "matchLabels" (include "memgraph.selectorLabels" . | fromYaml)) }}
{{- if eq $mode "required" }}
{{- $_ := set $aff "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) }}
{{- else }}
{{- $_ := set $aff "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) }}
{{- end }}
{{- end }}
{{- if $aff }}{{ toYaml $aff }}{{ end }}
{{- end }}

{{/* topologySpreadConstraints verbatim; an entry without labelSelector selects this release's pods. */}}
{{- define "memgraph.topologySpread" -}}
{{- $out := list }}
{{- range .Values.topologySpreadConstraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "memgraph.selectorLabels" $ | fromYaml)) }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- if $out }}{{ toYaml $out }}{{ end }}
{{- end }}

{{/* A probe as the official chart reads it: `exec` replaces the default tcpSocket. */}}
{{- define "memgraph.probe" -}}
{{- $p := deepCopy . }}
{{- if $p.exec }}{{ $_ := unset $p "tcpSocket" }}{{ end }}
{{- toYaml $p }}
{{- end }}

{{/* The busybox image of the opt-in privileged init containers (official object form). */}}
{{- define "memgraph.busyboxImage" -}}
{{- $img := .Values.sysctlInitContainer.image }}
{{- printf "%s:%s" $img.repository (toString (default "1.37.0" $img.tag)) }}
{{- end }}

{{/* ConfigMap volumes of customQueryModules, each once (several files may share one ConfigMap). */}}
{{- define "memgraph.queryModuleVolumes" -}}
{{- $names := list }}
{{- range .Values.customQueryModules }}{{ $names = append $names .volume }}{{ end }}
{{- toJson ($names | uniq) }}
{{- end }}

{{/* One volumeClaimTemplates entry, shaped as the official chart renders it. */}}
{{- define "memgraph.claimTemplate" -}}
- apiVersion: v1
  kind: PersistentVolumeClaim
  metadata:
    name: {{ .name }}
  spec:
    accessModes:
      - {{ .mode | quote }}
    {{- with .class }}
    storageClassName: {{ . | quote }}
    {{- end }}
    resources:
      requests:
        storage: {{ .size }}
    {{- with .volume }}
    volumeName: {{ . | quote }}
    {{- end }}
{{- end }}

{{/* Client ports of the official chart (bolt, websocket and HTTP monitoring when enabled). */}}
{{- define "memgraph.clientPorts" -}}
{{- if .Values.service.enableBolt }}
- name: tcp-bolt-port
  port: {{ .Values.service.boltPort }}
  targetPort: bolt
  protocol: TCP
{{- end }}
{{- if .Values.service.enableWebsocketMonitoring }}
- name: tcp-websocket-monitoring-port
  port: {{ .Values.service.websocketPortMonitoring }}
  targetPort: websocket
  protocol: TCP
{{- end }}
{{- if or .Values.service.enableHttpMonitoring .Values.scrapeMemgraphDirectly }}
- name: http-monitoring-port
  port: {{ .Values.service.httpPortMonitoring }}
  targetPort: http
  protocol: TCP
{{- end }}
{{- end }}
