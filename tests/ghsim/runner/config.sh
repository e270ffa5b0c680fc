#!/bin/sh
# config.sh of ghsim's runner package: registers this runner with ghsim the
# way the real actions/runner config.sh registers with GitHub (same options,
# same ACTIONS_RUNNER_INPUT_* environment, same refusal to run as root).
# It must never put a token in argv of a child process or in a log.
exec sh "$(dirname "$0")/bin/Runner.Listener" configure "$@"
