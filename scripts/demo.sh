#!/usr/bin/env bash
# make demo: start a throw-away PostgreSQL and local Solana validator, run the services,
# bootstrap an issuer, issue a sample diploma, follow it to the chain, verify it three ways
# (POST /v1/verify, the /verify page, the offline CLI) and show that one changed byte is caught.
# Everything is stopped and deleted on exit.
#
# Every setting every service needs is exported BEFORE the first service starts, and every
# port is chosen free at run time: the demo relies on no default port. With
# DEMO_GUARD_DEFAULT_PORTS=1 (what `make test` uses) a tripwire listens on the services'
# default ports (RPC 8899/8900, API 8080, probes 9100-9102) and the demo fails if anything
# connected to it, so a setting forgotten again cannot hide behind a machine that happens to
# have a validator on 8899.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/stack.sh
source scripts/lib/stack.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '\033[31mdemo failed: %s\033[0m\n' "$*" >&2; exit 1; }
# http EXPECTED_STATUS URL [curl args...]: prints the body; any other status (or no answer)
# stops the demo with the status and the body.
http() {
  local expected="$1" url="$2" out="$WORK/http.body" status
  shift 2
  status="$(curl -sS -o "$out" -w '%{http_code}' "$@" "$url")" || die "no answer from $url"
  if [[ "$status" != "$expected" ]]; then
    printf 'HTTP %s from %s (expected %s):\n' "$status" "$url" "$expected" >&2
    cat "$out" >&2
    echo >&2
    [[ -f "$WORK/stack/issuer-api.log" ]] && { echo "--- issuer-api log (last 20 lines)" >&2; tail -20 "$WORK/stack/issuer-api.log" >&2; }
    exit 1
  fi
  cat "$out"
}

say "building the services"
cargo build --bins -q
# Where the services and the CLI come from: the host's debug build, or (make image-check)
# wrappers that run each binary from inside the production image.
SERVICE_BIN="${DEMO_BIN_DIR:-$BIN}"

if [[ "${DEMO_GUARD_DEFAULT_PORTS:-0}" == "1" ]]; then
  python3 scripts/port-tripwire.py --log "$WORK/tripwire.log" --ready "$WORK/tripwire.ready" \
    8899 8900 8080 9100 9101 9102 &
  PIDS+=($!)
  for _ in $(seq 1 50); do [[ -f "$WORK/tripwire.ready" ]] && break; sleep 0.1; done
  echo "tripwire on the default ports: $(cat "$WORK/tripwire.ready")"
fi

# The demo's webhook receiver listens on loopback over http: allowed here only (production
# refuses both, see README "Webhooks"). The relay and the reconciler ignore these.
export APP__WEBHOOKS__ALLOW_HTTP=true APP__WEBHOOKS__ALLOW_PRIVATE=true

say "starting PostgreSQL, solana-test-validator, issuer-api and outbox-relay (free ports)"
# One bring-up for the demo and the CI scripts: localnet provisions the issuer through the
# operator commands (issuer-api admin create-issuer, outbox-relay keygen/airdrop) and passes
# every setting to every service. The reconciler is run once below instead of as a loop.
stack_up --bin-dir "$SERVICE_BIN" --no-reconciler --issuer-id demo-university --issuer-name "Demo University" \
  --log-filter "warn,issuer_api=info,outbox_relay=info"
API="$API_URL"
AUTH=(-H "Authorization: Bearer $API_KEY")
echo "database $DATABASE_URL, RPC $SOLANA_RPC_URL, API $API"

say "the issuer localnet bootstrapped (issuer-api admin create-issuer; the API key is printed once)"
cat "$LOG_DIR/issuer.json"; echo
echo "anchoring key $ANCHOR_PUBKEY (funded with an airdrop)"

READY="$(http 200 "$API/readyz")"
echo "readyz: $READY"
grep -m1 'verification reads the chain' "$LOG_DIR/issuer-api.log" || true
[[ "$(json 'd["chain"]["reachable"]' <<<"$READY")" == "True" ]] \
  || die "issuer-api cannot reach the chain it verifies against"

say "the portal registers a webhook receiver (Standard Webhooks, checked by the npm standardwebhooks library)"
INTEROP="$(bash scripts/install-interop.sh | tail -n1)"
node "$INTEROP/webhook-receiver.mjs" --print > "$WORK/webhooks.jsonl" &
PIDS+=($!)
HOOK_PORT=""
for _ in $(seq 1 100); do
  HOOK_PORT="$(head -n1 "$WORK/webhooks.jsonl" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["listening"])' 2>/dev/null || true)"
  [[ -n "$HOOK_PORT" ]] && break
  sleep 0.1
done
[[ -n "$HOOK_PORT" ]] || die "the webhook receiver did not start"
http 201 "$API/v1/webhooks" -X POST "${AUTH[@]}" -H 'Content-Type: application/json' \
  -d "{\"url\":\"http://127.0.0.1:$HOOK_PORT/hooks/portal\",\"event_types\":[\"credential.finalized\",\"credential.revoked\",\"credential.failed\"]}" > "$WORK/webhook.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["secret"]=d["secret"][:10]+"... (shown once)"; print(json.dumps(d, indent=2))' "$WORK/webhook.json"
HOOK_SECRET="$(json 'd["secret"]' < "$WORK/webhook.json")"
curl -sS -o /dev/null -X PUT "http://127.0.0.1:$HOOK_PORT/control/endpoints/portal" \
  -H 'Content-Type: application/json' -d "{\"secrets\":[\"$HOOK_SECRET\"],\"status\":204}" \
  || die "cannot configure the webhook receiver"
echo "receiver: http://127.0.0.1:$HOOK_PORT/hooks/portal (the secret is given to the receiver only)"

say "issuing a sample diploma"
printf '%%PDF-1.7\nDiploma: Demo Graduate, BSc Computer Science, with honours\n' > "$WORK/diploma.pdf"
http 202 "$API/v1/credentials" -X POST "${AUTH[@]}" -H "Idempotency-Key: demo-1" \
  -F "metadata={\"recipient_id\":\"student-42\",\"issued_at\":\"2026-06-30T12:00:00Z\",\"serial\":\"DEMO-2026-0001\",\"credential_type\":\"diploma\",\"title\":\"BSc Computer Science\"};type=application/json" \
  -F "file=@$WORK/diploma.pdf;type=application/pdf" | tee "$WORK/issued.json"
echo
ID="$(json 'd["id"]' < "$WORK/issued.json")"

say "status of credential $ID"
STATUS=""
for _ in $(seq 1 90); do
  STATUS="$(http 200 "$API/v1/credentials/$ID" "${AUTH[@]}" | json 'd["status"]')"
  printf '\r  status: %-12s' "$STATUS"
  [[ "$STATUS" == "finalized" || "$STATUS" == "failed" ]] && break
  sleep 1
done
echo
http 200 "$API/v1/credentials/$ID" "${AUTH[@]}" > "$WORK/credential.json"
python3 -m json.tool < "$WORK/credential.json"
[[ "$STATUS" == "finalized" ]] || { tail -30 "$LOG_DIR/outbox-relay.log"; die "credential did not finalize (status $STATUS)"; }
SIG="$(json 'd["anchor"]["signature"]' < "$WORK/credential.json")"
say "anchored on chain in transaction $SIG"

say "the portal was told, without polling: the credential.finalized webhook"
EVENT=""
for _ in $(seq 1 60); do
  EVENT="$(curl -s "http://127.0.0.1:$HOOK_PORT/control/deliveries?endpoint=portal" | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    if d["type"] == "credential.finalized" and d["data"]["credential_id"] == sys.argv[1]:
        print(json.dumps(d, indent=2)); break' "$ID")"
  [[ -n "$EVENT" ]] && break
  sleep 1
done
[[ -n "$EVENT" ]] || die "no credential.finalized webhook arrived"
echo "$EVENT"
[[ "$(json 'd["valid"]' <<<"$EVENT")" == "True" ]] || die "the webhook signature did not verify"
[[ "$(json 'd["data"]["anchor_signature"]' <<<"$EVENT")" == "$SIG" ]] || die "the webhook names another anchor"
echo "webhook-id $(json 'd["webhook_id"]' <<<"$EVENT"): signature valid (standardwebhooks, the receiver's secret), anchor $SIG"

say "its revocation status list (W3C Bitstring Status List), signed and anchored by a ca1:s memo"
LIST_URL="$API/issuers/demo-university/status-lists/0"
for _ in $(seq 1 60); do
  [[ "$(curl -s -o "$WORK/status-list.json" -w '%{http_code}' "$LIST_URL")" == "200" ]] && break
  sleep 1
done
[[ -s "$WORK/status-list.json" ]] || die "the status list was never served"
echo "$LIST_URL: version $(curl -s -D - -o /dev/null "$LIST_URL" | tr -d '\r' | awk -F': ' 'tolower($1)=="status-list-version"{print $2}'), encodedList $(json 'd["credentialSubject"]["encodedList"][:24]' < "$WORK/status-list.json")..."
psql "$DATABASE_URL" -Atc "SELECT 'anchored by memo: ' || memo FROM anchor_transactions WHERE status_list_version_id IS NOT NULL AND status = 'finalized' ORDER BY slot DESC LIMIT 1"

say "cross-checking PostgreSQL against the chain (reconciler run-once)"
APP__DATABASE__URL="$DATABASE_URL" APP__CHAIN__RPC_URL="$SOLANA_RPC_URL" APP__PROBES__PORT="$(free_port)" \
  "$SERVICE_BIN/reconciler" run-once --since 10m
FINDINGS="$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM reconciliation_findings")"
echo "reconciliation findings: $FINDINGS (0 = the database and the chain agree)"
[[ "$FINDINGS" == "0" ]] || die "the reconciler found disagreements"

say "verifying like an employer would: the proof bundle, POST /v1/verify, the page, offline"
http 200 "$API/v1/credentials/$ID/proof" "${AUTH[@]}" > "$WORK/diploma.proof.json"
echo "proof bundle: $WORK/diploma.proof.json ($(json 'd["anchor"]["mode"]' < "$WORK/diploma.proof.json") mode)"
VERDICT="$(http 200 "$API/v1/verify" -F "file=@$WORK/diploma.pdf" \
  -F "proof=@$WORK/diploma.proof.json;type=application/json" | json 'd["verdict"]')"
echo "POST /v1/verify with the genuine file: $VERDICT"
[[ "$VERDICT" == "valid" ]] || die "expected verdict valid, got $VERDICT"
http 200 "$API/verify" -F "file=@$WORK/diploma.pdf" \
  -F "proof=@$WORK/diploma.proof.json;type=application/json" > "$WORK/page.html"
grep -q 'Valid: issued by this issuer' "$WORK/page.html" || die "the /verify page did not say valid"
echo "the /verify page says: Valid"
echo "credential-verify (no call to our API, only the Solana RPC):"
"$SERVICE_BIN/credential-verify" --file "$WORK/diploma.pdf" --proof "$WORK/diploma.proof.json" \
  --rpc "$SOLANA_RPC_URL" --issuer-key "$ANCHOR_PUBKEY" || die "credential-verify did not say valid"

say "the same diploma as a W3C Verifiable Credential (Open Badges 3.0, eddsa-rdfc-2022)"
http 200 "$API/v1/credentials/$ID/vc" "${AUTH[@]}" > "$WORK/diploma.vc.json"
python3 -m json.tool "$WORK/diploma.vc.json"
echo "issuer DID document: $API/issuers/$(json 'd["issuer"]["id"].rsplit(":", 1)[1]' < "$WORK/diploma.vc.json")/did.json"
echo "@digitalbazaar/vc $(node -p "require('$INTEROP/node_modules/@digitalbazaar/vc/package.json').version") (offline: contexts from npm, the DID from this API):"
node "$INTEROP/verify-vc.mjs" --expect valid "$WORK/diploma.vc.json" || die "@digitalbazaar/vc did not accept the VC (proof and status list)"
echo "credential-verify with the status list it fetches, judged against the ca1:s memos on chain:"
"$SERVICE_BIN/credential-verify" --file "$WORK/diploma.pdf" --proof "$WORK/diploma.proof.json" \
  --vc "$WORK/diploma.vc.json" --fetch-status-list \
  --rpc "$SOLANA_RPC_URL" --issuer-key "$ANCHOR_PUBKEY" || die "credential-verify did not say valid with the status list"
VERDICT="$(http 200 "$API/v1/verify" -F "file=@$WORK/diploma.pdf" \
  -F "vc=@$WORK/diploma.vc.json;type=application/json" | json 'd["verdict"] + " (anchor " + d["anchor"]["signature"] + ")"')"
echo "POST /v1/verify with the VC and the file (its proof, then its anchor on chain): $VERDICT"
[[ "$VERDICT" == valid* ]] || die "expected verdict valid for the VC, got $VERDICT"

printf 'X' | dd of="$WORK/diploma.pdf" bs=1 seek=10 conv=notrunc status=none
set +e
"$SERVICE_BIN/credential-verify" --file "$WORK/diploma.pdf" --proof "$WORK/diploma.proof.json" \
  --rpc "$SOLANA_RPC_URL" --issuer-key "$ANCHOR_PUBKEY"
CODE=$?
set -e
echo "the same file with one byte changed: exit code $CODE (3 = tampered)"
[[ "$CODE" == "3" ]] || die "a changed byte was not reported as tampered"
VERDICT="$(http 200 "$API/v1/verify" -F "file=@$WORK/diploma.pdf" \
  -F "proof=@$WORK/diploma.proof.json;type=application/json" | json 'd["verdict"]')"
echo "POST /v1/verify with the changed file: $VERDICT"
[[ "$VERDICT" == "tampered" ]] || die "expected verdict tampered, got $VERDICT"

if [[ -f "$WORK/tripwire.ready" ]]; then
  if [[ -s "$WORK/tripwire.log" ]]; then
    cat "$WORK/tripwire.log"
    die "a service connected to a default port: a setting is missing"
  fi
  echo "no service touched a default port"
fi
say "demo passed"
