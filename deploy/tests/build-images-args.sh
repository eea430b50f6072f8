#!/usr/bin/env bash
# build-images.sh re-runs itself under sudo when it is not root. That re-run must get every
# argument of the original command line (--only, --bin-dir, --tag, ...), not what is left after
# the script's own argument loop has shifted them away.
#
# No root, docker or sudo is used: fake `id` (reports uid 1000), `docker` (always succeeds) and
# `sudo` (writes its arguments, one per line, to a file and exits 0) come first on PATH.
#
#   bash deploy/tests/build-images-args.sh
#   BUILD_IMAGES=/path/to/other/build-images.sh bash deploy/tests/build-images-args.sh
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPT="${BUILD_IMAGES:-$REPO_ROOT/deploy/airgap/build-images.sh}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/bin"
cat >"$WORK/bin/id" <<'EOF'
#!/bin/sh
if [ "$1" = "-u" ]; then echo 1000; else echo "uid=1000(tester) gid=1000(tester)"; fi
EOF
cat >"$WORK/bin/docker" <<'EOF'
#!/bin/sh
exit 0
EOF
cat >"$WORK/bin/sudo" <<EOF
#!/bin/sh
for arg in "\$@"; do printf '%s\n' "\$arg"; done >"$WORK/sudo-args"
exit 0
EOF
chmod 755 "$WORK/bin/id" "$WORK/bin/docker" "$WORK/bin/sudo"

PASSED=0
FAILED=0
# case name, then the arguments given to build-images.sh; the sudo re-run must get them all, in
# order, after `-E <script>`.
check() {
    local name="$1" expected actual
    shift
    rm -f "$WORK/sudo-args"
    # AIRGAP_CACHE in the scratch dir: should the script ever go on instead of re-running, it
    # writes nothing outside it.
    if ! PATH="$WORK/bin:$PATH" AIRGAP_CACHE="$WORK/cache" bash "$SCRIPT" "$@" >"$WORK/out" 2>&1; then
        echo "FAIL $name: build-images.sh exited non-zero:"; sed 's/^/    /' "$WORK/out"
        FAILED=$((FAILED + 1)); return
    fi
    if [ ! -f "$WORK/sudo-args" ]; then
        echo "FAIL $name: sudo was not called"; sed 's/^/    /' "$WORK/out"
        FAILED=$((FAILED + 1)); return
    fi
    expected="$(printf '%s\n' -E "$SCRIPT" "$@")"
    actual="$(cat "$WORK/sudo-args")"
    if [ "$actual" = "$expected" ]; then
        echo "ok   $name"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL $name: sudo got"; sed 's/^/    /' "$WORK/sudo-args"
        echo "  expected"; printf '    %s\n' -E "$SCRIPT" "$@"
        FAILED=$((FAILED + 1))
    fi
}

check "separate values" --only base --bin-dir X --tag Y
check "--flag=value forms" --only=base,postgres --bin-dir=/opt/bin --tag=ci-42 --rebuild
check "a value with spaces" --only postgres --bin-dir "$WORK/dir with spaces" --tag Y

echo "build-images-args: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
