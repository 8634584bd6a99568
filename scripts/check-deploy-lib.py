#!/usr/bin/env python3
"""Helpers of scripts/check-deploy.sh.

  split-crds IN CORE_OUT CRD_OUT   split a kustomize build: core kinds (validated by
                                   kubernetes-validate) vs custom resources (Prometheus Operator:
                                   ServiceMonitor, PrometheusRule, PodMonitor; CloudNativePG:
                                   Cluster, ScheduledBackup), which kubernetes-validate has no
                                   schema for
  check-crds CRD_FILE RULES_OUT    structural check of the custom resources; writes the
                                   PrometheusRule groups as a plain rules file for promtool
  crd-schemas-install              fetch the pinned CRD schema packages (npm, sha256-checked)
                                   into ~/.cache/credential-anchor/crd-schemas (idempotent)
  check-crd-schemas CRD_FILE       validate every custom resource against its pinned schema:
                                   the CRD's openAPIV3Schema (types, enums, required, patterns,
                                   bounds) and, strictly, no field the schema does not define
  check-database CORE CRD          a build with a CloudNativePG Cluster: 3 instances, synchronous
                                   quorum, WAL archiving + retention, backups and PodMonitor of
                                   that cluster, every service's database URL on its -rw Service
  check-policy CORE_FILE           every container: probes, resources, hardened securityContext
  dockerfile                       deploy/Dockerfile copies and stubs every workspace member,
                                   builds with --locked and ships the three binaries as uid 10001
  metric-names                     every metric used in alerts.yml and dashboard.json must be
                                   registered in crates/ (no dead alert or panel)
"""
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
}


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def split_crds(src, core_out, crd_out):
    docs = [d for d in yaml.safe_load_all(open(src)) if d]
    core = [d for d in docs if (d.get("apiVersion"), d.get("kind")) not in CRD_KINDS]
    crds = [d for d in docs if (d.get("apiVersion"), d.get("kind")) in CRD_KINDS]
    yaml.safe_dump_all(core, open(core_out, "w"), sort_keys=False)
    yaml.safe_dump_all(crds, open(crd_out, "w"), sort_keys=False)
    print(f"  {len(core)} core objects, {len(crds)} CRD objects")


def check_crds(src, rules_out):
    docs = [d for d in yaml.safe_load_all(open(src)) if d]
    kinds = [d["kind"] for d in docs]
    if kinds.count("PrometheusRule") != 1 or kinds.count("ServiceMonitor") != 1:
        fail(f"expected one PrometheusRule and one ServiceMonitor, got {sorted(kinds)}")
    for d in docs:
        if not d.get("metadata", {}).get("name") or d["metadata"].get("namespace") != "credential-anchor":
            fail(f"{d['kind']}: metadata.name and namespace credential-anchor required")
        spec = d.get("spec") or fail(f"{d['kind']}: no spec")
        if d["kind"] not in ("ServiceMonitor", "PrometheusRule"):
            continue  # schema-checked by check-crd-schemas, coherence by check-database
        if d["kind"] == "ServiceMonitor":
            if not spec.get("selector", {}).get("matchLabels"):
                fail("ServiceMonitor: spec.selector.matchLabels required")
            for ep in spec.get("endpoints") or fail("ServiceMonitor: no endpoints"):
                if set(ep) - {"port", "path", "interval", "scheme", "scrapeTimeout", "honorLabels"}:
                    fail(f"ServiceMonitor endpoint: unknown keys {ep}")
                if not ep.get("port"):
                    fail("ServiceMonitor endpoint without port")
        else:
            for g in spec.get("groups") or fail("PrometheusRule: no groups"):
                for r in g.get("rules") or fail("PrometheusRule: empty group"):
                    if not (r.get("alert") or r.get("record")) or not r.get("expr"):
                        fail(f"PrometheusRule: bad rule {r}")
            yaml.safe_dump({"groups": spec["groups"]}, open(rules_out, "w"), sort_keys=False)
    print("  ServiceMonitor and PrometheusRule structurally valid")


# ---------------------------------------------------------------------------------------------
# Custom resources against the operators' own schemas, offline.
#
# Where the schemas come from: no package registry this project can reach (crates.io, PyPI,
# npm, Debian) ships CloudNativePG's CRD YAML itself. The npm package
# @kubernetes-models/cloudnative-pg 1.0.0 (MIT) is generated by @kubernetes-models/crd-generate
# from the CRDs of CloudNativePG's v1.29.0 release manifest (cnpg-1.29.0.yaml, Apache-2.0; its
# package.json names that input). It carries each CRD's openAPIV3Schema twice: compiled into a
# JSON-schema validator (ajv standalone code: types, enums, required, patterns, bounds), and as
# TypeScript declarations with one property per schema field. We check with both: the validator
# for values, and the TypeScript compiler's excess-property check for unknown fields (the
# compiled validator ignores them, as the API server's pruning would; `kubectl apply`'s strict
# field validation does not, and neither do we). A schema field that accepts any key
# (additionalProperties, x-kubernetes-preserve-unknown-fields) is an index signature there, so
# it stays open here too.
# PodMonitor, ServiceMonitor and PrometheusRule: @kubernetes-models/prometheus-operator 6.0.0
# (MIT), generated from the Prometheus Operator's Go API types (pkg/apis/monitoring/v1), which
# are what its CRDs are generated from.
# Both tarballs are pinned by sha256; the runtime (the packages' own helpers and the TypeScript
# compiler) by exact version. All of it lives in the cache, never in the repository.
SCHEMA_PACKAGES = [
    # (name, version, sha256 of the npm tarball)
    ("@kubernetes-models/cloudnative-pg", "1.0.0",
     "27fc44d9a7e9e4f6c516fe0df9eda2bb1e8e528289ab6c906777d5eae2a1fc30"),
    ("@kubernetes-models/prometheus-operator", "6.0.0",
     "e92402ebff400ea1ca5fe60546554841ab6f5986b317f3f0d4cb756dc88fbd37"),
]
SCHEMA_RUNTIME = [
    "@kubernetes-models/base@6.0.1",
    "@kubernetes-models/validate@5.0.2",
    "@kubernetes-models/apimachinery@3.0.2",
    "kubernetes-models@5.1.0",
    "typescript@5.9.3",
]
# (apiVersion, kind) -> (module, class / interface name without the I)
SCHEMA_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"):
        "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Cluster",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"):
        "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/ScheduledBackup",
    ("monitoring.coreos.com/v1", "PodMonitor"):
        "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
    ("monitoring.coreos.com/v1", "ServiceMonitor"):
        "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
    ("monitoring.coreos.com/v1", "PrometheusRule"):
        "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
}


def schema_cache():
    pins = json.dumps([SCHEMA_PACKAGES, SCHEMA_RUNTIME]).encode()
    base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    # One directory per set of pins: changing a pin never reuses a stale install.
    return base / "credential-anchor" / "crd-schemas" / hashlib.sha256(pins).hexdigest()[:16]


def crd_schemas_install():
    cache = schema_cache()
    stamp = cache / "installed.json"
    if stamp.exists():
        print(f"  CRD schemas: {', '.join(f'{n}@{v}' for n, v, _ in SCHEMA_PACKAGES)} (cached in {cache})")
        return
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            fail(f"{tool} is required for the CRD schema check (Debian packages nodejs, npm)")
    shutil.rmtree(cache, ignore_errors=True)
    (cache / "tarballs").mkdir(parents=True)
    (cache / "package.json").write_text('{"private": true, "type": "module"}\n')
    tarballs = []
    for name, version, sha in SCHEMA_PACKAGES:
        out = subprocess.run(["npm", "pack", "--silent", f"{name}@{version}",
                              "--pack-destination", str(cache / "tarballs")],
                             cwd=cache, capture_output=True, text=True)
        if out.returncode != 0:
            fail(f"npm pack {name}@{version}: {out.stderr.strip()}")
        tgz = cache / "tarballs" / out.stdout.strip().splitlines()[-1]
        got = hashlib.sha256(tgz.read_bytes()).hexdigest()
        if got != sha:
            shutil.rmtree(cache, ignore_errors=True)
            fail(f"{name}@{version}: tarball sha256 {got}, pinned {sha}")
        tarballs.append(str(tgz))
    out = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
                          "--no-save", "--loglevel=error", *tarballs, *SCHEMA_RUNTIME],
                         cwd=cache, capture_output=True, text=True)
    if out.returncode != 0:
        shutil.rmtree(cache, ignore_errors=True)
        fail(f"npm install of the CRD schema packages failed:\n{out.stderr}")
    for name, version, _ in SCHEMA_PACKAGES:
        installed = json.loads((cache / "node_modules" / name / "package.json").read_text())["version"]
        if installed != version:
            fail(f"{name}: installed {installed}, pinned {version}")
    stamp.write_text(json.dumps({"packages": SCHEMA_PACKAGES, "runtime": SCHEMA_RUNTIME}) + "\n")
    print(f"  installed CRD schemas {', '.join(f'{n}@{v}' for n, v, _ in SCHEMA_PACKAGES)} into {cache}")


# Runs each object through its model's compiled openAPIV3Schema validator.
VALIDATE_MJS = """
import { readFileSync } from "node:fs";
const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const o of objects) {
  const Model = (await import(o.module))[o.kind];
  try {
    new Model(o.object).validate();
  } catch (e) {
    failed++;
    console.error(`FAIL: ${o.label} does not match its CRD schema: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
"""


def check_crd_schemas(src):
    cache = schema_cache()
    if not (cache / "installed.json").exists():
        fail("CRD schemas not installed: run scripts/check-deploy-lib.py crd-schemas-install")
    docs = [d for d in yaml.safe_load_all(open(src)) if d]
    objects = []
    for d in docs:
        module = SCHEMA_KINDS.get((d.get("apiVersion"), d.get("kind")))
        if not module:
            fail(f"{d.get('apiVersion')} {d.get('kind')}: no pinned schema (add it to SCHEMA_KINDS)")
        label = f"{d['kind']}/{d['metadata'].get('name')}"
        objects.append({"module": module, "kind": d["kind"], "label": label, "object": d})
    with tempfile.TemporaryDirectory(dir=cache) as work:
        work = pathlib.Path(work)
        (work / "objects.json").write_text(json.dumps(objects))
        (work / "validate.mjs").write_text(VALIDATE_MJS)
        values = subprocess.run(["node", str(work / "validate.mjs"), str(work / "objects.json")],
                                capture_output=True, text=True)
        # Unknown fields: each object as a TypeScript object literal typed with its interface;
        # tsc's excess-property check rejects any key the schema does not define, at any depth.
        files = []
        for i, o in enumerate(objects):
            f = work / f"{i}-{o['label'].replace('/', '-')}.ts"
            f.write_text(f'import type {{ I{o["kind"]} }} from "{o["module"]}";\n'
                         f'export const object: I{o["kind"]} = {json.dumps(o["object"], indent=1)};\n')
            files.append(str(f))
        # types: [] keeps stray @types packages out; skipLibCheck: the packages' declarations
        # are not ours to check, only our literals against them.
        (work / "tsconfig.json").write_text(json.dumps({
            "compilerOptions": {"noEmit": True, "strict": True, "skipLibCheck": True,
                                "module": "nodenext", "moduleResolution": "nodenext",
                                "target": "es2022", "types": [], "pretty": False},
            "files": [pathlib.Path(f).name for f in files]}))
        tsc = cache / "node_modules" / "typescript" / "bin" / "tsc"
        fields = subprocess.run(["node", str(tsc), "-p", str(work / "tsconfig.json")],
                                cwd=work, capture_output=True, text=True)
    errors = values.stderr.strip()
    if fields.returncode != 0:
        errors += "\n" + "\n".join("FAIL: " + line.replace(str(work) + "/", "")
                                    for line in (fields.stdout + fields.stderr).strip().splitlines())
    if values.returncode != 0 or fields.returncode != 0:
        print(errors.strip(), file=sys.stderr)
        fail("custom resources do not match their CRD schemas")
    print(f"  {len(objects)} custom resources match their pinned CRD schemas (values and fields): "
          + ", ".join(o["label"] for o in objects))


def env_names_before(env, index):
    return {e["name"] for e in env[:index]}


def check_database(core_src, crd_src):
    crds = [d for d in yaml.safe_load_all(open(crd_src)) if d]
    clusters = [d for d in crds if d["kind"] == "Cluster"]
    if not clusters:
        print("  no CloudNativePG Cluster in this build: the database is external (credential-anchor-db)")
        return
    if len(clusters) != 1:
        fail(f"expected one CloudNativePG Cluster, got {len(clusters)}")
    cluster = clusters[0]
    name, spec = cluster["metadata"]["name"], cluster["spec"]
    if spec.get("instances") != 3:
        fail(f"Cluster {name}: 3 instances (a primary and a quorum of two standbys)")
    sync = spec.get("postgresql", {}).get("synchronous") or {}
    want = {"method": "any", "number": 1, "dataDurability": "required"}
    if {k: sync.get(k) for k in want} != want:
        fail(f"Cluster {name}: postgresql.synchronous must be {want}, got {sync}")
    backup = spec.get("backup") or {}
    store = backup.get("barmanObjectStore") or {}
    if not (store.get("destinationPath") and store.get("wal") and backup.get("retentionPolicy")):
        fail(f"Cluster {name}: backup.barmanObjectStore (destinationPath, wal) and retentionPolicy: WAL archiving for PITR")
    scheduled = [d for d in crds if d["kind"] == "ScheduledBackup"]
    if not scheduled or any(d["spec"]["cluster"]["name"] != name for d in scheduled):
        fail(f"every ScheduledBackup must back up {name}, and there must be one")
    monitors = [d for d in crds if d["kind"] == "PodMonitor"
                and d["spec"]["selector"].get("matchLabels", {}).get("cnpg.io/cluster") == name]
    if not monitors:
        fail(f"no PodMonitor selects cnpg.io/cluster={name}")
    rw, n = f"{name}-rw", 0
    for d in yaml.safe_load_all(open(core_src)):
        if not d or d.get("kind") not in ("Deployment", "Job"):
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            env = c.get("env", [])
            for i, e in enumerate(env):
                if e["name"] != "APP__DATABASE__URL":
                    continue
                where = f"{d['metadata']['name']}/{c['name']}"
                url = e.get("value") or fail(f"{where}: APP__DATABASE__URL must be built on {rw}, not read from a Secret")
                parsed = urllib.parse.urlsplit(url)
                query = urllib.parse.parse_qs(parsed.query)
                if parsed.hostname != rw:
                    fail(f"{where}: APP__DATABASE__URL host {parsed.hostname}, want {rw}")
                if query.get("target_session_attrs") != ["read-write"]:
                    fail(f"{where}: APP__DATABASE__URL needs target_session_attrs=read-write")
                for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", url):
                    if ref not in env_names_before(env, i):
                        fail(f"{where}: $({ref}) in APP__DATABASE__URL is not defined before it (no expansion)")
                n += 1
    if n == 0:
        fail("no container reads APP__DATABASE__URL")
    print(f"  Cluster {name}: 3 instances, synchronous quorum, WAL archive; {len(scheduled)} ScheduledBackup, "
          f"PodMonitor; {n} containers connect to {rw} with target_session_attrs=read-write")


def check_policy(src):
    n = 0
    for d in yaml.safe_load_all(open(src)):
        if not d or d.get("kind") not in ("Deployment", "Job"):
            continue
        pod = d["spec"]["template"]["spec"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            fail(f"{d['metadata']['name']}: pod runAsNonRoot")
        if d["kind"] == "Deployment" and pod.get("terminationGracePeriodSeconds") != 30:
            fail(f"{d['metadata']['name']}: terminationGracePeriodSeconds must be 30 (services drain in 20 s)")
        for c in pod["containers"]:
            name = f"{d['metadata']['name']}/{c['name']}"
            sc = c.get("securityContext", {})
            want = {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
            for k, v in want.items():
                if sc.get(k) != v:
                    fail(f"{name}: securityContext.{k} must be {v}")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                fail(f"{name}: capabilities.drop must be [ALL]")
            if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                fail(f"{name}: seccompProfile RuntimeDefault")
            res = c.get("resources", {})
            if not (res.get("requests") and res.get("limits")):
                fail(f"{name}: resources requests and limits")
            if d["kind"] == "Deployment" and not (c.get("livenessProbe") and c.get("readinessProbe")):
                fail(f"{name}: liveness and readiness probes")
            if d["kind"] == "Deployment" and c["name"] != "solana-test-validator":
                if c["livenessProbe"]["httpGet"]["path"] != "/healthz" or c["readinessProbe"]["httpGet"]["path"] != "/readyz":
                    fail(f"{name}: probes must be /healthz and /readyz")
            n += 1
    print(f"  {n} containers: probes, resources, securityContext ok")


PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "le", "inf", "nan", "up",
}
HIST_SUFFIXES = ("_bucket", "_count", "_sum")


def exprs():
    alerts = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    for g in alerts["groups"]:
        for r in g["rules"]:
            yield "alerts.yml " + r["alert"], r["expr"]
    dash = json.loads((ROOT / "deploy/grafana/dashboard.json").read_text())
    for p in dash["panels"]:
        for t in p.get("targets", []):
            yield "dashboard.json " + p["title"], t["expr"]


def names_in(expr):
    e = re.sub(r'"[^"]*"', "", expr)             # strings
    e = re.sub(r"\{[^}]*\}", "", e)              # label matchers
    e = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", e)  # grouping labels
    e = re.sub(r"\[[^\]]*\]", "", e)             # range selectors
    out = set()
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS or re.fullmatch(r"\d.*", word):
            continue
        out.add(word)
    return out


def metric_names():
    sources = "\n".join(p.read_text() for p in (ROOT / "crates").rglob("*.rs"))
    registered = set(re.findall(r'"([a-z_:][a-z0-9_:]*)"', sources))
    used = {}
    for where, expr in exprs():
        for n in names_in(expr):
            used.setdefault(n, set()).add(where)
    missing = []
    for n in sorted(used):
        base = n
        if n not in registered:
            for s in HIST_SUFFIXES:
                if n.endswith(s) and n[: -len(s)] in registered:
                    base = n[: -len(s)]
        if base not in registered:
            missing.append(f"{n} (used by {', '.join(sorted(used[n]))})")
    if missing:
        fail("metrics used but not registered in crates/:\n  " + "\n  ".join(missing))
    print(f"  {len(used)} metric names used by alerts and dashboard, all registered in crates/: "
          + ", ".join(sorted(used)))


def dockerfile():
    import tomllib
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    text = (ROOT / "deploy/Dockerfile").read_text()
    stub_loop = re.search(r"for c in ([^;]+); do", text)
    stubbed = set(stub_loop.group(1).split()) if stub_loop else set()
    for m in members:
        if f"COPY {m}/Cargo.toml {m}/Cargo.toml" not in text:
            fail(f"deploy/Dockerfile does not copy {m}/Cargo.toml (dependency-cache layer)")
        if m.split("/")[-1] not in stubbed:
            fail(f"deploy/Dockerfile does not stub {m} (dependency-cache layer)")
    for needle in ("cargo build --release --locked --bins", "ARG RUST_IMAGE=rust:1.95-bookworm",
                   "ARG BASE=debian:bookworm-slim", "ARG BINARIES=builder",
                   "FROM ${RUST_IMAGE} AS builder", "FROM scratch AS runtime",
                   "ca-certificates", "USER 10001",
                   "target/release/issuer-api", "target/release/outbox-relay",
                   "target/release/reconciler", "target/release/credential-verify"):
        if needle not in text:
            fail(f"deploy/Dockerfile: missing {needle!r}")
    print(f"  Dockerfile covers the {len(members)} workspace members")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"split-crds": split_crds, "check-crds": check_crds, "check-policy": check_policy,
     "crd-schemas-install": crd_schemas_install, "check-crd-schemas": check_crd_schemas,
     "check-database": check_database, "metric-names": metric_names,
     "dockerfile": dockerfile}[cmd](*args)
