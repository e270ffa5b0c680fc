/*
 * What the startup script installs, apart from runner_sh.c (the rest of the
 * script): whether the runner an image carries is recent enough to be used
 * as is, the note runnerd reads back when GitHub refused the runner's
 * version, and runner.install's snaps and executables (an executable is
 * checked against its sha256 before it lands on PATH). It never trusts what
 * the runner prints beyond digits and dots, renders every configured value
 * as one quoted word, and a failed install stops the script (the instance
 * ends, unhealthy, the reason in its log).
 */
#include "util/common.h"
#include "runner/runner.h"
#include "runner/runner_internal.h"
#include "runner/runner_version.h"
#include "util/words.h"

/* clang-format off */
const char runner_sh_version[] =
	"\n"
	"# Runner versions: GitHub refuses a runner too far behind its releases.\n"
	"# runnerd_version_lt A B: A is an older dotted version than B.\n"
	"runnerd_version_lt() {\n"
	"	runnerd_va=$1.\n"
	"	runnerd_vb=$2.\n"
	"	while [ -n \"$runnerd_va\" ] || [ -n \"$runnerd_vb\" ]; do\n"
	"		runnerd_x=${runnerd_va%%.*}\n"
	"		runnerd_y=${runnerd_vb%%.*}\n"
	"		runnerd_va=${runnerd_va#*.}\n"
	"		runnerd_vb=${runnerd_vb#*.}\n"
	"		[ \"${runnerd_x:-0}\" -lt \"${runnerd_y:-0}\" ] && return 0\n"
	"		[ \"${runnerd_x:-0}\" -gt \"${runnerd_y:-0}\" ] && return 1\n"
	"	done\n"
	"	return 1\n"
	"}\n"
	"\n"
	"# A line of the note runnerd reads back with the metrics files.\n"
	"runnerd_version_note() {\n"
	"	printf '%s=%s\\n' \"$1\" \"$2\" >>\"$runnerd_metrics/" RUNNER_VERSION_NOTE "\" ||\n"
	"		runnerd_log \"could not write the runner version note\"\n"
	"}\n"
	"\n"
	"# The image's runner is used as is unless it is older than\n"
	"# RUNNERD_RUNNER_MIN_VERSION (more than runner.image_runner_max_behind behind\n"
	"# GitHub's releases): then the verified package replaces it, and runnerd is\n"
	"# told so it can warn that the image needs a rebuild.\n"
	"runnerd_image_runner_ok() {\n"
	"	[ -n \"$RUNNERD_RUNNER_MIN_VERSION\" ] || return 0\n"
	"	runnerd_iv=$(\"$1/bin/Runner.Listener\" --version 2>/dev/null | head -n 1) || runnerd_iv=\n"
	"	runnerd_iv=${runnerd_iv#v}\n"
	"	case $runnerd_iv in\n"
	"	'' | *[!0-9.]* | .* | *. | *..*)\n"
	"		runnerd_log \"the image's runner at $1 does not say its version\"\n"
	"		runnerd_iv=0\n"
	"		;;\n"
	"	esac\n"
	"	runnerd_version_lt \"$runnerd_iv\" \"$RUNNERD_RUNNER_MIN_VERSION\" || return 0\n"
	"	runnerd_log \"the image's runner $runnerd_iv is older than $RUNNERD_RUNNER_MIN_VERSION\" \\\n"
	"		\"(GitHub stops giving it jobs): updating it from the verified package; rebuild the image\"\n"
	"	runnerd_version_note image \"$runnerd_iv\"\n"
	"	return 1\n"
	"}\n"
	"\n"
	"# After the runner failed: did GitHub refuse its version? The runner says so\n"
	"# in its _diag log; runnerd then holds the flavor instead of making runners\n"
	"# GitHub will refuse again.\n"
	"runnerd_note_refusal() {\n"
	"	[ \"$1\" -ne 0 ] && [ -n \"$runnerd_runner_dir\" ] || return 0\n"
	"	runnerd_rv=$(cat \"$runnerd_runner_dir\"/_diag/Runner_*.log 2>/dev/null |\n"
	"		sed -n 's/.*Runner version v\\{0,1\\}\\([0-9][0-9.]*[0-9]\\) is deprecated and cannot receive messages.*/\\1/p' |\n"
	"		head -n 1)\n"
	"	[ -n \"$runnerd_rv\" ] || return 0\n"
	"	runnerd_log \"GitHub refused runner version $runnerd_rv (deprecated and cannot receive messages)\"\n"
	"	runnerd_version_note refused \"$runnerd_rv\"\n"
	"}\n";
/* clang-format on */

/* clang-format off */
static const char sh_extras[] =
	"\n"
	"# runner.install: snaps and executables, before the runner starts. A\n"
	"# failure ends the instance (unhealthy) with the reason in this log.\n"
	"runnerd_snap() { # NAME CHANNEL REVISION\n"
	"	if ! command -v snap >/dev/null 2>&1; then\n"
	"		runnerd_log \"snap $1: this image has no snap command\"\n"
	"		return 1\n"
	"	fi\n"
	"	if [ \"$3\" != 0 ]; then\n"
	"		set -- \"$1\" \"--channel=$2\" \"--revision=$3\"\n"
	"	else\n"
	"		set -- \"$1\" \"--channel=$2\"\n"
	"	fi\n"
	"	runnerd_log \"snap install $*\"\n"
	"	if ! snap install \"$@\"; then\n"
	"		runnerd_log \"snap $1: snap install $* failed\"\n"
	"		return 1\n"
	"	fi\n"
	"}\n"
	"\n"
	"runnerd_executable() { # URL CMD SHA256: checked, then on PATH as CMD\n"
	"	runnerd_x=$RUNNERD_HOME/bin/$2\n"
	"	mkdir -p \"$RUNNERD_HOME/bin\" || return\n"
	"	if ! runnerd_download \"$1\" \"$runnerd_x.tmp\"; then\n"
	"		runnerd_log \"executable $2: could not download $1\"\n"
	"		rm -f \"$runnerd_x.tmp\"\n"
	"		return 1\n"
	"	fi\n"
	"	runnerd_sum=$(sha256sum <\"$runnerd_x.tmp\") || runnerd_sum=\n"
	"	runnerd_sum=${runnerd_sum%% *}\n"
	"	if [ \"$runnerd_sum\" != \"$3\" ]; then\n"
	"		runnerd_log \"executable $2: sha256 of $1 is ${runnerd_sum:-unknown}, not $3: refusing it\"\n"
	"		rm -f \"$runnerd_x.tmp\"\n"
	"		return 1\n"
	"	fi\n"
	"	chmod 755 \"$runnerd_x.tmp\" && mv -f \"$runnerd_x.tmp\" \"$runnerd_x\" || return\n"
	"	runnerd_log \"executable $2: installed from $1\"\n"
	"}\n"
	"\n"
	"runnerd_install_extras() {\n";
/* clang-format on */

/* clang-format off */
const char runner_hook_pre_job_script[] =
	"# ---- runner.pre_job_script --------------------------------------------------\n"
	"# The operator's script, before each job (its output is in the job's log); when\n"
	"# it fails, the hook fails and so does the job.\n"
	"if [ -f \"$RUNNERD_HOME/hooks/pre-job-script.sh\" ]; then\n"
	"	printf 'runnerd: running runner.pre_job_script\\n' >&2\n"
	"	\"$RUNNERD_HOME/hooks/pre-job-script.sh\"\n"
	"	runnerd_rc=$?\n"
	"	if [ \"$runnerd_rc\" -ne 0 ]; then\n"
	"		printf 'runnerd: runner.pre_job_script failed (%s): the job is stopped\\n' \"$runnerd_rc\" >&2\n"
	"		exit \"$runnerd_rc\"\n"
	"	fi\n"
	"fi\n"
	"\n";
/* clang-format on */

/* "\tFUNC 'w1' 'w2' ... || return\n": one call, each word quoted (NULL as ""). */
static int put_call(struct buf *b, const char *func, const char *const *words, size_t n)
{
	int r = buf_printf(b, "\t%s", func);

	for (size_t i = 0; r == 0 && i < n; i++) {
		r = buf_puts(b, " ");
		if (r == 0)
			r = runner_sh_quote(words[i] ? words[i] : "", b);
	}
	return r < 0 ? r : buf_puts(b, " || return\n");
}

int runner_render_install(const struct config_runner *rc, struct buf *b)
{
	int r = buf_puts(b, sh_extras);

	for (size_t i = 0; r == 0 && i < rc->n_snaps; i++) {
		const struct config_snap *s = &rc->snaps[i];
		char rev[32];

		snprintf(rev, sizeof(rev), "%" PRId64, s->revision);
		r = put_call(b, "runnerd_snap",
		             (const char *const[]){
		                     s->name,
		                     s->channel && *s->channel ? s->channel : "latest/stable", rev},
		             3);
	}
	if (r == 0 && rc->n_executables > 0)
		r = buf_puts(b, "\tPATH=$RUNNERD_HOME/bin:$PATH\n\texport PATH\n");
	for (size_t i = 0; r == 0 && i < rc->n_executables; i++) {
		const struct config_executable *x = &rc->executables[i];
		char sum[65] = "";

		/* sha256sum prints lowercase */
		for (size_t k = 0; x->sha256 && x->sha256[k] && k < 64; k++)
			sum[k] = (char)((x->sha256[k] >= 'A' && x->sha256[k] <= 'F')
			                        ? x->sha256[k] - 'A' + 'a'
			                        : x->sha256[k]);
		r = put_call(b, "runnerd_executable", (const char *const[]){x->url, x->cmd, sum},
		             3);
	}
	return r < 0 ? r : buf_puts(b, "\t:\n}\n");
}
