# Shell helpers to run ghsim (tests/ghsim/ghsim.py) from shell tests; source me.
#
#   ghsim_start DIR [ghsim args...]  start ghsim in the background with a fresh
#       token in DIR/token (0600); waits for its port; exports GHSIM_PID,
#       GHSIM_PORT, GHSIM_URL and GHSIM_TOKEN_FILE. Returns non-zero on failure.
#   ghsim_ctl METHOD PATH [JSON]     call the control API, print the answer
#   ghsim_api METHOD PATH [JSON]     call the GitHub API with the token
#   ghsim_stop                       stop it by its pid
#
# Only 127.0.0.1 is ever contacted; the token never goes to argv (curl reads
# the Authorization header from a file descriptor).

# ghsim.py is found from GHSIM_PY, else next to this file (bash), else under
# RUNNERD_TOP (set by scripts/check.sh), else under the current directory.
if [ -z "${GHSIM_PY:-}" ]; then
	if [ -n "${BASH_SOURCE:-}" ]; then
		GHSIM_PY=$(cd "$(dirname "$BASH_SOURCE")/../ghsim" 2>/dev/null && pwd)/ghsim.py
	fi
	[ -f "${GHSIM_PY:-}" ] || GHSIM_PY="${RUNNERD_TOP:-.}/tests/ghsim/ghsim.py"
fi

ghsim_start() {
	_dir=$1
	shift
	mkdir -p "$_dir" || return 1
	(umask 077 && printf 'ghp_%s\n' "$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')" > "$_dir/token") || return 1
	rm -f "$_dir/ghsim.port"
	python3 "$GHSIM_PY" --port 0 --port-file "$_dir/ghsim.port" --token-file "$_dir/token" \
		--log "$_dir/ghsim.log" "$@" < /dev/null &
	GHSIM_PID=$!
	_i=0
	while [ ! -s "$_dir/ghsim.port" ]; do
		if ! kill -0 "$GHSIM_PID" 2>/dev/null; then
			echo "ghsim exited early" >&2
			return 1
		fi
		_i=$((_i + 1))
		if [ $_i -gt 500 ]; then
			echo "ghsim did not start" >&2
			ghsim_stop
			return 1
		fi
		sleep 0.02
	done
	GHSIM_PORT=$(cat "$_dir/ghsim.port")
	GHSIM_URL="http://127.0.0.1:$GHSIM_PORT"
	GHSIM_TOKEN_FILE="$_dir/token"
	export GHSIM_PID GHSIM_PORT GHSIM_URL GHSIM_TOKEN_FILE
}

ghsim_stop() {
	[ -n "${GHSIM_PID:-}" ] || return 0
	kill "$GHSIM_PID" 2>/dev/null
	_i=0
	while kill -0 "$GHSIM_PID" 2>/dev/null && [ $_i -lt 100 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	kill -9 "$GHSIM_PID" 2>/dev/null
	wait "$GHSIM_PID" 2>/dev/null
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
