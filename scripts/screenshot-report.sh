#!/usr/bin/env bash
# Renders a run's report.html in headless Chromium and writes a PNG, to look at the page as an
# admin would. Needs Debian's chromium (apt-get install chromium); not part of CI.
#   scripts/screenshot-report.sh [reports/latest/report.html] [report.png]
set -euo pipefail
page="${1:-reports/latest/report.html}"
png="${2:-${page%.html}.png}"
[ -f "$page" ] || { echo "no $page: run \`cargo run --release -- run\` first" >&2; exit 2; }
command -v chromium >/dev/null || { echo "chromium not found: apt-get install chromium" >&2; exit 2; }
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1360,4200 --screenshot="$png" "file://$(realpath "$page")" 2>/dev/null
echo "wrote $png"
