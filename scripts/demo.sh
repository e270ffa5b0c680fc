#!/bin/sh
# make demo: build, then run the main job (scripts/demo.py) on the embedded defaults.
set -eu
cd "$(dirname "$0")/.."
RUNNERD_DEMO_T0=$(date +%s.%N)
export RUNNERD_DEMO_T0
scripts/build.sh build
exec python3 scripts/demo.py
