#!/usr/bin/env bash
# cli_contract.sh EDDY_BIN — the command-line contract of `eddy`:
#   * `eddy --help` lists the commands, each answers --help with exit 0;
#   * usage errors exit 2 with exactly one line on stderr;
#   * `eddy broker` prints exactly one bootstrap.servers line on stdout, says what
#     it is on stderr, writes --bootstrap-file and removes it on SIGTERM (exit 0);
#   * `eddy broker --control` answers each fault-injection command on stdin with one
#     `ok` or `error: ...` line after the bootstrap line, and stops on quit or EOF;
#   * `eddy gen` ends with one JSON summary line and exits 0 / 1 as documented.
set -u
eddy=${1:?usage: cli_contract.sh EDDY_BIN}
tmp=$(mktemp -d)
broker_pid=""
cleanup() { [[ -n $broker_pid ]] && kill -9 "$broker_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# expect_exit CODE DESCRIPTION -- CMD...: runs CMD, checks its exit code.
expect_exit() {
  local want=$1 what=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?
  if [[ $got -eq $want ]]; then ok; else bad "$what: exit $got, want $want ($(head -c 300 "$tmp/err"))"; fi
}

# expect_usage DESCRIPTION -- CMD...: exit 2 and a single-line reason on stderr.
expect_usage() {
  local what=$1; shift 2
  expect_exit 2 "$what" -- "$@"
  local lines; lines=$(wc -l <"$tmp/err")
  if [[ $lines -eq 1 ]]; then ok; else bad "$what: $lines lines on stderr, want 1"; fi
}

expect_exit 0 "eddy --help" -- "$eddy" --help
commands=$(awk '/^commands:/{on=1;next} on&&/^  [a-z]/{print $1} on&&/^$/{on=0}' "$tmp/out")
[[ -n $commands ]] && ok || bad "eddy --help lists no commands"
for c in broker gen topology run; do grep -qx "$c" <<<"$commands" && ok || bad "eddy --help does not list $c"; done
for c in $commands; do
  expect_exit 0 "eddy $c --help" -- "$eddy" "$c" --help
  grep -q "^usage: eddy $c" "$tmp/out" && ok || bad "eddy $c --help does not start with usage"
done
expect_exit 0 "eddy --version" -- "$eddy" --version

expect_usage "no command" -- "$eddy"
expect_usage "unknown command" -- "$eddy" frobnicate
expect_usage "broker: unknown option" -- "$eddy" broker --frob
expect_usage "broker: bad topic name" -- "$eddy" broker --topic 'bad name:3'
expect_usage "broker: bad partition count" -- "$eddy" broker --topic a:0
expect_usage "broker: --brokers range" -- "$eddy" broker --brokers 99
expect_usage "gen: no bootstrap" -- "$eddy" gen --count 1
expect_usage "gen: bad rate" -- "$eddy" gen --bootstrap x:1 --rate fast
expect_usage "gen: bad kind" -- "$eddy" gen --bootstrap x:1 --kind metrics
expect_usage "gen: count and duration" -- "$eddy" gen --bootstrap x:1 --count 5 --duration 5
expect_usage "gen: span without start" -- "$eddy" gen --bootstrap x:1 --count 5 --span 60
expect_usage "gen: bad -X" -- "$eddy" gen --bootstrap x:1 -X novalue
expect_usage "gen: missing value" -- "$eddy" gen --bootstrap


# eddy topology
examples=$(dirname "$0")/../../topology/examples
data=$(dirname "$0")/../unit/data/topology
expect_exit 0 "topology check monitoring" -- "$eddy" topology check "$examples/monitoring.json"
grep -q "monitoring.json: ok (4 stores)" "$tmp/out" && ok || bad "topology check output: $(cat "$tmp/out")"
expect_exit 0 "topology describe --json" -- "$eddy" topology describe --json "$examples/activity.json"
python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); assert len(t["stores"]) == 3' "$tmp/out" &&
  ok || bad "describe --json is not the activity topology"
expect_exit 1 "topology check a bad file" -- "$eddy" topology check "$data/bad_duration.json"
grep -q 'stores\[1\].window.size' "$tmp/err" && ok || bad "bad topology error: $(cat "$tmp/err")"
expect_usage "topology: no subcommand" -- "$eddy" topology
expect_usage "topology: unknown subcommand" -- "$eddy" topology frob x

# eddy run: configuration errors are usage errors that name the culprit
expect_usage "run: no bootstrap" -- "$eddy" run --topology "$examples/monitoring.json"
expect_usage "run: unknown setting" -- "$eddy" run --bootstrap x:1 --topology t -X num.stream.thread=2
grep -q "did you mean 'num.stream.threads'" "$tmp/err" && ok || bad "run: no suggestion: $(cat "$tmp/err")"
expect_usage "run: bad threads" -- "$eddy" run --bootstrap x:1 --topology t --threads 0
grep -q "^eddy run: --threads: num.stream.threads=0" "$tmp/err" && ok ||
  bad "run: a bad flag's error does not name the flag: $(cat "$tmp/err")"
# What exactly-once rests on cannot be changed by -X, consumer.X or producer.X; each
# refusal names the setting and why. eddy's own value is accepted.
for x in consumer.enable.auto.commit=true consumer.enable.auto.offset.store=true \
  consumer.isolation.level=read_uncommitted consumer.group.id=other consumer.auto.offset.reset=latest \
  enable.idempotence=false producer.enable.idempotence=false producer.acks=1 \
  producer.request.required.acks=1 producer.transactional.id=mine consumer.bootstrap.servers=y:1; do
  expect_usage "run: -X $x" -- "$eddy" run --bootstrap x:1 --topology t -X "$x"
  grep -q "eddy run: -X: $x: .*\(eddy needs\|cannot be set\)" "$tmp/err" && ok ||
    bad "run: -X $x: $(cat "$tmp/err")"
done
printf 'bootstrap.servers=x:1\nconsumer.enable.auto.commit=true\n' >"$tmp/guarded.properties"
expect_usage "run: guarded setting in a config file" -- "$eddy" run --config "$tmp/guarded.properties" --topology t
grep -q "guarded.properties:2: consumer.enable.auto.commit=true: eddy needs" "$tmp/err" && ok ||
  bad "run: guarded setting in a file: $(cat "$tmp/err")"
expect_exit 1 "run: eddy's own values are accepted" -- "$eddy" run --bootstrap x:1 \
  --topology "$data/bad_duration.json" --http off -X consumer.isolation.level=read_committed \
  -X producer.acks=all -X enable.idempotence=true
printf 'bootstrap.servers=x:1\ncommit.interval.ms=soon\n' >"$tmp/bad.properties"
expect_usage "run: bad config file" -- "$eddy" run --config "$tmp/bad.properties" --topology t
grep -q "bad.properties:2" "$tmp/err" && ok || bad "run: config error has no FILE:LINE: $(cat "$tmp/err")"
expect_exit 1 "run: bad topology file" -- "$eddy" run --bootstrap x:1 --topology "$data/bad_duration.json" --http off

# An unreachable --bootstrap: one line that names the address, the refusal and the
# flag, within 5 s, and none of librdkafka's own log lines.
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for cmd in "gen --topic log-events --count 5" \
  "run --topology $examples/monitoring.json --http off --state-dir $tmp/state"; do
  t0=$SECONDS
  # shellcheck disable=SC2086
  expect_exit 1 "${cmd%% *}: unreachable bootstrap" -- "$eddy" ${cmd%% *} --bootstrap "127.0.0.1:$closed" ${cmd#* }
  took=$((SECONDS - t0))
  errors=$(grep -c ' ERROR ' "$tmp/err")
  raw=$(grep -c '^%' "$tmp/err")
  if [[ $errors -eq 1 && $raw -eq 0 && $took -lt 5 ]] &&
    grep -q "cannot reach Kafka at 127.0.0.1:$closed: Connect to .* Connection refused; check --bootstrap" "$tmp/err"; then
    ok
  else
    bad "${cmd%% *}: unreachable bootstrap took $took s, $errors error and $raw librdkafka lines: $(grep -v ' INFO ' "$tmp/err" | head -c 600)"
  fi
done

# A real broker and generator.
"$eddy" broker --topic a:12 --topic b --topic user-events:3 --partitions 6 --bootstrap-file "$tmp/bs" \
  >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
for _ in $(seq 100); do [[ -s $tmp/bs ]] && break; sleep 0.1; done
if [[ -s $tmp/bs ]]; then ok; else bad "broker wrote no --bootstrap-file"; fi
[[ $(wc -l <"$tmp/broker.out") -eq 1 ]] && ok || bad "broker stdout is not one line"
grep -qE '^bootstrap.servers=127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+){2}$' "$tmp/broker.out" && ok ||
  bad "broker stdout: $(cat "$tmp/broker.out")"
cmp -s "$tmp/bs" "$tmp/broker.out" && ok || bad "bootstrap file differs from stdout"
grep -q "in-memory test broker" "$tmp/broker.err" && grep -q "5 MiB" "$tmp/broker.err" &&
  grep -q "docs/kafka.md" "$tmp/broker.err" && ok || bad "broker does not say what it is"
bs=$(cat "$tmp/bs")

expect_exit 0 "gen into a" -- "$eddy" gen --bootstrap "$bs" --topic a --count 2000 --rate 0 \
  --seed 3 --start-ts 1700000000000 --span 60
[[ $(wc -l <"$tmp/out") -eq 1 ]] && ok || bad "gen stdout is not one line"
python3 - "$tmp/out" <<'PY' && ok || bad "gen summary: $(cat "$tmp/out")"
import json, sys
s = json.loads(open(sys.argv[1]).read())
assert set(s) >= {"sent", "acked", "failed", "seconds", "rate"}, s
assert s["sent"] == 2000 and s["acked"] == 2000 and s["failed"] == 0, s
PY
expect_exit 0 "gen activity into b (6 partitions, bootstrap.servers= form)" -- \
  "$eddy" gen --bootstrap "$bs" --topic b --kind activity --count 500 --rate 10000 -q
expect_exit 1 "gen into a missing topic" -- "$eddy" gen --bootstrap "$bs" --topic nope --count 5
grep -q "does not exist" "$tmp/err" && ok || bad "missing topic message: $(cat "$tmp/err")"

expect_exit 1 "run: missing source topic" -- "$eddy" run --bootstrap "$bs" --topology \
  "$examples/monitoring.json" --state-dir "$tmp/state" --http off
grep -q "source topic 'log-events' does not exist" "$tmp/err" && ok ||
  bad "run: missing source message: $(cat "$tmp/err")"
expect_exit 1 "run: missing sink topic" -- "$eddy" run --bootstrap "$bs" --topology \
  "$examples/activity.json" --state-dir "$tmp/state" --http off
grep -q "sink topic 'event-metrics' does not exist" "$tmp/err" && ok ||
  bad "run: missing sink message: $(cat "$tmp/err")"

kill -TERM "$broker_pid"
wait "$broker_pid"; rc=$?
broker_pid=""
[[ $rc -eq 0 ]] && ok || bad "broker exit $rc on SIGTERM"
[[ ! -e $tmp/bs ]] && ok || bad "broker left its bootstrap file behind"

# eddy broker --topology: every topic the topology needs, changelogs included.
expect_usage "broker: bad --topology" -- "$eddy" broker --topology "$data/bad_duration.json"
"$eddy" broker --topology "$examples/activity.json" --application-id act --partitions 4 \
  --bootstrap-file "$tmp/bs2" >/dev/null 2>"$tmp/broker2.err" &
broker_pid=$!
for _ in $(seq 100); do [[ -s $tmp/bs2 ]] && break; sleep 0.1; done
bs2=$(cat "$tmp/bs2")
for t in user-events event-metrics act-events_per_type-changelog act-active_users-changelog act-dlq; do
  grep -q "created topic $t with 4 partitions" "$tmp/broker2.err" && ok || bad "broker --topology did not create $t"
done
for t in act-instances act-sinks-changelog; do
  grep -q "created topic $t with 1 partition" "$tmp/broker2.err" && ok || bad "broker --topology did not create $t"
done
expect_exit 0 "gen into a topology's source" -- "$eddy" gen --bootstrap "$bs2" --topic user-events \
  --kind activity --count 10 -q
kill -TERM "$broker_pid"
wait "$broker_pid"
broker_pid=""

# eddy broker --control: one answer line per command, after the bootstrap line.
grep -q -- "--control" <("$eddy" broker --help) && ok || bad "broker --help does not document --control"
printf '%s\n' 'error Produce 2 NOT_LEADER_FOR_PARTITION' 'down 1' 'up 1' 'error Nope 1 X' \
  'error EndTxn 3 51' 'down 9' 'quit' 'up 1' |
  timeout 30 "$eddy" broker --control --brokers 3 >"$tmp/ctl.out" 2>"$tmp/ctl.err"
rc=$?
[[ $rc -eq 0 ]] && ok || bad "broker --control: exit $rc on quit ($(head -c 300 "$tmp/ctl.err"))"
mapfile -t ctl <"$tmp/ctl.out"
[[ ${#ctl[@]} -eq 8 && ${ctl[7]} == ok ]] && ok ||
  bad "broker --control: ${#ctl[@]} stdout lines, want 8 (quit answered, nothing after it)"
[[ ${ctl[0]:-} == bootstrap.servers=* ]] && ok || bad "broker --control: first line '${ctl[0]:-}'"
[[ ${ctl[1]:-} == ok && ${ctl[2]:-} == ok && ${ctl[3]:-} == ok ]] && ok ||
  bad "broker --control: error/down/up answered '${ctl[1]:-}' '${ctl[2]:-}' '${ctl[3]:-}'"
[[ ${ctl[4]:-} == "error: "*Nope* ]] && ok || bad "broker --control: bad request answered '${ctl[4]:-}'"
[[ ${ctl[5]:-} == ok ]] && ok || bad "broker --control: numeric error code answered '${ctl[5]:-}'"
[[ ${ctl[6]:-} == "error: "* ]] && ok || bad "broker --control: bad broker id answered '${ctl[6]:-}'"
timeout 30 "$eddy" broker --control </dev/null >"$tmp/ctl.out" 2>"$tmp/ctl.err"
rc=$?
[[ $rc -eq 0 && $(wc -l <"$tmp/ctl.out") -eq 1 ]] && ok || bad "broker --control: exit $rc on EOF"

echo "cli_contract: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
