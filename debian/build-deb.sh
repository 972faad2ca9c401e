#!/usr/bin/env bash
# build-deb.sh [OUTDIR]: builds nat64d_VERSION-1_ARCH.deb from the release binary with dpkg-deb
# (no debhelper, no cargo-deb: the package is one binary, a unit, two example configs and a
# group, and every file it holds is listed here).
#
#   /usr/bin/nat64d                              stripped release binary
#   /lib/systemd/system/nat64d.service           systemd/nat64d.service, plus
#                                                SupplementaryGroups=nat64d (control socket group)
#   /etc/nat64d/nat64d.toml                      conffile: the stateless example (systemd/nat64d.toml)
#   /usr/share/doc/nat64d/examples/              nat64d.toml, nat64d-stateful.toml (with
#                                                nat64.control.group = "nat64d")
#   /usr/share/doc/nat64d/{README.md,copyright,changelog.Debian.gz}
# postinst creates the system group `nat64d`; members run `nat64d sessions` / `bib` without root.
# /etc/nat64d/nat64d.toml is a conffile: dpkg keeps a locally edited copy on upgrade (asking, or
# writing .dpkg-dist) and removes it only on purge.
#
# Depends: libc6/libgcc-s1 (ldd), passwd (groupadd in postinst), procps (the unit's ExecReload
# runs /bin/kill; a minbase root has none).
#
# Env: NAT64D (default target/release/nat64d). Prints the .deb's path and size on its last line.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
OUT="${1:-$REPO/target/debian}"
BIN="${NAT64D:-$REPO/target/release/nat64d}"
[ -x "$BIN" ] || { echo "build-deb.sh: no binary at $BIN (cargo build --release first)" >&2; exit 1; }
for t in dpkg-deb objcopy gzip; do
    command -v "$t" >/dev/null || { echo "build-deb.sh: needs $t" >&2; exit 1; }
done
VERSION="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$REPO/Cargo.toml" | head -n 1)-1"
ARCH="$(dpkg --print-architecture)"
# The newest glibc symbol version the binary uses: the libc6 it needs.
GLIBC="$(objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/nat64d-deb.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
R="$STAGE/root"
DOC="$R/usr/share/doc/nat64d"
install -d -m 0755 "$R/DEBIAN" "$R/usr/bin" "$R/lib/systemd/system" "$R/etc/nat64d" "$DOC/examples"
objcopy --strip-all "$BIN" "$R/usr/bin/nat64d"
chmod 0755 "$R/usr/bin/nat64d"
# The unit, with the control socket's group as a supplementary group of the dynamic user (so it
# may give the socket that group), and its install comment fitted to the package's paths.
sed -e 's|^RuntimeDirectory=nat64d$|SupplementaryGroups=nat64d\n&|' \
    -e 's|^# Install: binary at .*|# Installed by the nat64d Debian package (binary /usr/bin/nat64d, this unit, and|' \
    -e 's|^# at /etc/nat64d/nat64d.toml (example: systemd/nat64d.toml). The host must forward packets:|# /etc/nat64d/nat64d.toml; examples in /usr/share/doc/nat64d/examples). The host must forward:|' \
    "$REPO/systemd/nat64d.service" >"$R/lib/systemd/system/nat64d.service"
grep -q '^SupplementaryGroups=nat64d$' "$R/lib/systemd/system/nat64d.service" ||
    { echo "build-deb.sh: could not add SupplementaryGroups to the unit" >&2; exit 1; }
install -m 0644 "$REPO/systemd/nat64d.toml" "$R/etc/nat64d/nat64d.toml"
install -m 0644 "$REPO/systemd/nat64d.toml" "$DOC/examples/nat64d.toml"
sed 's|^# group = "nat64d" .*|group = "nat64d"        # members list the tables (the package creates this group)|' \
    "$REPO/systemd/nat64d-stateful.toml" >"$DOC/examples/nat64d-stateful.toml"
chmod 0644 "$DOC/examples/nat64d-stateful.toml"
install -m 0644 "$REPO/README.md" "$DOC/README.md"
cat >"$DOC/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: nat64d

Files: *
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPY
printf 'nat64d (%s) unstable; urgency=medium\n\n  * Package built from the nat64d repository.\n\n -- nat64d maintainers <nat64d@example.org>  %s\n' \
    "$VERSION" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")" | gzip -9n >"$DOC/changelog.Debian.gz"
chmod 0644 "$DOC/copyright" "$DOC/changelog.Debian.gz"

install -m 0644 "$HERE/conffiles" "$R/DEBIAN/conffiles"
install -m 0755 "$HERE/postinst" "$HERE/postrm" "$R/DEBIAN/"
SIZE_KB="$(du -sk --exclude=DEBIAN "$R" | cut -f1)"
cat >"$R/DEBIAN/control" <<CTRL
Package: nat64d
Version: $VERSION
Architecture: $ARCH
Maintainer: nat64d maintainers <nat64d@example.org>
Installed-Size: $SIZE_KB
Depends: libc6 (>= $GLIBC), libgcc-s1, passwd, procps
Section: net
Priority: optional
Description: userspace NAT64/SIIT/DNS64 gateway
 nat64d translates between IPv6 and IPv4 on a TUN device: stateless (SIIT,
 RFC 7915 with RFC 6052 prefixes and an RFC 7757 EAMT) or stateful NAT64
 (RFC 6146), with an optional DNS64 server (RFC 6147). It configures its own
 link, addresses and routes over rtnetlink and runs under systemd with only
 CAP_NET_ADMIN and CAP_NET_BIND_SERVICE.
CTRL
mkdir -p "$OUT"
DEB="$OUT/nat64d_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$R" "$DEB" >/dev/null
echo "$DEB: $(stat -c %s "$DEB") bytes"
