# The shared shell harness of the shell tests, the benchmarks and
# scripts/check.sh; source me (bash). Its Python twin is tests/lib/harness.py
# (free_port is that one's). Nothing here starts anything when sourced.
#
#   RUNNERD_TOP RUNNERD_BIN RUNNERD_BUILD   the tree, the runnerd binary and
#       the build dir it is in (defaults: this file's tree, build/runnerd)
#   loopback_only           unset every proxy variable and set NO_PROXY: test
#       traffic goes to 127.0.0.1 directly, never through a proxy
#   at_exit CMD [ARGS...]   run CMD when the script exits, the last registered
#       first; INT and TERM then exit the script (so these run too)
#   new_tmpdir VAR NAME     a fresh /tmp/NAME.XXXXXX in $VAR, removed at exit
#   wait_for [--pid PID] SECS CMD [ARGS...]   run CMD every 0.1 s until it
#       succeeds: 0; 1 once SECS seconds passed; 2 as soon as PID is gone
#   tcp_listening PORT      something accepts connections on 127.0.0.1:PORT
#   free_port               print a TCP port on 127.0.0.1 that nothing uses
#   stop_pid PID [SECS]     SIGTERM, SIGKILL after SECS (default 5), reaped
#   json_get EXPR [ARGS...] print the Python expression EXPR of the JSON
#       document on stdin (j: the document, a: ARGS)
#   not_runnable PROGRAM    say why PROGRAM cannot run ("... is missing",
#       "... is not executable"); non-zero (and silent) when it can
# Counting, for a test script whose last line must be "N passed, N failed":
#   t_ok NAME               one passed test: "ok - NAME"
#   t_fail NAME [DETAIL]    one failed test: "not ok - NAME: DETAIL"
#   t_need NAME PROGRAM     PROGRAM is built and executable, else t_fail
#   t_counts LOG            print "PASSED FAILED" as a test program's output
#       says them (cmocka's [ PASSED ]/[ FAILED ] lines or an "N passed, N
#       failed" line); nothing when it says neither
#   t_driver NAME OUT CMD [ARGS...]   run a test program, its output in OUT:
#       show it (but its count line), add its counts; a crash is a failure
#   t_summary               print "N passed, N failed"; 0 only if none failed

_harness_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUNNERD_TOP=${RUNNERD_TOP:-$(cd "$_harness_dir/../.." && pwd)}
RUNNERD_BIN=${RUNNERD_BIN:-$RUNNERD_TOP/build/runnerd}
RUNNERD_BUILD=$(dirname "$RUNNERD_BIN")

loopback_only() {
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
	export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
}

_at_exit_cmds=()
_at_exit_run() {
	local c
	for c in "${_at_exit_cmds[@]}"; do
		eval "$c"
	done
}
at_exit() {
	local c
	printf -v c '%q ' "$@"
	_at_exit_cmds=("$c" "${_at_exit_cmds[@]}")
	trap _at_exit_run EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

new_tmpdir() {
	local d
	d=$(mktemp -d "/tmp/$2.XXXXXX") || return 1
	printf -v "$1" '%s' "$d"
	at_exit rm -rf "$d"
}

_now_us() {
	echo "${EPOCHREALTIME//[!0-9]/}"
}

wait_for() {
	local pid="" end
	if [ "$1" = --pid ]; then
		pid=$2
		shift 2
	fi
	end=$(($(_now_us) + $1 * 1000000))
	shift
	while true; do
		"$@" && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 2
		fi
		[ "$(_now_us)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

tcp_listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
	python3 "$_harness_dir/harness.py" free-port
}

stop_pid() {
	local pid=$1 secs=${2:-5} i
	[ -n "$pid" ] || return 0
	if kill "$pid" 2>/dev/null; then
		for ((i = 0; i < secs * 20; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

json_get() {
	python3 -c 'import json, sys
j, a = json.load(sys.stdin), sys.argv[2:]
print(eval(sys.argv[1]))' "$@"
}

not_runnable() {
	command -v "$1" >/dev/null && return 1
	if [ -e "$1" ]; then
		echo "$1 is not executable"
	else
		echo "$1 is missing"
	fi
}

# ---- counting ------------------------------------------------------------------

t_passed=0
t_failed=0

t_ok() {
	t_passed=$((t_passed + 1))
	echo "ok - $1"
}

t_fail() {
	t_failed=$((t_failed + 1))
	echo "not ok - $1${2:+: $2}"
}

t_need() {
	local why
	why=$(not_runnable "$2") || return 0
	t_fail "$1" "$why"
	return 1
}

_t_count_line='^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed'

t_counts() {
	local p f line
	p=$(grep -aE '^\[  PASSED  \] [0-9]+ test' "$1" | tail -1 | grep -oE '[0-9]+' | head -1)
	f=$(grep -aE '^\[  FAILED  \] [0-9]+ test' "$1" | tail -1 | grep -oE '[0-9]+' | head -1)
	if [ -z "$p$f" ]; then
		line=$(grep -aE "$_t_count_line" "$1" | tail -1)
		[ -n "$line" ] || return 0
		p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/')
		f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	fi
	echo "${p:-0} ${f:-0}"
}

t_driver() {
	local name=$1 out=$2 rc counts p f
	shift 2
	t_need "$name" "$1" || return 1
	"$@" >"$out" 2>&1
	rc=$?
	grep -avE "$_t_count_line" "$out"
	counts=$(t_counts "$out")
	if [ -z "$counts" ]; then
		t_fail "$name" "crashed or timed out (exit $rc)"
		return 1
	fi
	read -r p f <<<"$counts"
	t_passed=$((t_passed + p))
	t_failed=$((t_failed + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		t_fail "$name" "exit $rc"
	fi
	[ "$rc" -eq 0 ]
}

t_summary() {
	echo "$t_passed passed, $t_failed failed"
	[ "$t_failed" -eq 0 ]
}
