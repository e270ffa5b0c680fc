#!/bin/bash
# The long chaos run (`make soak`, after the build): tests/e2e/test_chaos.py
# --soak, hundreds of kill -9s of `runnerd serve` aimed at its creates,
# deletes, job runs and idle moments, `runnerd reconcile` and `runnerd
# flush` runs killed mid-way, GitHub faults, ghsim stopped (SIGSTOP) past
# the request timeout; it prints its figures (kills, jobs, passes, faults
# fired, leaks, duration) and exits non-zero when something was left or a
# job was lost. RUNNERD_CHAOS_SEED, RUNNERD_CHAOS_KILLS (300) and
# RUNNERD_CHAOS_DURATION (900 s of kills) change it; everything it starts
# listens on 127.0.0.1 and is stopped by its pid.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
export RUNNERD_TOP=$top
export RUNNERD_BIN=${RUNNERD_BIN:-$top/build/runnerd}
exec python3 "$top/tests/e2e/test_chaos.py" --soak
