#!/usr/bin/env bash
# make_werror.sh — `make test` builds with -Werror even in a build dir that `make`
# or `make demo` configured before without it: in a scratch BUILD configured with
# EDDY_WERROR=OFF, `make test` configures again with ON, and the compile commands
# it then uses carry -Werror. A plain `make` keeps the choice (no full rebuild).
# Configures only (cmake -S -B, seconds); builds nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
b=$tmp/build
# Called from ctest under `make test`: the outer make's jobserver is not ours.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$here" BUILD="$b" "$@"; }
werror() { sed -n 's/^EDDY_WERROR:BOOL=//p' "$b/CMakeCache.txt"; }
fail() { echo "make_werror: $*"; exit 1; }

mk "$b/CMakeCache.txt" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "configuring $b failed"; }
[[ $(werror) == OFF ]] || fail "a fresh build dir is configured with EDDY_WERROR=$(werror), want OFF"

# What `make test` would run: the configure step with ON comes before the build.
mk -n test >"$tmp/plan" 2>&1 || { cat "$tmp/plan"; fail "make -n test failed"; }
grep -q -- "-DEDDY_WERROR=ON" "$tmp/plan" ||
  { cat "$tmp/plan"; fail "make test would build $b, configured without -Werror, without configuring it again"; }

# That step, run: the cache and the compile commands say -Werror.
mk "$b/CMakeCache.txt" WERROR=ON >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "configuring with ON failed"; }
[[ $(werror) == ON ]] || fail "after WERROR=ON the cache says EDDY_WERROR=$(werror)"
grep -q '"command": ".* -Werror .*engine/app.c' "$b/compile_commands.json" ||
  fail "engine/app.c is not compiled with -Werror after make test's configure"

# make (no WERROR) keeps what the build dir has: no reconfigure, no rebuild.
mk -n build >"$tmp/plan" 2>&1 || { cat "$tmp/plan"; fail "make -n build failed"; }
! grep -q -- "-DEDDY_WERROR" "$tmp/plan" || { cat "$tmp/plan"; fail "a plain make configures again"; }
echo "make_werror: ok"
