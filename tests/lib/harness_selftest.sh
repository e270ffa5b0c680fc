#!/bin/bash
# Self-test of tests/lib/harness.sh, which check.sh and the shell tests stand
# on: how a program that cannot run is named (check.sh fails a test program
# that was not built with it), the count parser, t_driver, wait_for and
# stop_pid. Last line: "N passed, N failed".
set -u
# shellcheck source=harness.sh
. "$(dirname "$0")/harness.sh"
new_tmpdir tmp runnerd-harness-selftest

# expect NAME WANT GOT
expect() {
	if [ "$2" = "$3" ]; then t_ok "$1"; else t_fail "$1" "want [$2], got [$3]"; fi
}
# counts_of TEXT: what t_counts makes of a program's output
counts_of() {
	printf '%s\n' "$1" >"$tmp/log"
	t_counts "$tmp/log"
}
# driver_says SCRIPT: the last line of a t_driver run of a program (a fresh count)
driver_says() {
	printf '#!/bin/sh\n%s\n' "$1" >"$tmp/prog"
	chmod +x "$tmp/prog"
	(
		t_passed=0 t_failed=0
		t_driver prog "$tmp/out" "$tmp/prog" >/dev/null 2>&1
		t_summary
	) | tail -n 1
}

touch "$tmp/plain"
printf '#!/bin/sh\n' >"$tmp/runs"
chmod +x "$tmp/runs"
expect "a program that was not built is missing" "$tmp/none is missing" "$(not_runnable "$tmp/none")"
expect "a program without its x bit is not executable" "$tmp/plain is not executable" "$(not_runnable "$tmp/plain")"
expect "a program that runs is runnable" "1 []" "$(
	out=$(not_runnable "$tmp/runs")
	echo "$? [$out]"
)"
expect "a folder is not a program" "$tmp is not executable" "$(not_runnable "$tmp")"

expect "cmocka counts" "18 1" "$(counts_of "[==========] 19 test(s) run.
[  PASSED  ] 18 test(s).
[  FAILED  ] 1 test(s), listed below:
[  FAILED  ] test_names")"
expect "cmocka counts, all passed" "7 0" "$(counts_of "[  PASSED  ] 7 test(s).")"
expect "a plain count line" "34 0" "$(counts_of "ok - x
34 passed, 0 failed")"
expect "a named count line with skips" "5 2" "$(counts_of "fuzz: 5 passed, 2 failed, 1 skipped")"
expect "the last count line wins" "3 1" "$(counts_of "1 passed, 0 failed
3 passed, 1 failed")"
expect "no count line" "" "$(counts_of "ok - x")"

expect "t_driver adds a program's counts" "4 passed, 1 failed" "$(driver_says 'echo "4 passed, 1 failed"; exit 1')"
expect "t_driver: an exit status counts when no test failed" "2 passed, 1 failed" \
	"$(driver_says 'echo "2 passed, 0 failed"; exit 3')"
expect "t_driver: a crash without counts fails" "0 passed, 1 failed" "$(driver_says 'kill -SEGV $$')"
expect "t_driver: a missing program fails" "0 passed, 1 failed" "$(
	t_passed=0 t_failed=0
	t_driver none "$tmp/out" "$tmp/none" >/dev/null
	t_summary
)"

expect "wait_for: a condition that holds" "0" "$(
	wait_for 2 test -d "$tmp"
	echo $?
)"
expect "wait_for: a timeout" "1" "$(
	wait_for 1 false
	echo $?
)"
sleep 0.2 &
expect "wait_for: the process waited on is gone" "2" "$(
	wait_for --pid $! 10 false
	echo $?
)"

# a process that ignores SIGTERM is killed after the grace time
(
	trap '' TERM
	exec sleep 60
) &
stubborn=$!
sleep 0.2
t0=$SECONDS
stop_pid "$stubborn" 1
expect "stop_pid: SIGKILL after the grace time" "gone" "$(kill -0 "$stubborn" 2>/dev/null && echo alive || echo gone)"
expect "stop_pid: within the grace time" "yes" "$([ $((SECONDS - t0)) -le 3 ] && echo yes || echo no)"

t_summary
