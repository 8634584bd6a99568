#!/usr/bin/env bash
# make image-check: runs every binary from inside the image built by `make image`
# (`buildah run --isolation chroot`, no daemon):
#   1. what is in it: user 10001, no shell, no package manager, no compiler;
#   2. `--version` of each binary, as the image's own non-root user;
#   3. `issuer-api migrate` against the test PostgreSQL, twice (the second applies nothing);
#   4. the demo (scripts/demo.sh) with issuer-api, outbox-relay, reconciler and
#      credential-verify all running from the image on loopback: issue, anchor on the local
#      validator, verify three ways, catch a changed byte.
# The services run on the host network with /tmp mounted (where the harness keeps the
# keypair, the logs and the diploma) and as the caller's uid, which owns those files; in
# Kubernetes they run as 10001 with their files mounted read-only for them. The wrappers pass
# the environment as `--env K=V` (buildah 1.28 cannot pass a variable by name), so the
# throw-away keys of this run are visible in `ps` while it runs: never point it at real ones.
# Not covered here: TLS to a public host (no such host is reachable from CI); the image
# carries the CA bundle and SSL_CERT_FILE names it.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE_DIR="${CACHE_DIR:-$HOME/.cache/credential-anchor}"
: "${CARGO_TARGET_DIR:=$CACHE_DIR/target}"
export CARGO_TARGET_DIR
IMAGE="${IMAGE:-localhost/credential-anchor:latest}"
BUILDAH=(buildah --storage-driver vfs)
BINARIES=(issuer-api outbox-relay reconciler credential-verify)
WRAP="$(mktemp -d /tmp/credential-image-check.XXXXXX)"
ctr=""

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '\033[31mimage-check failed: %s\033[0m\n' "$*" >&2; exit 1; }
cleanup() {
  # A service killed through its wrapper can leave the process buildah started behind: kill
  # those of this run only (each carries IMAGE_CHECK_RUN=$WRAP in its environment).
  local pid
  for pid in $(pgrep -f '^/usr/local/bin/' 2>/dev/null); do
    tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "IMAGE_CHECK_RUN=$WRAP" \
      && kill -KILL "$pid" 2>/dev/null
  done
  [[ -z "$ctr" ]] || "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$WRAP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${BUILDAH[@]}" inspect --type image "$IMAGE" >/dev/null 2>&1 \
  || die "no image $IMAGE: run \`make image\` first"
ctr="$("${BUILDAH[@]}" from -q "$IMAGE")"

say "what is in $IMAGE"
user="$("${BUILDAH[@]}" inspect --format '{{.OCIv1.Config.User}}' "$IMAGE")"
[[ "$user" == "10001:10001" ]] || die "the image runs as '$user', not 10001:10001"
mnt="$("${BUILDAH[@]}" mount "$ctr")"
for forbidden in bin/sh bin/bash usr/bin/apt-get usr/bin/dpkg usr/bin/cc usr/bin/gcc usr/local/cargo; do
  [[ ! -e "$mnt/$forbidden" ]] || die "the image contains /$forbidden"
done
files="$(cd "$mnt" && find . -type f | wc -l)"
echo "user $user; $files files, $(du -sh "$mnt" | cut -f1) unpacked; no shell, apt, dpkg or compiler"
"${BUILDAH[@]}" umount "$ctr" >/dev/null

say "--version of each binary, as the image's user"
for b in "${BINARIES[@]}"; do
  out="$("${BUILDAH[@]}" run --isolation chroot "$ctr" -- "/usr/local/bin/$b" --version)" \
    || die "$b --version failed"
  [[ "$out" == "$b "* ]] || die "$b --version printed '$out'"
  echo "$out"
done

# One wrapper per binary, so the harness (localnet's --bin-dir, the demo) starts the image's
# binary where it would start the host's: same arguments, the APP__*/RUST_* environment.
for b in "${BINARIES[@]}"; do
  cat > "$WRAP/$b" <<WRAPPER
#!/usr/bin/env bash
env_args=()
for k in \$(compgen -e); do
  case "\$k" in APP__*|APP_CONFIG_FILE|RUST_LOG|RUST_BACKTRACE) env_args+=(--env "\$k=\${!k}");; esac
done
echo "$b \$*" >> "$WRAP/invocations.log"
exec ${BUILDAH[*]} run --isolation chroot --user "$(id -u):$(id -g)" --volume /tmp:/tmp \\
  --env IMAGE_CHECK_RUN=$WRAP "\${env_args[@]}" "$ctr" -- /usr/local/bin/$b "\$@"
WRAPPER
  chmod +x "$WRAP/$b"
done

cargo build -q -p testkit --bin localnet
say "issuer-api migrate (from the image) against the test PostgreSQL, twice"
# shellcheck disable=SC2016
"$CARGO_TARGET_DIR/debug/localnet" exec --validator off -- bash -c '
  set -euo pipefail
  # What the migration Job gets (k8s/base/migration-job.yaml): the config file (the image
  # carries the example), the database and the master key.
  export APP_CONFIG_FILE=/etc/credential-anchor/issuer-api.toml
  # By name, not by address: the image resolves through /etc/hosts (nsswitch.conf).
  export APP__DATABASE__URL="${DATABASE_URL/127.0.0.1/localhost}"
  [[ "$APP__DATABASE__URL" == *localhost* ]] || { echo "no 127.0.0.1 in $DATABASE_URL" >&2; exit 1; }
  APP__SIGNING__MASTER_KEY="$("$0/issuer-api" admin new-master-key)"
  export APP__SIGNING__MASTER_KEY
  first="$("$0/issuer-api" migrate)"
  second="$("$0/issuer-api" migrate)"
  echo "first:  $first"; echo "second: $second"
  [[ "$first" != "{\"applied_migrations\":0}" ]] || { echo "the first run applied nothing" >&2; exit 1; }
  [[ "$second" == "{\"applied_migrations\":0}" ]] || { echo "the second run applied again" >&2; exit 1; }
' "$WRAP" || die "migration from the image"

say "the demo, every service and the CLI from the image"
DEMO_BIN_DIR="$WRAP" bash scripts/demo.sh
# The demo did start each service and the CLI through the image, not from the host's build.
for expected in "issuer-api serve" "outbox-relay serve" "reconciler run-once" "credential-verify --file"; do
  grep -q "^$expected" "$WRAP/invocations.log" || die "the demo never ran '$expected' from the image"
done
echo "run from the image: $(cut -d' ' -f1-2 "$WRAP/invocations.log" | sort | uniq -c | tr -s ' ' | paste -sd, -)"
say "image-check passed: $IMAGE"
