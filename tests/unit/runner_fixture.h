/*
 * The shared fixture of the runner tests (test_runner*.c, one program per
 * concern): what runner_fixture.c provides. Every program's group setup is
 * runner_fixture_setup (a fresh tmp_root; whether busybox is there) and its
 * teardown runner_fixture_teardown (tmp_root removed unless
 * RUNNERD_KEEP_TMP is set).
 */
#ifndef RUNNERD_TESTS_UNIT_RUNNER_FIXTURE_H
#define RUNNERD_TESTS_UNIT_RUNNER_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fileutil.h"
#include "util/strutil.h"
#include "runner/runner.h"
#include "runner/runner_script.h"
#include "runner/runner_version.h"

#include <jansson.h>

#define SHA_ZERO "0000000000000000000000000000000000000000000000000000000000000000"

/* ---- files and commands ------------------------------------------------- */

extern char tmp_root[PATH_MAX]; /* this program's scratch directory */
extern bool have_busybox;       /* /usr/bin/busybox is there: busybox runs too */

int runner_fixture_setup(void **state);
int runner_fixture_teardown(void **state);

/* Test fixtures need no fsync (file_write_atomic's would cost seconds). */
void write_file(const char *path, const char *text, mode_t mode);
/* The file's text (to free), NULL if it cannot be read. */
char *read_text(const char *path);
bool exists(const char *path);
/* snprintf into out; a path that does not fit fails the test. */
void pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * Run argv with env (NULL-terminated "K=V"), cwd dir, output to log.
 * Returns the exit status, or 128 + signal. Killed after 30 s.
 */
int run_cmd(char *const argv[], char *const envp[], const char *dir, const char *log);
/* `shell -n path` ("sh", "busybox" or "bash"): its exit status. */
int sh_check(const char *shell, const char *path);
/* path (or text, written to a file) parses under sh, and busybox sh when there. */
void assert_syntax(const char *path);
void assert_syntax_text(const char *text);
/* The SHA-256 of a file in lowercase hex. */
void sha256_hex(const char *path, char out[65]);
/*
 * A server that never answers: it listens (so connections succeed, the
 * kernel queues them) but never accepts. Its port in *ret_port.
 */
int silent_server(int *ret_port);

/* ---- configs ------------------------------------------------------------ */

/* A configuration and the script options rendered from it, all in one. */
struct fixture_cfg {
	struct config cfg;
	struct config_flavor flavor;
	struct config_ssh_debug ssh[2];
	char *labels[4];
	struct runner_script_opts opts;
};

/* The base configuration (JIT, an image's runner), then one per golden case. */
void base(struct fixture_cfg *f);
void case_jit_image(struct fixture_cfg *f);
void case_nojit_org_poweroff(struct fixture_cfg *f);
void case_nojit_repo_simulator(struct fixture_cfg *f);
void case_proxy(struct fixture_cfg *f);
void case_mirror(struct fixture_cfg *f);
void case_ssh_debug(struct fixture_cfg *f);
void case_repo_policy(struct fixture_cfg *f);
void case_download(struct fixture_cfg *f);
void case_install(struct fixture_cfg *f);
void case_storage_memory(struct fixture_cfg *f);
/* The rendered script (to free); a refusal fails the test. */
char *render_ok(const struct runner_script_opts *o);

/* Values that must stay inert wherever they are rendered. */
#define N_HOSTILE_VALUES 8
extern const char *const hostile_values[N_HOSTILE_VALUES];
/* A configuration with h in every value that reaches the script. */
void hostile_config(struct fixture_cfg *f, const char *h, char *label_buf, size_t cap);

/* ---- real runs against a fake runner ------------------------------------ */

struct sandbox {
	char dir[PATH_MAX];    /* everything */
	char home[PATH_MAX];   /* RUNNERD_HOME = where the script is */
	char fake[PATH_MAX];   /* FAKE_DIR: control and output files */
	char bin[PATH_MAX];    /* fake commands, first in PATH */
	char runner[PATH_MAX]; /* the fake runner (image dir) */
	char script[PATH_MAX];
	char log[PATH_MAX];
	const char *path; /* PATH of the run; NULL: bin, then /usr/bin and /bin */
};

/* The shells every run is tried under: "sh", then "busybox" (when there). */
#define N_SHELLS 2
extern const char *const shells[N_SHELLS];

/* A fresh sandbox under tmp_root (tag in its name): home, fakes, fake runner. */
void sb_init(struct sandbox *sb, const char *tag);
void sb_free(struct sandbox *sb);
/* Render opts into the sandbox's start.sh. */
void sb_render(struct sandbox *sb, struct runner_script_opts *o);
/*
 * Run start.sh with shell ("sh" or "busybox") and extra environment
 * ("K=V" strings, NULL-terminated). No RUNNERD_HOME: the script finds its
 * own directory.
 */
int sb_run(struct sandbox *sb, const char *shell, const char *const *extra);
/* The fake runner recorded no violation (secrets where they belong). */
void sb_no_violation(const struct sandbox *sb);
/* The fake commands' control and output files (FAKE_DIR/name). */
void sb_path(const struct sandbox *sb, char *out, size_t cap, const char *name);
void sb_put(const struct sandbox *sb, const char *name, const char *text);
char *sb_get(const struct sandbox *sb, const char *name);
/* Files the script left in its home (RUNNERD_HOME/name). */
char *home_get(const struct sandbox *sb, const char *name);
bool home_has(const struct sandbox *sb, const char *name);
/* Pack the fake runner into dest (a .tar.gz). */
void make_package(const struct sandbox *sb, const char *dest);

/* The metrics files the script writes (home/metrics/name). */
json_t *load_json(const struct sandbox *sb, const char *name);
int64_t json_int(json_t *o, const char *key);
const char *json_str(json_t *o, const char *key);
void assert_timestamp_file(const struct sandbox *sb, const char *name);
/* post-job-metrics.json says status, with status_info.code. */
void assert_post_job(const struct sandbox *sb, const char *status, int64_t code);
/* The hooks the script wrote parse (sh, busybox sh, and bash for pre-job). */
void check_hooks_syntax(const struct sandbox *sb);

#endif
