# Sourced by demo.sh, prometheus-e2e.sh and schemathesis.sh: the work directory and its
# cleanup, two small helpers, and the one bring-up of the whole system (`localnet up
# --services`, testkit::services), so no script starts a service by hand.
#
# Before sourcing: `set -euo pipefail` and `cd` to the repository. After `stack_up`, the
# variables of `localnet up --services` are set: DATABASE_URL, SOLANA_RPC_URL, API_URL,
# API_PORT, API_KEY, ISSUER_ID, ANCHOR_PUBKEY, ANCHOR_KEYPAIR, LOG_DIR, and RELAY_/RECONCILER_
# PORT and PID for the services started.

: "${CARGO_TARGET_DIR:=$HOME/.cache/credential-anchor/target}"
export CARGO_TARGET_DIR
BIN="$CARGO_TARGET_DIR/debug"
WORK="$(mktemp -d "/tmp/credential-$(basename "$0" .sh).XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${KEEP_WORK:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# json EXPR < file: one value of a JSON document; a clear message (not a traceback) otherwise.
json() {
  python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
    print(eval(sys.argv[1], {}, {"d": d}))
except Exception as e:
    sys.exit("could not read %s from the answer: %s" % (sys.argv[1], e))
' "$1"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# stack_up [localnet up options...]: PostgreSQL, solana-test-validator, an issuer and the
# services on free ports; stops the script with localnet's log if it does not come up.
# The services inherit this shell's environment (an exported APP__* reaches them).
stack_up() {
  "$BIN/localnet" up --validator required --services --work-dir "$WORK/stack" \
    --env-file "$WORK/env" "$@" 2>"$WORK/localnet.log" &
  local pid=$!
  PIDS+=("$pid")
  # The env file appears whole (written, then renamed); localnet exiting first is a failure.
  for _ in $(seq 1 180); do
    [[ -s "$WORK/env" ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if [[ ! -s "$WORK/env" ]]; then
    cat "$WORK/localnet.log" >&2
    echo "localnet did not start the stack" >&2
    exit 1
  fi
  # shellcheck disable=SC1091
  source "$WORK/env"
}
