{{/*
The HA agent container. Rendered under initContainers with restartPolicy: Always (native sidecar,
stopped only after Memgraph exits) or under containers with its own bounded preStop wait.
Its probes hit only the agent's own HTTP server: never Memgraph, never the API server
(DESIGN "Start and termination order"), or the pod could not start and an API outage would become a
write outage.
*/}}
{{- define "memgraph.agentContainer" -}}
{{- $ha := .Values.haAgent -}}
- name: agent
  image: {{ include "memgraph.agentImage" . | quote }}
  imagePullPolicy: {{ $ha.image.pullPolicy }}
  {{- if $ha.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  ports:
    - name: agent-http
      containerPort: {{ $ha.port }}
      protocol: TCP
  env:
    {{- include "memgraph.agentEnv" . | nindent 4 }}
  startupProbe:
    httpGet:
      path: /health
      port: agent-http
    {{- toYaml $ha.startupProbe | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /health
      port: agent-http
    {{- toYaml $ha.livenessProbe | nindent 4 }}
  # No readinessProbe: the agent is not in the write path. The client Service follows the role label
  # and publishes not-ready addresses, so an agent that crashes on the MAIN's pod stops no write
  # (docs/architecture.md "The agent is not in the write path"). /ready stays an HTTP route for people.
  {{- if not $ha.nativeSidecar }}
  lifecycle:
    preStop:
      exec:
        # Hold this container's SIGTERM until Memgraph has stopped (so after its preStop hand-over),
        # at most the preStop budget + 20 s; the wait is appended to the pod's preStop record.
        command:
          - python3
          - {{ include "memgraph.hooksDir" . }}/agent_prestop_wait.py
          - --timeout
          - {{ add $ha.prestopBudgetSeconds 20 | quote }}
  {{- end }}
  {{- with $ha.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ .Values.memgraphUserId }}
    runAsGroup: {{ .Values.memgraphGroupId }}
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: ["ALL"]
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    - name: {{ include "memgraph.fullname" . }}-log-storage
      mountPath: {{ include "memgraph.logDir" . }}
    - name: agent-tmp
      mountPath: /tmp
    # The only container with a Kubernetes token (where the in-cluster config looks for it).
    - name: kube-api-access
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
    {{- if not $ha.nativeSidecar }}
    - name: ha-hooks
      mountPath: {{ include "memgraph.hooksDir" . }}
      readOnly: true
    {{- end }}
{{- end }}


{{/*
The agent's environment, shared by the agent and the re-seed init container (one settings parser reads
both: coordinator.edge.settings).
*/}}
{{- define "memgraph.agentEnv" -}}
{{- $ha := .Values.haAgent -}}
{{- include "memgraph.downwardEnv" . }}
- name: MEMGRAPH_HOST
  value: "127.0.0.1"
- name: MEMGRAPH_BOLT_PORT
  value: {{ .Values.service.boltPort | quote }}
- name: MEMGRAPH_REPLICATION_PORT
  value: {{ $ha.replicationPort | quote }}
{{- with (include "memgraph.secretEnv" .) }}
{{- . | trim | nindent 0 }}
{{- end }}
- name: HA_STATEFULSET
  value: {{ include "memgraph.fullname" . | quote }}
- name: HA_POD_SELECTOR
  value: {{ include "memgraph.selectorString" . | quote }}
# No HA_HEADLESS_SERVICE: serviceName is the client Service (no per-pod DNS); replicas go by pod IP.
- name: HA_LEASE_NAME
  value: {{ include "memgraph.leaseName" . | quote }}
- name: HA_LEASE_DURATION_SECONDS
  value: {{ $ha.leaseDurationSeconds | quote }}
- name: HA_RENEW_DEADLINE_SECONDS
  value: {{ $ha.renewDeadlineSeconds | quote }}
- name: HA_RETRY_PERIOD_SECONDS
  value: {{ $ha.retryPeriodSeconds | quote }}
- name: HA_RECONCILE_INTERVAL_SECONDS
  value: {{ $ha.reconcileIntervalSeconds | quote }}
- name: HA_FAILOVER_AFTER_SECONDS
  value: {{ $ha.failoverAfterSeconds | quote }}
- name: HA_SYNC_MODE
  value: {{ $ha.syncMode | quote }}
- name: HA_ALLOW_ASYNC_FAILOVER
  value: {{ $ha.allowAsyncFailover | quote }}
- name: HA_RESEED
  value: {{ $ha.divergence.reseed | quote }}
- name: HA_PRESTOP_BUDGET_SECONDS
  value: {{ $ha.prestopBudgetSeconds | quote }}
- name: HA_DRAIN_SECONDS
  value: {{ $ha.drainSeconds | quote }}
- name: HA_LOG_DIR
  value: {{ include "memgraph.logDir" . | quote }}
{{- /* The agent finds its Memgraph's process by this flag's value (shareProcessNamespace): fencing
       before a failover and telling a stopped Memgraph from a busy one (docs/architecture.md I3). Only the
       flag Memgraph is given: a default here would name a command line no process carries. */}}
{{- range (include "memgraph.args" . | fromJsonArray) }}
{{- if hasPrefix "--data-directory=" . }}
- name: MEMGRAPH_DATA_DIRECTORY
  value: {{ trimPrefix "--data-directory=" . | quote }}
{{- end }}
{{- end }}
- name: HA_LOG_FORMAT
  value: {{ $ha.logFormat | quote }}
- name: HA_LOG_LEVEL
  value: {{ $ha.logLevel | quote }}
- name: AGENT_BIND
  value: "0.0.0.0"
- name: AGENT_PORT
  value: {{ $ha.port | quote }}
- name: HA_STATUS_AUTH
  value: {{ $ha.statusAuth | quote }}
- name: HA_FENCE_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "memgraph.fenceSecretName" . }}
      key: {{ if $ha.fenceToken.existingSecret }}{{ $ha.fenceToken.key }}{{ else }}token{{ end }}
{{- if $ha.apiToken.existingSecret }}
- name: HA_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $ha.apiToken.existingSecret }}
      key: {{ $ha.apiToken.key }}
{{- end }}
{{- with $ha.extraEnv }}
{{- toYaml . | nindent 0 }}
{{- end }}
{{- end }}

{{/* Memgraph's --data-directory (memgraphConfig), where the re-seed init container finds its files. */}}
{{- define "memgraph.dataDirectory" -}}
{{- $dir := "/var/lib/memgraph/mg_data" -}}
{{- range .Values.memgraphConfig }}
{{- if hasPrefix "--data-directory=" . }}{{ $dir = trimPrefix "--data-directory=" . }}{{ end }}
{{- end }}
{{- $dir -}}
{{- end }}

{{/*
The re-seed init container (I4): runs before Memgraph, with the data volume mounted here and in the
memgraph container only (never in the agent). When the cluster record names its pod for a re-seed it
moves Memgraph's files into an archive beside the data directory on the same volume (renames only,
nothing deleted), or refuses without room for a fresh copy; at every start it reports what Memgraph will
find in its termination message, which the coordinator reads off the pod status.
*/}}
{{- define "memgraph.reseedContainer" -}}
{{- $ha := .Values.haAgent -}}
{{- $data := include "memgraph.dataDirectory" . -}}
- name: reseed
  image: {{ include "memgraph.agentImage" . | quote }}
  imagePullPolicy: {{ $ha.image.pullPolicy }}
  command: ["python", "-m", "agent.reseed"]
  terminationMessagePath: /dev/termination-log
  terminationMessagePolicy: File
  env:
    {{- include "memgraph.agentEnv" . | nindent 4 }}
    - name: HA_DATA_DIR
      value: {{ $data | quote }}
    - name: HA_ARCHIVE_DIR
      value: {{ printf "%s/diverged" (dir $data) | quote }}
    - name: HA_RESEED_RESERVE_BYTES
      value: {{ $ha.divergence.reserveBytes | int64 | quote }}
  {{- with $ha.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ .Values.memgraphUserId }}
    runAsGroup: {{ .Values.memgraphGroupId }}
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: ["ALL"]
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    - name: {{ include "memgraph.fullname" . }}-lib-storage
      mountPath: /var/lib/memgraph
    - name: agent-tmp
      mountPath: /tmp
    # It reads the cluster record (the Lease) to know whether a re-seed is asked of its pod.
    - name: kube-api-access
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
{{- end }}
