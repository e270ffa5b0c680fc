/*
 * What the files of src/runner share, private to the folder: the fixed
 * shell text of the startup script and hooks (runner_sh.c) that
 * runner_script.c renders around. Nothing outside src/runner includes it.
 */
#ifndef RUNNERD_RUNNER_INTERNAL_H
#define RUNNERD_RUNNER_INTERNAL_H

#include "util/buf.h"
#include "config/config.h"

/* The startup script: its head (before the values), functions, and main. */
extern const char runner_sh_head[];
extern const char runner_sh_funcs[];
extern const char runner_sh_main[];
/* Its runner version checks (runner_install.c), after the functions. */
extern const char runner_sh_version[];
/* runner.install's snaps and executables: runnerd_install_extras() (runner_install.c). */
int runner_render_install(const struct config_runner *rc, struct buf *b);
/* runner.storage: runnerd_storage(), a tmpfs on _work for memory (runner_storage.c). */
int runner_render_storage(const struct config_runner *rc, struct buf *b);
/* The pre-job hook's part that runs runner.pre_job_script (when one is configured). */
extern const char runner_hook_pre_job_script[];
/* The job hooks: the pre-job hook's head, its repo-policy part (off or on), the post-job hook. */
extern const char runner_hook_pre_head[];
extern const char runner_hook_policy_off[];
extern const char runner_hook_policy_on[];
extern const char runner_hook_post[];

/* NAME='value'\n (the value single-quoted; NULL is ""). */
int runner_put_var(struct buf *b, const char *name, const char *value);
/* runner_env.c: runnerd_write_env(), and the Docker and aproxy values. */
int runner_env_render(const struct config_runner *rc, const char *name, struct buf *b);
int runner_env_values(const struct config_runner *rc, struct buf *b);

#endif
