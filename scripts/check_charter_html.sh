#!/usr/bin/env bash
# Render a charter's HTML in headless Chromium and save a screenshot to look at.
#   scripts/check_charter_html.sh CHARTER.html [OUT.png]
# Needs Debian's chromium (apt-get install chromium). Chromium runs with networking off,
# so the screenshot also proves the page needs nothing but its own file.
set -euo pipefail
page="$(realpath "$1")"
out="${2:-${page%.html}.png}"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1200,3200 --hide-scrollbars \
  --proxy-server="127.0.0.1:9" --screenshot="$out" "file://$page" 2>/dev/null
echo "screenshot: $out"
