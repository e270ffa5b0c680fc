#!/bin/sh
# run.sh of ghsim's runner package: connects to ghsim, takes jobs and runs
# the job hooks like the real actions/runner run.sh (see ../PROTOCOL.md).
# It must never put a token or JIT config in argv of a child process or a log.
exec sh "$(dirname "$0")/bin/Runner.Listener" run "$@"
