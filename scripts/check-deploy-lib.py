#!/usr/bin/env python3
"""Helpers of scripts/check-deploy.sh.

  split-crds IN CORE_OUT CRD_OUT   split a kustomize build: core kinds (validated by
                                   kubernetes-validate) vs Prometheus Operator CRD kinds
                                   (ServiceMonitor, PrometheusRule: no schema offline)
  check-crds CRD_FILE RULES_OUT    structural check of the CRD objects; writes the
                                   PrometheusRule groups as a plain rules file for promtool
  check-policy CORE_FILE           every container: probes, resources, hardened securityContext
  dockerfile                       deploy/Dockerfile copies and stubs every workspace member,
                                   builds with --locked and ships the three binaries as uid 10001
  metric-names                     every metric used in alerts.yml and dashboard.json must be
                                   registered in crates/ (no dead alert or panel)
"""
import json
import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}


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
    kinds = sorted(d["kind"] for d in docs)
    if kinds != ["PrometheusRule", "ServiceMonitor"]:
        fail(f"expected one PrometheusRule and one ServiceMonitor, got {kinds}")
    for d in docs:
        if not d.get("metadata", {}).get("name") or d["metadata"].get("namespace") != "credential-anchor":
            fail(f"{d['kind']}: metadata.name and namespace credential-anchor required")
        spec = d.get("spec") or fail(f"{d['kind']}: no spec")
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
    for needle in ("cargo build --release --locked --bins", "FROM rust:1.95-bookworm",
                   "FROM debian:bookworm-slim", "ca-certificates", "USER 10001",
                   "target/release/issuer-api", "target/release/outbox-relay",
                   "target/release/reconciler"):
        if needle not in text:
            fail(f"deploy/Dockerfile: missing {needle!r}")
    print(f"  Dockerfile covers the {len(members)} workspace members")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"split-crds": split_crds, "check-crds": check_crds, "check-policy": check_policy,
     "metric-names": metric_names, "dockerfile": dockerfile}[cmd](*args)
