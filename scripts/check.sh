#!/bin/bash
# Every test: unit tests (cmocka), the same built with ASan+UBSan, then the
# config golden tests, integration, contract and end-to-end tests. Each test
# program's log goes to build/test-logs/; its counts are added up and the
# last line is "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
unit_only=0
lxd_only=0
[ "${1:-}" = "--unit-only" ] && unit_only=1
[ "${1:-}" = "--lxd-only" ] && lxd_only=1

scripts/build.sh build || exit 1
if [ $unit_only -eq 0 ] && [ $lxd_only -eq 0 ]; then
	scripts/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false || exit 1
fi

logs=$top/build/test-logs
rm -rf "$logs"
mkdir -p "$logs"
passed=0
failed=0
failures=""
export RUNNERD_TOP=$top
export RUNNERD_BIN=$top/build/runnerd
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# run NAME CMD...: runs one test program, adds its counts.
# A program may print cmocka's "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)"
# or a plain "N passed, N failed" line; otherwise its exit status counts as one.
run() {
	local name=$1 log p f start end
	shift
	log=$logs/$(echo "$name" | tr '/ ' '__').log
	start=$(date +%s)
	"$@" >"$log" 2>&1 </dev/null
	local rc=$?
	end=$(date +%s)
	p=$(grep -aE '^\[  PASSED  \] [0-9]+ test' "$log" | tail -1 | grep -oE '[0-9]+' | head -1)
	f=$(grep -aE '^\[  FAILED  \] [0-9]+ test' "$log" | tail -1 | grep -oE '[0-9]+' | head -1)
	if [ -z "$p$f" ]; then
		local line
		line=$(grep -aE '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
		if [ -n "$line" ]; then
			p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/')
			f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
		fi
	fi
	if [ -z "$p$f" ]; then
		if [ $rc -eq 0 ]; then p=1; f=0; else p=0; f=1; fi
	fi
	p=${p:-0}
	f=${f:-0}
	# a crash after the counts were printed still fails
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		failures="$failures $name"
		printf 'FAIL %-40s %4d passed %4d failed  (%ds, log: %s)\n' "$name" "$p" "$f" $((end - start)) "$log"
		tail -n 30 "$log" | sed 's/^/    | /'
	else
		printf 'ok   %-40s %4d passed  (%ds)\n' "$name" "$p" $((end - start))
	fi
}

if [ $lxd_only -eq 0 ]; then
	echo "== unit tests"
	for t in build/tests/unit/test_*; do
		[ -f "$t" ] && [ -x "$t" ] && run "unit/$(basename "$t")" "$t"
	done
fi
if [ $unit_only -eq 0 ] && [ $lxd_only -eq 0 ]; then
	echo "== unit tests under ASan+UBSan"
	for t in build-asan/tests/unit/test_*; do
		[ -f "$t" ] && [ -x "$t" ] && run "asan/$(basename "$t")" "$t"
	done
	echo "== config golden tests"
	[ -x tests/config/run.sh ] && run "config/golden" tests/config/run.sh
	echo "== integration tests"
	for t in tests/integration/test_*; do
		case $t in *test_lxd*) continue ;; esac # in the LXD section
		[ -x "$t" ] && run "integration/$(basename "$t")" "$t"
	done
	echo "== contract tests"
	[ -x tests/contract/run.sh ] && run "contract" tests/contract/run.sh
	echo "== fuzzing (short libFuzzer runs, regression inputs replayed)"
	[ -x tests/fuzz/run.sh ] && run "fuzz" tests/fuzz/run.sh
	echo "== end-to-end tests"
	for t in tests/e2e/test_*; do
		case $t in *test_lxd*) continue ;; esac # in the LXD section
		[ -x "$t" ] && run "e2e/$(basename "$t")" "$t"
	done
fi
if [ $unit_only -eq 0 ]; then
	# One LXD for both programs (tests/lib/lxd.sh: started, and stopped
	# again, only if it was not running). No LXD is a failure, not a skip.
	echo "== LXD tests"
	. tests/lib/lxd.sh
	if lxd_setup >"$logs/lxd-setup.log" 2>&1; then
		if [ -x tests/integration/test_lxd_provider ]; then
			run "lxd/test_lxd_provider" tests/integration/test_lxd_provider
		else
			failed=$((failed + 1))
			failures="$failures lxd/test_lxd_provider"
			echo "FAIL lxd/test_lxd_provider: tests/integration/test_lxd_provider is missing or not executable"
		fi
		run "lxd/test_lxd.py" tests/e2e/test_lxd.py
		# scenarios that could not run here say why (they count as neither)
		grep -h '^not run' "$logs/lxd_test_lxd.py.log" 2>/dev/null | sed 's/^/     /'
		if ! lxd_teardown >>"$logs/lxd-setup.log" 2>&1; then
			failed=$((failed + 1))
			failures="$failures lxd/teardown"
			echo "FAIL lxd/teardown (log: $logs/lxd-setup.log)"
			tail -n 5 "$logs/lxd-setup.log" | sed 's/^/    | /'
		fi
	else
		failed=$((failed + 1))
		failures="$failures lxd/setup"
		echo "FAIL lxd/setup: LXD could not be set up (log: $logs/lxd-setup.log)"
		tail -n 20 "$logs/lxd-setup.log" | sed 's/^/    | /'
	fi
fi

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
