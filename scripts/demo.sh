#!/usr/bin/env bash
# make demo: start a throw-away PostgreSQL and local Solana validator, run the services,
# bootstrap an issuer, issue a sample diploma, follow it to the chain and print the proof.
# Everything is stopped and deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${CARGO_TARGET_DIR:=$HOME/.cache/credential-anchor/target}"
export CARGO_TARGET_DIR
BIN="$CARGO_TARGET_DIR/debug"
WORK="$(mktemp -d /tmp/credential-demo.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {'d': d}))" "$1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

say "building the services"
cargo build --bins -q

say "starting PostgreSQL and solana-test-validator"
"$BIN/localnet" up --validator "${DEMO_VALIDATOR:-required}" --env-file "$WORK/env" 2>"$WORK/localnet.log" &
PIDS+=($!)
for _ in $(seq 1 120); do [[ -s "$WORK/env" ]] && break; sleep 1; done
[[ -s "$WORK/env" ]] || { cat "$WORK/localnet.log"; echo "localnet did not start"; exit 1; }
# shellcheck disable=SC1091
source "$WORK/env"

API_PORT="$(free_port)"
export APP__DATABASE__URL="$DATABASE_URL"
export APP__SIGNING__MASTER_KEY="$("$BIN/issuer-api" admin new-master-key)"
export APP__HTTP__PORT="$API_PORT"
export APP__HTTP__HOST="127.0.0.1"
export APP__LOG__FILTER="warn"
export APP__EXPLORER__CUSTOM_RPC_URL="${SOLANA_RPC_URL:-}"

ANCHOR_ARGS=()
if [[ -n "${SOLANA_RPC_URL:-}" && -x "$BIN/outbox-relay" ]] && "$BIN/outbox-relay" --help 2>/dev/null | grep -q keygen; then
  "$BIN/outbox-relay" keygen --out "$WORK/anchor.json" >/dev/null
  ANCHOR_PUBKEY="$("$BIN/outbox-relay" pubkey --keypair "$WORK/anchor.json")"
  ANCHOR_ARGS=(--anchor-pubkey "$ANCHOR_PUBKEY")
fi

say "bootstrapping an issuer (the API key is printed once)"
"$BIN/issuer-api" admin create-issuer --id demo-university --name "Demo University" "${ANCHOR_ARGS[@]}" | tee "$WORK/issuer.json"
API_KEY="$(json 'd["api_key"]' < "$WORK/issuer.json")"

say "starting issuer-api on port $API_PORT"
"$BIN/issuer-api" serve >"$WORK/api.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null || { cat "$WORK/api.log"; exit 1; }

if [[ ${#ANCHOR_ARGS[@]} -gt 0 ]]; then
  say "funding the anchoring key and starting outbox-relay"
  export APP__CHAIN__RPC_URL="$SOLANA_RPC_URL"
  export APP__CHAIN__KEYPAIR_PATH="$WORK/anchor.json"
  export APP__PROBES__PORT="$(free_port)"
  "$BIN/outbox-relay" airdrop --keypair "$WORK/anchor.json" --sol 10 >/dev/null
  "$BIN/outbox-relay" serve >"$WORK/relay.log" 2>&1 &
  PIDS+=($!)
fi

say "issuing a sample diploma"
printf '%%PDF-1.7\nDiploma: Demo Graduate, BSc Computer Science, with honours\n' > "$WORK/diploma.pdf"
curl -sS -X POST "http://127.0.0.1:$API_PORT/v1/credentials" \
  -H "Authorization: Bearer $API_KEY" -H "Idempotency-Key: demo-1" \
  -F "metadata={\"recipient_id\":\"student-42\",\"issued_at\":\"2026-06-30T12:00:00Z\",\"serial\":\"DEMO-2026-0001\",\"credential_type\":\"diploma\",\"title\":\"BSc Computer Science\"};type=application/json" \
  -F "file=@$WORK/diploma.pdf;type=application/pdf" | tee "$WORK/issued.json"
echo
ID="$(json 'd["id"]' < "$WORK/issued.json")"

say "status of credential $ID"
if [[ ${#ANCHOR_ARGS[@]} -gt 0 ]]; then
  for _ in $(seq 1 90); do
    STATUS="$(curl -sS -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$API_PORT/v1/credentials/$ID" | json 'd["status"]')"
    printf '\r  status: %-12s' "$STATUS"
    [[ "$STATUS" == "finalized" || "$STATUS" == "failed" ]] && break
    sleep 1
  done
  echo
fi
curl -sS -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$API_PORT/v1/credentials/$ID" | python3 -m json.tool
STATUS="$(curl -sS -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$API_PORT/v1/credentials/$ID" | json 'd["status"]')"
if [[ ${#ANCHOR_ARGS[@]} -gt 0 ]]; then
  [[ "$STATUS" == "finalized" ]] || { echo "credential did not finalize; relay log:"; tail -30 "$WORK/relay.log"; exit 1; }
  SIG="$(curl -sS -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$API_PORT/v1/credentials/$ID" | json 'd["anchor"]["signature"]')"
  say "anchored on chain in transaction $SIG"
  say "cross-checking PostgreSQL against the chain (reconciler run-once)"
  "$BIN/reconciler" run-once --since 10m
  FINDINGS="$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM reconciliation_findings")"
  echo "reconciliation findings: $FINDINGS (0 = the database and the chain agree)"
  [[ "$FINDINGS" == "0" ]] || exit 1

  say "verifying like an employer would: the proof bundle, POST /v1/verify, and offline"
  curl -fsS -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$API_PORT/v1/credentials/$ID/proof" > "$WORK/diploma.proof.json"
  echo "proof bundle: $WORK/diploma.proof.json ($(json 'd["anchor"]["mode"]' < "$WORK/diploma.proof.json") mode)"
  VERDICT="$(curl -sS -F "file=@$WORK/diploma.pdf" -F "proof=@$WORK/diploma.proof.json;type=application/json" \
    "http://127.0.0.1:$API_PORT/v1/verify" | json 'd["verdict"]')"
  echo "POST /v1/verify with the genuine file: $VERDICT"
  [[ "$VERDICT" == "valid" ]] || exit 1
  echo "credential-verify (no call to our API, only the Solana RPC):"
  "$BIN/credential-verify" --file "$WORK/diploma.pdf" --proof "$WORK/diploma.proof.json" \
    --rpc "$SOLANA_RPC_URL" --issuer-key "$ANCHOR_PUBKEY"
  printf 'X' | dd of="$WORK/diploma.pdf" bs=1 seek=10 conv=notrunc status=none
  set +e
  "$BIN/credential-verify" --file "$WORK/diploma.pdf" --proof "$WORK/diploma.proof.json" \
    --rpc "$SOLANA_RPC_URL" --issuer-key "$ANCHOR_PUBKEY"
  CODE=$?
  set -e
  echo "the same file with one byte changed: exit code $CODE (3 = tampered)"
  [[ "$CODE" == "3" ]] || exit 1
else
  [[ "$STATUS" == "queued" ]] || exit 1
  say "credential is signed and queued for anchoring"
fi
