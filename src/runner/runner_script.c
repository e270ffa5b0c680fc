/*
 * Renders the startup script and its job hooks (see runner_script.h). The
 * shell text is fixed; only the value block, the environment list and the
 * repo-policy URL vary, and each value goes through runner_sh_quote(). Never
 * render a secret here: secrets reach the instance only through
 * runner_secret_env(). Keep the script POSIX sh that busybox runs, and keep
 * its every step safe to fail: metrics are written and the instance ends
 * whatever happens.
 */
#include "util/common.h"
#include "util/strutil.h"
#include "runner/runner.h"
#include "runner/runner_script.h"

/* The shell text, one shell line per C line. */
/* clang-format off */
static const char sh_head[] =
	"#!/bin/sh\n"
	"# runnerd startup script (generated; do not edit). It prepares the runner's\n"
	"# environment and hooks, installs or finds the GitHub Actions runner, runs it\n"
	"# for one job, writes metrics for runnerd and ends the instance. It holds no\n"
	"# secret: those come from $RUNNERD_HOME/secret.env, deleted once read, or\n"
	"# from the environment, and reach the runner only in its environment.\n"
	"set -u\n"
	"umask 022\n"
	"PATH=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}\n"
	"export PATH\n"
	"\n"
	"# Values rendered by runnerd, each one a single-quoted word.\n";

static const char sh_funcs[] =
	"runnerd_log() {\n"
	"	printf 'runnerd: %s\\n' \"$*\" >&2\n"
	"}\n"
	"\n"
	"# Everything lives in RUNNERD_HOME: the script's own directory unless set.\n"
	"if [ -z \"${RUNNERD_HOME-}\" ]; then\n"
	"	if [ -n \"$RUNNERD_HOME_DEFAULT\" ]; then\n"
	"		RUNNERD_HOME=$RUNNERD_HOME_DEFAULT\n"
	"	else\n"
	"		RUNNERD_HOME=$(cd \"$(dirname \"$0\")\" && pwd -P) || exit 1\n"
	"	fi\n"
	"fi\n"
	"export RUNNERD_HOME\n"
	"runnerd_metrics=$RUNNERD_HOME/metrics\n"
	"runnerd_runner_dir=\n"
	"runnerd_finished=0\n"
	"# Unset first: a variable imported from the environment stays exported.\n"
	"unset runnerd_jitconfig runnerd_token runnerd_policy_token\n"
	"runnerd_jitconfig=\n"
	"runnerd_token=\n"
	"runnerd_policy_token=\n"
	"\n"
	"# Secrets come in the environment (the local provider) or in secret.env.\n"
	"# Either way they move at once into unexported shell variables, so that\n"
	"# only config.sh or run.sh sees them, and only in its environment.\n"
	"runnerd_take_secrets() {\n"
	"	if [ -n \"${ACTIONS_RUNNER_INPUT_JITCONFIG+x}\" ]; then\n"
	"		runnerd_jitconfig=$ACTIONS_RUNNER_INPUT_JITCONFIG\n"
	"		unset ACTIONS_RUNNER_INPUT_JITCONFIG\n"
	"	fi\n"
	"	if [ -n \"${ACTIONS_RUNNER_INPUT_TOKEN+x}\" ]; then\n"
	"		runnerd_token=$ACTIONS_RUNNER_INPUT_TOKEN\n"
	"		unset ACTIONS_RUNNER_INPUT_TOKEN\n"
	"	fi\n"
	"	if [ -n \"${RUNNERD_REPO_POLICY_TOKEN+x}\" ]; then\n"
	"		runnerd_policy_token=$RUNNERD_REPO_POLICY_TOKEN\n"
	"		unset RUNNERD_REPO_POLICY_TOKEN\n"
	"	fi\n"
	"}\n"
	"runnerd_take_secrets\n"
	"\n"
	"runnerd_load_secrets() {\n"
	"	if [ -f \"$RUNNERD_HOME/secret.env\" ]; then\n"
	"		set -a\n"
	"		. \"$RUNNERD_HOME/secret.env\"\n"
	"		set +a\n"
	"		rm -f \"$RUNNERD_HOME/secret.env\" || runnerd_log \"could not delete secret.env\"\n"
	"		runnerd_take_secrets\n"
	"	fi\n"
	"}\n"
	"\n"
	"runnerd_now() {\n"
	"	date +%s\n"
	"}\n"
	"\n"
	"runnerd_timestamp() {\n"
	"	runnerd_now >\"$runnerd_metrics/$1\"\n"
	"}\n"
	"\n"
	"# post-job-metrics.json from the exit status, unless the pre-job hook wrote\n"
	"# one already (a refused repo-policy check).\n"
	"runnerd_post_job_metrics() {\n"
	"	runnerd_f=$runnerd_metrics/post-job-metrics.json\n"
	"	if [ -e \"$runnerd_f\" ] || [ -L \"$runnerd_f\" ]; then\n"
	"		return 0\n"
	"	fi\n"
	"	if [ \"$1\" -eq 0 ]; then\n"
	"		runnerd_status=normal\n"
	"	else\n"
	"		runnerd_status=abnormal\n"
	"	fi\n"
	"	rm -f \"$runnerd_f.tmp\"\n"
	"	printf '{\"timestamp\": %s, \"status\": \"%s\", \"status_info\": {\"code\": %s}}\\n' \\\n"
	"		\"$(runnerd_now)\" \"$runnerd_status\" \"$1\" >\"$runnerd_f.tmp\" &&\n"
	"		mv -f \"$runnerd_f.tmp\" \"$runnerd_f\"\n"
	"}\n"
	"\n"
	"# One variable of the runner's environment: exported for run.sh and written\n"
	"# to $RUNNERD_HOME/.env. The runner reads .env as KEY=VALUE lines, so a\n"
	"# value holding a newline cannot be written there: it is left out.\n"
	"runnerd_env() {\n"
	"	case $2 in\n"
	"	*'\n"
	"'*)\n"
	"		runnerd_log \"$1: the value holds a newline; not set\"\n"
	"		return 0\n"
	"		;;\n"
	"	esac\n"
	"	export \"$1=$2\"\n"
	"	printf '%s=%s\\n' \"$1\" \"$2\" >>\"$RUNNERD_HOME/.env\"\n"
	"}\n"
	"\n"
	"# Docker's registry-mirrors, when Docker's config dir is writable here\n"
	"# (RUNNERD_DOCKER_DIR: another config dir, for tests and unusual layouts).\n"
	"runnerd_docker_mirror() {\n"
	"	[ -n \"$RUNNERD_DOCKERHUB_MIRROR\" ] || return 0\n"
	"	runnerd_dd=${RUNNERD_DOCKER_DIR:-/etc/docker}\n"
	"	if [ ! -d \"$runnerd_dd\" ] || [ ! -w \"$runnerd_dd\" ]; then\n"
	"		runnerd_log \"docker: $runnerd_dd missing or read-only; registry mirror not set\"\n"
	"		return 0\n"
	"	fi\n"
	"	if [ -e \"$runnerd_dd/daemon.json\" ]; then\n"
	"		if ! command -v jq >/dev/null 2>&1; then\n"
	"			runnerd_log \"docker: daemon.json exists and jq is missing; registry mirror not set\"\n"
	"			return 0\n"
	"		fi\n"
	"		jq --arg m \"$RUNNERD_DOCKERHUB_MIRROR\" '.\"registry-mirrors\" = [$m]' \\\n"
	"			\"$runnerd_dd/daemon.json\" >\"$runnerd_dd/daemon.json.runnerd\" &&\n"
	"			mv -f \"$runnerd_dd/daemon.json.runnerd\" \"$runnerd_dd/daemon.json\" || return 0\n"
	"	else\n"
	"		printf '{\"registry-mirrors\": [%s]}\\n' \"$RUNNERD_DOCKERHUB_MIRROR_JSON\" \\\n"
	"			>\"$runnerd_dd/daemon.json\" || return 0\n"
	"	fi\n"
	"	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker 2>/dev/null; then\n"
	"		systemctl restart docker || runnerd_log \"docker: restart failed\"\n"
	"	fi\n"
	"}\n"
	"\n"
	"runnerd_verify() {\n"
	"	[ -n \"$RUNNERD_SHA256\" ] || return 0\n"
	"	runnerd_sum=$(sha256sum <\"$1\") || runnerd_sum=\n"
	"	runnerd_sum=${runnerd_sum%% *}\n"
	"	if [ \"$runnerd_sum\" != \"$RUNNERD_SHA256\" ]; then\n"
	"		runnerd_log \"$1: sha256 ${runnerd_sum:-unknown} is not $RUNNERD_SHA256; refusing it\"\n"
	"		return 1\n"
	"	fi\n"
	"}\n"
	"\n"
	"runnerd_unpack() {\n"
	"	runnerd_verify \"$1\" || return\n"
	"	runnerd_runner_dir=$RUNNERD_HOME/runner\n"
	"	if ! mkdir -p \"$runnerd_runner_dir\" || ! tar -xzf \"$1\" -C \"$runnerd_runner_dir\"; then\n"
	"		runnerd_log \"$1: could not unpack the runner\"\n"
	"		return 1\n"
	"	fi\n"
	"}\n"
	"\n"
	"runnerd_download() {\n"
	"	rm -f \"$2\"\n"
	"	if command -v curl >/dev/null 2>&1; then\n"
	"		curl -fsSL --retry 3 -o \"$2\" \"$1\"\n"
	"	elif command -v wget >/dev/null 2>&1; then\n"
	"		wget -q -O \"$2\" \"$1\"\n"
	"	else\n"
	"		runnerd_log \"neither curl nor wget is here to download the runner\"\n"
	"		return 127\n"
	"	fi\n"
	"}\n"
	"\n"
	"# The runner software: in the image (fast path), else a package on this\n"
	"# machine, else downloaded; a package is checked against its sha256.\n"
	"runnerd_install() {\n"
	"	if [ -n \"$RUNNERD_IMAGE_DIR\" ] && [ -f \"$RUNNERD_IMAGE_DIR/run.sh\" ]; then\n"
	"		runnerd_runner_dir=$RUNNERD_IMAGE_DIR\n"
	"		runnerd_log \"using the runner in the image at $runnerd_runner_dir\"\n"
	"		return 0\n"
	"	fi\n"
	"	runnerd_pkg=${RUNNERD_RUNNER_TARBALL:-$RUNNERD_TARBALL}\n"
	"	if [ -n \"$runnerd_pkg\" ] && [ -f \"$runnerd_pkg\" ]; then\n"
	"		runnerd_unpack \"$runnerd_pkg\"\n"
	"		return\n"
	"	fi\n"
	"	if [ -n \"$RUNNERD_DOWNLOAD_URL\" ]; then\n"
	"		runnerd_pkg=$RUNNERD_HOME/actions-runner.tar.gz\n"
	"		if ! runnerd_download \"$RUNNERD_DOWNLOAD_URL\" \"$runnerd_pkg\"; then\n"
	"			runnerd_log \"could not download the runner\"\n"
	"			rm -f \"$runnerd_pkg\"\n"
	"			return 1\n"
	"		fi\n"
	"		runnerd_unpack \"$runnerd_pkg\"\n"
	"		runnerd_rc=$?\n"
	"		rm -f \"$runnerd_pkg\"\n"
	"		return $runnerd_rc\n"
	"	fi\n"
	"	runnerd_log \"no runner software: none in the image, no package, no download URL\"\n"
	"	return 1\n"
	"}\n"
	"\n"
	"# The pre-job hook reads the repo-policy token from a file it deletes, so\n"
	"# the job's steps never find it in their environment.\n"
	"runnerd_hand_policy_token() {\n"
	"	if [ \"$RUNNERD_REPO_POLICY\" != 1 ]; then\n"
	"		runnerd_policy_token=\n"
	"		return 0\n"
	"	fi\n"
	"	if [ -z \"$runnerd_policy_token\" ]; then\n"
	"		runnerd_log \"repo-policy check configured without a token: jobs will be refused\"\n"
	"		return 0\n"
	"	fi\n"
	"	(umask 077 && printf '%s' \"$runnerd_policy_token\" >\"$RUNNERD_HOME/.repo-policy-token\") ||\n"
	"		runnerd_log \"could not hand the repo-policy token to the pre-job hook\"\n"
	"	runnerd_policy_token=\n"
	"}\n"
	"\n"
	"runnerd_run() {\n"
	"	if [ \"$(id -u 2>/dev/null)\" = 0 ]; then\n"
	"		RUNNER_ALLOW_RUNASROOT=1\n"
	"		export RUNNER_ALLOW_RUNASROOT\n"
	"	fi\n"
	"	if [ \"$RUNNERD_JIT\" = 1 ]; then\n"
	"		if [ -z \"$runnerd_jitconfig\" ]; then\n"
	"			runnerd_log \"no JIT config (ACTIONS_RUNNER_INPUT_JITCONFIG)\"\n"
	"			return 1\n"
	"		fi\n"
	"		(\n"
	"			cd \"$runnerd_runner_dir\" || exit 1\n"
	"			ACTIONS_RUNNER_INPUT_JITCONFIG=$runnerd_jitconfig\n"
	"			export ACTIONS_RUNNER_INPUT_JITCONFIG\n"
	"			exec ./run.sh\n"
	"		)\n"
	"		runnerd_rc=$?\n"
	"		runnerd_jitconfig=\n"
	"		return $runnerd_rc\n"
	"	fi\n"
	"	if [ -z \"$runnerd_token\" ]; then\n"
	"		runnerd_log \"no registration token (ACTIONS_RUNNER_INPUT_TOKEN)\"\n"
	"		return 1\n"
	"	fi\n"
	"	set -- --url \"$RUNNERD_URL\" --ephemeral --unattended --name \"$RUNNERD_NAME\" \\\n"
	"		--labels \"$RUNNERD_LABELS\"\n"
	"	if [ -n \"$RUNNERD_RUNNER_GROUP\" ]; then\n"
	"		set -- \"$@\" --runnergroup \"$RUNNERD_RUNNER_GROUP\"\n"
	"	fi\n"
	"	set -- \"$@\" --work _work\n"
	"	(\n"
	"		cd \"$runnerd_runner_dir\" || exit 1\n"
	"		ACTIONS_RUNNER_INPUT_TOKEN=$runnerd_token\n"
	"		export ACTIONS_RUNNER_INPUT_TOKEN\n"
	"		exec ./config.sh \"$@\"\n"
	"	)\n"
	"	runnerd_rc=$?\n"
	"	runnerd_token=\n"
	"	if [ $runnerd_rc -ne 0 ]; then\n"
	"		runnerd_log \"config.sh failed ($runnerd_rc)\"\n"
	"		return $runnerd_rc\n"
	"	fi\n"
	"	(cd \"$runnerd_runner_dir\" && exec ./run.sh)\n"
	"}\n"
	"\n"
	"runnerd_end() {\n"
	"	if [ \"$RUNNERD_END\" = poweroff ]; then\n"
	"		runnerd_log \"powering off\"\n"
	"		sync\n"
	"		poweroff 2>/dev/null || halt 2>/dev/null || kill -TERM 1\n"
	"	fi\n"
	"	exit \"$1\"\n"
	"}\n"
	"\n"
	"# Whatever stops this script early still records metrics and ends.\n"
	"runnerd_on_exit() {\n"
	"	runnerd_rc=$?\n"
	"	rm -f \"$RUNNERD_HOME/secret.env\" \"$RUNNERD_HOME/.repo-policy-token\"\n"
	"	if [ \"$runnerd_finished\" = 0 ]; then\n"
	"		runnerd_finished=1\n"
	"		[ \"$runnerd_rc\" -ne 0 ] || runnerd_rc=1\n"
	"		runnerd_log \"stopped early ($runnerd_rc)\"\n"
	"		runnerd_post_job_metrics \"$runnerd_rc\"\n"
	"		runnerd_end \"$runnerd_rc\"\n"
	"	fi\n"
	"}\n"
	"trap runnerd_on_exit EXIT\n"
	"trap 'exit 129' HUP\n"
	"trap 'exit 130' INT\n"
	"trap 'exit 143' TERM\n";

static const char sh_main[] =
	"runnerd_main() {\n"
	"	mkdir -p \"$runnerd_metrics\" || return\n"
	"	runnerd_timestamp runner-installation-start.timestamp || return\n"
	"	runnerd_write_hooks || return\n"
	"	runnerd_write_env || return\n"
	"	runnerd_docker_mirror\n"
	"	runnerd_install || return\n"
	"	if [ ! -f \"$runnerd_runner_dir/run.sh\" ]; then\n"
	"		runnerd_log \"$runnerd_runner_dir has no run.sh\"\n"
	"		return 1\n"
	"	fi\n"
	"	# The real runner also reads .env from its own directory.\n"
	"	cat \"$RUNNERD_HOME/.env\" >>\"$runnerd_runner_dir/.env\" 2>/dev/null ||\n"
	"		runnerd_log \"$runnerd_runner_dir/.env is read-only; the environment comes from here\"\n"
	"	runnerd_timestamp runner-installed.timestamp || return\n"
	"	runnerd_load_secrets\n"
	"	runnerd_hand_policy_token\n"
	"	runnerd_run\n"
	"}\n"
	"\n"
	"runnerd_main\n"
	"runnerd_rc=$?\n"
	"runnerd_log \"the runner exited ($runnerd_rc)\"\n"
	"runnerd_post_job_metrics \"$runnerd_rc\"\n"
	"runnerd_finished=1\n"
	"runnerd_end \"$runnerd_rc\"\n";

static const char hook_pre_head[] =
	"#!/bin/sh\n"
	"# runnerd pre-job hook (ACTIONS_RUNNER_HOOK_JOB_STARTED), run before the job:\n"
	"# writes pre-job-metrics.json for runnerd, then the repo-policy check.\n"
	"# No set -e: failing to write metrics must not fail the job.\n"
	"set +e\n"
	"RUNNERD_HOME=${RUNNERD_HOME:-$(cd \"$(dirname \"$0\")/..\" && pwd -P)}\n"
	"runnerd_metrics=$RUNNERD_HOME/metrics\n"
	"\n"
	"# $1 as a JSON string: quotes, backslashes and control characters escaped.\n"
	"runnerd_json_string() {\n"
	"	case $1 in\n"
	"	*[\\\\\\\"[:cntrl:]]*) ;;\n"
	"	*)\n"
	"		printf '\"%s\"' \"$1\"\n"
	"		return 0\n"
	"		;;\n"
	"	esac\n"
	"	runnerd_s=$1\n"
	"	runnerd_out=\n"
	"	while [ -n \"$runnerd_s\" ]; do\n"
	"		runnerd_rest=${runnerd_s#?}\n"
	"		runnerd_c=${runnerd_s%\"$runnerd_rest\"}\n"
	"		runnerd_s=$runnerd_rest\n"
	"		case $runnerd_c in\n"
	"		\\\\) runnerd_out=\"$runnerd_out\\\\\\\\\" ;;\n"
	"		\\\") runnerd_out=\"$runnerd_out\\\\\\\"\" ;;\n"
	"		[[:cntrl:]]) runnerd_out=\"$runnerd_out$(printf '\\\\u%04x' \"'$runnerd_c\")\" ;;\n"
	"		*) runnerd_out=\"$runnerd_out$runnerd_c\" ;;\n"
	"		esac\n"
	"	done\n"
	"	printf '\"%s\"' \"$runnerd_out\"\n"
	"}\n"
	"\n"
	"runnerd_pre_job_metrics() {\n"
	"	runnerd_f=$runnerd_metrics/pre-job-metrics.json\n"
	"	rm -f \"$runnerd_f.tmp\"\n"
	"	printf '{\"workflow\": %s, \"repository\": %s, \"event\": %s, \"timestamp\": %s, \"workflow_run_id\": %s}\\n' \\\n"
	"		\"$(runnerd_json_string \"${GITHUB_WORKFLOW-}\")\" \\\n"
	"		\"$(runnerd_json_string \"${GITHUB_REPOSITORY-}\")\" \\\n"
	"		\"$(runnerd_json_string \"${GITHUB_EVENT_NAME-}\")\" \\\n"
	"		\"$(date +%s)\" \\\n"
	"		\"$(runnerd_json_string \"${GITHUB_RUN_ID-}\")\" >\"$runnerd_f.tmp\" &&\n"
	"		mv -f \"$runnerd_f.tmp\" \"$runnerd_f\"\n"
	"}\n"
	"runnerd_pre_job_metrics || printf 'runnerd: could not write pre-job metrics\\n' >&2\n"
	"\n"
	"# ---- repo-policy compliance check ------------------------------------------\n";

static const char hook_policy_off[] =
	"# Not configured (repo_policy_compliance.url is empty): every job may run.\n"
	"exit 0\n";

static const char hook_policy_on[] =
	"# Asks the repo-policy-compliance service whether this job may run. The\n"
	"# one-time token is in $RUNNERD_HOME/.repo-policy-token, left by the startup\n"
	"# script and deleted here before any step of the job runs; it reaches curl on\n"
	"# its standard input, never in argv. Anything but a 2xx answer refuses the\n"
	"# job: post-job-metrics.json says so and the hook fails, which fails the job.\n"
	"runnerd_body=$RUNNERD_HOME/.repo-policy-request.json\n"
	"runnerd_resp=$RUNNERD_HOME/.repo-policy-response\n"
	"\n"
	"runnerd_policy_refuse() {\n"
	"	runnerd_code=$1\n"
	"	shift\n"
	"	printf 'runnerd: %s\\n' \"$*\" >&2\n"
	"	printf 'runnerd: Stopping execution of jobs due to repository setup is not compliant with policies.\\n' >&2\n"
	"	runnerd_f=$runnerd_metrics/post-job-metrics.json\n"
	"	rm -f \"$runnerd_f.tmp\" \"$runnerd_body\" \"$runnerd_resp\"\n"
	"	printf '{\"timestamp\": %s, \"status\": \"repo-policy-check-failure\", \"status_info\": {\"code\": %s}}\\n' \\\n"
	"		\"$(date +%s)\" \"$runnerd_code\" >\"$runnerd_f.tmp\" &&\n"
	"		mv -f \"$runnerd_f.tmp\" \"$runnerd_f\"\n"
	"	exit 1\n"
	"}\n"
	"\n"
	"runnerd_token=\n"
	"if [ -f \"$RUNNERD_HOME/.repo-policy-token\" ]; then\n"
	"	runnerd_token=$(cat \"$RUNNERD_HOME/.repo-policy-token\")\n"
	"	rm -f \"$RUNNERD_HOME/.repo-policy-token\"\n"
	"fi\n"
	"[ -n \"$runnerd_token\" ] || runnerd_policy_refuse 1 \"repo-policy check: no token\"\n"
	"case $runnerd_token in\n"
	"*[!A-Za-z0-9._~+/=-]*) runnerd_policy_refuse 1 \"repo-policy check: malformed token\" ;;\n"
	"esac\n"
	"command -v curl >/dev/null 2>&1 || runnerd_policy_refuse 127 \"repo-policy check: curl is missing\"\n"
	"\n"
	"case ${GITHUB_EVENT_NAME-} in\n"
	"pull_request | pull_request_target)\n"
	"	command -v jq >/dev/null 2>&1 ||\n"
	"		runnerd_policy_refuse 127 \"repo-policy check: jq is needed for pull requests\"\n"
	"	runnerd_src=$(jq -r '.pull_request.head.repo.full_name // empty' \"${GITHUB_EVENT_PATH-}\")\n"
	"	runnerd_sha=$(jq -r '.pull_request.head.sha // empty' \"${GITHUB_EVENT_PATH-}\")\n"
	"	runnerd_endpoint=pull_request\n"
	"	runnerd_data=$(printf '{\"repository_name\": %s, \"source_repository_name\": %s, \"target_branch_name\": %s, \"source_branch_name\": %s, \"commit_sha\": %s}' \\\n"
	"		\"$(runnerd_json_string \"${GITHUB_REPOSITORY-}\")\" \\\n"
	"		\"$(runnerd_json_string \"$runnerd_src\")\" \\\n"
	"		\"$(runnerd_json_string \"${GITHUB_BASE_REF-}\")\" \\\n"
	"		\"$(runnerd_json_string \"${GITHUB_HEAD_REF-}\")\" \\\n"
	"		\"$(runnerd_json_string \"$runnerd_sha\")\")\n"
	"	;;\n"
	"*)\n"
	"	case ${GITHUB_EVENT_NAME-} in\n"
	"	workflow_dispatch | push | schedule) runnerd_endpoint=$GITHUB_EVENT_NAME ;;\n"
	"	*) runnerd_endpoint=default ;;\n"
	"	esac\n"
	"	runnerd_data=$(printf '{\"repository_name\": %s, \"branch_name\": %s, \"commit_sha\": %s}' \\\n"
	"		\"$(runnerd_json_string \"${GITHUB_REPOSITORY-}\")\" \\\n"
	"		\"$(runnerd_json_string \"${GITHUB_REF_NAME-}\")\" \\\n"
	"		\"$(runnerd_json_string \"${GITHUB_SHA-}\")\")\n"
	"	;;\n"
	"esac\n"
	"rm -f \"$runnerd_resp\"\n"
	"(umask 077 && printf '%s\\n' \"$runnerd_data\" >\"$runnerd_body\") ||\n"
	"	runnerd_policy_refuse 1 \"repo-policy check: cannot write the request\"\n"
	"runnerd_rc=0\n"
	"runnerd_http=$(printf 'header = \"Authorization: Bearer %s\"\\n' \"$runnerd_token\" |\n"
	"	curl --config - --silent --show-error --max-time 60 --noproxy '*' \\\n"
	"		-H 'Content-Type: application/json' --data-binary \"@$runnerd_body\" \\\n"
	"		-o \"$runnerd_resp\" -w '%{http_code}' \\\n"
	"		\"$RUNNERD_REPO_POLICY_URL/$runnerd_endpoint/check-run\") || runnerd_rc=$?\n"
	"runnerd_token=\n"
	"[ \"$runnerd_rc\" -eq 0 ] ||\n"
	"	runnerd_policy_refuse \"$runnerd_rc\" \"repo-policy check: the request failed (curl $runnerd_rc)\"\n"
	"case $runnerd_http in\n"
	"2[0-9][0-9]) ;;\n"
	"*)\n"
	"	[ -f \"$runnerd_resp\" ] && head -c 4096 \"$runnerd_resp\" >&2 && printf '\\n' >&2\n"
	"	case $runnerd_http in\n"
	"	[1-9][0-9][0-9]) ;;\n"
	"	*) runnerd_http=0 ;;\n"
	"	esac\n"
	"	runnerd_policy_refuse \"$runnerd_http\" \"repo-policy check refused this job (HTTP $runnerd_http)\"\n"
	"	;;\n"
	"esac\n"
	"rm -f \"$runnerd_body\" \"$runnerd_resp\"\n"
	"printf 'runnerd: the repository setup check passed, proceeding to execute jobs\\n' >&2\n"
	"exit 0\n";

static const char hook_post[] =
	"#!/bin/sh\n"
	"# runnerd post-job hook (ACTIONS_RUNNER_HOOK_JOB_COMPLETED), run after the\n"
	"# job. It records nothing: post-job-metrics.json comes from run.sh's exit\n"
	"# status, written by the startup script.\n"
	"exit 0\n";
/* clang-format on */

const char *runner_end_name(enum runner_end end)
{
	switch (end) {
	case RUNNER_END_EXIT:
		return "exit";
	case RUNNER_END_POWEROFF:
		return "poweroff";
	}
	return NULL;
}

static bool is_set(const char *s)
{
	return s && *s;
}

/* NAME='value'\n */
static int put_var(struct buf *b, const char *name, const char *value)
{
	int r = buf_printf(b, "%s=", name);
	if (r == 0)
		r = runner_sh_quote(value ? value : "", b);
	return r < 0 ? r : buf_puts(b, "\n");
}

/* A tab-indented `runnerd_env NAME 'value'` line of runnerd_write_env(). */
static int put_env(struct buf *b, const char *name, const char *value)
{
	int r;

	if (!is_set(value))
		return 0;
	r = buf_printf(b, "\trunnerd_env %s ", name);
	if (r == 0)
		r = runner_sh_quote(value, b);
	return r < 0 ? r : buf_puts(b, "\n");
}

static bool sha256_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

/*
 * A here-document delimiter that no line of text equals, so the text ends
 * where we mean it to whatever a rendered value holds.
 */
static void heredoc_delim(const char *text, const char *base, char *out, size_t cap)
{
	for (unsigned i = 0;; i++) {
		size_t n;
		const char *p;
		bool clash = false;

		if (i == 0)
			snprintf(out, cap, "%s", base);
		else
			snprintf(out, cap, "%s_%u", base, i);
		n = strlen(out);
		for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
			if (strncmp(p, out, n) == 0 && (p[n] == '\n' || p[n] == '\0')) {
				clash = true;
				break;
			}
		}
		if (!clash)
			return;
	}
}

static int put_heredoc(struct buf *b, const char *path, const char *text, const char *base)
{
	char delim[64];
	int r;

	heredoc_delim(text, base, delim, sizeof(delim));
	r = buf_printf(b, "\tcat >\"$RUNNERD_HOME/hooks/%s\" <<'%s' || return\n", path, delim);
	if (r == 0)
		r = buf_puts(b, text);
	return r < 0 ? r : buf_printf(b, "%s\n", delim);
}

static int render_hooks(const struct config_runner *rc, struct buf *b)
{
	struct buf pre = BUF_INIT(RUNNER_SCRIPT_MAX);
	int r;

	r = buf_puts(&pre, hook_pre_head);
	if (r == 0 && is_set(rc->repo_policy_url)) {
		/* The hook appends "/<event>/check-run". */
		char *url = strdup(rc->repo_policy_url);
		size_t n = url ? strlen(url) : 0;
		while (n > 1 && url[n - 1] == '/')
			url[--n] = '\0';
		r = url ? put_var(&pre, "RUNNERD_REPO_POLICY_URL", url) : -ENOMEM;
		free(url);
		if (r == 0)
			r = buf_puts(&pre, hook_policy_on);
	} else if (r == 0) {
		r = buf_puts(&pre, hook_policy_off);
	}
	if (r == 0)
		r = buf_puts(b, "\n# The job hooks the runner calls around the job.\n"
		                "runnerd_write_hooks() {\n"
		                "\tmkdir -p \"$RUNNERD_HOME/hooks\" || return\n");
	if (r == 0)
		r = put_heredoc(b, "pre-job.sh", buf_str(&pre), "RUNNERD_PRE_JOB_EOF");
	if (r == 0)
		r = put_heredoc(b, "post-job.sh", hook_post, "RUNNERD_POST_JOB_EOF");
	if (r == 0)
		r = buf_puts(b, "\tchmod 755 \"$RUNNERD_HOME/hooks/pre-job.sh\" "
		                "\"$RUNNERD_HOME/hooks/post-job.sh\"\n"
		                "}\n");
	buf_release(&pre);
	return r;
}

/*
 * One of the tmate servers per runner, spread by the runner's name (FNV-1a):
 * every server takes a share, and a runner's choice is reproducible.
 */
static size_t ssh_debug_pick(const char *name, size_t n)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % n;
}

static int render_env(const struct config_runner *rc, const char *name, struct buf *b)
{
	const struct config_proxy *px = &rc->proxy;
	int r;

	r = buf_puts(b, "\n# The runner's environment (.env), from the config.\n"
	                "runnerd_write_env() {\n"
	                "\t(umask 077 && : >\"$RUNNERD_HOME/.env\") || return\n"
	                "\trunnerd_env PATH \"$PATH\"\n");
	if (r == 0)
		r = put_env(b, "LANG", "C.UTF-8");
	if (r == 0 && px->aproxy)
		r = buf_puts(
		        b, "\t# aproxy: the image redirects outbound HTTP(S) to the proxy\n"
		           "\t# below; runnerd only notes it.\n"
		           "\trunnerd_log \"aproxy: outbound HTTP(S) is expected to be redirected "
		           "by the image\"\n");
	if (r == 0)
		r = put_env(b, "HTTP_PROXY", px->http);
	if (r == 0)
		r = put_env(b, "http_proxy", px->http);
	if (r == 0)
		r = put_env(b, "HTTPS_PROXY", px->https);
	if (r == 0)
		r = put_env(b, "https_proxy", px->https);
	if (r == 0)
		r = put_env(b, "NO_PROXY", px->no_proxy);
	if (r == 0)
		r = put_env(b, "no_proxy", px->no_proxy);
	if (r == 0)
		r = put_env(b, "DOCKERHUB_MIRROR", rc->dockerhub_mirror);
	if (r == 0 && rc->n_ssh_debug > 0 && rc->ssh_debug) {
		const struct config_ssh_debug *d =
		        &rc->ssh_debug[ssh_debug_pick(name, rc->n_ssh_debug)];
		char port[32];
		snprintf(port, sizeof(port), "%" PRId64, d->port);
		r = put_env(b, "TMATE_SERVER_HOST", d->host);
		if (r == 0)
			r = put_env(b, "TMATE_SERVER_PORT", port);
		if (r == 0)
			r = put_env(b, "TMATE_SERVER_RSA_FINGERPRINT", d->rsa_fingerprint);
		if (r == 0)
			r = put_env(b, "TMATE_SERVER_ED25519_FINGERPRINT", d->ed25519_fingerprint);
	}
	if (r == 0)
		r = buf_puts(b, "\trunnerd_env ACTIONS_RUNNER_HOOK_JOB_STARTED "
		                "\"$RUNNERD_HOME/hooks/pre-job.sh\"\n"
		                "\trunnerd_env ACTIONS_RUNNER_HOOK_JOB_COMPLETED "
		                "\"$RUNNERD_HOME/hooks/post-job.sh\"\n"
		                "}\n");
	return r;
}

static int render_values(const struct runner_script_opts *o, const struct strv *labels,
                         struct buf *b, struct err *e)
{
	const struct config *cfg = o->cfg;
	const struct config_runner *rc = &cfg->runner;
	struct buf url = BUF_INIT(4096), joined = BUF_INIT(64 * 1024), mirror = BUF_INIT(8192);
	const char *group = "";
	int r;

	r = runner_html_url(cfg->github.api_url, cfg->github.path, &url);
	if (r < 0) {
		r = err_set(e, r, "runner script: GitHub URL: %s",
		            r == -EINVAL ? "no api_url or path" : "too long");
		goto out;
	}
	for (size_t i = 0; r == 0 && i < labels->n; i++)
		r = buf_printf(&joined, "%s%s", i ? "," : "", labels->v[i]);
	if (r == 0 && is_set(rc->dockerhub_mirror))
		r = buf_json_string(&mirror, rc->dockerhub_mirror);
	if (r < 0) {
		r = err_set(e, r, "runner script: a value is too long");
		goto out;
	}
	/* The group is part of the JIT config; config.sh needs it otherwise. */
	if (cfg->github.is_org && is_set(cfg->github.runner_group))
		group = cfg->github.runner_group;

	r = put_var(b, "RUNNERD_NAME", o->name);
	if (r == 0)
		r = put_var(b, "RUNNERD_URL", buf_str(&url));
	if (r == 0)
		r = put_var(b, "RUNNERD_LABELS", buf_str(&joined));
	if (r == 0)
		r = put_var(b, "RUNNERD_RUNNER_GROUP", group);
	if (r == 0)
		r = buf_printf(b, "RUNNERD_JIT=%d\n", rc->jit ? 1 : 0);
	if (r == 0)
		r = buf_printf(b, "RUNNERD_END=%s\n", runner_end_name(o->end));
	if (r == 0)
		r = put_var(b, "RUNNERD_HOME_DEFAULT", o->home);
	if (r == 0)
		r = put_var(b, "RUNNERD_IMAGE_DIR", o->image_dir);
	if (r == 0)
		r = put_var(b, "RUNNERD_TARBALL", o->tarball);
	if (r == 0)
		r = put_var(b, "RUNNERD_DOWNLOAD_URL", o->download_url);
	if (r == 0)
		r = put_var(b, "RUNNERD_SHA256", o->sha256);
	if (r == 0)
		r = put_var(b, "RUNNERD_DOCKERHUB_MIRROR", rc->dockerhub_mirror);
	if (r == 0)
		r = put_var(b, "RUNNERD_DOCKERHUB_MIRROR_JSON", buf_str(&mirror));
	if (r == 0)
		r = buf_printf(b, "RUNNERD_REPO_POLICY=%d\n\n",
		               is_set(rc->repo_policy_url) ? 1 : 0);
	if (r < 0)
		r = err_set(e, r, "runner script: too large");
out:
	buf_release(&url);
	buf_release(&joined);
	buf_release(&mirror);
	return r;
}

int runner_script_render(const struct runner_script_opts *o, struct buf *out, struct err *e)
{
	struct buf b = BUF_INIT(RUNNER_SCRIPT_MAX);
	struct strv labels = {NULL, 0};
	int r;

	if (!o || !o->cfg || !o->flavor || !is_set(o->name))
		return err_set(e, -EINVAL, "runner script: no config, flavor or runner name");
	if (!runner_end_name(o->end))
		return err_set(e, -EINVAL, "runner script: unknown end action %d", (int)o->end);
	if (is_set(o->sha256) && !sha256_ok(o->sha256))
		return err_set(e, -EINVAL, "runner script: sha256 must be 64 lowercase hex digits");
	if (is_set(o->download_url) && !is_set(o->sha256))
		return err_set(e, -EINVAL, "runner script: a download URL needs its sha256");
	r = runner_labels(o->flavor, &labels);
	if (r < 0)
		return err_set(e, r, "runner script: flavor %s: %s",
		               o->flavor->name ? o->flavor->name : "?",
		               r == -EINVAL ? "empty label or a label with ','" : strerror(-r));

	r = buf_puts(&b, sh_head);
	if (r == 0)
		r = render_values(o, &labels, &b, e);
	else
		r = err_set(e, r, "runner script: too large");
	if (r < 0)
		goto out;
	r = buf_puts(&b, sh_funcs);
	if (r == 0)
		r = render_env(&o->cfg->runner, o->name, &b);
	if (r == 0)
		r = render_hooks(&o->cfg->runner, &b);
	if (r == 0)
		r = buf_puts(&b, "\n");
	if (r == 0)
		r = buf_puts(&b, sh_main);
	if (r == 0)
		r = buf_append(out, b.data, b.len);
	if (r < 0)
		r = err_set(e, r, "runner script: too large");
out:
	strv_release(&labels);
	buf_release(&b);
	return r;
}

int runner_script_for(const struct config *cfg, const struct config_flavor *flavor,
                      const char *name, bool local, const char *download_url, const char *sha256,
                      struct buf *out, struct err *e)
{
	struct runner_script_opts o = {
	        .cfg = cfg,
	        .flavor = flavor,
	        .name = name,
	        .end = local ? RUNNER_END_EXIT : RUNNER_END_POWEROFF,
	        .home = local ? NULL : RUNNER_INSTANCE_HOME,
	        .image_dir = local ? NULL : RUNNER_IMAGE_DIR,
	        .tarball = local ? NULL : RUNNER_INSTANCE_TARBALL,
	        .download_url = local ? NULL : download_url,
	        .sha256 = local ? NULL : sha256,
	};
	return runner_script_render(&o, out, e);
}
