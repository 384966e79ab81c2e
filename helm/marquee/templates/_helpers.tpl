{{- define "marquee.labels" -}}
app.kubernetes.io/name: marquee
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "marquee.selector" -}}
app.kubernetes.io/name: marquee
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "marquee.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{/* Environment shared by every service: config location, environment, secrets, extras. */}}
{{- define "marquee.env" -}}
- name: MARQUEE_ENV
  value: {{ .Values.environment | quote }}
- name: MARQUEE_CONFIG_DIR
  value: /etc/marquee/config
{{- range .Values.secrets.keys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.secrets.name }}
      key: {{ . }}
      optional: true
{{- end }}
{{- range $k, $v := .Values.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/* Redis settings for the services that use Redis (gateway, booking-core, worker); each
     empty when not needed, so templates include them with `with`. */}}
{{- define "marquee.redisEnv" -}}
{{- if .Values.redis.cluster -}}
- name: MARQUEE_REDIS__CLUSTER
  value: "true"
{{ end -}}
{{- if .Values.redis.caSecretName -}}
- name: MARQUEE_REDIS__CA_FILE
  value: /etc/marquee/redis-ca/ca.pem
{{- end -}}
{{- end -}}

{{- define "marquee.redisCaMount" -}}
{{- if .Values.redis.caSecretName -}}
- name: redis-ca
  mountPath: /etc/marquee/redis-ca
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "marquee.redisCaVolume" -}}
{{- if .Values.redis.caSecretName -}}
- name: redis-ca
  secret:
    secretName: {{ .Values.redis.caSecretName }}
{{- end -}}
{{- end -}}
