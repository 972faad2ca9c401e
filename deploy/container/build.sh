#!/usr/bin/env bash
# build.sh [IMAGE]: builds the nat64d image (default tag localhost/nat64d:latest) FROM scratch
# out of the release binary, with podman (or buildah when podman is absent). No registry is
# contacted.
#
# Env: NAT64D   the binary (default target/release/nat64d; a static musl build needs no
#               libraries and gives a smaller image)
#      PODMAN   the command prefix to build with, e.g. "podman --root DIR --runroot DIR"
#               (default: podman, else "buildah")
# Prints the image's size on its last line: "image IMAGE: N bytes".
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
IMAGE="${1:-localhost/nat64d:latest}"
BIN="${NAT64D:-$REPO/target/release/nat64d}"
[ -x "$BIN" ] || { echo "build.sh: no binary at $BIN (cargo build --release first)" >&2; exit 1; }
if [ -z "${PODMAN:-}" ]; then
    if command -v podman >/dev/null; then PODMAN=podman
    elif command -v buildah >/dev/null; then PODMAN=buildah
    else echo "build.sh: needs podman or buildah (Debian: apt-get install podman buildah runc)" >&2; exit 1
    fi
fi
CTX="$(mktemp -d "${TMPDIR:-/tmp}/nat64d-image.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
R="$CTX/rootfs"
mkdir -p "$R/usr/bin" "$R/etc/nat64d" "$R/run/nat64d" "$R/tmp"
chmod 1777 "$R/tmp"
# Debug info stays in target/; the image gets the stripped binary.
if command -v objcopy >/dev/null; then
    objcopy --strip-all "$BIN" "$R/usr/bin/nat64d"
else
    cp "$BIN" "$R/usr/bin/nat64d"
fi
# The libraries the dynamic loader will look for, at the paths ldd names (nothing for a static
# binary: ldd then prints "not a dynamic executable" / "statically linked").
while read -r lib; do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
done < <(ldd "$BIN" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | sort -u)
cp "$HERE/nat64d.toml" "$R/etc/nat64d/nat64d.toml"
cp "$HERE/Containerfile" "$CTX/Containerfile"
# shellcheck disable=SC2086
$PODMAN build --quiet -t "$IMAGE" -f "$CTX/Containerfile" "$CTX" >/dev/null
# shellcheck disable=SC2086
size="$($PODMAN image inspect --format '{{.Size}}' "$IMAGE")"
echo "image $IMAGE: $size bytes"
