#!/usr/bin/env bash
# schemathesis (PyPI) against the running issuer-api's own /openapi.json (issue #9, item 7).
# Starts a throw-away PostgreSQL + solana-test-validator (localnet), the API and the relay,
# issues one credential so reads have something to find, then lets schemathesis generate
# requests for every documented operation (valid and invalid) with the checks:
#   not_a_server_error, status_code_conformance, content_type_conformance,
#   response_headers_conformance, response_schema_conformance.
# The verdict is schemathesis' own exit code; its JUnit report lands in $OUT.
# Usage: bash scripts/schemathesis.sh   (ST_MAX_EXAMPLES, default 30; SKIP_BUILD=1)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/stack.sh
source scripts/lib/stack.sh
CACHE_DIR="${CACHE_DIR:-$HOME/.cache/credential-anchor}"
VENV="$CACHE_DIR/tools/schemathesis-venv"
ST_VERSION="${ST_VERSION:-4.32.5}"
OUT="${OUT:-$CACHE_DIR/schemathesis}"
say() { printf '\n== %s\n' "$*"; }

if [[ ! -x "$VENV/bin/st" ]] || [[ "$("$VENV/bin/st" --version 2>/dev/null)" != *"$ST_VERSION"* ]]; then
  say "installing schemathesis $ST_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$ST_VERSION"
fi
[[ -n "${SKIP_BUILD:-}" ]] || cargo build --bins -q

say "PostgreSQL + solana-test-validator + issuer-api and outbox-relay (localnet up --services)"
# Thousands of generated requests in a minute: the per-key limit would answer most with 429
# (inherited by the services localnet starts).
export APP__HTTP__RATE_LIMIT_PER_SECOND=0 APP__PUBLIC__VERIFY_PER_IP_PER_SECOND=0 APP__PUBLIC__VERIFY_MAX_IN_FLIGHT_PER_IP=16
stack_up --no-reconciler --issuer-id st-university --issuer-name "Schemathesis University"
API="http://127.0.0.1:$API_PORT"
curl -fsS -X POST "$API/v1/credentials" -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
  -d '{"recipient_id":"student-1","issued_at":"2026-06-30T12:00:00Z","serial":"ST-1","credential_type":"diploma","title":"BSc","file_base64":"JVBERi0xLjcK"}' >/dev/null

say "schemathesis against $API/openapi.json"
mkdir -p "$OUT"
set +e
"$VENV/bin/st" run "$API/openapi.json" \
  -H "Authorization: Bearer $API_KEY" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "${ST_MAX_EXAMPLES:-30}" --seed "${ST_SEED:-20261123}" \
  --workers 2 --request-timeout 20 --no-color --generation-database none \
  --report junit --report-junit-path "$OUT/junit.xml" 2>&1 | tee "$OUT/output.txt"
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -ne 0 ]]; then
  echo "schemathesis found failures (exit $rc); API log tail:"; tail -20 "$LOG_DIR/issuer-api.log"
fi
exit "$rc"
