#!/bin/bash
# Every test: the layering check of src/ (scripts/check-layers.py) and the
# self-tests of it and of the shell harness, the Grafana dashboard against
# the metrics runnerd exports (scripts/check-dashboard.py), unit tests (cmocka), the same
# built with ASan+UBSan, then the config golden tests, integration,
# contract and end-to-end tests, then the LXD tests, then the OpenStack
# tests (a real minimal OpenStack, scripts/deps-openstack.sh). Each test
# program's log goes to build/test-logs/; its counts are added up and the
# last line is "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
unit_only=0
lxd_only=0
os_only=0
[ "${1:-}" = "--unit-only" ] && unit_only=1
[ "${1:-}" = "--lxd-only" ] && lxd_only=1
# --openstack-only: the OpenStack section alone (make check-openstack)
[ "${1:-}" = "--openstack-only" ] && lxd_only=1 && os_only=1
# --asan-only: the unit tests under ASan+UBSan alone (make check-asan)
asan_only=0
[ "${1:-}" = "--asan-only" ] && asan_only=1

scripts/build.sh build || exit 1
if [ $asan_only -eq 1 ] || { [ $unit_only -eq 0 ] && [ $lxd_only -eq 0 ]; }; then
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
# shellcheck source=../tests/lib/harness.sh
. tests/lib/harness.sh

# missing NAME WHY: a program a test needs was not built, or is not
# executable: one failed test (never a silent skip).
missing() {
	failed=$((failed + 1))
	failures="$failures $1"
	echo "FAIL $1: $2"
}

# run NAME CMD...: runs one test program, adds its counts.
# A program may print cmocka's "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)"
# or a plain "N passed, N failed" line; otherwise its exit status counts as one.
# A program that is missing or not executable is one failed test.
run() {
	local name=$1 log p f start end why
	shift
	if why=$(not_runnable "$1"); then
		missing "$name" "$why"
		return
	fi
	log=$logs/$(echo "$name" | tr '/ ' '__').log
	start=$(date +%s)
	"$@" >"$log" 2>&1 </dev/null
	local rc=$?
	end=$(date +%s)
	read -r p f <<<"$(t_counts "$log")"
	if [ -z "$p$f" ]; then
		if [ $rc -eq 0 ]; then p=1; f=0; else p=0; f=1; fi
	fi
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

# unit_tests PREFIX BUILD_DIR: every tests/unit/test_*.c has its program in
# BUILD_DIR/tests/unit; one that was not built fails.
unit_tests() {
	local src t
	for src in tests/unit/test_*.c; do
		t=$(basename "$src" .c)
		run "$1/$t" "$2/tests/unit/$t"
	done
}

# need_drivers SECTION: the C drivers (tests/integration/*_test.c) that the
# section's test_* scripts run must be built: lxd_* in the LXD section, the
# others in the integration section.
need_drivers() {
	local src d why
	for src in tests/integration/*_test.c; do
		d=$(basename "$src" .c)
		case $d in
		lxd_*) [ "$1" = lxd ] || continue ;;
		*) [ "$1" = integration ] || continue ;;
		esac
		if why=$(not_runnable "build/tests/integration/$d"); then
			missing "$1/$d" "$why"
		fi
	done
}

if [ $asan_only -eq 1 ]; then
	echo "== unit tests under ASan+UBSan"
	unit_tests asan build-asan
	[ -n "$failures" ] && echo "failed:$failures"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit
fi
if [ $lxd_only -eq 0 ]; then
	echo "== the test harness, the layering of src/ (DESIGN.md section 4)"
	run "lib/harness.sh" tests/lib/harness_selftest.sh
	run "layers/self-test" scripts/check-layers.py --self-test
	run "layers" scripts/check-layers.py
	run "contrib/grafana" scripts/check-dashboard.py
	run "bench/wrk-script" tests/bench/test_wrk_script.py
	echo "== unit tests"
	unit_tests unit build
fi
if [ $unit_only -eq 0 ] && [ $lxd_only -eq 0 ]; then
	echo "== unit tests under ASan+UBSan"
	unit_tests asan build-asan
	echo "== config golden tests"
	run "config/golden" tests/config/run.sh
	echo "== integration tests"
	need_drivers integration
	for t in tests/integration/test_*; do
		case $t in *test_lxd*) continue ;; esac # in the LXD section
		run "integration/$(basename "$t")" "$t"
	done
	echo "== contract tests"
	run "contract" tests/contract/run.sh
	echo "== fuzzing (short libFuzzer runs, regression inputs replayed)"
	run "fuzz" tests/fuzz/run.sh
	echo "== end-to-end tests"
	for t in tests/e2e/test_*; do
		case $t in *test_lxd*) continue ;; esac # in the LXD section
		run "e2e/$(basename "$t")" "$t"
	done
fi
if [ $unit_only -eq 0 ] && [ $os_only -eq 0 ]; then
	# One LXD for both programs (tests/lib/lxd.sh: started, and stopped
	# again, only if it was not running). No LXD is a failure, not a skip.
	echo "== LXD tests"
	need_drivers lxd
	. tests/lib/lxd.sh
	if lxd_setup >"$logs/lxd-setup.log" 2>&1; then
		run "lxd/test_lxd_provider" tests/integration/test_lxd_provider
		run "lxd/test_lxd.py" tests/e2e/test_lxd.py
		run "lxd/test_lxd_providers.py" tests/e2e/test_lxd_providers.py
		run "lxd/test_lxd_runner_versions.py" tests/e2e/test_lxd_runner_versions.py
		run "lxd/test_lxd_runner_env.py" tests/e2e/test_lxd_runner_env.py
		run "lxd/test_lxd_runner_install.py" tests/e2e/test_lxd_runner_install.py
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

if [ $unit_only -eq 0 ]; then
	# The test OpenStack is installed here when missing (~2 min, once); a
	# machine where that is impossible fails this section, never skips it.
	echo "== OpenStack tests"
	if scripts/deps-openstack.sh >"$logs/openstack-install.log" 2>&1; then
		tail -n 1 "$logs/openstack-install.log" | grep 'installed in' | sed 's/^/     /'
		# one cloud for all of them (its start is over a minute): each test
		# program takes the cloud RUNNERD_TEST_OPENSTACK_ROOT names and cleans
		# up what it made there by name
		os_root=$(mktemp -d /tmp/runnerd-check-openstack.XXXXXX)
		if /usr/bin/python3 tests/lib/openstack.py start "$os_root" >"$logs/openstack-cloud.log" 2>&1; then
			tail -n 1 "$logs/openstack-cloud.log" | sed 's/^/     /'
			export RUNNERD_TEST_OPENSTACK_ROOT=$os_root OS_CLIENT_CONFIG_FILE=$os_root/clouds.yaml
			for t in tests/openstack/test_*; do
				run "openstack/$(basename "$t")" "$t"
			done
			unset RUNNERD_TEST_OPENSTACK_ROOT OS_CLIENT_CONFIG_FILE
		else
			failed=$((failed + 1))
			failures="$failures openstack/cloud"
			echo "FAIL openstack/cloud: the test OpenStack did not start, its tests did not run (log: $logs/openstack-cloud.log)"
			tail -n 20 "$logs/openstack-cloud.log" | sed 's/^/    | /'
			for f in setup.log nova-api.out nova-compute.log; do
				[ -f "$os_root/log/$f" ] && cp "$os_root/log/$f" "$logs/openstack-$f"
			done
		fi
		/usr/bin/python3 tests/lib/openstack.py stop "$os_root" >>"$logs/openstack-cloud.log" 2>&1
		rm -rf "$os_root"
	else
		failed=$((failed + 1))
		failures="$failures openstack/install"
		echo "FAIL openstack/install: the test OpenStack could not be installed, its tests did not run (log: $logs/openstack-install.log)"
		tail -n 20 "$logs/openstack-install.log" | sed 's/^/    | /'
	fi
fi

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
