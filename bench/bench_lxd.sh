#!/bin/bash
# Benchmark (not a test): 10 runners brought online on LXD (busybox image,
# exec bootstrap) two ways, each timed until all 10 are online on ghsim:
#   1. runnerd serve with one flavor, min_idle = max = 10 (parallel creates);
#   2. the floor a script-writing operator reaches: a plain serial loop of
#      `lxc launch` making the same instances as runnerd (limits.cpu,
#      limits.memory, root disk pool and size, network, profiles and the
#      user.runnerd.* keys read from one of runnerd's; checked after),
#      `lxc file push` (the same startup script runnerd pushed, a JIT
#      config per runner) and `lxc exec`.
# Prints both wall times, their ratio (target: runnerd <= 0.5 of the loop)
# and runnerd's CPU time as a share of its wall time (target < 2%, from
# /proc/<pid>/stat utime+stime); MISSED next to a target not met, and then
# exits 1 (2 when the run itself failed). Everything lives in the LXD project
# runnerd-bench and is removed at the end; LXD is started (and stopped again)
# only if it was not running. Traffic stays on 127.0.0.1.
#
#   bench/bench_lxd.sh [N]      N runners, default 10
set -u
cd "$(dirname "$0")/.." || exit 2
top=$(pwd)
export RUNNERD_TOP=$top
bin=${RUNNERD_BIN:-${BENCH_BUILD:-$top/build}/runnerd}
n=${1:-10}
project=runnerd-bench
manager=bench

# shellcheck source=../tests/lib/ghsim.sh
. "$top/tests/lib/ghsim.sh"
# shellcheck source=../tests/lib/lxd.sh
. "$top/tests/lib/lxd.sh"
loopback_only

[ -x "$bin" ] || { echo "bench_lxd: $bin is not built" >&2; exit 2; }
daemon=
cleanup() {
	stop_pid "$daemon" 30
	[ -f "$tmp/runnerd.yaml" ] && "$bin" flush --busy -c "$tmp/runnerd.yaml" >/dev/null 2>&1
	lxd_project_delete "$project" || echo "bench_lxd: could not remove project $project" >&2
	ghsim_stop
	lxd_teardown
}
new_tmpdir tmp runnerd-bench-lxd
at_exit cleanup

now() { date +%s.%N; }
# shape NAME: what makes two instances "the same" here, as one JSON line
shape() {
	lxd_api GET "/1.0/instances/$1?project=$project" | python3 -c '
import json, sys
m = json.load(sys.stdin)["metadata"]
c, d = m["expanded_config"], m["expanded_devices"]
print(json.dumps({
    "limits.cpu": c.get("limits.cpu"), "limits.memory": c.get("limits.memory"),
    "user.runnerd": {k: v for k, v in c.items() if k.startswith("user.runnerd.")},
    "profiles": m["profiles"],
    "root": {k: d.get("root", {}).get(k) for k in ("path", "pool", "size")},
    "nic": {k: d.get("eth0", {}).get(k) for k in ("type", "network")},
}, sort_keys=True))'
}
online() {
	ghsim_ctl GET /_ghsim/runners |
		json_get 'sum(1 for r in j if r["name"].startswith(a[0]) and r["status"] == "online")' "$1"
}
online_at_least() { # PREFIX COUNT
	[ "$(online "$1")" -ge "$2" ]
}
wait_online() { # PREFIX COUNT TIMEOUT
	wait_for "$3" online_at_least "$1" "$2" ||
		{ echo "bench_lxd: only $(online "$1") of $2 online after $3 s" >&2; return 1; }
}

lxd_setup || exit 2
lxd_project_create "$project" || exit 2
lxd_image_busybox runnerd-bench "$project" || exit 2
ghsim_start "$tmp/ghsim" --heartbeat-timeout 10 || exit 2
lxd_proxy_profile "$project" ghsim "$GHSIM_PORT" || exit 2

# ---- 1. runnerd -------------------------------------------------------------
cat >"$tmp/runnerd.yaml" <<EOF
github:
  api_url: $GHSIM_URL
  path: octo/bench
  token_file: $GHSIM_TOKEN_FILE
manager:
  name: $manager
  state_dir: $tmp/state
  log_dir: $tmp/logs
  reconcile_interval: 10s
  bootstrap_timeout: 5m
  create_concurrency: 10
flavors:
  - name: bench
    provider: lxd
    image: runnerd-bench
    labels: [bench]
    min_idle: $n
    max: $n
providers:
  lxd:
    socket: $LXD_SOCKET
    project: $project
    network: $LXD_TEST_NETWORK
    storage_pool: $LXD_TEST_POOL
    profiles: [default, ghsim]
    bootstrap: exec
webhook:
  listen: ""
metrics:
  listen: ""
  events_log: $tmp/metrics.log
EOF
echo "== $n runners online on LXD: runnerd (parallel creates) vs a serial lxc loop"
t0=$(now)
"$bin" serve -c "$tmp/runnerd.yaml" </dev/null >"$tmp/runnerd.log" 2>&1 &
daemon=$!
if ! wait_online "$manager-" "$n" 300; then
	tail -n 20 "$tmp/runnerd.log" >&2
	exit 2
fi
t1=$(now)
# CPU of the daemon up to now: utime + stime (fields 14, 15) in clock ticks
read -r -a st <"/proc/$daemon/stat"
hz=$(getconf CLK_TCK)
cpu=$(echo "scale=3; (${st[13]} + ${st[14]}) / $hz" | bc)
rd_wall=$(echo "$t1 - $t0" | bc)
# the script runnerd pushed, for the loop to push too, and the shape of
# runnerd's instances, for the loop to make the same
first=$(lxc list --project "$project" --format csv -c n | grep "^$manager-" | head -n 1)
lxc file pull "$first/opt/runnerd/startup.sh" "$tmp/startup.sh" --project "$project" || exit 2
rd_shape=$(shape "$first") || exit 2
mapfile -t launch_args < <(printf '%s' "$rd_shape" | python3 -c '
import json, sys
s = json.load(sys.stdin)
for p in s["profiles"]:
    print("-p"); print(p)
print("-s"); print(s["root"]["pool"])
print("-n"); print(s["nic"]["network"])
if s["root"].get("size"):
    print("-d"); print("root,size=" + s["root"]["size"])
for k in ("limits.cpu", "limits.memory"):
    if s[k] is not None:
        print("-c"); print("%s=%s" % (k, s[k]))
for k, v in sorted(s["user.runnerd"].items()):
    print("-c"); print("%s=%s" % (k, v))')
[ "${#launch_args[@]}" -gt 0 ] || exit 2
stop_pid "$daemon" 30
daemon=
"$bin" flush --busy -c "$tmp/runnerd.yaml" >/dev/null 2>&1
lxd_project_delete "$project" >/dev/null 2>&1 # every instance, fresh for the loop
lxd_project_create "$project" && lxd_image_busybox runnerd-bench "$project" &&
	lxd_proxy_profile "$project" ghsim "$GHSIM_PORT" || exit 2

# ---- 2. the serial lxc loop ---------------------------------------------------
t2=$(now)
for _ in $(seq 1 "$n"); do
	name=loop-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
	# a JIT config per runner; the token goes to curl on stdin, the JIT config
	# to a 0600 file, neither into argv
	(umask 077 && ghsim_api POST /repos/octo/bench/actions/runners/generate-jitconfig \
		"{\"name\":\"$name\",\"runner_group_id\":1,\"labels\":[\"self-hosted\",\"linux\",\"x64\",\"bench\"]}" |
		json_get '"ACTIONS_RUNNER_INPUT_JITCONFIG=%s" % j["encoded_jit_config"]' >"$tmp/secret.env") || exit 2
	lxc launch runnerd-bench "$name" --project "$project" "${launch_args[@]}" >/dev/null &&
		lxc file push "$tmp/startup.sh" "$name/opt/runnerd/startup.sh" --project "$project" \
			--create-dirs --mode 0700 >/dev/null &&
		lxc file push "$tmp/secret.env" "$name/opt/runnerd/secret.env" --project "$project" --mode 0600 >/dev/null &&
		lxc exec "$name" --project "$project" -- \
			sh -c 'setsid sh /opt/runnerd/startup.sh >/opt/runnerd/startup.log 2>&1 </dev/null &' ||
		exit 2
done
rm -f "$tmp/secret.env"
wait_online loop- "$n" 300 || exit 2
t3=$(now)
loop_wall=$(echo "$t3 - $t2" | bc)

loop_first=$(lxc list --project "$project" --format csv -c n | grep '^loop-' | head -n 1)
loop_shape=$(shape "$loop_first") || exit 2
if [ "$loop_shape" != "$rd_shape" ]; then
	echo "bench_lxd: the loop's instances differ from runnerd's:" >&2
	echo "  runnerd: $rd_shape" >&2
	echo "  loop:    $loop_shape" >&2
	exit 2
fi

mark() { # CONDITION (bc): "" when it holds, "  MISSED" otherwise
	[ "$(echo "$1" | bc -l)" = 1 ] || echo "  MISSED"
}
ratio=$(echo "$rd_wall / $loop_wall" | bc -l)
share=$(echo "100 * $cpu / $rd_wall" | bc -l)
m_ratio=$(mark "$ratio <= 0.5")
m_share=$(mark "$share < 2")
missed=0
[ -z "$m_ratio$m_share" ] || missed=1
echo "same instances both ways: $rd_shape"
printf 'runnerd: %6.1f s until %d online (parallel creates)\n' "$rd_wall" "$n"
printf 'lxc loop: %5.1f s until %d online (serial launch + push + exec)\n' "$loop_wall" "$n"
printf 'ratio runnerd/loop: %.2f (target <= 0.50)%s\n' "$ratio" "$m_ratio"
printf 'runnerd CPU: %.2f s over %.1f s = %.2f%% (target < 2%%)%s\n' "$cpu" "$rd_wall" "$share" "$m_share"
exit $missed
