#!/usr/bin/env bash
# What the webhook triggers (migration V14, issue #24) cost the relay's status updates.
# Runs under `localnet exec` (its PostgreSQL: the tests' relaxed durability, fsync off; the
# statements measured here are CPU work inside one transaction, whose cost fsync does not
# change). On a fresh database with every migration: 20,000 credentials, then, per setting,
# five rounds of (a) one UPDATE finalizing 10,000 rows (a Merkle batch's completion) and
# (b) 2,000 single-row UPDATEs (the single-mode relay's steps), timed inside PostgreSQL with
# clock_timestamp(). Settings: trigger disabled (the baseline: the schema before V14), no
# endpoint, an endpoint of another issuer only, and an endpoint of this issuer subscribed
# (every change recorded: an event and a delivery per row).
# Usage: target/debug/localnet exec --validator off -- bash scripts/bench-webhook-trigger.sh [OUT.md]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?run under localnet exec}"
BIN="${CARGO_TARGET_DIR:-$HOME/.cache/credential-anchor/target}/debug"
OUT="${1:-/dev/stdout}"
DB="wh_bench_$$"
psql "$DATABASE_URL" -qAtc "CREATE DATABASE $DB"
URL="$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/"+sys.argv[2])))' "$DATABASE_URL" "$DB")"
trap 'psql "$DATABASE_URL" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
APP__DATABASE__URL="$URL" "$BIN/issuer-api" migrate >/dev/null 2>&1 \
  || APP__DATABASE__URL="$URL" APP__SIGNING__MASTER_KEY="$("$BIN/issuer-api" admin new-master-key)" \
     APP__CHAIN__RPC_URL=http://127.0.0.1:9 "$BIN/issuer-api" migrate >/dev/null 2>&1

psql "$URL" -qAt -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
INSERT INTO issuers (id, name) VALUES ('bench-a', 'Bench A'), ('bench-b', 'Bench B');
INSERT INTO issuer_signing_keys (issuer_id, key_id, public_key)
VALUES ('bench-a', 'k1', decode(repeat('01', 32), 'hex')), ('bench-b', 'k1', decode(repeat('02', 32), 'hex'));
INSERT INTO credentials (id, issuer_id, serial, recipient_id, issued_at, credential_type, title,
    file_digest, credential_hash, signing_key_id, signature, status, proof_format)
SELECT gen_random_uuid(), 'bench-a', 'S-' || g, 'student-' || g, now(), 'diploma', 'BSc',
    sha256(('f' || g)::bytea), sha256(('h' || g)::bytea), 'k1', decode(repeat('03', 64), 'hex'),
    'confirmed', 1
FROM generate_series(1, 20000) g;
ANALYZE credentials;
CREATE TABLE bench_results (setting text, shape text, round int, ms float8);
CREATE PROCEDURE bench_round(setting text, r int) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; ids uuid[]; i int;
BEGIN
    UPDATE credentials SET status = 'confirmed', anchor_signature = NULL, anchor_slot = NULL;
    COMMIT;
    t0 := clock_timestamp();
    UPDATE credentials SET status = 'finalized', anchor_signature = 'sig', anchor_slot = r
    WHERE id IN (SELECT id FROM credentials ORDER BY id LIMIT 10000);
    INSERT INTO bench_results VALUES (setting, 'one UPDATE of 10,000 rows', r,
        extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;
    SELECT array_agg(id) INTO ids FROM (SELECT id FROM credentials ORDER BY id DESC LIMIT 2000) x;
    t0 := clock_timestamp();
    FOR i IN 1 .. 2000 LOOP
        UPDATE credentials SET status = 'finalized', anchor_signature = 'sig', anchor_slot = r
        WHERE id = ids[i];
    END LOOP;
    INSERT INTO bench_results VALUES (setting, '2,000 single-row UPDATEs', r,
        extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;
END;
$$;
SQL

psql "$URL" -qAt -v ON_ERROR_STOP=1 -c "INSERT INTO webhook_endpoints (id, issuer_id, url, event_types, enabled, secret_sealed) VALUES
  (gen_random_uuid(), 'bench-a', 'https://a.example/h', '{credential.finalized}', false, '\\x00'),
  (gen_random_uuid(), 'bench-b', 'https://b.example/h', '{credential.finalized}', false, '\\x00')" >/dev/null
# The settings take turns within each round, each after a VACUUM: none gets a fresher table
# than another (every round rewrites 24,000 row versions).
SETTINGS=(
  "1 trigger disabled (baseline)|ALTER TABLE credentials DISABLE TRIGGER credentials_webhook_events; UPDATE webhook_endpoints SET enabled = false"
  "2 no endpoint|ALTER TABLE credentials ENABLE TRIGGER credentials_webhook_events; UPDATE webhook_endpoints SET enabled = false"
  "3 another issuer has an endpoint|ALTER TABLE credentials ENABLE TRIGGER credentials_webhook_events; UPDATE webhook_endpoints SET enabled = (issuer_id = 'bench-b')"
  "4 this issuer subscribed (records every change)|ALTER TABLE credentials ENABLE TRIGGER credentials_webhook_events; UPDATE webhook_endpoints SET enabled = (issuer_id = 'bench-a')"
)
for r in 1 2 3 4 5; do
  for s in "${SETTINGS[@]}"; do
    psql "$URL" -qAt -v ON_ERROR_STOP=1 -c "${s#*|}" -c "VACUUM ANALYZE credentials" >/dev/null
    psql "$URL" -qAt -v ON_ERROR_STOP=1 -c "CALL bench_round('${s%%|*}', $r)" >/dev/null
  done
done
EVENTS="$(psql "$URL" -qAtc "SELECT count(*) FROM webhook_events")"
{
  echo "# Webhook triggers: cost on the relay's status updates"
  echo
  echo "Commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
  echo "PostgreSQL $(psql "$URL" -qAtc 'SHOW server_version'), fsync=$(psql "$URL" -qAtc 'SHOW fsync') (the tests' server; the timed statements are CPU work inside a transaction)."
  echo "Median of 5 rounds (the settings take turns in each, after a VACUUM), timed inside PostgreSQL (\`scripts/bench-webhook-trigger.sh\`). Setting 4 recorded $EVENTS events."
  echo
  echo "| setting | shape | median ms | min ms | max ms | vs baseline |"
  echo "|---|---|---|---|---|---|"
  psql "$URL" -qAt -F '|' -c "
    WITH m AS (SELECT setting, shape, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS med,
                      min(ms) AS lo, max(ms) AS hi FROM bench_results GROUP BY 1, 2)
    SELECT '| ' || substr(m.setting, 3) || ' | ' || m.shape || ' | ' || round(m.med::numeric, 1) || ' | '
           || round(m.lo::numeric, 1) || ' | ' || round(m.hi::numeric, 1) || ' | '
           || round((m.med / b.med)::numeric, 2) || 'x |'
    FROM m JOIN m b ON b.shape = m.shape AND b.setting LIKE '1 %' ORDER BY m.shape, m.setting"
} > "$OUT"
[[ "$OUT" == /dev/stdout ]] || cat "$OUT"
