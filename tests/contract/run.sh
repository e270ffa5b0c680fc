#!/bin/bash
# Contract tests: runnerd's GitHub client and the GitHub simulator (ghsim)
# held to GitHub's own published contract (see README.md here):
#  1. every request the client makes is valid under the official REST
#     description (Prism mock, via proxy.js), repository and organization scope;
#  2. every answer ghsim gives is valid under it (Prism proxy --errors);
#  3. every workflow_job webhook ghsim sends validates against
#     @octokit/webhooks-schemas and is correctly signed.
# Prints one "ok - ..." / "not ok - ..." line per case and last
# "N passed, N failed"; exits non-zero on any failure.
#
# It installs nothing (scripts/deps.sh does; it is called only when the npm
# assets are missing) and builds only the contract_driver target in
# $BUILD_DIR (default $RUNNERD_TOP/build). Servers listen on 127.0.0.1 only
# and are stopped by pid on exit. When it can (root, unshare), it runs in a
# network namespace of its own that has only loopback, so nothing can reach
# any address off this machine even by mistake, and in a PID namespace, so
# nothing it started can outlive it.
set -u

# shellcheck source=../lib/ghsim.sh
. "$(dirname "$0")/../lib/ghsim.sh"
top=$RUNNERD_TOP
here=$top/tests/contract
build=${BUILD_DIR:-$top/build}
npm=$top/.deps/npm/node_modules
desc=$npm/@octokit/openapi/generated/api.github.com.json
prism_cli=$npm/@stoplight/prism-cli/dist/index.js
node=${NODE:-node}

if [ ! -f "$prism_cli" ] || [ ! -f "$desc" ] || [ ! -d "$npm/@octokit/webhooks-schemas" ]; then
	echo "# npm contract assets missing: running scripts/deps.sh"
	"$top/scripts/deps.sh" || { t_fail "npm contract assets (scripts/deps.sh failed)"; t_summary; exit; }
fi

# Loopback-only network namespace (after deps.sh, which may need the registry),
# and a PID namespace: whatever a server left behind dies with this script.
# CONTRACT_NETNS=0 opts out (it is 1 once inside).
if [ -z "${CONTRACT_NETNS:-}" ] && [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1 &&
	command -v ip >/dev/null 2>&1 && unshare --net --pid --fork --kill-child --mount-proc true 2>/dev/null; then
	export CONTRACT_NETNS=1
	exec unshare --net --pid --fork --kill-child --mount-proc -- /bin/sh -c '
		ip link set lo up || { echo "not ok - loopback of the test namespace"; echo "0 passed, 1 failed"; exit 1; }
		exec bash "$0" "$@"' "$0" "$@"
fi
[ "${CONTRACT_NETNS:-}" = 1 ] && echo "# running in a loopback-only network namespace"

loopback_only
unset NODE_ENV
export NODE_PATH=$npm

new_tmpdir work runnerd-contract

# notok NAME [LOG...]: one failed case, with the end of each log.
notok() {
	t_fail "$1"
	shift
	local f
	for f in "$@"; do [ -f "$f" ] && tail -n 25 "$f" | sed 's/^/#   /'; done
}
# prism_port LOG SECONDS: the port from Prism's "listening on" line.
prism_port() {
	local re='.*Prism is listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*'
	wait_for "$2" grep -qs "$re" "$1" && sed -n "s#$re#\\1#p" "$1" | head -1
}
# start_proxy NAME UPSTREAM_PORT [--drop-links]: proxy.js in front; sets
# proxy_port. (Not run in $(...): its pid must reach the cleanup list.)
start_proxy() {
	local name=$1 up=$2
	shift 2
	"$node" "$here/proxy.js" --upstream "http://127.0.0.1:$up" --port-file "$work/$name.port" \
		--log "$work/$name.jsonl" "$@" >"$work/$name.log" 2>&1 &
	at_exit stop_pid $!
	wait_for 10 test -s "$work/$name.port" && proxy_port=$(cat "$work/$name.port")
}
# suite NAME CMD...: runs one checker, adds up its ok/not ok lines.
suite() {
	local name=$1 out rc p f t0
	shift
	out=$work/$name.out
	t0=$(date +%s)
	"$@" >"$out" 2>&1
	rc=$?
	cat "$out"
	echo "# $name: $(($(date +%s) - t0)) s"
	p=$(grep -c '^ok - ' "$out")
	f=$(grep -c '^not ok - ' "$out")
	t_passed=$((t_passed + p))
	t_failed=$((t_failed + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		notok "$name exited with status $rc"
	fi
}

start=$(date +%s)

# App key for the installation-token exchange (Prism mock and ghsim both).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/app.pem" 2>/dev/null &&
	openssl pkey -in "$work/app.pem" -pubout -out "$work/app.pub" 2>/dev/null
chmod 600 "$work/app.pem"
# the token the checkers (ghsim.js, webhooks.js) send
mkdir -p "$work/gh" && echo "ghp_contractFakeToken0123456789abcdefABCD" >"$work/gh/token"

# Prism mock of api.github.com: 15-30 s to load the 13 MB description, so it
# starts first and everything else happens while it loads.
"$node" "$prism_cli" mock -h 127.0.0.1 -p 0 "$desc" >"$work/prism-mock.log" 2>&1 &
at_exit stop_pid $!

ghsim_port=""
at_exit ghsim_stop
if [ -f "$GHSIM_PY" ]; then
	if ghsim_start "$work/gh" --app-id 1234 --app-public-key "$work/app.pub" --installation-id 4242; then
		ghsim_port=$GHSIM_PORT
		t_ok "ghsim started on 127.0.0.1:$ghsim_port"
		"$node" "$prism_cli" proxy -h 127.0.0.1 -p 0 --errors "$desc" "http://127.0.0.1:$ghsim_port" \
			>"$work/prism-proxy.log" 2>&1 &
		at_exit stop_pid $!
	else
		notok "ghsim did not start" "$work/gh/ghsim.out" "$work/gh/ghsim.log"
	fi
else
	notok "ghsim: $GHSIM_PY does not exist"
fi

# The client side needs the driver; build only that target. A build dir
# configured before tests/contract/meson.build existed does not know the
# target yet (meson does not watch fs.exists()): reconfigure it once.
driver=$build/tests/contract/contract_driver
driver_ok=0
if [ ! -f "$build/build.ninja" ]; then
	notok "contract_driver: no build directory at $build (run meson setup, or make check)"
else
	ninja -C "$build" -t targets all 2>/dev/null | grep -q '^tests/contract/contract_driver:' ||
		meson setup --reconfigure "$build" >"$work/meson.log" 2>&1
	if ninja -C "$build" tests/contract/contract_driver >"$work/ninja.log" 2>&1 && [ -x "$driver" ]; then
		driver_ok=1
	else
		notok "contract_driver did not build in $build (is src/github built?)" "$work/meson.log" "$work/ninja.log"
	fi
fi

# --- webhooks first (they need no Prism): validator self-checks, then ghsim's
# deliveries; the jobs they run are checked through Prism below.
if [ -n "$ghsim_port" ]; then
	mkdir -p "$work/wh"
	suite webhooks "$node" "$here/webhooks.js" --ghsim-port "$ghsim_port" --work "$work/wh"
else
	suite webhooks "$node" "$here/webhooks.js"
fi

# --- 1. the client's requests against Prism mock -----------------------------
if mock_port=$(prism_port "$work/prism-mock.log" 120); then
	t_ok "prism mock serves the official description on 127.0.0.1:$mock_port ($(($(date +%s) - start)) s)"
	if [ $driver_ok -eq 1 ]; then
		if start_proxy mock-proxy "$mock_port" --drop-links; then
			suite client "$node" "$here/client.js" --driver "$driver" --port "$proxy_port" \
				--log "$work/mock-proxy.jsonl" --app-key "$work/app.pem"
		else
			notok "proxy.js in front of prism mock did not start" "$work/mock-proxy.log"
		fi
	fi
else
	notok "prism mock did not start within 120 s" "$work/prism-mock.log"
fi

# --- 2. ghsim's answers through Prism proxy --errors --------------------------
if [ -n "$ghsim_port" ]; then
	if pproxy_port=$(prism_port "$work/prism-proxy.log" 120); then
		t_ok "prism proxy --errors validates ghsim's answers on 127.0.0.1:$pproxy_port"
		if start_proxy ghsim-proxy "$pproxy_port"; then
			dargs=()
			[ $driver_ok -eq 1 ] && dargs=(--driver "$driver")
			suite ghsim "$node" "$here/ghsim.js" --port "$proxy_port" --log "$work/ghsim-proxy.jsonl" \
				--ghsim-port "$ghsim_port" --app-key "$work/app.pem" "${dargs[@]}"
		else
			notok "proxy.js in front of prism proxy did not start" "$work/ghsim-proxy.log"
		fi
	else
		notok "prism proxy did not start within 120 s" "$work/prism-proxy.log"
	fi
fi

echo "# contract tests took $(($(date +%s) - start)) s"
t_summary && [ "$t_passed" -gt 0 ]
