#!/bin/bash
# Short libFuzzer runs (part of `make check`): builds the targets in
# build-fuzz with clang + ASan/UBSan + fuzzer coverage, replays every saved
# regression input, then fuzzes each target for FUZZ_SECONDS (default 30)
# from its seed corpus (copied: the tree is never written). A crash, a leak,
# a timeout (an input taking over 10 s) or a failed replay is a failure.
# Last line: "N passed, N failed".
set -u
top=${RUNNERD_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top" || exit 1
secs=${FUZZ_SECONDS:-30}
build=$top/build-fuzz
passed=0
failed=0
tmp=$(mktemp -d /tmp/runnerd-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$top/tests/fuzz/lsan.supp

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		>"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$build" tests/fuzz/fuzz_config tests/fuzz/fuzz_github_json \
	tests/fuzz/fuzz_lxd_instance tests/fuzz/fuzz_lxd_answer tests/fuzz/fuzz_local_env \
	tests/fuzz/fuzz_http_request tests/fuzz/fuzz_http_head tests/fuzz/fuzz_metrics_extract \
	tests/fuzz/fuzz_webhook tests/fuzz/fuzz_openstack_answer tests/fuzz/fuzz_journal \
	>"$tmp/build.log" 2>&1; then
	cat "$tmp/build.log"
	echo "0 passed, 1 failed"
	exit 1
fi

# target corpus-seeds regress-dir
fuzz() {
	local name=$1 seeds=$2 regress=$3 bin=$build/tests/fuzz/$1
	if [ -d "$regress" ] && ls "$regress"/* >/dev/null 2>&1; then
		if timeout 120 "$bin" -timeout=10 "$regress"/* >"$tmp/$name.replay.log" 2>&1; then
			passed=$((passed + 1))
			echo "ok   $name: regression inputs replayed"
		else
			failed=$((failed + 1))
			echo "FAIL $name: a regression input fails again"
			tail -20 "$tmp/$name.replay.log"
		fi
	fi
	mkdir -p "$tmp/$name.corpus"
	cp $seeds "$tmp/$name.corpus/" 2>/dev/null
	if timeout $((secs + 60)) "$bin" -max_total_time="$secs" -timeout=10 -max_len=65536 \
		-artifact_prefix="$tmp/$name-" "$tmp/$name.corpus" >"$tmp/$name.log" 2>&1; then
		passed=$((passed + 1))
		echo "ok   $name: $(grep -aE '^Done [0-9]+ runs' "$tmp/$name.log" | tail -1)"
	else
		failed=$((failed + 1))
		echo "FAIL $name (fuzzing found a problem)"
		grep -aE 'ERROR|SUMMARY|Test unit written|Base64' "$tmp/$name.log" | head -10
		tail -30 "$tmp/$name.log"
	fi
}

fuzz fuzz_config "$top/tests/config/*.yaml" "$top/tests/fuzz/regress/config"
fuzz fuzz_github_json "$top/tests/fuzz/corpus/github/*" "$top/tests/fuzz/regress/github"
fuzz fuzz_lxd_instance "$top/tests/fuzz/corpus/lxd_instance/*" "$top/tests/fuzz/regress/lxd_instance"
fuzz fuzz_lxd_answer "$top/tests/fuzz/corpus/lxd_answer/*" "$top/tests/fuzz/regress/lxd_answer"
fuzz fuzz_local_env "$top/tests/fuzz/corpus/local_env/*" "$top/tests/fuzz/regress/local_env"
fuzz fuzz_http_request "$top/tests/fuzz/corpus/http_request/*" "$top/tests/fuzz/regress/http_request"
fuzz fuzz_http_head "$top/tests/fuzz/corpus/http_head/*" "$top/tests/fuzz/regress/http_head"
fuzz fuzz_metrics_extract "$top/tests/fuzz/corpus/metrics_extract/*" "$top/tests/fuzz/regress/metrics_extract"
fuzz fuzz_webhook "$top/tests/fuzz/corpus/webhook/*" "$top/tests/fuzz/regress/webhook"
fuzz fuzz_openstack_answer "$top/tests/fuzz/corpus/openstack_answer/*" "$top/tests/fuzz/regress/openstack_answer"
fuzz fuzz_journal "$top/tests/fuzz/corpus/journal/*" "$top/tests/fuzz/regress/journal"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
