#!/usr/bin/env bash
# Render a charter's HTML in headless Chromium and save a full-page screenshot to look at.
#   scripts/check_charter_html.sh CHARTER.html [OUT.png]
# OUT defaults to CHARTER.screenshot.png (never CHARTER.png: that name is the Markdown
# charter's plot). The page's height is measured first (a copy of the page with one line of
# script that records it), then the window is made that tall, so the whole page, sign-off
# block included, is in the picture. Needs Debian's chromium (apt-get install chromium).
# Chromium runs with networking off, so the screenshot also proves the page needs nothing
# but its own file.
set -euo pipefail
page="$(realpath "$1")"
out="${2:-${page%.html}.screenshot.png}"
width=1200
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

browse() {
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --hide-scrollbars --proxy-server="127.0.0.1:9" \
    "$@" 2>/dev/null
}

# The page is self-contained (its plots are data URIs), so the copy can live elsewhere.
probe="$work/measure.html"
sed 's|</body>|<script>document.body.dataset.pageHeight = Math.ceil(Math.max(document.documentElement.scrollHeight, document.body.scrollHeight));</script></body>|' \
  "$page" >"$probe"
height="$(browse --window-size="$width,800" --dump-dom "file://$probe" |
  grep -o 'data-page-height="[0-9]*"' | grep -o '[0-9]*' || true)"
if [[ -z "$height" ]]; then
  echo "could not measure the page height of $page" >&2
  exit 1
fi
browse --window-size="$width,$height" --screenshot="$out" "file://$page" >/dev/null
echo "screenshot: $out (${width}x${height})"
