#!/usr/bin/env bash
# make image: the production image from deploy/Dockerfile, built with buildah (no daemon:
# `--isolation chroot`, vfs storage), so it builds on a machine with no container engine.
#
# Base: IMAGE_BASE when given (say docker.io/library/debian:bookworm-slim where a registry is
# reachable); otherwise a Debian bookworm made by debootstrap from Debian's own packages and
# imported once as localhost/debian-debootstrap:bookworm (cached in buildah's storage; its
# rootfs in the cache directory). Binaries: the host's `cargo build --release --locked` of the
# four binaries, handed to the Dockerfile's `prebuilt` stage (no Rust image can be pulled
# here; everyone else builds with the default BINARIES=builder).
#
# The debootstrap base gets bookworm-security's updates and is made again when older than
# BASE_MAX_AGE_DAYS (7), so a cached base does not keep a fixed CVE for ever.
#
# Prints the image name, its size and what is in it. Installs buildah and debootstrap with
# apt-get when missing (CI may be a brand-new Debian machine). Needs root (debootstrap,
# buildah's vfs storage).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE_DIR="${CACHE_DIR:-$HOME/.cache/credential-anchor}"
: "${CARGO_TARGET_DIR:=$CACHE_DIR/target}"
export CARGO_TARGET_DIR
IMAGE="${IMAGE:-localhost/credential-anchor:$(git describe --always --dirty)}"
BASE_MAX_AGE_DAYS="${BASE_MAX_AGE_DAYS:-7}"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
LOCAL_BASE="localhost/debian-debootstrap:$DEBIAN_SUITE"
BUILDAH=(buildah --storage-driver vfs)
BINARIES=(issuer-api outbox-relay reconciler credential-verify)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return
  say "installing $2 (apt-get)"
  local sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
need buildah buildah
need debootstrap debootstrap

ctr=""
trap '[[ -z "$ctr" ]] || "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT

base="${IMAGE_BASE:-}"
if [[ -z "$base" ]]; then
  base="$LOCAL_BASE"
  rootfs="$CACHE_DIR/image/rootfs-$DEBIAN_SUITE"
  if [[ ! -f "$rootfs.complete" ]] \
    || [[ -n "$(find "$rootfs.complete" -mtime "+$BASE_MAX_AGE_DAYS" 2>/dev/null)" ]]; then
    say "debootstrap $DEBIAN_SUITE (minbase + ca-certificates) from $DEBIAN_MIRROR, then its security updates"
    rm -rf "$rootfs" "$rootfs.complete" && mkdir -p "$(dirname "$rootfs")"
    log="$CACHE_DIR/image/debootstrap.log"
    # One && chain: `set -e` does not apply inside a list that ends in `||`.
    debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" \
        > "$log" 2>&1 \
      && echo "deb $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main" \
        > "$rootfs/etc/apt/sources.list.d/security.list" \
      && chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >> "$log" 2>&1 \
      && chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq >> "$log" 2>&1 \
      && chroot "$rootfs" apt-get clean >> "$log" 2>&1 \
      || { tail -20 "$log" >&2; exit 1; }
    rm -rf "$rootfs"/var/lib/apt/lists/*
    "${BUILDAH[@]}" rmi -f "$base" >/dev/null 2>&1 || true
    touch "$rootfs.complete"
  fi
  if ! "${BUILDAH[@]}" inspect --type image "$base" >/dev/null 2>&1; then
    say "importing the debootstrap rootfs as $base"
    tar -C "$rootfs" --numeric-owner -cf "$CACHE_DIR/image/base.tar" .
    ctr="$("${BUILDAH[@]}" from scratch)"
    "${BUILDAH[@]}" add "$ctr" "$CACHE_DIR/image/base.tar" / >/dev/null
    "${BUILDAH[@]}" config --cmd /bin/bash "$ctr"
    "${BUILDAH[@]}" commit --rm -q "$ctr" "$base" >/dev/null
    ctr=""
    rm -f "$CACHE_DIR/image/base.tar"
  fi
fi

say "release build of ${BINARIES[*]}"
cargo build --release --locked --bins -p issuer-api -p outbox-relay -p reconciler -p verifier

say "building $IMAGE from deploy/Dockerfile (base $base, prebuilt binaries)"
context="$CACHE_DIR/image/context"
rm -rf "$context" && mkdir -p "$context/image-bin"
cp deploy/Dockerfile "$context/Dockerfile"
cp -r config "$context/config"
for b in "${BINARIES[@]}"; do cp "$CARGO_TARGET_DIR/release/$b" "$context/image-bin/"; done
"${BUILDAH[@]}" bud --isolation chroot --layers=false -q \
  --build-arg BASE="$base" --build-arg BINARIES=prebuilt \
  -f "$context/Dockerfile" -t "$IMAGE" "$context" >/dev/null
"${BUILDAH[@]}" tag "$IMAGE" localhost/credential-anchor:latest
# buildah 1.28 leaves a working container behind for the `FROM ${BINARIES}` stage (on an
# untagged image), and earlier builds of the same tag are left untagged: drop both (vfs
# copies every layer, so they add up).
"${BUILDAH[@]}" containers --format '{{.ContainerName}}' \
  | grep -E '^[0-9a-f]{12}-working-container$' | xargs -r "${BUILDAH[@]}" rm >/dev/null 2>&1 || true
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true

say "what is in $IMAGE"
ctr="$("${BUILDAH[@]}" from -q "$IMAGE")"
mnt="$("${BUILDAH[@]}" mount "$ctr")"
(cd "$mnt" && find . -type f -printf '%10s  %p\n' | sort -k2)
echo "size: $(du -sb "$mnt" | cut -f1) bytes unpacked ($(du -sh "$mnt" | cut -f1)); user $("${BUILDAH[@]}" inspect --format '{{.OCIv1.Config.User}}' "$IMAGE")"
echo "image: $IMAGE (also localhost/credential-anchor:latest)"
