#!/usr/bin/env bash
# kafka_script.sh — scripts/kafka's contract on one node: usage errors exit 2; a
# taken --port is refused before anything starts, naming the port; up writes
# DIR/bootstrap and a second up says "already up"; kill -9 of the node shows in
# status, start brings it back ready (a transaction commits); topics creates and
# checks partition counts; down stops it, a second down says "already down", and
# no broker process is left. Needs Java 17+ and Maven: fails without them.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
kafka=$here/scripts/kafka
tmp=$(mktemp -d)
dir=$tmp/k
busy_pid=""
cleanup() {
  "$kafka" down --dir "$dir" >/dev/null 2>&1
  [[ -n $busy_pid ]] && kill "$busy_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
# run CODE DESCRIPTION -- ARGS...: scripts/kafka ARGS, exit code CODE expected.
run() {
  local want=$1 what=$2; shift 3
  "$kafka" "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?
  if [[ $got -eq $want ]]; then ok; else bad "$what: exit $got, want $want: $(tail -c 600 "$tmp/err")"; fi
}

run 0 "--help" -- --help
grep -q "^  scripts/kafka up" "$tmp/out" && ok || bad "--help does not describe up"
run 2 "no command" --
run 2 "unknown command" -- frob
run 2 "bad --nodes" -- up --nodes 2 --dir "$dir"
run 2 "start without NODE" -- start --dir "$dir"
run 1 "kill without a cluster" -- kill 1 --dir "$dir"

# A port in use is refused up front, with the port named and nothing started.
busy=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(120)' "$((busy + 1))" &
busy_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$((busy + 1))") 2>/dev/null && break; sleep 0.1; done
run 1 "--port with its controller port taken" -- up --dir "$dir" --port "$busy"
grep -q "port $((busy + 1)) is in use" "$tmp/err" && ok || bad "taken port not named: $(cat "$tmp/err")"
[[ ! -e $dir/node1/pid ]] && ok || bad "a node was started although its port was taken"
kill "$busy_pid"; busy_pid=""
rm -rf "$dir"

t0=$SECONDS
run 0 "up" -- up --dir "$dir"
up_s=$((SECONDS - t0))
grep -qE '^bootstrap.servers=127\.0\.0\.1:[0-9]+$' "$dir/bootstrap" && ok || bad "bootstrap file: $(cat "$dir/bootstrap" 2>&1)"
run 0 "up again" -- up --dir "$dir"
grep -q "already up" "$tmp/err" && ok || bad "second up: $(cat "$tmp/err")"
run 1 "up with another node count" -- up --nodes 3 --dir "$dir"
grep -q "holds a 1-node cluster" "$tmp/err" && ok || bad "node count mismatch: $(cat "$tmp/err")"
run 0 "status" -- status --dir "$dir"
grep -q "^node 1  up" "$tmp/out" && ok || bad "status: $(cat "$tmp/out")"

run 0 "topics" -- topics --dir "$dir" t-one:3 t-two:5
run 0 "topics again" -- topics --dir "$dir" t-one:3
run 1 "topics with another partition count" -- topics --dir "$dir" t-one:4
grep -q "t-one exists with 3 partitions, not 4" "$tmp/err" && ok || bad "partition mismatch: $(cat "$tmp/err")"

pid=$(cat "$dir/node1/pid")
run 0 "kill 1" -- kill 1 --dir "$dir"
! kill -0 "$pid" 2>/dev/null && ok || bad "node 1 (pid $pid) survived kill"
run 1 "status with node 1 down" -- status --dir "$dir"
grep -q "^node 1  down" "$tmp/out" && ok || bad "status after kill: $(cat "$tmp/out")"
run 0 "kill 1 again" -- kill 1 --dir "$dir"
grep -q "not running" "$tmp/err" && ok || bad "second kill: $(cat "$tmp/err")"
t0=$SECONDS
run 0 "start 1" -- start 1 --dir "$dir"
start_s=$((SECONDS - t0))
run 0 "status after start" -- status --dir "$dir"
run 0 "start 1 again" -- start 1 --dir "$dir"
grep -q "already running" "$tmp/err" && ok || bad "second start: $(cat "$tmp/err")"

pid=$(cat "$dir/node1/pid")
run 0 "down" -- down --dir "$dir"
! kill -0 "$pid" 2>/dev/null && ok || bad "node 1 (pid $pid) survived down"
run 0 "down again" -- down --dir "$dir"
grep -q "already down" "$tmp/err" && ok || bad "second down: $(cat "$tmp/err")"
run 0 "down --wipe" -- down --dir "$dir" --wipe
[[ ! -e $dir ]] && ok || bad "--wipe left $dir"

echo "kafka_script: $passed passed, $failed failed (up ${up_s} s, start after kill ${start_s} s)"
[[ $failed -eq 0 ]]
