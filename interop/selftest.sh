#!/usr/bin/env bash
# Self-test of the interop verifiers, offline, on loopback only.
#   interop/selftest.sh [INSTALL_DIR]   (default: $(scripts/install-interop.sh))
# Serves a DID document (keys key-1, key-2 in assertionMethod; anchor-1 NOT in
# assertionMethod) with python3 -m http.server on 127.0.0.1:<free port>,
# signs sample VCs for that DID with the digitalbazaar libraries, and checks:
#   genuine + non-semantic variants  -> verified by JS AND Python
#   tamper.py variants + anchor-key signed VC -> rejected by JS AND Python
# and runs status-selftest.mjs (its own in-process server on another loopback
# port): check-status.mjs / Bitstring Status List format, verify-vc.mjs status
# checking (bit unset -> valid, set -> invalid, --skip-status -> valid either
# way) and verify_vc.py --skip-status (accepted) / without it (refused).
# Last line: "interop-selftest: N passed, M failed". Exit 0 iff M == 0.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:-}
if [ -z "$dir" ]; then
  dir=$("$here/../scripts/install-interop.sh" | tail -n1)
fi
PY="$dir/venv/bin/python"
work=$(mktemp -d "${TMPDIR:-/tmp}/interop-selftest.XXXXXX")
srv_pid=
cleanup() {
  if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
did="did:web:127.0.0.1%3A${port}:issuers:demo"
mkdir -p "$work/srv/issuers/demo" "$work/valid" "$work/invalid"
seed() { printf "$1%.0s" $(seq 32); }
sign() { node "$dir/sign-test-vc.mjs" --did "$did" "$@" 2>/dev/null; }

sample="$here/sample-ob3-unsigned.vc.json"
sign --key-id key-1 --created 2026-06-15T12:00:00Z --print-did-doc \
  "$sample" "$work/valid/genuine-key-1.vc.json" > "$work/k1.json"
sign --key-id key-2 --seed-hex "$(seed 08)" --print-did-doc \
  "$sample" "$work/valid/genuine-key-2.vc.json" > "$work/k2.json"
sign --key-id anchor-1 --seed-hex "$(seed 09)" --print-did-doc \
  "$sample" "$work/invalid/signed-by-anchor-key.vc.json" > "$work/a1.json"
# control characters / non-ASCII: checks RDFC-1.0 N-Quads escaping agrees
python3 - "$sample" "$work/ctl-unsigned.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d['name'] = 'tab\t bs\b ff\f cr\r nl\n c1\u0001 del\u007f q" bs\\ \u00e9 \u6f22 \U0001F600'
json.dump(d, open(sys.argv[2], 'w'))
PYEOF
sign --key-id key-1 "$work/ctl-unsigned.json" "$work/valid/genuine-control-chars.vc.json"
python3 - "$work" "$did" <<'PYEOF'
import json, sys
work, did = sys.argv[1:]
vms = []
for k in ('k1', 'k2', 'a1'):
    vms += json.load(open('%s/%s.json' % (work, k)))['verificationMethod']
doc = {'@context': ['https://www.w3.org/ns/did/v1',
                    'https://w3id.org/security/multikey/v1'],
       'id': did, 'verificationMethod': vms,
       'assertionMethod': [did + '#key-1', did + '#key-2']}
json.dump(doc, open(work + '/srv/issuers/demo/did.json', 'w'), indent=2)
PYEOF
python3 "$dir/tamper.py" "$work/valid/genuine-key-1.vc.json" "$work/invalid" \
  --equivalent-dir "$work/valid/equivalent" 2>/dev/null

(cd "$work/srv" && exec python3 -m http.server "$port" --bind 127.0.0.1 \
  >"$work/http.log" 2>&1) &
srv_pid=$!
for _ in $(seq 50); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/issuers/demo/did.json', timeout=1)" 2>/dev/null; then break; fi
  sleep 0.1
done

valid=("$work"/valid/*.vc.json "$work"/valid/equivalent/*.vc.json)
invalid=("$work"/invalid/*.vc.json)
passed=0; failed=0
run() { # name, cmd...
  local name=$1; shift
  local rc=0
  "$@" > "$work/out.jsonl" || rc=$?
  local p f
  p=$(grep -c '"ok": *true' "$work/out.jsonl" || true)
  f=$(grep -c '"ok": *false' "$work/out.jsonl" || true)
  # a crash / non-zero exit without any "ok": false line is a failure too
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1; echo "== $name: exit $rc without a failed line"
  fi
  passed=$((passed + p)); failed=$((failed + f))
  echo "== $name: $p ok, $f NOT ok"
  grep '"ok": *false' "$work/out.jsonl" || true
}
run "JS valid" node "$dir/verify-vc.mjs" --expect valid "${valid[@]}"
run "JS invalid" node "$dir/verify-vc.mjs" --expect invalid "${invalid[@]}"
run "Python valid" "$PY" "$dir/verify_vc.py" --contexts "$dir/contexts" \
  --expect valid "${valid[@]}"
run "Python invalid" "$PY" "$dir/verify_vc.py" --contexts "$dir/contexts" \
  --expect invalid "${invalid[@]}"
# Bitstring Status List (check-status.mjs, verify-vc.mjs status checking,
# verify_vc.py --skip-status) against its own loopback server
run "status (status-selftest.mjs)" node "$dir/status-selftest.mjs" \
  --python "$PY" --contexts "$dir/contexts"
echo "interop-selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
