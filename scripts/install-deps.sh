#!/usr/bin/env bash
# Installs what builds and tests need on a fresh Debian machine of this kind; a no-op when
# everything is already there. Every install step of the project lives here or in
# install-validator.sh, so CI on a brand-new machine needs nothing done by hand.
set -euo pipefail

SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
apt_updated=0
apt_install() {
  if [[ $apt_updated -eq 0 ]]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

# PostgreSQL 15 server binaries (initdb, pg_ctl) and client tools (psql, pg_dump).
if ! command -v initdb >/dev/null 2>&1 && [[ ! -x /usr/lib/postgresql/15/bin/initdb ]]; then
  echo "installing PostgreSQL 15 server"
  apt_install postgresql-15 postgresql-client-15
fi
if ! command -v psql >/dev/null 2>&1; then
  apt_install postgresql-client-15
fi
# initdb refuses root: the harness runs the server as this user.
if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
# Font for the benchmark plots (plotters renders text with it; no system font library needed).
if [[ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]]; then
  apt_install fonts-dejavu-core
fi
# python3: scripts/chaos-report.py and the schemathesis virtualenv.
if ! command -v python3 >/dev/null 2>&1; then
  apt_install python3
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  apt_install python3-venv
fi
# A C++ compiler: libfuzzer-sys's build script compiles libFuzzer (`make fuzz-check`).
if ! command -v c++ >/dev/null 2>&1; then
  apt_install g++
fi
if ! command -v curl >/dev/null 2>&1; then
  apt_install curl
fi
# Headless Chromium and its WebDriver: the /verify page test drives a real browser.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver"
  apt_install chromium chromium-driver
fi
# cargo-machete (`make lint`: fails on a dependency no code uses), pinned, under the cache.
MACHETE_VERSION=0.9.2
MACHETE_ROOT="${CACHE_DIR:-$HOME/.cache/credential-anchor}/tools/cargo-machete"
if ! "$MACHETE_ROOT/bin/cargo-machete" --version 2>/dev/null | grep -q "$MACHETE_VERSION"; then
  echo "installing cargo-machete $MACHETE_VERSION"
  cargo install --locked cargo-machete --version "$MACHETE_VERSION" --root "$MACHETE_ROOT"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
