# bench/lib.sh — helpers shared by the newer bench/ scripts (source it; bash only).
# Each script gets its own temp dir and its own processes; the EXIT trap kills only
# the pids the script started (bench_spawn records them) and removes the temp dir.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
topo=$here/../topology/examples/monitoring.json
tmp=$(mktemp -d)
pids=()
trap '{ for p in "${pids[@]}"; do kill -9 $p || true; done; wait || true; } 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$here/results"

# python3 with only the stdlib: Debian's if present, else whatever is on PATH.
if [[ -x /usr/bin/python3 ]]; then py=/usr/bin/python3; else py=python3; fi

# free_port: prints a free TCP port on 127.0.0.1.
free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_broker EDDY ARGS...: starts `eddy broker ARGS` in the background, waits
# for its bootstrap line; sets $bs (bootstrap.servers) and $broker_pid.
start_broker() {
  local eddy=$1; shift
  "$eddy" broker "$@" --bootstrap-file "$tmp/bs" >/dev/null 2>"$tmp/broker.log" &
  broker_pid=$!
  pids+=($broker_pid)
  for _ in $(seq 100); do [[ -s $tmp/bs ]] && break; sleep 0.1; done
  [[ -s $tmp/bs ]] || { echo "bench: the broker did not start" >&2; cat "$tmp/broker.log" >&2; exit 1; }
  bs=$(cut -d= -f2- "$tmp/bs")
}

# app_topics APP_ID: the --topic flags for the internal topics of monitoring.json
# under APP_ID (the broker's --topology creates them for one application id only).
app_topics() {
  local s
  for s in requests_per_endpoint endpoint_stats status_codes region_stats; do
    printf -- '--topic\n%s-%s-changelog:12\n' "$1" "$s"
  done
  printf -- '--topic\n%s-dlq:12\n--topic\n%s-instances:1\n' "$1" "$1"
}

# wait_serving PORT [TIMEOUT_S]: until /api/health shows every source partition
# running on this instance.
wait_serving() {
  "$py" - "$1" "${2:-60}" <<'PY'
import json, sys, time, urllib.request
port, timeout = sys.argv[1], float(sys.argv[2])
deadline = time.time() + timeout
while time.time() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
            h = json.load(r)
        parts = h["partitions"]
        if len(parts) == h["source_partitions"] and all(p["state"] == "running" for p in parts):
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.05)
sys.exit("bench: eddy run did not serve in time")
PY
}
