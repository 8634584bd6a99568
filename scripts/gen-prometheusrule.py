#!/usr/bin/env python3
"""Render deploy/prometheus/alerts.yml into k8s/base/prometheusrule.yaml (Prometheus Operator).

  python3 scripts/gen-prometheusrule.py          # write the file
  python3 scripts/gen-prometheusrule.py --check  # exit 1 if the file differs from alerts.yml
"""
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "deploy/prometheus/alerts.yml"
DST = ROOT / "k8s/base/prometheusrule.yaml"

HEADER = (
    "# GENERATED from deploy/prometheus/alerts.yml by scripts/gen-prometheusrule.py - do not edit.\n"
)


def render() -> str:
    rules = yaml.safe_load(SRC.read_text())
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "credential-anchor",
            "labels": {"app.kubernetes.io/part-of": "credential-anchor"},
        },
        "spec": {"groups": rules["groups"]},
    }
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=1000)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        current = DST.read_text() if DST.exists() else ""
        if current != text:
            print(f"{DST.relative_to(ROOT)} differs from {SRC.relative_to(ROOT)}; "
                  "run: python3 scripts/gen-prometheusrule.py", file=sys.stderr)
            return 1
        # Semantic check too: same groups as alerts.yml.
        assert yaml.safe_load(current.split("\n", 1)[1])["spec"]["groups"] == \
            yaml.safe_load(SRC.read_text())["groups"]
        print("PrometheusRule matches alerts.yml")
        return 0
    DST.write_text(text)
    print(f"wrote {DST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
