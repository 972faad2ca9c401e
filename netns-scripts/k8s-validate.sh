#!/usr/bin/env bash
# k8s-validate.sh: the Kubernetes manifests of deploy/kubernetes/, validated offline against the
# Kubernetes API schemas with the PyPI package kubernetes-validate --strict (it bundles the
# schemas; --strict refuses unknown fields). No cluster and no network namespace are needed.
# Cases (`check` lines, counted by count_cases):
# - every manifest validates, each of its resources against a schema (a kind without a schema
#   is a failure, not a warning);
# - the kustomization builds offline (`kubectl kustomize`, when kubectl is installed) into every
#   resource, and its output validates too;
# - planted errors in copies of the manifests FAIL: a misspelled field (strict), a wrong type,
#   a string where a list is due, a kustomization with an unknown key or a missing resource.
# kubernetes-validate lives in a venv cached at $K8S_VALIDATE_VENV (default
# /var/cache/nat64d-test/kubernetes-validate; created with pip on first use, python3-venv
# installed when missing). If it cannot be installed the run FAILS (never skips).
# Last line: "N passed, N failed". Env: NS_PREFIX (temp dir name), K8S_VALIDATE_VENV.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=lib.sh
. netns-scripts/lib.sh

PASS=0
FAIL=0
EXPECTED="$(count_cases "$0")"
check() { # name, command... (the command's status decides)
    local name="$1"
    shift
    if "$@"; then
        echo "ok   $name"
        PASS=$((PASS + 1))
    else
        echo "FAIL $name"
        FAIL=$((FAIL + 1))
    fi
}

DIR=deploy/kubernetes
TMP="$(new_tmp k8s)"
trap 'rm -rf "$TMP"' EXIT
VENV="${K8S_VALIDATE_VENV:-/var/cache/nat64d-test/kubernetes-validate}"
KV="$VENV/bin/kubernetes-validate"

# --- kubernetes-validate in its cached venv ------------------------------------------------------
install_validator() {
    [ -x "$KV" ] && "$KV" --version >/dev/null 2>&1 && return 0
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        [ "$(id -u)" -eq 0 ] || { echo "python3-venv is missing and installing it needs root" >&2; return 1; }
        apt_install python3-venv || return 1
    fi
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")" &&
        python3 -m venv "$VENV" &&
        "$VENV/bin/pip" install -q --disable-pip-version-check kubernetes-validate &&
        "$KV" --version >/dev/null
}
if ! install_validator; then
    echo "FAIL kubernetes-validate cannot be installed into $VENV (pip install kubernetes-validate)"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "kubernetes-validate $("$KV" --version 2>&1) ($VENV)"
# kubectl builds the kustomization. Debian ships it as kubernetes-client (kubectl has had
# `kustomize` since 1.14); a machine with another kubectl keeps its own.
if ! command -v kubectl >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    apt_install kubernetes-client || echo "kubernetes-client could not be installed" >&2
fi

# validates FILE: exit 0, at least one resource passed, none without a schema, no error. The
# validator's lines are kept in $TMP/last.out for the failure cases.
validates() {
    "$KV" --strict "$1" >"$TMP/last.out" 2>&1
    local rc=$?
    sed 's/^/     /' "$TMP/last.out"
    [ "$rc" -eq 0 ] &&
        grep -q 'passed for resource' "$TMP/last.out" &&
        ! grep -qE "^(ERROR|WARN)" "$TMP/last.out"
}
# refused FILE: the validator fails on it with an ERROR line.
refused() {
    ! "$KV" --strict "$1" >"$TMP/last.out" 2>&1 && grep -q '^ERROR' "$TMP/last.out" &&
        sed 's/^/     /' "$TMP/last.out"
}
# plant NAME FILE SED-EXPR: a copy of FILE at $TMP/planted/NAME with SED-EXPR applied; fails when
# the expression changed nothing (then the case would prove nothing).
plant() {
    mkdir -p "$TMP/planted"
    sed "$3" "$2" >"$TMP/planted/$1"
    ! cmp -s "$2" "$TMP/planted/$1"
}

# --- every manifest ------------------------------------------------------------------------------
check "namespace.yaml validates" validates "$DIR/namespace.yaml"
check "configmap.yaml validates" validates "$DIR/configmap.yaml"
check "daemonset.yaml validates" validates "$DIR/daemonset.yaml"
check "service-dns64.yaml validates" validates "$DIR/service-dns64.yaml"
check "service-metrics.yaml validates" validates "$DIR/service-metrics.yaml"
listed_everywhere() { # every manifest of the directory is a case above and a kustomize resource
    local f ok=0
    for f in "$DIR"/*.yaml; do
        f="$(basename "$f")"
        [ "$f" = kustomization.yaml ] && continue
        grep -q "^check \"$f validates\"" "$0" || { echo "     $f has no validation case"; ok=1; }
        grep -qx "  - $f" "$DIR/kustomization.yaml" || { echo "     $f is not in kustomization.yaml"; ok=1; }
    done
    return "$ok"
}
check "every manifest has a case here and is listed in kustomization.yaml" listed_everywhere

# --- the kustomization, built offline -------------------------------------------------------------
kustomize_builds() {
    command -v kubectl >/dev/null 2>&1 || { echo "     kubectl not found: it builds the kustomization (kubectl kustomize)"; return 1; }
    kubectl kustomize "$1" >"$2" 2>"$TMP/kustomize.err" || { sed 's/^/     /' "$TMP/kustomize.err"; return 1; }
    local kind
    for kind in Namespace ConfigMap DaemonSet Service; do
        grep -q "^kind: $kind$" "$2" || { echo "     no $kind in the output"; return 1; }
    done
    [ "$(grep -c '^kind: Service$' "$2")" -eq 2 ]
}
check "kubectl kustomize $DIR builds every resource" kustomize_builds "$DIR" "$TMP/kustomized.yaml"
check "the kustomize output validates" validates "$TMP/kustomized.yaml"

# --- planted errors must fail -----------------------------------------------------------------------
planted_refused() { plant "$1" "$2" "$3" && refused "$TMP/planted/$1"; }
check "planted: DaemonSet with a misspelled field (nodeSelecter) is refused" \
    planted_refused ds-typo.yaml "$DIR/daemonset.yaml" 's/^      nodeSelector:/      nodeSelecter:/'
check "planted: Service port as a string is refused" \
    planted_refused svc-port.yaml "$DIR/service-dns64.yaml" '0,/port: 53/s//port: "fifty-three"/'
check "planted: ipFamilies as a string, not a list, is refused" \
    planted_refused svc-families.yaml "$DIR/service-metrics.yaml" 's/ipFamilies: \[IPv6\]/ipFamilies: IPv6/'
check "planted: probe port as a list is refused" \
    planted_refused ds-probe.yaml "$DIR/daemonset.yaml" '0,/port: metrics/s//port: [metrics]/'
kustomize_refused() { # NAME SED-EXPR: a copy of the directory with a broken kustomization
    local d="$TMP/kdir-$1"
    mkdir -p "$d" && cp "$DIR"/*.yaml "$d/" &&
        plant "kust-$1.yaml" "$DIR/kustomization.yaml" "$2" &&
        cp "$TMP/planted/kust-$1.yaml" "$d/kustomization.yaml" &&
        command -v kubectl >/dev/null 2>&1 &&
        ! kubectl kustomize "$d" >/dev/null 2>"$TMP/kustomize.err" &&
        sed 's/^/     /' "$TMP/kustomize.err"
}
check "planted: kustomization with an unknown key is refused" \
    kustomize_refused unknown-key 's/^resources:/resourcez:/'
check "planted: kustomization naming a missing manifest is refused" \
    kustomize_refused missing 's/  - service-metrics.yaml/  - service-metric.yaml/'

echo "cases: $((PASS + FAIL)) ran of $EXPECTED"
[ $((PASS + FAIL)) -ne "$EXPECTED" ] && FAIL=$((FAIL + EXPECTED - PASS - FAIL))
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
