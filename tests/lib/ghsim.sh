# Shell helpers to run ghsim (tests/ghsim/ghsim.py) from shell tests; source
# me (bash; tests/lib/harness.sh comes with it).
#
#   ghsim_start DIR [ghsim args...]  start ghsim in the background with the
#       token in DIR/token (0600; a fresh one is written unless the caller
#       wrote one there first); waits for its port; exports GHSIM_PID,
#       GHSIM_PORT, GHSIM_URL and GHSIM_TOKEN_FILE. Its output goes to
#       DIR/ghsim.out, its request log to DIR/ghsim.log. Non-zero on failure.
#   ghsim_ctl METHOD PATH [JSON]     call the control API, print the answer
#   ghsim_api METHOD PATH [JSON]     call the GitHub API with the token
#   ghsim_stop                       stop it by its pid
#
# Only 127.0.0.1 is ever contacted; the token never goes to argv (curl reads
# the Authorization header from a file descriptor).

# shellcheck source=harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
GHSIM_PY=${GHSIM_PY:-$RUNNERD_TOP/tests/ghsim/ghsim.py}

ghsim_start() {
	local dir=$1 rc
	shift
	mkdir -p "$dir" || return 1
	if [ ! -s "$dir/token" ]; then
		(umask 077 && printf 'ghp_%s\n' "$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')" >"$dir/token") || return 1
	fi
	rm -f "$dir/ghsim.port"
	python3 "$GHSIM_PY" --port 0 --port-file "$dir/ghsim.port" --token-file "$dir/token" \
		--log "$dir/ghsim.log" "$@" </dev/null >>"$dir/ghsim.out" 2>&1 &
	GHSIM_PID=$!
	wait_for --pid "$GHSIM_PID" 20 test -s "$dir/ghsim.port"
	rc=$?
	if [ $rc -ne 0 ]; then
		[ $rc -eq 2 ] && echo "ghsim exited early:" >&2 || echo "ghsim did not start within 20 s:" >&2
		tail -n 20 "$dir/ghsim.out" >&2
		ghsim_stop
		return 1
	fi
	GHSIM_PORT=$(cat "$dir/ghsim.port")
	GHSIM_URL="http://127.0.0.1:$GHSIM_PORT"
	GHSIM_TOKEN_FILE="$dir/token"
	export GHSIM_PID GHSIM_PORT GHSIM_URL GHSIM_TOKEN_FILE
}

ghsim_stop() {
	stop_pid "${GHSIM_PID:-}"
	GHSIM_PID=
}

ghsim_ctl() {
	curl -sS --noproxy '*' -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} "$GHSIM_URL$2"
}

ghsim_api() {
	printf 'Authorization: Bearer %s\n' "$(head -n 1 "$GHSIM_TOKEN_FILE")" |
		curl -sS --noproxy '*' -X "$1" -H @- -H 'User-Agent: ghsim-test' \
			-H 'Accept: application/vnd.github+json' \
			${3:+-H 'Content-Type: application/json' --data-binary "$3"} "$GHSIM_URL$2"
}
