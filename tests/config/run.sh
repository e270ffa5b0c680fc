#!/bin/bash
# Golden tests of `runnerd check-config`.
#
# A case is NAME.out, the expected result of running, from inside a copy of
# this directory,
#     $RUNNERD_BIN check-config ARGS
# where ARGS is the content of NAME.args when that file exists (words split on
# whitespace), else "-c NAME.yaml --print". NAME.out holds, in this order:
#     exit: CODE
#     --- stdout
#     <stdout>
#     --- stderr
#     <stderr>
# with the copy's absolute path replaced by "." (the loader makes relative
# paths absolute, against the config file's directory).
#
# The copy is where the cases' file modes are set (git keeps none of them:
# a checkout makes files 0644 or 0600 by umask) and where the keys are made:
# no private key is committed. See "The fixtures" below.
#
# Every case that exits 0 with --print is also a round trip: its output,
# saved elsewhere and loaded again, must print the same text (a proxy
# password prints as REDACTED, which prints the same when loaded back).
# Finally no output may contain a secret value from secrets/ (any line of
# it), nor a password written in a case's URL.
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
src=$(pwd -P)
bin=${bin:-$src/../../build/runnerd}
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

# The fixtures: a copy of the cases, with every mode a case depends on set here.
mkdir "$tmp/cases" && cp -R "$src"/*.yaml "$src"/*.args "$src"/secrets "$tmp/cases"/ || exit 1
cd "$tmp/cases" || exit 1
here=$(pwd -P)
# The GitHub App keys: an RSA key (valid), an EC key (a PEM key, but not RSA).
if ! openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out secrets/app-key.pem \
	2>"$tmp/openssl.log" ||
	! openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out secrets/ec-key.pem \
		2>>"$tmp/openssl.log"; then
	cat "$tmp/openssl.log"
	echo "run.sh: openssl cannot make the test keys"
	echo "0 passed, 1 failed"
	exit 1
fi
chmod 644 ./*.yaml                    # a config others can read (see the proxy password cases)
chmod 600 secrets/*                   # secrets as they should be
chmod 640 secrets/app-key.pem         # group access is not warned about
chmod 644 secrets/open-token          # warned: readable by others
chmod 602 secrets/open-webhook-secret # warned: writable by others

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
		cp "$tmp/got" "$src/$out"
	fi
	if [ -f "$src/$out" ] && diff -u "$src/$out" "$tmp/got" >"$tmp/diff"; then
		pass "$name"
	else
		fail "$name"
		if [ -f "$src/$out" ]; then sed 's/^/    /' "$tmp/diff"; else echo "    $out is missing"; fi
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

# No secret value may appear in any output: no line of a secret file (a
# key's every base64 line included; its BEGIN/END lines are no secret).
leaked=0
for f in secrets/*; do
	[ -f "$f" ] || continue
	while IFS= read -r value; do
		case "$value" in "" | "#"* | -----*) continue ;; esac
		if grep -qF -- "$value" "$tmp/all-output"; then
			echo "    secret from $f appears in the output"
			leaked=1
			break
		fi
	done <"$f"
done
# (inline-secret-not-real is what bad-inline-secret.yaml writes inline; the
# other two are passwords, in the AMQP URI file and in the cases' proxy URLs)
for value in "$RUNNERD_TEST_TOKEN" "$RUNNERD_TEST_WEBHOOK_SECRET" inline-secret-not-real \
	test-password-not-real proxy-password-not-real; do
	if grep -qF -- "$value" "$tmp/all-output"; then
		echo "    a secret (from the environment or written inline) appears in the output"
		leaked=1
	fi
done
if [ $leaked -eq 0 ]; then pass "no secret in any output"; else fail "no secret in any output"; fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
