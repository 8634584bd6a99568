#!/usr/bin/env python3
"""The crate dependency direction of ARCHITECTURE.md, checked (`make lint`).

Binaries -> store / chain -> domain. `domain` depends on no workspace crate; `store` and
`chain` not on each other nor on any binary; the offline verifier only on `domain`, `chain`
and `vc` (it must work after the service is gone; `vc` does no I/O). Only normal dependencies are checked: a
test may link anything. Each allowed edge is listed here, so a new one is a visible decision.
"""
import json
import subprocess
import sys

ALLOWED = {
    "domain": set(),
    "crashpoint": set(),
    "service-shell": set(),
    "testkit": set(),
    "vc": {"domain"},
    "chain": {"domain"},
    "store": {"domain", "crashpoint"},
    "verifier": {"domain", "chain", "vc"},
    "provisioning": {"domain", "store"},
    "issuer-api": {"domain", "store", "chain", "service-shell", "crashpoint", "provisioning", "vc"},
    "outbox-relay": {"domain", "store", "chain", "service-shell", "crashpoint"},
    "reconciler": {"domain", "store", "chain", "service-shell"},
    "issue-bulk": {"domain"},
    "bench": {"domain", "vc", "store", "chain", "testkit", "provisioning"},
    # Dev-only: the test stack links every service; only test targets may depend on it.
    "stack": {
        "domain", "store", "chain", "testkit", "provisioning",
        "issuer-api", "outbox-relay", "reconciler", "verifier",
    },
}

meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
workspace = {p["name"] for p in meta["packages"]}
errors = []
for package in meta["packages"]:
    name = package["name"]
    if name not in ALLOWED:
        errors.append(f"{name}: not in scripts/check-crate-deps.py; add its allowed dependencies")
        continue
    used = {
        d["name"]
        for d in package["dependencies"]
        if d["name"] in workspace and d.get("kind") is None
    }
    for dep in sorted(used - ALLOWED[name]):
        errors.append(f"{name} -> {dep}: against the dependency direction (ARCHITECTURE.md)")
    if "stack" in used or "testkit" in used and name not in ("bench", "stack"):
        errors.append(f"{name} -> test-only crate in its normal dependencies")
for e in errors:
    print(f"check-crate-deps: {e}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"check-crate-deps: {len(workspace)} crates follow the dependency direction")
