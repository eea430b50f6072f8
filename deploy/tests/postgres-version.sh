#!/usr/bin/env bash
# One PostgreSQL major version everywhere: every image tag (postgres:NN, also
# jwt-platform/postgres:NN), Debian package (postgresql-NN), install path (postgresql/NN/) and
# PG_MAJOR / TEST_POSTGRES_TAG default in deploy/, scripts/, .ci/ and testkit/ must name the same major version, the
# one the tests and the air-gapped image run. Fails, listing every occurrence, when they differ.
#
#   bash deploy/tests/postgres-version.sh
#   PG_VERSION_ROOT=/some/checkout bash deploy/tests/postgres-version.sh
set -euo pipefail

ROOT="${PG_VERSION_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
cd "$ROOT"

# ERE alternatives; each captures the version as the last run of digits of the match. Two digits
# at most, so that host:port pairs such as postgres:5432 are not versions.
PATTERN='postgres:[0-9]{1,2}([^0-9]|$)|postgresql-[0-9]{1,2}([^0-9]|$)|postgresql/[0-9]{1,2}/|(PG_MAJOR|TEST_POSTGRES_TAG)(=|:-)[0-9]{1,2}([^0-9]|$)'

dirs=()
for d in deploy scripts .ci testkit; do [ -e "$d" ] && dirs+=("$d"); done

# file:line:match, one line per occurrence.
hits="$(grep -rnoE --binary-files=without-match "$PATTERN" "${dirs[@]}" \
    | while IFS= read -r hit; do
        file="${hit%%:*}"
        [ "$(cd "$(dirname "$file")" && pwd)/$(basename "$file")" = "$SELF" ] && continue
        # Without the character after the version that the pattern needed.
        printf '%s\n' "$hit" | sed -E 's/[^0-9/]$//'
    done || true)"

if [ -z "$hits" ]; then
    echo "postgres-version: FAILED: no PostgreSQL version found in ${dirs[*]} (pattern out of date?)"
    exit 1
fi

versions="$(printf '%s\n' "$hits" | sed -E 's/^[^:]*:[0-9]+://; s/[^0-9]*$//; s/.*[^0-9]//' | sort -un)"
count="$(printf '%s\n' "$versions" | wc -l)"
occurrences="$(printf '%s\n' "$hits" | wc -l)"
if [ "$count" -ne 1 ]; then
    echo "postgres-version: FAILED: $count PostgreSQL major versions ($(echo $versions | tr ' ' ',')):"
    printf '%s\n' "$hits" | sed -E 's/^/    /'
    exit 1
fi
echo "postgres-version: ok, PostgreSQL $versions in all $occurrences occurrences"
