#!/usr/bin/env bash
# Offline checks of the deployment assets (k8s/, deploy/). Run by `make deploy-check`
# (and so by `make test`). Idempotent installs: promtool (Debian package `prometheus`),
# kubernetes-validate (PyPI), node/npm (Debian) and the pinned CRD schema packages (npm, sha256
# checked, into ~/.cache/credential-anchor/crd-schemas, never into the repository) are installed
# only when missing.
#
# Checks:
#   1. `kubectl kustomize` builds k8s/base and every overlay in k8s/overlays/;
#   2. each build validates offline against the Kubernetes schemas (kubernetes-validate
#      --strict). Custom resources (Prometheus Operator: ServiceMonitor, PrometheusRule,
#      PodMonitor; CloudNativePG: Cluster, ScheduledBackup) are split off (CRD_KINDS below) and
#      validated against their operators' pinned schemas, strictly (an unknown field fails):
#      CloudNativePG 1.29.0's CRDs, the Prometheus Operator's API types (check-deploy-lib.py,
#      "Custom resources against the operators' own schemas"); the ServiceMonitor and
#      PrometheusRule also structurally, and the PrometheusRule's groups through
#      `promtool check rules`. A build with a CloudNativePG Cluster (prod) must also be coherent:
#      3 instances, synchronous quorum, WAL archiving, its backups and PodMonitor, and every
#      service's database URL on the cluster's -rw Service with target_session_attrs=read-write;
#   3. every Deployment/Job container has probes (/healthz, /readyz), resources and the
#      hardened securityContext; Deployments have terminationGracePeriodSeconds 30;
#      every pod that talks to the database or the RPC has its egress restricted by a
#      NetworkPolicy that still allows them and DNS; in a build with a CloudNativePG Cluster,
#      5432 only to the cluster's pods, 443 only to ipBlocks, no egress rule without peers; the
#      ServiceMonitor scrapes only metrics ports that only Prometheus may reach. Database
#      connections at the HPA maximum (pools, relay LISTEN, migration Job, superuser-reserved)
#      fit the build's PostgreSQL max_connections (not checked for an external database). Both
#      checks first refuse a synthetic bad build (self-tests);
#   4. `promtool check config` (prometheus.yml), `check rules` (alerts.yml),
#      `test rules` (alerts_test.yml makes each alert fire);
#   5. k8s/base/prometheusrule.yaml is exactly what scripts/gen-prometheusrule.py renders
#      from deploy/prometheus/alerts.yml;
#   6. deploy/Dockerfile stubs/copies every workspace member (dependency-cache layer) and
#      mirrors `cargo build --release --locked --bins` (it is not built here: no Docker engine);
#   7. every metric name used in alerts.yml and grafana/dashboard.json is registered in
#      crates/ (no dead alert or panel).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CRD_KINDS="ServiceMonitor,PrometheusRule,PodMonitor,Cluster,ScheduledBackup"   # not in kubernetes-validate: own schemas
K8S_VERSION=${K8S_VERSION:-1.33.0}
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"

step() { printf '\n== %s\n' "$*"; }

step "tools"
if ! command -v promtool >/dev/null; then
  echo "installing promtool (Debian package prometheus)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if ! command -v kubernetes-validate >/dev/null; then
  echo "installing kubernetes-validate (PyPI)"
  python3 -m pip install -q kubernetes-validate
fi
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
command -v kubectl >/dev/null || { echo "kubectl is required (kubectl kustomize)"; exit 1; }
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing node and npm (Debian packages nodejs, npm) for the CRD schema check"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
echo "promtool: $(promtool --version 2>&1 | head -1)"
echo "kubernetes-validate: $(kubernetes-validate --version 2>&1)"
echo "node: $(node --version)"
python3 scripts/check-deploy-lib.py crd-schemas-install

TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

for dir in k8s/base k8s/overlays/*/; do
  dir=${dir%/}; name=$(echo "$dir" | tr / _)
  step "kustomize + validate $dir (Kubernetes $K8S_VERSION; custom resources $CRD_KINDS against their CRD schemas)"
  kubectl kustomize "$dir" > "$TMP/$name.yaml"
  python3 scripts/check-deploy-lib.py split-crds "$TMP/$name.yaml" "$TMP/$name.core.yaml" "$TMP/$name.crd.yaml"
  kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$TMP/$name.core.yaml"
  python3 scripts/check-deploy-lib.py check-crds "$TMP/$name.crd.yaml" "$TMP/$name.rules.yaml"
  python3 scripts/check-deploy-lib.py check-crd-schemas "$TMP/$name.crd.yaml"
  python3 scripts/check-deploy-lib.py check-database "$TMP/$name.core.yaml" "$TMP/$name.crd.yaml"
  promtool check rules "$TMP/$name.rules.yaml" | sed 's/^/  /'
  python3 scripts/check-deploy-lib.py check-policy "$TMP/$name.core.yaml"
  python3 scripts/check-deploy-lib.py check-network "$TMP/$name.core.yaml" "$TMP/$name.crd.yaml"
  python3 scripts/check-deploy-lib.py check-budget "$TMP/$name.core.yaml" "$TMP/$name.crd.yaml" "${dir##*/}"
done

step "promtool"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml

step "PrometheusRule == alerts.yml"
python3 scripts/gen-prometheusrule.py --check

step "metric names used by alerts and dashboard are registered in crates/"
python3 scripts/check-deploy-lib.py metric-names

step "Dockerfile"
python3 scripts/check-deploy-lib.py dockerfile

step "Grafana dashboard is valid JSON"
python3 -m json.tool deploy/grafana/dashboard.json >/dev/null && echo "  ok"

printf '\ndeploy-check: all checks passed\n'
