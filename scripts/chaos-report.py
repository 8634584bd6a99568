#!/usr/bin/env python3
"""Turns the crash suite's JSON figures (CRASH_REPORT_DIR) into the table between the
chaos markers of docs/reliability.md, so the document shows what the last `make chaos` run
measured rather than what someone typed."""
import datetime
import json
import pathlib
import sys

report_dir = pathlib.Path(sys.argv[1])
doc = pathlib.Path(sys.argv[2])
# Order: the process, then single mode before Merkle, then the failpoint. Figures of an older
# suite have no scenario (single mode, one relay) and planned one kill per iteration.
ORDER = {"outbox-relay": 0, "issuer-api": 1, "postgres": 2}
figures = [json.loads(p.read_text()) for p in sorted(report_dir.glob("*.json"))]
figures.sort(key=lambda f: (ORDER.get(f["process"], 9), f.get("scenario", ""), f["failpoint"]))
rows = []
for f in figures:
    planned = f.get("kills_planned", f["iterations"])
    held = (
        f["lost"] == 0
        and f["duplicated"] == 0
        and f["anchored_once"] == f["acknowledged"]
        and f["kills_observed"] == planned
    )
    # Several failpoints of one run (rotating, or two relays at once) each in backticks.
    points = ", ".join(f"`{p.strip()}`" for p in f["failpoint"].split(","))
    rows.append(
        f"| `{f['process']}` | {points} | {f.get('scenario', 'single mode')} "
        f"| {f['kills_observed']} of {planned}{' restarts' if f['process'] == 'postgres' else ''} "
        f"| {f['acknowledged']:,} | {f['anchored_once']:,} | {f['lost']} | {f['duplicated']} "
        f"| {f['seconds']:.0f} s | {'held' if held else '**FAILED**'} |"
    )
if not rows:
    sys.exit(f"no crash-suite figures in {report_dir}")
table = "\n".join(
    [
        f"Last `make chaos` run: {datetime.date.today().isoformat()} (SIGKILL raised at the failpoint; "
        "counts read from the chain with `getTransaction`, fee payer checked, after every stored "
        "transaction finalized or expired).",
        "",
        "| process | failpoint | scenario | kills | acknowledged | anchored exactly once (chain) | lost | duplicated | time | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
)
text = doc.read_text()
begin, end = "<!-- chaos:begin -->", "<!-- chaos:end -->"
if begin not in text or end not in text:
    sys.exit(f"{doc} has no {begin} ... {end} markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
doc.write_text(f"{head}{begin}\n{table}\n{end}{tail}")
print(table)
