#!/bin/sh
# env.sh of ghsim's runner package: like the real one, snapshots a few
# environment variables into .env and PATH into .path, which run.sh loads.
# It must never write secrets: only the variables named below are copied.
cd "$(dirname "$0")" || exit 1
: > .env
for v in LANG JAVA_HOME ANT_HOME M2_HOME ANDROID_HOME GRADLE_HOME NVM_BIN NVM_PATH LD_LIBRARY_PATH PERL5LIB; do
	eval "val=\${$v:-}"
	[ -n "$val" ] && printf '%s=%s\n' "$v" "$val" >> .env
done
printf '%s\n' "$PATH" > .path
