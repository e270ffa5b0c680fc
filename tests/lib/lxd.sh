# Shell helpers for the tests and benchmarks that need a real LXD; source me
# (bash or POSIX sh). They only ever touch the test network, the test storage
# pool and the projects the tests name; the instances' traffic to the test
# servers stays on loopback (a proxy device per project). Nothing here
# re-initializes an LXD that was already running, and a run where LXD cannot
# be had fails loudly (non-zero, reason on stderr): it never skips.
#
#   lxd_setup                 install what is missing (apt), start LXD when it
#       is not running (then export LXD_STARTED_BY_TESTS=1, LXD_PID, and
#       initialize it with a preseed when it is uninitialized), make sure the
#       test bridge and pool exist; exports LXD_SOCKET, LXD_TEST_NETWORK,
#       LXD_TEST_POOL, LXD_TEST_READY=1.
#   lxd_env                   print those variables as KEY=VALUE lines
#   lxd_project_create NAME   a fresh project (own images and profiles) whose
#       default profile has a root disk on the test pool and eth0 on the test bridge
#   lxd_project_delete NAME   its instances, images, profiles, then the project
#   lxd_image_busybox ALIAS PROJECT   import the busybox test image (exec path)
#   lxd_image_busybox_big ALIAS PROJECT   the same with 160 MiB of random
#       bytes in it: creating an instance from it takes seconds
#   lxd_image_debian ALIAS PROJECT    import the Debian cloud-init image
#   lxd_image_build busybox|busybox-big|debian    build into the cache when
#       missing; print its path
#   lxd_proxy_profile PROJECT NAME PORT   a profile whose proxy device listens
#       on tcp:127.0.0.1:PORT in the container, connects to 127.0.0.1:PORT here
#   lxd_restart               (tests started LXD only) SIGTERM by pid (instances
#       keep running, as in a daemon restart), start it again
#   lxd_stop_if_started       if the tests started LXD, after checking that no
#       instance runs (they would restart with LXD): SIGPWR by pid, which
#       also takes down its bridge and dnsmasq
#   lxd_teardown [--owner]    undo lxd_setup: remove the bridge and the pool
#       if it created them (LXD_TEST_CREATED_NETWORK / _POOL, set also when
#       its preseed made them), whoever started LXD, then lxd_stop_if_started.
#       A no-op after a nested lxd_setup (one that found LXD_TEST_READY=1 in
#       its environment: a caller set LXD up for it and tears it down).
#
# Images are built at test time by tests/lxd/build-*-image.sh and cached,
# keyed by a hash of the builder and its inputs, in $RUNNERD_LXD_CACHE
# (default <repo>/.cache/lxd, git-ignored).

LXD_SOCKET=${LXD_SOCKET:-/var/lib/lxd/unix.socket}
LXD_TEST_NETWORK=${LXD_TEST_NETWORK:-rdtestbr0}
LXD_TEST_POOL=${LXD_TEST_POOL:-rdtest}
LXD_TEST_ADDRESS=${LXD_TEST_ADDRESS:-10.147.18.1/24}
LXD_BIG_PAD_MB=${LXD_BIG_PAD_MB:-160}
# where lxd_setup records the pid of the LXD the tests started
LXD_PIDFILE=${LXD_PIDFILE:-/run/runnerd-tests-lxd.pid}
export LXD_SOCKET LXD_TEST_NETWORK LXD_TEST_POOL LXD_PIDFILE

if [ -z "${RUNNERD_TOP:-}" ]; then
	if [ -n "${BASH_SOURCE:-}" ]; then
		RUNNERD_TOP=$(cd "$(dirname "$BASH_SOURCE")/../.." 2>/dev/null && pwd)
	else
		RUNNERD_TOP=$(pwd)
	fi
fi
RUNNERD_LXD_CACHE=${RUNNERD_LXD_CACHE:-$RUNNERD_TOP/.cache/lxd}
LXD_PKGS="nftables dnsmasq-base lxd lxd-client busybox-static debootstrap squashfs-tools curl"

_lxd_err() {
	echo "lxd: $*" >&2
	return 1
}

# lxd_api METHOD PATH [JSON]: one REST call on the socket; prints the body,
# fails on a transport error or an HTTP status >= 400.
lxd_api() {
	# the status code goes on a last line of its own
	_out=$(curl -sS --max-time 300 --unix-socket "$LXD_SOCKET" -w '\n%{http_code}' -X "$1" \
		${3:+-H 'Content-Type: application/json' --data-binary "$3"} "http://lxd$2") || return 1
	_code=${_out##*
}
	printf '%s' "${_out%
*}"
	[ "$_code" -lt 400 ] 2>/dev/null
}

lxd_running() {
	curl -sf --max-time 5 --unix-socket "$LXD_SOCKET" http://lxd/1.0 >/dev/null 2>&1
}

_lxd_install() {
	_missing=""
	for _p in $LXD_PKGS; do
		dpkg-query -W -f='${Status}' "$_p" 2>/dev/null | grep -q "install ok installed" || _missing="$_missing $_p"
	done
	[ -z "$_missing" ] && return 0
	[ "$(id -u)" -eq 0 ] || _lxd_err "need root to install:$_missing" || return 1
	echo "lxd: installing$_missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || true
	# nftables first: LXD picks its firewall driver when it starts
	if ! apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nftables >/dev/null; then
		_lxd_err "apt-get install nftables failed"
		return 1
	fi
	# shellcheck disable=SC2086
	if ! apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $_missing >/dev/null; then
		_lxd_err "apt-get install$_missing failed"
		return 1
	fi
}

# PID is the LXD daemon (its helpers, forkfile, forkproxy, ..., are lxd too)
_lxd_is_daemon() {
	case $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) in
	"/usr/bin/lxd --group "*) return 0 ;;
	esac
	return 1
}

# Start LXD in its own session; record its pid.
_lxd_start() {
	[ -x /usr/bin/lxd ] || _lxd_err "/usr/bin/lxd missing" || return 1
	[ "$LXD_SOCKET" = /var/lib/lxd/unix.socket ] ||
		_lxd_err "LXD is not answering on $LXD_SOCKET and the tests start LXD only at /var/lib/lxd" || return 1
	command -v nft >/dev/null 2>&1 || _lxd_err "nftables is missing: LXD would pick no firewall" || return 1
	mkdir -p /var/log/lxd
	setsid /usr/bin/lxd --group lxd --logfile=/var/log/lxd/lxd.log </dev/null >>/var/log/lxd/lxd.out 2>&1 &
	_pid=$!
	if ! lxd waitready --timeout=120 >/dev/null 2>&1; then
		tail -n 20 /var/log/lxd/lxd.log /var/log/lxd/lxd.out >&2 2>/dev/null
		kill "$_pid" 2>/dev/null
		_lxd_err "LXD did not become ready within 120 s (log: /var/log/lxd/lxd.log)"
		return 1
	fi
	# setsid runs lxd in place when it is not a group leader (it is not, in
	# a script); check, so that we never stop anything but that daemon (an
	# LXD that won a race would have made ours exit)
	if ! _lxd_is_daemon "$_pid"; then
		_lxd_err "started LXD but pid $_pid is not the LXD daemon answering"
		return 1
	fi
	echo "$_pid" >"$LXD_PIDFILE"
	LXD_PID=$_pid
	LXD_STARTED_BY_TESTS=1
	export LXD_PID LXD_STARTED_BY_TESTS
}

_lxd_initialized() {
	# an initialized LXD has a storage pool or a managed network
	_j=$(lxd_api GET /1.0/storage-pools) || return 1
	case $_j in *'"/1.0/storage-pools/'*) return 0 ;; esac
	return 1
}

_lxd_preseed() {
	cat <<EOF | lxd init --preseed
config:
  images.auto_update_interval: "0"
networks:
- name: $LXD_TEST_NETWORK
  type: bridge
  config:
    ipv4.address: $LXD_TEST_ADDRESS
    ipv4.nat: "false"
    ipv6.address: none
storage_pools:
- name: $LXD_TEST_POOL
  driver: dir
EOF
}

# The test bridge and pool, in an LXD that has other things: created when
# missing (and remembered, so that lxd_teardown removes only those).
_lxd_ensure_net_pool() {
	if ! lxd_api GET "/1.0/networks/$LXD_TEST_NETWORK" >/dev/null 2>&1; then
		lxd_api POST /1.0/networks "{\"name\":\"$LXD_TEST_NETWORK\",\"type\":\"bridge\",\"config\":{\"ipv4.address\":\"$LXD_TEST_ADDRESS\",\"ipv4.nat\":\"false\",\"ipv6.address\":\"none\"}}" >/dev/null ||
			_lxd_err "could not create the test bridge $LXD_TEST_NETWORK ($LXD_TEST_ADDRESS)" || return 1
		LXD_TEST_CREATED_NETWORK=1
		export LXD_TEST_CREATED_NETWORK
	fi
	if ! lxd_api GET "/1.0/storage-pools/$LXD_TEST_POOL" >/dev/null 2>&1; then
		lxd_api POST /1.0/storage-pools "{\"name\":\"$LXD_TEST_POOL\",\"driver\":\"dir\"}" >/dev/null ||
			_lxd_err "could not create the test storage pool $LXD_TEST_POOL" || return 1
		LXD_TEST_CREATED_POOL=1
		export LXD_TEST_CREATED_POOL
	fi
}

lxd_setup() {
	# Nested (a test run by a caller that did lxd_setup and exported
	# LXD_TEST_READY=1): use that setup; lxd_teardown here is then a no-op.
	if [ "${LXD_TEST_READY:-}" = 1 ] && lxd_running; then
		_LXD_OWNER=0
		return 0
	fi
	_LXD_OWNER=1
	LXD_STARTED_BY_TESTS=0
	_lxd_install || return 1
	if lxd_running; then
		echo "lxd: using the LXD already running at $LXD_SOCKET (not re-initialized)" >&2
	else
		echo "lxd: starting LXD" >&2
		_lxd_start || return 1
		if ! _lxd_initialized; then
			echo "lxd: initializing it (preseed: bridge $LXD_TEST_NETWORK $LXD_TEST_ADDRESS, dir pool $LXD_TEST_POOL)" >&2
			_lxd_preseed >/dev/null || _lxd_err "lxd init --preseed failed" || return 1
			# made by the tests: lxd_teardown removes them again
			LXD_TEST_CREATED_NETWORK=1
			LXD_TEST_CREATED_POOL=1
			export LXD_TEST_CREATED_NETWORK LXD_TEST_CREATED_POOL
		fi
	fi
	_lxd_ensure_net_pool || return 1
	lxd_api GET /1.0 >/dev/null || _lxd_err "LXD does not answer GET /1.0 on $LXD_SOCKET" || return 1
	LXD_TEST_READY=1
	export LXD_STARTED_BY_TESTS LXD_TEST_READY
}

lxd_env() {
	for _v in LXD_SOCKET LXD_TEST_NETWORK LXD_TEST_POOL LXD_PIDFILE LXD_STARTED_BY_TESTS LXD_PID \
		LXD_TEST_CREATED_NETWORK LXD_TEST_CREATED_POOL LXD_TEST_READY RUNNERD_LXD_CACHE; do
		eval "_x=\${$_v:-}"
		[ -n "$_x" ] && printf '%s=%s\n' "$_v" "$_x"
	done
	return 0
}

lxd_project_create() {
	lxd_api GET "/1.0/projects/$1" >/dev/null 2>&1 && { lxd_project_delete "$1" || return 1; }
	lxd_api POST /1.0/projects "{\"name\":\"$1\",\"description\":\"runnerd tests\",\"config\":{\"features.images\":\"true\",\"features.profiles\":\"true\",\"features.storage.volumes\":\"true\"}}" >/dev/null ||
		_lxd_err "could not create project $1" || return 1
	lxd_api PUT "/1.0/profiles/default?project=$1" "{\"description\":\"runnerd tests\",\"config\":{},\"devices\":{\"root\":{\"type\":\"disk\",\"path\":\"/\",\"pool\":\"$LXD_TEST_POOL\"},\"eth0\":{\"type\":\"nic\",\"name\":\"eth0\",\"network\":\"$LXD_TEST_NETWORK\"}}}" >/dev/null ||
		_lxd_err "could not set the default profile of project $1"
}

# Names from a list answer ["/1.0/x/NAME?project=P", ...], one a line.
_lxd_names() {
	tr ',' '\n' | sed -n 's#.*"/1\.0/[a-z-]*/\([^"?]*\).*#\1#p'
}

lxd_project_delete() {
	_p=$1
	lxd_api GET "/1.0/projects/$_p" >/dev/null 2>&1 || return 0
	_rc=0
	for _i in $(lxd_api GET "/1.0/instances?project=$_p" | _lxd_names); do
		lxc delete --force "$_i" --project "$_p" >/dev/null 2>&1 ||
			{ _lxd_err "could not delete instance $_i of project $_p"; _rc=1; }
	done
	for _i in $(lxd_api GET "/1.0/images?project=$_p" | _lxd_names); do
		lxc image delete "$_i" --project "$_p" >/dev/null 2>&1 ||
			{ _lxd_err "could not delete image $_i of project $_p"; _rc=1; }
	done
	for _i in $(lxd_api GET "/1.0/profiles?project=$_p" | _lxd_names); do
		[ "$_i" = default ] && continue
		lxc profile delete "$_i" --project "$_p" >/dev/null 2>&1 ||
			{ _lxd_err "could not delete profile $_i of project $_p"; _rc=1; }
	done
	for _i in $(lxd_api GET "/1.0/storage-pools/$LXD_TEST_POOL/volumes/custom?project=$_p" 2>/dev/null | _lxd_names); do
		lxc storage volume delete "$LXD_TEST_POOL" "$_i" --project "$_p" >/dev/null 2>&1
	done
	lxd_api DELETE "/1.0/projects/$_p" >/dev/null || { _lxd_err "could not delete project $_p"; _rc=1; }
	return $_rc
}

# ---- images ------------------------------------------------------------

_lxd_sha() {
	sha256sum | cut -c1-16
}

# The cache key: the builder script plus what it reads.
_lxd_image_key() {
	case $1 in
	busybox) cat "$RUNNERD_TOP/tests/lxd/build-busybox-image.sh" /bin/busybox | _lxd_sha ;;
	busybox-big) { cat "$RUNNERD_TOP/tests/lxd/build-busybox-image.sh" /bin/busybox; echo "pad $LXD_BIG_PAD_MB"; } | _lxd_sha ;;
	debian)
		{
			cat "$RUNNERD_TOP/tests/lxd/build-debian-image.sh"
			echo "${DEBIAN_MIRROR:-}"
		} | _lxd_sha
		;;
	*) return 1 ;;
	esac
}

# lxd_image_build busybox|busybox-big|debian: print the cached image path (a
# file for busybox, a directory with meta.tar.gz + rootfs.squashfs for debian),
# building it first when missing. Concurrent callers wait on a lock.
lxd_image_build() {
	_kind=$1
	_key=$(_lxd_image_key "$_kind") || _lxd_err "unknown image kind $_kind" || return 1
	mkdir -p "$RUNNERD_LXD_CACHE" || return 1
	case $_kind in
	busybox | busybox-big) _out=$RUNNERD_LXD_CACHE/$_kind-$_key.tar.gz ;;
	debian) _out=$RUNNERD_LXD_CACHE/debian-$_key ;;
	esac
	(
		flock 9 || exit 1
		if [ -e "$_out" ]; then
			exit 0
		fi
		echo "lxd: building the $_kind test image (cache key $_key)" >&2
		_t0=$(date +%s)
		case $_kind in
		busybox) sh "$RUNNERD_TOP/tests/lxd/build-busybox-image.sh" "$_out" ;;
		busybox-big) PAD_MB=$LXD_BIG_PAD_MB sh "$RUNNERD_TOP/tests/lxd/build-busybox-image.sh" "$_out" ;;
		debian)
			DEBOOTSTRAP_CACHE=$RUNNERD_LXD_CACHE/debs \
				sh "$RUNNERD_TOP/tests/lxd/build-debian-image.sh" "$_out.tmp" &&
				rm -rf "$_out" && mv "$_out.tmp" "$_out"
			;;
		esac || { rm -rf "$_out.tmp"; exit 1; }
		echo "lxd: built the $_kind test image in $(($(date +%s) - _t0)) s" >&2
		# older builds of the same kind are stale
		for _old in "$RUNNERD_LXD_CACHE/$_kind"-[0-9a-f][0-9a-f]*; do
			[ "$_old" = "$_out" ] || rm -rf "$_old"
		done
	) 9>"$RUNNERD_LXD_CACHE/.$_kind.lock" || _lxd_err "building the $_kind image failed" || return 1
	echo "$_out"
}

_lxd_image_import() {
	_kind=$1
	_alias=$2
	_proj=$3
	_img=$(lxd_image_build "$_kind") || return 1
	case $_kind in
	busybox | busybox-big) lxc image import "$_img" --alias "$_alias" --project "$_proj" >/dev/null ;;
	debian) lxc image import "$_img/meta.tar.gz" "$_img/rootfs.squashfs" --alias "$_alias" --project "$_proj" >/dev/null ;;
	esac || _lxd_err "could not import the $_kind image into project $_proj"
}

lxd_image_busybox() {
	_lxd_image_import busybox "$1" "$2"
}

lxd_image_busybox_big() {
	_lxd_image_import busybox-big "$1" "$2"
}

lxd_image_debian() {
	_lxd_image_import debian "$1" "$2"
}

lxd_proxy_profile() {
	lxd_api POST "/1.0/profiles?project=$1" "{\"name\":\"$2\",\"description\":\"runnerd tests: reach 127.0.0.1:$3 on the host\",\"config\":{},\"devices\":{\"ghsim\":{\"type\":\"proxy\",\"bind\":\"instance\",\"listen\":\"tcp:127.0.0.1:$3\",\"connect\":\"tcp:127.0.0.1:$3\"}}}" >/dev/null ||
		_lxd_err "could not create the proxy profile $2 in project $1"
}

# ---- stopping ----------------------------------------------------------

_lxd_started_pid() {
	[ "${LXD_STARTED_BY_TESTS:-0}" = 1 ] || return 1
	_pid=$(cat "$LXD_PIDFILE" 2>/dev/null) || _pid=${LXD_PID:-}
	[ -n "$_pid" ] && _lxd_is_daemon "$_pid" || return 1
	echo "$_pid"
}

# _lxd_kill_wait PID SIGNAL: TERM: the daemon exits once its operations are
# done and leaves instances (and networks) running, as a restart does; PWR:
# it stops instances and networks, then exits (`lxd shutdown`).
_lxd_kill_wait() {
	kill -s "$2" "$1" 2>/dev/null || return 0
	_i=0
	while [ -d "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ] && [ $_i -lt 600 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ $_i -ge 600 ] && { _lxd_err "LXD (pid $1) did not stop within 60 s of SIG$2"; return 1; }
	return 0
}

# Running instances in any project (they would come back with LXD).
_lxd_running_instances() {
	lxd_api GET '/1.0/instances?all-projects=true&recursion=1' 2>/dev/null |
		tr '{' '\n' | grep -c '"status":"Running"'
}

# LXD 5.0 leaves a proxy device's helper (`lxd forkproxy -- <instance init
# pid> ...`) running when the instance is deleted by a daemon other than the
# one that started it (after lxd_restart). Once the LXD the tests started is
# stopped, end those whose instance is gone: only those, each by its pid.
_lxd_reap_stale_helpers() {
	for _p in /proc/[0-9]*; do
		_c=$(tr '\0' ' ' <"$_p/cmdline" 2>/dev/null)
		case $_c in "/usr/bin/lxd forkproxy -- "*) ;; *) continue ;; esac
		_c=${_c#/usr/bin/lxd forkproxy -- }
		_c=${_c%% *}
		case $_c in '' | *[!0-9]*) continue ;; esac
		[ -d "/proc/$_c" ] && continue
		kill "${_p#/proc/}" 2>/dev/null && echo "lxd: ended a stale proxy helper (pid ${_p#/proc/})" >&2
	done
	return 0
}

lxd_restart() {
	_pid=$(_lxd_started_pid) || _lxd_err "LXD was not started by the tests: not restarting it" || return 1
	_lxd_kill_wait "$_pid" TERM || return 1
	rm -f "$LXD_PIDFILE"
	_lxd_start
}

lxd_stop_if_started() {
	_pid=$(_lxd_started_pid) || return 0
	_n=$(_lxd_running_instances)
	if [ "${_n:-0}" -gt 0 ]; then
		_lxd_err "$_n instance(s) still running: LXD left running (stopping it would restart them later)"
		return 1
	fi
	_lxd_kill_wait "$_pid" PWR || return 1
	rm -f "$LXD_PIDFILE"
	_lxd_reap_stale_helpers
	LXD_STARTED_BY_TESTS=0
	echo "lxd: stopped the LXD the tests started (pid $_pid)" >&2
}

lxd_teardown() {
	# only the lxd_setup that did the work undoes it (--owner: the caller ran
	# that lxd_setup in another process)
	[ "${_LXD_OWNER:-0}" = 1 ] || [ "${1:-}" = --owner ] || return 0
	_rc=0
	# what the tests created goes, whoever started LXD
	if [ "${LXD_TEST_CREATED_NETWORK:-0}" = 1 ]; then
		lxd_api DELETE "/1.0/networks/$LXD_TEST_NETWORK" >/dev/null ||
			{ _lxd_err "could not delete the test bridge $LXD_TEST_NETWORK"; _rc=1; }
	fi
	if [ "${LXD_TEST_CREATED_POOL:-0}" = 1 ]; then
		lxd_api DELETE "/1.0/storage-pools/$LXD_TEST_POOL" >/dev/null ||
			{ _lxd_err "could not delete the test storage pool $LXD_TEST_POOL"; _rc=1; }
	fi
	lxd_stop_if_started || _rc=1
	return $_rc
}
