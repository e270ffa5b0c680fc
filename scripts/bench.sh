#!/bin/bash
# Benchmarks (not tests), run by `make bench` after the build: each one
# starts what it needs on 127.0.0.1, prints its numbers, and stops it.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
build=${BENCH_BUILD:-$top/build}
rc=0

# shellcheck source=../tests/lib/ghsim.sh
. "$top/tests/lib/ghsim.sh"
loopback_only
new_tmpdir tmp runnerd-bench
at_exit ghsim_stop

# built NAME: bench/NAME is built (or it says so and fails)
built() {
	if [ ! -x "$build/bench/$1" ]; then
		echo "bench: $build/bench/$1 is not built" >&2
		return 1
	fi
}
# ghsim_bench NAME DIR: bench/NAME is built and a fresh ghsim runs in DIR
ghsim_bench() {
	built "$1" || return 1
	ghsim_start "$2" || { echo "bench: ghsim did not start" >&2; return 1; }
}
# bench NAME [ARGS...]: run bench/NAME against that ghsim
bench() {
	local name=$1
	shift
	GH_TOKEN_FILE=$GHSIM_TOKEN_FILE "$build/bench/$name" "$@"
}
# local_bench NAME [ARGS...]: run bench/NAME, which needs no ghsim; 1 on failure
local_bench() {
	built "$1" || return 1
	"$build/bench/$1" "${@:2}"
}

echo "== GitHub runner list: 1,000 runners listed 10 times (conditional requests)"
echo "   target, on ghsim's own counters: 10 counted for the first list, 0 for each unchanged one"
if ghsim_bench bench_github_list "$tmp/ghsim"; then
	bench bench_github_list 1000 10 || rc=1
	echo "ghsim at the end: $(ghsim_ctl GET /_ghsim/stats |
		json_get '"%d requests, %d counted, %d not modified" % (j["requests"], j["rate_counted"], j["not_modified"])')"
	ghsim_stop
else
	rc=1
fi
echo
echo "== One steady-state reconcile pass at scale (ghsim runners + in-memory provider instances)"
echo "   targets: 10,000 runners under 100 ms CPU, peak RSS under 64 MiB, 0 rate-limited requests"
if ghsim_bench bench_reconcile "$tmp/ghsim2"; then
	for n in 10 100 1000 10000; do
		bench bench_reconcile $n || rc=1
	done
	ghsim_stop
else
	rc=1
fi
echo
echo "== A Prometheus scrape at scale (ghsim runners + in-memory provider instances)"
echo "   targets: under 5 ms CPU per scrape at 10,000 runners; scrapes never wait for a pass"
if ghsim_bench bench_scrape "$tmp/ghsim3"; then
	for n in 100 10000; do
		bench bench_scrape $n || rc=1
	done
	ghsim_stop
else
	rc=1
fi
echo
echo "== The consumer's assignment of a pass's runners to 2,000 waiting jobs, against the quadratic one it replaced"
local_bench bench_assign 2000 || rc=1
echo
echo "== Webhook intake: signed workflow_job deliveries against nginx's static 200, same wrk load, one run"
echo "   target: runnerd's first-seen rate >= 0.5 of nginx's"
RUNNERD_BIN=$build/runnerd python3 bench/bench_intake.py 160000 || rc=1
echo
echo "== The intake's write alone: store_intake_write of new queued deliveries, 6 and 16 a commit, each fsynced"
local_bench bench_intake_write 24000 6 || rc=1
local_bench bench_intake_write 24000 16 || rc=1
echo
echo "== The deliveries' index in memory: the slowest add as it fills (the duplicate checks wait for it)"
local_bench bench_delivery_index 1000000 || rc=1
echo
echo "== Reactive mode: webhook -> create issued, and job wait with min_idle 0 and 2 (ghsim + local provider)"
RUNNERD_BIN=$build/runnerd python3 bench/bench_webhooks.py 50 || rc=1
echo
# its own LXD project, ghsim and LXD setup (tests/lib/lxd.sh); prints its targets
RUNNERD_BIN=$build/runnerd bench/bench_lxd.sh 10 || rc=1
exit $rc
