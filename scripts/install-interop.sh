#!/usr/bin/env bash
# Installs the independent VC verifiers of interop/ (pinned npm + PyPI
# packages) into a content-addressed cache directory and prints that
# directory as the LAST line of stdout (everything else goes to stderr).
#
#   dir=$(scripts/install-interop.sh | tail -n1)
#   node "$dir/verify-vc.mjs" --expect valid some.vc.json
#   "$dir/venv/bin/python" "$dir/verify_vc.py" --contexts "$dir/contexts" \
#       --expect valid some.vc.json
#
# Layout: $CACHE_DIR/interop/<sha256(package-lock.json + requirements.txt)>/
#   node_modules/  (npm ci --ignore-scripts)
#   venv/          (pip install --require-hashes -r requirements.txt)
#   contexts/      (export-contexts.mjs: npm-published JSON-LD contexts)
#   *.mjs *.py ... (copied from interop/ on every run, so edits take effect)
# plus the symlink $CACHE_DIR/interop/current -> that directory.
#
# Idempotent and quick when already installed (stamp files); safe to run
# concurrently (flock). Needs: node >= 20 + npm, python3 >= 3.9 with venv,
# sha256sum, and network access to the npm registry and PyPI on first run.
set -euo pipefail

log() { printf 'install-interop: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$repo_root/interop"
CACHE_DIR=${CACHE_DIR:-"$HOME/.cache/credential-anchor"}

[ -f "$src/package-lock.json" ] || die "missing $src/package-lock.json"
[ -f "$src/requirements.txt" ] || die "missing $src/requirements.txt"

command -v node >/dev/null || die "node not found (need node >= 20)"
command -v npm >/dev/null || die "npm not found"
command -v sha256sum >/dev/null || die "sha256sum not found"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "node >= 20 required (found $(node --version))"
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' ||
  die "python >= 3.9 required"

key=$(cat "$src/package-lock.json" "$src/requirements.txt" | sha256sum |
  cut -c1-64)
base="$CACHE_DIR/interop"
dir="$base/$key"
mkdir -p "$dir"

# serialize concurrent installs of the same directory
if command -v flock >/dev/null; then
  exec 9>"$dir/.install.lock"
  flock 9
fi

# 1. sources: always refresh (cheap), never node_modules / venv / contexts
find "$src" -maxdepth 1 -type f \
  \( -name '*.mjs' -o -name '*.py' -o -name '*.sh' -o -name '*.json' \
     -o -name '*.md' -o -name '*.txt' \) -print0 |
  while IFS= read -r -d '' f; do
    b=$(basename "$f")
    if ! cmp -s "$f" "$dir/$b"; then
      cp "$f" "$dir/$b.tmp.$$" && mv -f "$dir/$b.tmp.$$" "$dir/$b"
    fi
  done

# 2. npm packages, exactly as locked
if [ ! -f "$dir/.npm-ok" ] || [ ! -d "$dir/node_modules" ]; then
  log "npm ci in $dir"
  rm -rf "$dir/node_modules"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund \
    --loglevel=error >&2) || die "npm ci failed"
  touch "$dir/.npm-ok"
fi

# 3. python venv with hash-checked requirements
if [ ! -f "$dir/.venv-ok" ] || [ ! -x "$dir/venv/bin/python" ]; then
  log "creating venv in $dir/venv"
  rm -rf "$dir/venv"
  "$PYTHON" -m venv "$dir/venv" >&2 ||
    die "python venv failed (Debian: apt-get install python3-venv)"
  "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input --require-hashes -r "$dir/requirements.txt" >&2 ||
    die "pip install --require-hashes failed"
  "$dir/venv/bin/python" -c 'import pyld, nacl' ||
    die "venv import check failed"
  touch "$dir/.venv-ok"
fi

# 4. JSON-LD contexts for the Python verifier, from the npm packages
#    (re-exported when missing or older than the exporter)
if [ ! -f "$dir/contexts/index.json" ] ||
   [ "$dir/export-contexts.mjs" -nt "$dir/contexts/index.json" ] ||
   [ "$dir/contexts.mjs" -nt "$dir/contexts/index.json" ]; then
  log "exporting contexts to $dir/contexts"
  rm -rf "$dir/contexts.tmp"
  (cd "$dir" && node export-contexts.mjs "$dir/contexts.tmp") ||
    die "export-contexts failed"
  rm -rf "$dir/contexts"
  mv "$dir/contexts.tmp" "$dir/contexts"
fi

ln -sfn "$key" "$base/current.tmp.$$" && mv -Tf "$base/current.tmp.$$" \
  "$base/current"
log "ready: $dir"
printf '%s\n' "$dir"
