#!/bin/sh
# build.sh DIR [meson options...]: configure DIR once, then build it.
set -eu
cd "$(dirname "$0")/.."
dir=$1
shift
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" "$@" >/dev/null
fi
ninja -C "$dir" >"$dir/build-output.log" 2>&1 || { cat "$dir/build-output.log"; echo "build: $dir failed" >&2; exit 1; }
