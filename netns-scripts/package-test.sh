#!/usr/bin/env bash
# package-test.sh [--full]: the Debian package (debian/build-deb.sh).
#
# Short form (default, seconds): builds the .deb and checks it with dpkg-deb: the file list and
# modes, the control fields, conffiles, maintainer scripts, the unit's package edits, and that
# the packaged binary runs (--version).
# Full form (--full, or HEAVY=full; a minute or more: it downloads a Debian root): also installs
# the package with apt (pulling its declared dependencies) into a clean bookworm root made by `mmdebstrap --variant=minbase
# --include=systemd` (from Debian's mirror) and checks, inside it: the installed files, the
# nat64d group made by postinst, `nat64d --version`, `check-config` on both installed examples,
# `systemd-analyze verify` of the installed unit, and the conffile rules (a local edit survives
# a reinstall and a remove; purge deletes it).
#
# Each case is a `check` line; the last line is "N passed, N failed". A missing prerequisite is
# a failed case naming it, never a silent skip. Temporary files under a NS_PREFIX-named
# directory, deleted on exit.
# Env: NS_PREFIX (default n64-), NAT64D (default target/release/nat64d), KEEP_LOGS=1,
#      DEBIAN_SUITE (default bookworm), DEBIAN_MIRROR (default: mmdebstrap's, deb.debian.org).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
FULL=0
[ "${1:-}" = --full ] && FULL=1
[ "${HEAVY:-}" = full ] && FULL=1
PASSED=0
FAILED=0
TMP="$(new_tmp package)"
ROOT="$TMP/root"
cleanup() {
    if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
check() {
    local name="$1" rc=0 t0
    shift
    t0=$(date +%s)
    "$@" >"$TMP/case.out" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "PASS  $name ($(($(date +%s) - t0)) s)"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL  $name"
        sed 's/^/      /' "$TMP/case.out" | tail -n 20
        FAILED=$((FAILED + 1))
    fi
    return "$rc"
}
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

prereqs() {
    local miss=() t
    for t in dpkg-deb objcopy objdump gzip unshare; do command -v "$t" >/dev/null || miss+=("$t"); done
    [ -x "$NAT64D" ] || miss+=("the binary $NAT64D (cargo build --release)")
    if [ "$FULL" = 1 ]; then
        command -v mmdebstrap >/dev/null || miss+=("mmdebstrap (apt-get install mmdebstrap)")
        [ "$(id -u)" -eq 0 ] || miss+=("root (chroot into the Debian root)")
    fi
    [ "${#miss[@]}" -eq 0 ] || { echo "missing: ${miss[*]}"; return 1; }
}
check "prerequisites: dpkg-deb, binutils, the release binary$([ "$FULL" = 1 ] && echo ", mmdebstrap, root")" prereqs || finish

build() {
    local out
    out="$(NAT64D="$NAT64D" "$REPO/debian/build-deb.sh" "$TMP/out")" || { echo "$out"; return 1; }
    echo "$out"
    DEB="$(echo "$out" | sed -n 's/^\(.*\.deb\): [0-9]* bytes$/\1/p')"
    [ -f "$DEB" ] || return 1
    echo "$out" >"$TMP/size"
}
check "debian/build-deb.sh builds the .deb" build || finish
sed 's/^/      /' "$TMP/size"

contents() {
    dpkg-deb --contents "$DEB" | awk '{ print $1, $6 }' | tee "$TMP/contents"
    local f
    for f in "-rwxr-xr-x ./usr/bin/nat64d" "-rw-r--r-- ./lib/systemd/system/nat64d.service" \
        "-rw-r--r-- ./etc/nat64d/nat64d.toml" "-rw-r--r-- ./usr/share/doc/nat64d/examples/nat64d.toml" \
        "-rw-r--r-- ./usr/share/doc/nat64d/examples/nat64d-stateful.toml" \
        "-rw-r--r-- ./usr/share/doc/nat64d/copyright" "-rw-r--r-- ./usr/share/doc/nat64d/changelog.Debian.gz"; do
        grep -qxF -- "$f" "$TMP/contents" || { echo "missing or wrong mode: $f"; return 1; }
    done
    # Owned by root, nothing outside the expected trees.
    dpkg-deb --contents "$DEB" | awk '$2 != "root/root" { print "not root-owned: " $0; bad = 1 } END { exit bad }' || return 1
    awk '{ print $2 }' "$TMP/contents" | grep -vE '^\./(|etc/|etc/nat64d/.*|lib/|lib/systemd/.*|usr/|usr/bin/.*|usr/share/|usr/share/doc/.*)$' && { echo "unexpected paths above"; return 1; }
    return 0
}
check "dpkg-deb --contents: binary, unit, conffile, both examples, copyright, changelog (modes, root-owned, nothing else)" contents

control() {
    local d="$TMP/ctrl"
    dpkg-deb --control "$DEB" "$d" || return 1
    cat "$d/control"
    grep -qx "Package: nat64d" "$d/control" || return 1
    grep -qE "^Depends: .*libc6 \(>= 2\.[0-9]+\)" "$d/control" || { echo "no libc6 dependency"; return 1; }
    [ "$(cat "$d/conffiles")" = /etc/nat64d/nat64d.toml ] || { echo "conffiles: $(cat "$d/conffiles")"; return 1; }
    [ -x "$d/postinst" ] && grep -q "groupadd --system nat64d" "$d/postinst" || { echo "postinst does not make the group"; return 1; }
    sh -n "$d/postinst" && sh -n "$d/postrm"
}
check "control: Package, libc6 dependency, conffiles = /etc/nat64d/nat64d.toml, postinst makes the nat64d group" control

unit_and_binary() {
    local x="$TMP/x"
    mkdir -p "$x" && dpkg-deb --extract "$DEB" "$x" || return 1
    grep -qx "SupplementaryGroups=nat64d" "$x/lib/systemd/system/nat64d.service" || { echo "unit lacks SupplementaryGroups=nat64d"; return 1; }
    grep -qx 'ExecStart=/usr/bin/nat64d run --config /etc/nat64d/nat64d.toml' "$x/lib/systemd/system/nat64d.service" || return 1
    grep -qx 'group = "nat64d" .*' "$x/usr/share/doc/nat64d/examples/nat64d-stateful.toml" ||
        grep -q '^group = "nat64d"' "$x/usr/share/doc/nat64d/examples/nat64d-stateful.toml" || { echo "stateful example has no group"; return 1; }
    "$x/usr/bin/nat64d" --version | grep -qE "^nat64d [0-9]" || { "$x/usr/bin/nat64d" --version; return 1; }
    "$x/usr/bin/nat64d" check-config "$x/etc/nat64d/nat64d.toml"
}
check "packaged unit (SupplementaryGroups=nat64d) and example; the packaged binary runs --version and check-config" unit_and_binary

if [ "$FULL" != 1 ]; then
    echo "      (install into a clean Debian root: package-test.sh --full, or HEAVY=full)"
    finish
fi

in_root() { chroot "$ROOT" "$@"; }
debootstrap_root() {
    local t0=$SECONDS
    # shellcheck disable=SC2086
    mmdebstrap --quiet --variant=minbase --include=systemd "${DEBIAN_SUITE:-bookworm}" "$ROOT" ${DEBIAN_MIRROR:-} || return 1
    echo "mmdebstrap: $((SECONDS - t0)) s"
    [ -x "$ROOT/usr/bin/dpkg" ] && [ -x "$ROOT/usr/bin/systemd-analyze" ]
}
check "mmdebstrap --variant=minbase --include=systemd ${DEBIAN_SUITE:-bookworm}: a clean root" debootstrap_root || finish

install_pkg() {
    cp "$DEB" "$ROOT/tmp/nat64d.deb" || return 1
    ! in_root getent group nat64d || { echo "the group exists before install"; return 1; }
    # apt installs the package's declared dependencies (procps for the unit's /bin/kill is not in
    # minbase) from the mirror: a missing Depends shows up below as a failed verify.
    [ ! -e "$ROOT/bin/kill" ] || { echo "/bin/kill already in the root: the Depends check would prove nothing"; return 1; }
    in_root env DEBIAN_FRONTEND=noninteractive apt-get -q update >/dev/null || return 1
    in_root env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends /tmp/nat64d.deb || return 1
    in_root dpkg-query -W -f '${Status} ${Version}\n' nat64d | grep -q "^install ok installed " || return 1
    local f
    for f in /usr/bin/nat64d /lib/systemd/system/nat64d.service /etc/nat64d/nat64d.toml \
        /usr/share/doc/nat64d/examples/nat64d-stateful.toml; do
        in_root dpkg -S "$f" | grep -q "^nat64d: " || { echo "$f not owned by nat64d"; return 1; }
        [ -f "$ROOT$f" ] || { echo "$f missing"; return 1; }
    done
    in_root dpkg-query -W -f '${Conffiles}\n' nat64d | grep -q "^ /etc/nat64d/nat64d.toml [0-9a-f]\{32\}$" || { echo "conffile not registered"; return 1; }
    in_root getent group nat64d || { echo "postinst made no nat64d group"; return 1; }
}
check "apt-get install ./nat64d.deb into the clean root: dependencies pulled, installed, files owned by nat64d, conffile registered, postinst made the nat64d group" install_pkg || finish

check "nat64d --version (installed)" in_root /usr/bin/nat64d --version
# check-config in a new, empty network namespace: in mode nat64 it refuses pool4 addresses of
# "this host", and the build host's interfaces are not the target's.
in_root_netns() { unshare --net chroot "$ROOT" "$@"; }
check "nat64d check-config /etc/nat64d/nat64d.toml (installed example)" in_root_netns /usr/bin/nat64d check-config /etc/nat64d/nat64d.toml
check "nat64d check-config on the stateful example (control group nat64d resolved)" \
    in_root_netns /usr/bin/nat64d check-config /usr/share/doc/nat64d/examples/nat64d-stateful.toml

verify_unit() {
    local out rc=0
    out="$(in_root systemd-analyze verify /lib/systemd/system/nat64d.service 2>&1)" || rc=$?
    echo "$out"
    [ "$rc" -eq 0 ] || { echo "exit status $rc"; return 1; }
    # Clean: nothing printed about our unit.
    ! echo "$out" | grep -q "nat64d"
}
check "systemd-analyze verify /lib/systemd/system/nat64d.service (installed, in the root): clean" verify_unit

conffile_rules() {
    echo "# local edit" >>"$ROOT/etc/nat64d/nat64d.toml"
    in_root dpkg -i /tmp/nat64d.deb || return 1
    grep -q "^# local edit" "$ROOT/etc/nat64d/nat64d.toml" || { echo "reinstall overwrote the edited conffile"; return 1; }
    in_root dpkg -r nat64d || return 1
    [ ! -e "$ROOT/usr/bin/nat64d" ] || { echo "binary left after remove"; return 1; }
    grep -q "^# local edit" "$ROOT/etc/nat64d/nat64d.toml" || { echo "remove deleted the conffile"; return 1; }
    in_root dpkg --purge nat64d || return 1
    [ ! -e "$ROOT/etc/nat64d" ] || { echo "/etc/nat64d left after purge"; ls -la "$ROOT/etc/nat64d"; return 1; }
}
check "conffile: a local edit survives reinstall and remove; purge deletes /etc/nat64d" conffile_rules

finish
