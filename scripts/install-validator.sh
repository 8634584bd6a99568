#!/usr/bin/env bash
# Installs solana-test-validator (crate agave-validator, pinned) once, into a cache
# outside the work tree, so later sessions and CI on the same machine skip the ~20 min build.
# Idempotent: exits at once when the pinned version is already installed.
set -euo pipefail

AGAVE_VERSION="${AGAVE_VERSION:-4.2.2}"
TOOLS_ROOT="${TOOLS_ROOT:-$HOME/.cache/credential-anchor/tools/agave-$AGAVE_VERSION}"
BIN="$TOOLS_ROOT/bin/solana-test-validator"

if [[ -x "$BIN" ]]; then
  echo "solana-test-validator $AGAVE_VERSION already installed at $BIN"
  exit 0
fi

need_pkgs=()
for pkg in libclang-dev protobuf-compiler libudev-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
  echo "installing build dependencies: ${need_pkgs[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}"
fi

mkdir -p "$TOOLS_ROOT"
echo "building solana-test-validator $AGAVE_VERSION (about 20 minutes cold on 2 cores)"
start=$(date +%s)
# A build dir of its own in the cache: an interrupted build resumes instead of restarting.
CARGO_TARGET_DIR="${VALIDATOR_BUILD_DIR:-$HOME/.cache/credential-anchor/validator-build}" \
  cargo install --locked "agave-validator@$AGAVE_VERSION" --bin solana-test-validator --root "$TOOLS_ROOT"
echo "solana-test-validator built in $(( $(date +%s) - start )) s"
