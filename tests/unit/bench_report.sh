#!/usr/bin/env bash
# bench_report.sh — the benchmark suite's report and scripts, without running a
# benchmark (those take minutes and are never timed tests):
#   * bench/report turns a full run's results (tests/unit/data/bench/, copied from
#     a real `make bench`) into latest.json and the Markdown report: every figure
#     of the suite (1-9) with its value, baseline and ratio, each goal judged from
#     the numbers (checked here against the fixture's own values);
#   * a missing result leaves its figures out and the rest intact;
#   * every bench script answers a call without arguments with its usage, exit != 0.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
py=python3; [[ -x /usr/bin/python3 ]] && py=/usr/bin/python3

mkdir -p "$tmp/all" "$tmp/some"
cp "$here"/data/bench/*.json "$tmp/all/"
if "$py" "$root/bench/report" "$tmp/all" "$tmp/all.md" >/dev/null 2>"$tmp/err"; then ok; else
  bad "bench/report failed: $(cat "$tmp/err")"; fi

"$py" - "$tmp/all" "$tmp/all.md" <<'PY' && ok || bad "latest.json / report content"
import json, os, sys
d, md = sys.argv[1], open(sys.argv[2]).read()
latest = json.load(open(os.path.join(d, "latest.json")))
figs = latest["figures"]
by = {}
for f in figs:
    by.setdefault(f["figure"], []).append(f)
missing = [n for n in map(str, range(1, 10)) if n not in by]
assert not missing, f"figures missing: {missing}"
for f in figs:
    assert f["value"] is not None, f"no value: {f['name']}"
    assert f["baseline"] is not None, f"no baseline: {f['name']}"
    assert f["name"] in md, f"not in the Markdown: {f['name']}"
r = {n: json.load(open(os.path.join(d, n + ".json")))
     for n in ("catchup", "memory", "query", "eos", "restore")}
def met(num, word):
    return [f for f in by[num] if word in f["name"]][0]["met"]
c = r["catchup"]
assert met("2", "catch-up") == (c["eddy_events_per_s"] >= 1e6 and c["ratio_to_bare"] >= 0.8)
assert met("6", "memory") == (r["memory"]["final_rss_mib"] * 1048576 < 100e6)
assert met("5", "p99") == (r["query"]["windows"]["p99_ms"] < 1)
assert met("5", "throughput") == (r["query"]["windows"]["req_per_s"] >= 20000)
assert met("7", "large changelog") == (r["restore"]["restore_records_per_s"] >= 500000)
assert met("7", "restart to serving") == (r["eos"]["restart_to_serving_local_state_s"] < 1)
assert latest["machine"]["nproc"] and latest["machine"]["git_commit"]
assert "| # | figure | value | baseline (same run) | ratio | goal | met |" in md
assert "## What each figure means" in md
PY

cp "$tmp/all"/*.json "$tmp/some/"
rm -f "$tmp/some/live.json" "$tmp/some/latest.json"
if "$py" "$root/bench/report" "$tmp/some" "$tmp/some.md" >/dev/null 2>&1; then ok; else
  bad "bench/report without live.json failed"; fi
"$py" - "$tmp/some" <<'PY' && ok || bad "a missing result must leave out only its figures"
import json, os, sys
figs = json.load(open(os.path.join(sys.argv[1], "latest.json")))["figures"]
nums = {f["figure"] for f in figs}
assert "4" not in nums and {"1", "2", "3", "5", "6", "7", "8", "9"} <= nums, nums
PY

for s in catchup eos restore live memory scaling gen-rate gen-max query decode; do
  out=$("$root/bench/$s" 2>&1 </dev/null)
  code=$?
  if [[ $code -ne 0 && $out == *usage* ]]; then ok; else bad "bench/$s without arguments: exit $code: $out"; fi
done

echo "bench_report: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
