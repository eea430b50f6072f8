#!/usr/bin/env bash
# Regenerates the README's pictures under docs/images/ (the hosted login page, the demo app with
# orders, the demo app during an auth-server outage, Swagger UI's Authorize dialog). They are
# taken by the real-browser tests themselves (tests/tests/browser), so a picture always shows
# what a passing test saw.
#
#   scripts/screenshots.sh
#
# Needs Debian's `chromium` and `chromium-driver` (or CHROMIUM / CHROMEDRIVER naming others).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUIRE_BROWSER=1 WRITE_SCREENSHOTS=1 cargo test --locked -p e2e --test browser
ls -l docs/images/*.png
