#!/bin/bash
# Golden tests of `runnerd check-config`.
#
# A case is NAME.out, the expected result of running, from inside this
# directory,
#     $RUNNERD_BIN check-config ARGS
# where ARGS is the content of NAME.args when that file exists (words split on
# whitespace), else "-c NAME.yaml --print". NAME.out holds, in this order:
#     exit: CODE
#     --- stdout
#     <stdout>
#     --- stderr
#     <stderr>
# with this directory's absolute path replaced by "." (the loader makes
# relative paths absolute, against the config file's directory).
#
# Every case that exits 0 with --print is also a round trip: its output,
# saved elsewhere and loaded again, must print the same text.
# Finally no output may contain a secret value from secrets/.
#
# Usage: run.sh [--update]   (--update rewrites the .out files: review the diff!)
# Env: RUNNERD_BIN (default ../../build/runnerd, relative to this directory).
# Last line: "N passed, N failed"; exit status non-zero on any failure.
set -u
update=0
[ "${1:-}" = "--update" ] && update=1

bin=${RUNNERD_BIN:-}
if [ -n "$bin" ] && [ "${bin#/}" = "$bin" ]; then
	bin=$(pwd)/$bin
fi
cd "$(dirname "$0")" || exit 1
here=$(pwd -P)
bin=${bin:-$here/../../build/runnerd}
if [ ! -x "$bin" ]; then
	echo "run.sh: $bin is not an executable (build it, or set RUNNERD_BIN)"
	echo "0 passed, 1 failed"
	exit 1
fi

# The environment the cases see: secrets by env var, one variable never set.
unset RUNNERD_CONFIG RUNNERD_TEST_UNSET
export RUNNERD_TEST_TOKEN=test-token-not-real
export RUNNERD_TEST_WEBHOOK_SECRET=test-webhook-secret-not-real
export RUNNERD_TEST_EMPTY=
export LC_ALL=C

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

pass() {
	passed=$((passed + 1))
	echo "ok   $1"
}

fail() {
	failed=$((failed + 1))
	echo "FAIL $1"
}

# run_case ARGS...: runs the binary, writes the normalized result to $tmp/got
run_case() {
	"$bin" check-config "$@" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null
	local rc=$?
	{
		echo "exit: $rc"
		echo "--- stdout"
		cat "$tmp/stdout"
		echo "--- stderr"
		cat "$tmp/stderr"
	} | sed "s|$here|.|g" >"$tmp/got"
	return $rc
}

names=$(for f in *.yaml *.args; do [ -f "$f" ] && echo "${f%.*}"; done | sort -u)
for name in $names; do
	out=$name.out
	if [ -f "$name.args" ]; then
		read -r -a args <"$name.args"
	else
		args=(-c "$name.yaml" --print)
	fi
	run_case "${args[@]}"
	rc=$?
	cat "$tmp/got" >>"$tmp/all-output"
	if [ $update -eq 1 ]; then
		cp "$tmp/got" "$out"
	fi
	if [ -f "$out" ] && diff -u "$out" "$tmp/got" >"$tmp/diff"; then
		pass "$name"
	else
		fail "$name"
		if [ -f "$out" ]; then sed 's/^/    /' "$tmp/diff"; else echo "    $out is missing"; fi
	fi

	# the round trip: print -> load -> print gives the same text
	if [ $rc -eq 0 ] && [[ " ${args[*]} " == *" --print "* ]]; then
		cp "$tmp/stdout" "$tmp/printed.yaml"
		cp "$tmp/stdout" "$tmp/first"
		run_case -c "$tmp/printed.yaml" --print
		rc=$?
		cat "$tmp/got" >>"$tmp/all-output"
		if [ $rc -eq 0 ] && [ -s "$tmp/first" ] && cmp -s "$tmp/first" "$tmp/stdout"; then
			pass "$name (round trip)"
		else
			fail "$name (round trip)"
			diff -u "$tmp/first" "$tmp/stdout" | sed 's/^/    /'
			sed 's/^/    /' "$tmp/stderr"
		fi
	fi
done

# No secret value may appear in any output.
leaked=0
for f in secrets/*; do
	[ -f "$f" ] || continue
	value=$(head -n 1 "$f")
	case "$value" in "#"*) continue ;; esac
	if grep -qF -- "$value" "$tmp/all-output"; then
		echo "    secret from $f appears in the output"
		leaked=1
	fi
done
# (inline-secret-not-real is what bad-inline-secret.yaml writes inline)
for value in "$RUNNERD_TEST_TOKEN" "$RUNNERD_TEST_WEBHOOK_SECRET" inline-secret-not-real; do
	if grep -qF -- "$value" "$tmp/all-output"; then
		echo "    a secret (from the environment or written inline) appears in the output"
		leaked=1
	fi
done
if [ $leaked -eq 0 ]; then pass "no secret in any output"; else fail "no secret in any output"; fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
