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
  check-network CORE CRD           every pod that talks to the database or the RPC has its egress
                                   restricted and allowed there (and DNS); with a CloudNativePG
                                   Cluster in the build, 5432 only to the cluster's pods and 443
                                   only to ipBlocks; the ServiceMonitor scrapes only metrics ports
                                   open to Prometheus alone. Self-tests first
  check-budget CORE CRD BUILD      database connections at the HPA maximum (pools, relay LISTEN,
                                   migration Job, superuser_reserved_connections) against the
                                   build's PostgreSQL max_connections. Self-test first
  dockerfile                       deploy/Dockerfile copies and stubs every workspace member,
                                   builds with --locked and ships the three binaries as uid 10001
  metric-names                     every metric used in alerts.yml and dashboard.json must be
                                   registered in crates/ (no dead alert or panel)
"""
import hashlib
import ipaddress
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


# ---------------------------------------------------------------------------------------------
# Egress and the database connection budget of a build. Both raise CheckFailed (not fail()) so
# that their self-tests can feed them a bad synthetic build and assert that they refuse it.

class CheckFailed(Exception):
    pass


def selects(selector, labels):
    """A LabelSelector (matchLabels, matchExpressions) against a set of labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        k, op, values = e["key"], e["operator"], e.get("values") or []
        matches = {"In": labels.get(k) in values, "NotIn": labels.get(k) not in values,
                   "Exists": k in labels, "DoesNotExist": k not in labels}[op]
        if not matches:
            return False
    return True


def requires_label(selector, key, value):
    """Whether a selector only ever matches pods labelled key=value (not merely some of them)."""
    if (selector.get("matchLabels") or {}).get(key) == value:
        return True
    return any(e["key"] == key and e["operator"] == "In" and e.get("values") == [value]
               for e in selector.get("matchExpressions") or [])


def workloads(docs):
    """(object, pod spec, pod labels) of every Deployment, StatefulSet and Job."""
    for d in docs:
        if d.get("kind") in ("Deployment", "StatefulSet", "Job"):
            t = d["spec"]["template"]
            yield d, t["spec"], t.get("metadata", {}).get("labels", {})


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def service_config(d, pod, container, configmaps):
    """The service's TOML (APP_CONFIG_FILE on a mounted ConfigMap), {} when it has none."""
    import tomllib
    path = env_of(container).get("APP_CONFIG_FILE")
    if not path:
        return {}
    where = f"{d['kind']} {d['metadata']['name']}"
    for m in container.get("volumeMounts", []):
        mount = m["mountPath"].rstrip("/") + "/"
        if not path.startswith(mount):
            continue
        vol = next((v for v in pod.get("volumes", []) if v["name"] == m["name"]), {})
        cm, key = configmaps.get((vol.get("configMap") or {}).get("name")), path[len(mount):]
        key = next((i["key"] for i in vol["configMap"].get("items", []) if i["path"] == key), key)
        if not cm or key not in (cm.get("data") or {}):
            raise CheckFailed(f"{where}: APP_CONFIG_FILE {path}: no key {key} in the mounted ConfigMap")
        return tomllib.loads(cm["data"][key])
    raise CheckFailed(f"{where}: APP_CONFIG_FILE {path} is on no mounted ConfigMap")


def setting(cfg, env, section, key, default=None):
    """A service setting as the service sees it: APP__SECTION__KEY over the TOML over the default."""
    value = env.get(f"APP__{section.upper()}__{key.upper()}")
    if value is not None:
        return value
    return (cfg.get(section) or {}).get(key, default)


def url_port(url, default):
    parsed = urllib.parse.urlsplit(url)
    return parsed.port or {"https": 443, "http": 80}.get(parsed.scheme, default)


def rule_allows(rule, port, protocol="TCP"):
    for p in rule.get("ports") or [{}]:
        if p.get("protocol", "TCP") != protocol:
            continue
        want = p.get("port")
        # A named port is resolved on the peer pod: it may be any number.
        if want is None or isinstance(want, str) or want <= port <= p.get("endPort", want):
            return True
    return False


def cluster_of(crds):
    clusters = [d for d in crds if d.get("kind") == "Cluster"]
    if len(clusters) > 1:
        raise CheckFailed(f"expected at most one CloudNativePG Cluster, got {len(clusters)}")
    return clusters[0] if clusters else None


DOC_CIDRS = ("192.0.2.", "198.51.100.", "203.0.113.")   # RFC 5737: placeholders, route nowhere


def network(core, crds):
    """Egress of every pod that talks to the database or the RPC, and the metrics ports'
    ingress. Returns report lines; raises CheckFailed."""
    policies = [d for d in core if d.get("kind") == "NetworkPolicy"]
    configmaps = {d["metadata"]["name"]: d for d in core if d.get("kind") == "ConfigMap"}
    cluster = cluster_of(crds)
    cname = cluster and cluster["metadata"]["name"]
    out, placeholders = [], set()
    for d, pod, labels in workloads(core):
        for c in pod["containers"]:
            env, where = env_of(c), f"{d['kind']} {d['metadata']['name']}"
            if "APP__DATABASE__URL" not in env:
                continue
            cfg = service_config(d, pod, c, configmaps)
            needs = {"database": [url_port(env["APP__DATABASE__URL"] or "", 5432)]}   # from a Secret: 5432
            # The migration Job reads issuer-api's config but only migrates: no RPC.
            if d["kind"] != "Job":
                urls = [setting(cfg, env, "chain", "rpc_url")]
                fallback = setting(cfg, env, "chain", "fallback_rpc_urls", [])
                urls += fallback.split(",") if isinstance(fallback, str) else fallback
                needs["RPC"] = sorted({url_port(u.strip(), 443) for u in urls if u and u.strip()})
            isolating = [p for p in policies if selects(p["spec"]["podSelector"], labels)
                         and "Egress" in p["spec"].get("policyTypes", ["Ingress"] + (["Egress"] if "egress" in p["spec"] else []))]
            if not isolating:
                raise CheckFailed(f"{where}: no NetworkPolicy restricts its egress (it talks to the {' and '.join(needs)})")
            rules = [r for p in isolating for r in p["spec"].get("egress") or []]
            for what, ports in [*needs.items(), ("DNS", [53])]:
                for port in ports:
                    if not any(rule_allows(r, port, "UDP" if what == "DNS" else "TCP") for r in rules):
                        raise CheckFailed(f"{where}: its egress policies ({', '.join(p['metadata']['name'] for p in isolating)}) do not allow the {what} on port {port}")
            if cluster:
                for r in rules:
                    peers, rule = r.get("to") or [], json.dumps(r)
                    if rule_allows(r, 5432) and not (peers and all(set(p) == {"podSelector"} and requires_label(p["podSelector"], "cnpg.io/cluster", cname) for p in peers)):
                        raise CheckFailed(f"{where}: egress rule {rule} allows 5432 beyond the pods of Cluster {cname} (every peer must be a podSelector on cnpg.io/cluster={cname})")
                    # A provider's published range is at most a /8 (IPv4) or /16 (IPv6); anything
                    # wider (0.0.0.0/1 + 128.0.0.0/1 is "everywhere") is refused on any port.
                    wide = [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p
                            and ipaddress.ip_network(p["ipBlock"]["cidr"], strict=False).prefixlen
                            < (8 if ipaddress.ip_network(p["ipBlock"]["cidr"], strict=False).version == 4 else 16)]
                    if wide:
                        raise CheckFailed(f"{where}: egress rule {rule} reaches {', '.join(wide)}: wider than any provider's range (/8, IPv6 /16)")
                    if rule_allows(r, 443):
                        if not (peers and all(set(p) == {"ipBlock"} for p in peers)):
                            raise CheckFailed(f"{where}: egress rule {rule} allows 443 to more than ipBlocks (the RPC providers' ranges)")
                        placeholders |= {p["ipBlock"]["cidr"] for p in peers if p["ipBlock"]["cidr"].startswith(DOC_CIDRS)}
                    if not peers:
                        raise CheckFailed(f"{where}: egress rule {rule} allows any address; with the CloudNativePG Cluster {cname} in the build every rule must name its peers")
            out.append(f"{where}: egress restricted by {', '.join(p['metadata']['name'] for p in isolating)}; "
                       + ", ".join(f"{k} {'/'.join(map(str, v))}" for k, v in needs.items()) + ", DNS 53 allowed")
    if not out:
        raise CheckFailed("no workload reads APP__DATABASE__URL: nothing to check")
    if cluster:
        out.append(f"every egress rule names its peers: 5432 only to pods of cnpg.io/cluster={cname}, 443 only to ipBlocks")
        if placeholders:
            out.append(f"NOTE: RPC ipBlocks {', '.join(sorted(placeholders))} are RFC 5737 placeholders: replace them with your RPC providers' ranges before applying")
    else:
        out.append("no CloudNativePG Cluster: egress destinations not checked (an external database and RPC are addressed by name; NetworkPolicy restricts them by port only)")
    # Metrics: the ServiceMonitor scrapes only ports that Prometheus alone may reach.
    services = [d for d in core if d.get("kind") == "Service"]
    for sm in (d for d in crds if d.get("kind") == "ServiceMonitor"):
        scraped = {e["port"] for e in sm["spec"]["endpoints"]}
        for svc in (s for s in services if selects(sm["spec"]["selector"], s["metadata"].get("labels", {}))):
            name = svc["metadata"]["name"]
            ports = [p for p in svc["spec"]["ports"] if p.get("name") in scraped]
            if not ports:
                raise CheckFailed(f"Service {name}: no port named {' or '.join(sorted(scraped))}: the ServiceMonitor would not scrape it")
            for sp in ports:
                target = sp.get("targetPort", sp["port"])
                for d, pod, labels in workloads(core):
                    if not selects({"matchLabels": svc["spec"]["selector"]}, labels):
                        continue
                    for c in pod["containers"]:
                        cport = next((p["containerPort"] for p in c.get("ports", []) if target in (p.get("name"), p["containerPort"])), None)
                        if cport is None:
                            raise CheckFailed(f"Service {name}: targetPort {target} is no port of {d['metadata']['name']}")
                        env, cfg = env_of(c), service_config(d, pod, c, configmaps)
                        configured = setting(cfg, env, "http", "metrics_port") or setting(cfg, env, "probes", "port")
                        if configured is not None and int(configured) != cport:
                            raise CheckFailed(f"{d['metadata']['name']}: /metrics is on {configured} (http.metrics_port / probes.port), but the ServiceMonitor scrapes {cport} (Service {name}, port {sp['name']})")
                        ingress = [r for p in policies if selects(p["spec"]["podSelector"], labels)
                                   for r in p["spec"].get("ingress") or [] if rule_allows(r, cport)]
                        if not ingress or any(not r.get("from") for r in ingress):
                            raise CheckFailed(f"{d['metadata']['name']}: scraped port {cport} must be open to Prometheus only (ingress rules with `from`), got {json.dumps(ingress)}")
                        peers = sorted({json.dumps(f, sort_keys=True) for r in ingress for f in r["from"]})
                        out.append(f"ServiceMonitor scrapes {name}:{sp['name']} ({cport}), open only to {', '.join(peers)}")
    return out


def pool_default():
    """store's default pool size (DatabaseSettings::max_connections), from its source."""
    src = (ROOT / "crates/store/src/lib.rs").read_text()
    m = re.search(r"fn default_max_connections\(\) -> usize \{\s*(\d+)\s*\}", src)
    if not m:
        raise CheckFailed("crates/store/src/lib.rs: default_max_connections() not found: update pool_default()")
    return int(m.group(1))


def api_shared_pool():
    """issuer-api's pool outside its workers (SHARED_POOL_CONNECTIONS), from its source."""
    src = (ROOT / "crates/issuer-api/src/startup.rs").read_text()
    m = re.search(r"pub const SHARED_POOL_CONNECTIONS: usize = (\d+);", src)
    if not m:
        raise CheckFailed("crates/issuer-api/src/startup.rs: SHARED_POOL_CONNECTIONS not found: update api_shared_pool()")
    return int(m.group(1))


def api_public_pool():
    """issuer-api's public-listener connections by default (public.max_connections), from its source."""
    src = (ROOT / "crates/issuer-api/src/public.rs").read_text()
    m = re.search(r"fn default_public_connections\(\) -> usize \{\s*(\d+)\s*\}", src)
    if not m:
        raise CheckFailed("crates/issuer-api/src/public.rs: default_public_connections() not found: update api_public_pool()")
    return int(m.group(1))


def budget(core, crds, build):
    """Database connections at the HPA maximum against PostgreSQL's max_connections.
    Returns (report line, total); raises CheckFailed when over."""
    configmaps = {d["metadata"]["name"]: d for d in core if d.get("kind") == "ConfigMap"}
    hpa_max = {(h["spec"]["scaleTargetRef"]["kind"], h["spec"]["scaleTargetRef"]["name"]): h["spec"]["maxReplicas"]
               for h in core if h.get("kind") == "HorizontalPodAutoscaler"}
    terms, total = [], 0
    for d, pod, _ in workloads(core):
        for c in pod["containers"]:
            env = env_of(c)
            if "APP__DATABASE__URL" not in env:
                continue
            cfg, name = service_config(d, pod, c, configmaps), d["metadata"]["name"]
            pool = int(setting(cfg, env, "database", "max_connections", pool_default()))
            if d["kind"] == "Job":   # run once per apply, one pod at a time
                terms.append((f"{pool}", f"{name} pool")); total += pool
                continue
            replicas = hpa_max.get((d["kind"], name), d["spec"].get("replicas", 1))
            # The relay's LISTEN connection is its own, outside the pool (store::listener).
            listen = (c.get("command") or [""])[0].endswith("outbox-relay") \
                and str(setting(cfg, env, "relay", "listen", True)).lower() == "true"
            # The API's workers share `max_connections`; its shared pool (publisher) is extra
            # (issuer-api startup.rs SHARED_POOL_CONNECTIONS).
            api = (c.get("command") or [""])[0].endswith("issuer-api")
            shared = api_shared_pool() if api else 0
            # With `public.port` set, the public listener's workers have pools of their own.
            # Each public worker opens max(1, max_connections / workers) (startup.rs), so more
            # workers than connections open one each.
            public = 0
            if api and setting(cfg, env, "public", "port") is not None:
                conns = int(setting(cfg, env, "public", "max_connections", api_public_pool()))
                workers = max(1, int(setting(cfg, env, "public", "workers", 1)))
                public = workers * max(1, conns // workers)
            extra = int(listen) + shared + public
            per = f"({pool}+{extra})" if extra else f"{pool}"
            terms.append((f"{replicas}×{per}", name + (" at HPA max" if (d["kind"], name) in hpa_max else "")
                          + (" incl. LISTEN" if listen else "") + (" incl. shared pool" if shared else "")
                          + (" and public listener" if public else "")))
            total += replicas * (pool + extra)
    cluster = cluster_of(crds)
    if cluster:
        params = cluster["spec"].get("postgresql", {}).get("parameters", {})
        where = f"Cluster {cluster['metadata']['name']}"
    else:
        pg = [d for d, pod, _ in workloads(core) if d["kind"] != "Job" and any(
              re.match(r"postgres", c["image"].rsplit("/", 1)[-1]) for c in pod["containers"])]
        if not pg:
            return (f"{build}: {' + '.join(t for t, _ in terms)} = {total} connections at the HPA maximum; "
                    "budget not checked: no CloudNativePG Cluster and no postgres workload in this build "
                    "(the database is external, its max_connections is not known here)"), total
        args = " ".join(sum((c.get("command", []) + c.get("args", []) for c in pg[0]["spec"]["template"]["spec"]["containers"]), []))
        params = dict(re.findall(r"-c\s*(\w+)=(\S+)", args))
        where = f"{pg[0]['kind']} {pg[0]['metadata']['name']}"
    limit = int(params.get("max_connections", 100))
    reserved = int(params.get("superuser_reserved_connections", 3))
    terms.append((f"{reserved}", "superuser_reserved_connections"))
    total += reserved
    line = (f"{build}: {' + '.join(t for t, _ in terms)} = {total} of {limit} (max_connections of {where}; "
            + ", ".join(f"{t} {w}" for t, w in terms) + ")")
    if total > limit:
        raise CheckFailed(f"connection budget exceeded: {line}")
    return line, total


def synthetic_build(max_connections, egress):
    """A small build for the self-tests: an API (HPA 2..5, pool 10 from its ConfigMap), a relay
    (2 replicas, default pool, LISTEN), a migration Job (default pool), one egress policy for
    all of them and a Cluster."""
    pod = lambda name, cmd, mounts: {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": name, "image": "x", "command": [cmd],
                                 "env": [{"name": "APP__DATABASE__URL", "value": "postgres://db-rw:5432/x"}]
                                 + ([{"name": "APP_CONFIG_FILE", "value": "/etc/x/api.toml"}] if mounts else []),
                                 "volumeMounts": [{"name": "config", "mountPath": "/etc/x"}] if mounts else []}],
                 "volumes": [{"name": "config", "configMap": {"name": "api"}}] if mounts else []}}
    core = [
        {"kind": "ConfigMap", "metadata": {"name": "api"}, "data": {"api.toml": "[database]\nmax_connections = 10\n"}},
        {"kind": "Deployment", "metadata": {"name": "api"}, "spec": {"replicas": 2, "template": pod("api", "api", True)}},
        {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "api"},
         "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "api"}, "maxReplicas": 5}},
        {"kind": "Deployment", "metadata": {"name": "relay"}, "spec": {"replicas": 2, "template": pod("relay", "/bin/outbox-relay", False)}},
        {"kind": "Job", "metadata": {"name": "migrate"}, "spec": {"template": pod("migrate", "api", False)}},
        {"kind": "NetworkPolicy", "metadata": {"name": "all"},
         "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress}},
    ]
    crds = [{"kind": "Cluster", "metadata": {"name": "pg"},
             "spec": {"postgresql": {"parameters": {"max_connections": str(max_connections)}}}}]
    return core, crds


def expect_failure(what, check, *args):
    try:
        check(*args)
    except CheckFailed:
        return
    fail(f"self-test: {what} passed the check: the check is broken")


def check_budget(core_src, crd_src, build):
    # Self-test: 5×10 + 2×(16+1) + 16 + 3 = 103 exactly fits 103 and exceeds 102.
    d = pool_default()
    want = 5 * 10 + 2 * (d + 1) + d + 3
    try:
        _, total = budget(*synthetic_build(want, []), "self-test")
    except CheckFailed as e:
        fail(f"self-test: a build at exactly its budget failed: {e}")
    if total != want:
        fail(f"self-test: synthetic build sums to {total}, want {want}")
    expect_failure(f"a build of {want} connections against max_connections {want - 1}",
                   budget, *synthetic_build(want - 1, []), "self-test")
    print(f"  self-test: a synthetic build of {want} connections fits max_connections {want}, fails at {want - 1}")
    try:
        line, _ = budget([d for d in yaml.safe_load_all(open(core_src)) if d],
                         [d for d in yaml.safe_load_all(open(crd_src)) if d], build)
    except CheckFailed as e:
        fail(str(e))
    print(f"  {line}")


def check_network(core_src, crd_src):
    dns = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                   "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
           "ports": [{"port": 53, "protocol": "UDP"}]}
    db = {"to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "pg"}}}], "ports": [{"port": 5432}]}
    rpc = {"to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}], "ports": [{"port": 443}]}
    try:
        network(*synthetic_build(1000, [db, rpc, dns]))
    except CheckFailed as e:
        fail(f"self-test: a correctly restricted synthetic build failed: {e}")
    for what, egress in [("5432 to any pod", [{**db, "to": [{"podSelector": {}}]}, rpc, dns]),
                         ("5432 to anywhere", [{"ports": [{"port": 5432}]}, rpc, dns]),
                         ("443 to anywhere", [db, {"ports": [{"port": 443}]}, dns]),
                         ("443 to 0.0.0.0/0", [db, {**rpc, "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}, dns]),
                         ("443 to two halves of everything", [db, {**rpc, "to": [{"ipBlock": {"cidr": "0.0.0.0/1"}}, {"ipBlock": {"cidr": "128.0.0.0/1"}}]}, dns]),
                         ("no egress to the database", [rpc, dns])]:
        expect_failure(f"a synthetic build with {what}", network, *synthetic_build(1000, egress))
    print("  self-test: synthetic policies with 5432 to any pod or anywhere, 443 to anywhere, no database egress: all refused")
    try:
        lines = network([d for d in yaml.safe_load_all(open(core_src)) if d],
                        [d for d in yaml.safe_load_all(open(crd_src)) if d])
    except CheckFailed as e:
        fail(str(e))
    print("\n".join(f"  {line}" for line in lines))


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
     "check-database": check_database, "check-network": check_network,
     "check-budget": check_budget, "metric-names": metric_names,
     "dockerfile": dockerfile}[cmd](*args)
