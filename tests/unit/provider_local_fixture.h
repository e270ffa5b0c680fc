/*
 * The shared fixture of the local provider's tests (test_provider_local*.c,
 * one program per concern): what provider_local_fixture.c provides. These
 * tests run as root against the real kernel: they create the user
 * runnerd-test-runner, start real process trees in a temporary work_dir and
 * kill them. Every program's main takes local_fixture_lock() first (one run
 * of any of them at a time on a machine), then runs its group with
 * local_fixture_setup and local_fixture_teardown.
 */
#ifndef RUNNERD_TESTS_UNIT_PROVIDER_LOCAL_FIXTURE_H
#define RUNNERD_TESTS_UNIT_PROVIDER_LOCAL_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/strutil.h"
#include "provider/provider.h"
#include "provider/local.h"
#include "provider/local/local_internal.h"

#define TEST_USER   "runnerd-test-runner"
#define TEST_SECRET "s3cr3t-jit 'value' with spaces"
#define GRACE_S     1
#define TOKEN_REL   "../../token" /* from an instance dir */
/* providers.local.uid_range of the tests: clear of this machine's accounts and subordinate ids */
#define UID_FIRST 1990000000u
#define UID_LAST  1990000999u
#define UID_RANGE "1990000000-1990000999"
/* The name (comm) of a run waiting for local_fixture_lock. */
#define TWIN_COMM "lock-wait"

extern char base[PATH_MAX];  /* plays runnerd's state_dir */
extern char work[PATH_MAX];  /* providers.local.work_dir, inside base */
extern char token[PATH_MAX]; /* a root-only 0600 file next to work_dir */
extern struct config_provider pcfg;
extern struct strv hidden;  /* the policy's hidden_dirs: base plays runnerd's state dir */
extern struct provider *lp; /* for manager "ci" */
extern pid_t spawned[8];    /* test_local_sweep's children, killed by the teardown if left */
extern char sdir[PATH_MAX]; /* test_local_secret_files' secrets, removed by the teardown */

/* One run at a time: 0 once held (until exit), -1 (said on stderr) when it cannot be. */
int local_fixture_lock(void);
int local_fixture_setup(void **state);
int local_fixture_teardown(void **state);

/* A local provider on pc for manager, its policy hiding base (and secrets); NULL on failure. */
struct provider *open_local(const char *manager, const struct config_provider *pc,
                            const struct strv *secrets);
/* The local provider of manager (opened on first use, under a lock). */
struct provider *lpm(const char *manager);
/* The provider of the manager that owns name ("<manager>-<12 hex>"); "ci"'s for any other. */
struct provider *lpn(const char *name);

/* work/name/file; wait for it to exist (false after ms). */
void inst_path(char *out, size_t cap, const char *name, const char *file);
bool wait_file(const char *name, const char *file, long ms);
/* Contents of an instance file (trailing newline stripped); "" when missing. */
void slurp(const char *name, const char *file, char *out, size_t cap);

/* A spec of the flavor "small" with this script and secret environment. */
void spec_init(struct instance_spec *s, const char *name, const char *script, const char *secret);
/* Create (by manager's provider) or delete (by its owner's); a failure fails the test. */
void create_ok(const char *name, const char *manager, const char *script, const char *secret,
               struct instance *ret);
void delete_ok(const char *name);
enum cloud_state state_of(const char *name);
bool wait_state(const char *name, enum cloud_state s, long ms);
/* The pid of the instance's leader (its provider_id). */
pid_t leader_of(const char *name);

/* Is any live process's command line holding needle? */
bool proc_cmdline_has(const char *needle, size_t len);
/* A background command may not have exec'd yet when the script says ready. */
bool wait_cmdline(const char *needle, size_t len);
/* A "Key:\tvalue" line of /proc/<pid>/status, "" when absent. */
void proc_status(pid_t pid, const char *key, char *out, size_t cap);
/* The real, effective, saved and filesystem uid of pid (-1 when gone or mixed). */
long proc_uid(pid_t pid);
bool uid_in_range(long uid);

#endif
