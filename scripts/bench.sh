#!/bin/bash
# Benchmarks (not tests), run by `make bench` after the build: each one
# starts what it needs on 127.0.0.1, prints its numbers, and stops it.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
build=${BENCH_BUILD:-$top/build}
rc=0

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

tmp=$(mktemp -d /tmp/runnerd-bench.XXXXXX)
. "$top/tests/lib/ghsim.sh"
cleanup() {
	ghsim_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== GitHub runner list: 1,000 runners listed 10 times (conditional requests)"
echo "   target, on ghsim's own counters: 10 counted for the first list, 0 for each unchanged one"
if [ ! -x "$build/bench/bench_github_list" ]; then
	echo "bench: $build/bench/bench_github_list is not built" >&2
	rc=1
elif ghsim_start "$tmp/ghsim"; then
	GHSIM_URL=$GHSIM_URL GH_TOKEN_FILE=$GHSIM_TOKEN_FILE "$build/bench/bench_github_list" 1000 10 || rc=1
	echo "ghsim at the end: $(ghsim_ctl GET /_ghsim/stats | python3 -c 'import json,sys; s=json.load(sys.stdin); print("%d requests, %d counted, %d not modified" % (s["requests"], s["rate_counted"], s["not_modified"]))')"
	ghsim_stop
else
	echo "bench: ghsim did not start" >&2
	rc=1
fi
echo
echo "== One steady-state reconcile pass at scale (ghsim runners + in-memory provider instances)"
echo "   targets: 10,000 runners under 100 ms CPU, peak RSS under 64 MiB, 0 rate-limited requests"
if [ ! -x "$build/bench/bench_reconcile" ]; then
	echo "bench: $build/bench/bench_reconcile is not built" >&2
	rc=1
elif ghsim_start "$tmp/ghsim2"; then
	for n in 10 100 1000 10000; do
		GHSIM_URL=$GHSIM_URL GH_TOKEN_FILE=$GHSIM_TOKEN_FILE "$build/bench/bench_reconcile" $n || rc=1
	done
	ghsim_stop
else
	echo "bench: ghsim did not start" >&2
	rc=1
fi
echo
# its own LXD project, ghsim and LXD setup (tests/lib/lxd.sh); prints its targets
RUNNERD_BIN=$build/runnerd bench/bench_lxd.sh 10 || rc=1
exit $rc
