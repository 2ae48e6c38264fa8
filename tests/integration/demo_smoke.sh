#!/usr/bin/env bash
# demo_smoke.sh EDDY_BIN — README command #1 keeps working: scripts/demo (what
# `make demo` runs) starts broker, generator and processor, the processor commits
# records and answers window queries, serves the dashboard at / when it is built
# (<dir of EDDY_BIN>/ui/dist), and:
#   * it announces the dashboard only when there is something to see: all four
#     panels' stores serve windows within 3 s of the "demo: running" banner;
#   * Ctrl-C as a terminal sends it (SIGINT to the whole foreground process group)
#     stops it cleanly: processor first, every component with exit 0, the demo
#     with exit 0, no process left behind;
#   * a dashboard address in use stops it at once, naming EDDY_DEMO_HTTP.
set -euo pipefail
eddy=${1:?usage: demo_smoke.sh EDDY_BIN}
here=$(cd "$(dirname "$0")/../.." && pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(round($2 - $1, 1))"; }
port=$(free_port)
out=$(mktemp)
# The demo as a terminal runs it: its own process group (the terminal's foreground
# group) with SIGINT at its default, whatever this script inherited.
start=$(now)
EDDY_DEMO_HTTP=127.0.0.1:$port EDDY_DEMO_RATE=5000 python3 -c '
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.setsid()
os.execvp(sys.argv[1], sys.argv[1:])' "$here/scripts/demo" "$eddy" >"$out" 2>&1 &
demo=$!
trap 'kill -9 -- -$demo 2>/dev/null || true; rm -f "$out"' EXIT
url() { echo "http://127.0.0.1:$port/api/stores/$1/windows?from=0&to=9999999999999"; }
windows() { curl -sf "$(url "$1")" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["windows"]))' 2>/dev/null || echo 0; }
all_four() {
  local s
  for s in requests_per_endpoint endpoint_stats status_codes region_stats; do
    [[ $(windows $s) -gt 0 ]] || return 1
  done
}

# Served, not only committed: while the group rebalances no partition is owned and
# the windows answer is empty and "complete": false, so the test waits for both.
serving="" banner="" ok=0
for _ in $(seq 600); do
  [[ -z $serving ]] && curl -sf -o /dev/null "http://127.0.0.1:$port/api/health" && serving=$(now)
  if grep -q "^demo: running" "$out"; then banner=$(now); break; fi
  kill -0 $demo 2>/dev/null || break
  sleep 0.1
done
[[ -n $banner ]] || { echo "demo_smoke: no 'demo: running' banner within 60 s"; cat "$out"; exit 1; }
for _ in $(seq 30); do
  if all_four; then ok=1; break; fi
  sleep 0.1
done
first=$(now)
[[ $ok == 1 ]] || {
  echo "demo_smoke: 3 s after the banner the dashboard's stores still serve no windows"
  curl -s "$(url requests_per_endpoint)"
  cat "$out"
  exit 1
}
figures=$(elapsed "$banner" "$first")
live=$(elapsed "$start" "$first")
[[ -n $serving ]] && served=$(elapsed "$serving" "$first") || served="?"
# The dashboard is live (data committed and served) within 30 s of the start.
python3 -c "import sys; sys.exit(0 if $live < 30 else 1)" ||
  { echo "demo_smoke: data only after $live s (the goal is 30 s)"; cat "$out"; exit 1; }
python3 - "$(url requests_per_endpoint)" "http://127.0.0.1:$port/api/health" <<'PY' ||
import json, sys, urllib.request
assert json.load(urllib.request.urlopen(sys.argv[1]))["windows"]
assert json.load(urllib.request.urlopen(sys.argv[2]))["totals"]["committed_records"] > 0
PY
  { echo "demo_smoke: windows or committed records missing"; cat "$out"; exit 1; }
page="not built"
if [[ -f "$(dirname "$eddy")/ui/dist/index.html" ]]; then
  curl -sf "http://127.0.0.1:$port/" | grep -q 'src="app.js"' ||
    { echo "demo_smoke: GET / does not serve the dashboard"; exit 1; }
  curl -sf -o /dev/null "http://127.0.0.1:$port/app.js" ||
    { echo "demo_smoke: GET /app.js failed"; exit 1; }
  grep -q "dashboard  http://127.0.0.1:$port/" "$out" ||
    { echo "demo_smoke: the demo did not print the dashboard's URL"; cat "$out"; exit 1; }
  page="served"
fi

# The dashboard's address in use: the second demo refuses at once and says how.
rc=0
EDDY_DEMO_HTTP=127.0.0.1:$port timeout 20 "$here/scripts/demo" "$eddy" >"$out.busy" 2>&1 || rc=$?
grep -q "EDDY_DEMO_HTTP=" "$out.busy" && [[ $rc == 1 ]] ||
  { echo "demo_smoke: a busy port gave exit $rc and:"; cat "$out.busy"; rm -f "$out.busy"; exit 1; }
rm -f "$out.busy"

# Ctrl-C: SIGINT to the demo's whole process group, as a terminal sends it.
children=$(pgrep -P $demo | tr '\n' ' ')
kill -INT -- -$demo
rc=0; wait $demo || rc=$?
[[ $rc == 0 ]] || { echo "demo_smoke: the demo exited with $rc on Ctrl-C"; cat "$out"; exit 1; }
! grep -q "exited unexpectedly" "$out" || { echo "demo_smoke: Ctrl-C looked like a crash"; cat "$out"; exit 1; }
order=$(sed -n 's/^demo: \([a-z]*\) stopped (exit \([0-9]*\))$/\1=\2/p' "$out" | tr '\n' ' ')
[[ $order == "processor=0 generator=0 broker=0 " ]] ||
  { echo "demo_smoke: components stopped as '$order', want processor, generator, broker, each exit 0"; cat "$out"; exit 1; }
for pid in $children; do
  if kill -0 "$pid" 2>/dev/null; then echo "demo_smoke: process $pid outlived the demo"; exit 1; fi
done
echo "demo_smoke: ok (windows in all four stores $figures s after the banner, $served s after the" \
  "HTTP server answered, $live s after the start; dashboard $page; Ctrl-C: $order)"
