/*
 * The executor's side of a pass: each planned action as it runs (create,
 * delete, delete-runner, adopt, forget), on bounded worker pools in two
 * lanes (deletes that first collect metrics or logs apart from the rest),
 * with its outcome written to the store and the report. It must never
 * leave a create half-done (a failed create removes its instance and its
 * JIT registration before the row goes), never delete an instance GitHub
 * did not confirm when confirmation was asked for, and never send a delete
 * to a provider other than the one holding the instance.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "manager/executor.h"
#include "runner/runner.h"
#include "runner/runner_policy.h"
#include "runner/runner_script.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

#include <sys/random.h>

struct task {
	const struct action *a;
	char name[INSTANCE_NAME_MAX]; /* for creates: the generated name */
};

struct exec_ctx {
	struct manager *m;
	struct manager_report *rep;
	char *reg_token; /* one registration token per pass when JIT is off */
	pthread_mutex_t token_lock;
};

/*
 * The executor's lanes. A delete whose instance first gives up its metrics
 * or logs may take a minute on a slow instance: those deletes have a lane
 * of their own, beside the lane of creates and every other action, so a
 * create never waits behind them (DESIGN.md section 2).
 */
enum lane { LANE_ACT = 0, LANE_COLLECT, LANE_COUNT };

struct lane_ctx {
	struct exec_ctx *x;
	struct task *tasks;
};

static int new_runner_name(const char *manager, char *out, size_t cap)
{
	unsigned char rnd[6];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	snprintf(out, cap, "%s-%02x%02x%02x%02x%02x%02x", manager, rnd[0], rnd[1], rnd[2], rnd[3],
	         rnd[4], rnd[5]);
	return 0;
}

/*
 * The provider that holds an instance: the one that listed it, else the one
 * its row names, else its flavor's. Never a guess: a delete sent to the
 * wrong provider "succeeds" there and leaks the instance.
 */
static struct provider *provider_of(struct manager *m, const struct action *a,
                                    const struct store_instance *row, const char **ret_name)
{
	const struct config_flavor *f = config_flavor_find(m->cfg, a->flavor);
	const char *name = a->provider[0]            ? a->provider
	                   : row && row->provider[0] ? row->provider
	                   : f                       ? f->provider
	                                             : "";
	*ret_name = name;
	return manager_provider_named(m, name);
}

/* An unhealthy instance's logs, and what of them was saved or left out, logged once. */
static void collect_logs(struct provider *p, const struct action *a, const struct metrics_opts *mo)
{
	struct metrics_logs l;
	struct err e = {0};
	char dir[PATH_MAX], what[400];

	snprintf(dir, sizeof(dir), "%s/%s", mo->log_dir, a->name);
	if (metrics_save_logs(mo, p, a->name, &l, &e) < 0) {
		log_warn("%s", e.msg);
		return;
	}
	if (l.files == 0) {
		log_info("logs of %s: the instance had none to save", a->name);
		return;
	}
	log_info("logs of %s saved in %s (%zu of %zu files, %zu bytes)", a->name, dir, l.files,
	         l.found, l.bytes);
	if (metrics_logs_describe(mo, &l, what, sizeof(what)) > 0)
		log_warn("logs of %s: not saved: %s", a->name, what);
}

/*
 * What an instance gives up before it goes: its metrics files, and an
 * unhealthy one's logs. Best effort: what could not be saved is logged,
 * and the delete goes on.
 */
static void collect(struct manager *m, struct provider *p, const struct action *a)
{
	struct metrics_extracted got = {0};
	struct metrics_opts mo;
	struct err e = {0};

	manager_metrics_opts(m, &mo);
	if (a->extract_metrics &&
	    (metrics_storage_note_flavor(&mo, a->name, a->flavor, &e) < 0 ||
	     metrics_extract(&mo, p, a->name, a->why == WHY_FINISHED, &got, &e) < 0))
		log_warn("%s", e.msg);
	for (int f = 0; f < METRICS_FILE_COUNT; f++)
		if (got.looked_again & (1u << f))
			log_info("metrics of %s: %s found only when looked for again", a->name,
			         metrics_file_name(f));
	if (a->extract_metrics)
		manager_runner_version_note(m, p, a->name, a->flavor);
	if (a->pull_logs) {
		collect_logs(p, a, &mo);
		manager_disk_after_save(m);
	}
}

/* A deletion decided by sizing (not by the instance's health): it may meet a job. */
static bool is_sizing(enum delete_reason why)
{
	return why == WHY_SCALE_DOWN || why == WHY_FLUSH || why == WHY_DRAIN;
}

/* An older instance that shares its name with the one kept: only it goes. */
static void do_delete_duplicate(struct exec_ctx *x, const struct action *a)
{
	struct manager *m = x->m;
	const char *pname;
	struct provider *p = provider_of(x->m, a, NULL, &pname);
	struct err e = {0};
	int r;

	if (!p || !a->provider[0]) {
		manager_report_add_on(m, x->rep, pname, "delete", a->name, a->flavor, "duplicate",
		                      false, "its provider is not known: left alone");
		return;
	}
	r = provider_delete(p, a->name, &e);
	manager_report_add_on(m, x->rep, pname, "delete", a->name, a->flavor, "duplicate", r == 0,
	                      r == 0 ? "ok" : e.msg);
}

/*
 * The delete did not happen: its row goes back to CREATED. Should that
 * write fail, the row stays DELETING and the next pass retries the delete
 * (a runner found busy then is still kept).
 */
static void undo_deleting(struct manager *m, struct store_instance *row)
{
	struct err e = {0};

	row->phase = PHASE_CREATED;
	if (store_instance_put(m->store, row, &e) < 0)
		log_warn("store: %s: %s stays marked for deletion (the next pass tries again)",
		         e.msg, row->name);
}

static void do_delete(struct exec_ctx *x, const struct action *a)
{
	struct manager *m = x->m;
	struct store_instance row;
	struct err e = {0};
	int r = store_instance_get(m->store, a->name, &row, &e);
	bool have_row = r == 0;
	const char *why = delete_reason_name(a->why);
	const char *flavor = have_row ? row.flavor : a->flavor;
	const char *pname;
	struct provider *p = provider_of(m, a, have_row ? &row : NULL, &pname);

	if (r < 0 && r != -ENOENT) {
		/* without its row the delete could not be recorded: try next pass */
		manager_report_add_on(m, x->rep, pname, "delete", a->name, flavor, why, false,
		                      e.msg);
		return;
	}
	err_clear(&e);
	if (a->why == WHY_DUPLICATE) {
		do_delete_duplicate(x, a);
		return;
	}
	if (a->delete_instance && !p) {
		char msg[128];
		snprintf(msg, sizeof(msg), "its provider \"%s\" is not open: kept", pname);
		manager_report_add_on(m, x->rep, pname, "delete", a->name, flavor, why, false, msg);
		return;
	}
	if (have_row && row.phase != PHASE_DELETING) {
		row.phase = PHASE_DELETING;
		if (store_instance_put(m->store, &row, &e) < 0) {
			manager_report_add_on(m, x->rep, pname, "delete", a->name, flavor, why,
			                      false, e.msg);
			return;
		}
	}
	int64_t runner_id = a->runner_id;
	bool confirm = a->confirm_github;
	if (!runner_id && is_sizing(a->why) && !m->cfg->runner.jit) {
		/*
		 * Without JIT a booting runner registers itself: it may have done so,
		 * and taken a job, since the list. Ask GitHub for it by name.
		 */
		struct github_runner gr = {0};
		r = github_find_runner(m->gh, a->name, &gr, &e);
		if (r == 0 && gr.busy) {
			r = -EBUSY;
			err_set(&e, r, "busy");
		}
		if (r == 0) {
			runner_id = gr.id;
			confirm = true;
		}
		github_runner_release(&gr);
		if (r < 0 && r != -ENOENT) {
			if (have_row)
				undo_deleting(m, &row);
			manager_report_add_on(
			        m, x->rep, pname, "delete", a->name, flavor, why, r == -EBUSY,
			        r == -EBUSY ? "kept: the runner registered and took a job" : e.msg);
			return;
		}
		err_clear(&e);
	}
	if (confirm && runner_id) {
		r = github_delete_runner(m->gh, runner_id, &e);
		if (r < 0) {
			/* GitHub did not confirm: the instance stays. -EBUSY means a job
			 * arrived in between and the runner is busy now. */
			if (have_row)
				undo_deleting(m, &row);
			manager_report_add_on(m, x->rep, pname, "delete", a->name, flavor, why,
			                      r == -EBUSY,
			                      r == -EBUSY ? "kept: the runner became busy" : e.msg);
			return;
		}
	}
	if (a->delete_instance) {
		collect(m, p, a);
		err_clear(&e);
		r = provider_delete(p, a->name, &e);
		if (r < 0) {
			manager_report_add_on(m, x->rep, pname, "delete", a->name, flavor, why,
			                      false, e.msg);
			return; /* the row stays DELETING: the next pass retries */
		}
	}
	if (!confirm && runner_id) {
		err_clear(&e);
		r = github_delete_runner(m->gh, runner_id, &e);
		if (r < 0 && r != -EBUSY)
			log_warn("delete runner %s on GitHub: %s (retried as dangling)", a->name,
			         e.msg);
	}
	/*
	 * Its row still names its flavor: the storage is processed before the
	 * row goes, also one an earlier attempt pulled (a retry over an
	 * instance already gone pulls nothing); after, it is an orphan's.
	 */
	if (a->delete_instance)
		manager_events_process(m, a->name, flavor);
	/* (void): a row left DELETING with nothing behind it is forgotten next pass */
	if (have_row && a->delete_instance)
		(void)store_instance_delete(m->store, a->name, NULL);
	manager_report_add_on(m, x->rep, pname, "delete", a->name, flavor, why, true, "ok");
}

static void do_delete_runner(struct exec_ctx *x, const struct action *a)
{
	struct err e = {0};
	int r = github_delete_runner(x->m->gh, a->runner_id, &e);
	if (r == -EBUSY)
		manager_report_add(x->m, x->rep, "delete-runner", a->name, "",
		                   delete_reason_name(a->why), true,
		                   "kept: busy on GitHub, retried next pass");
	else
		manager_report_add(x->m, x->rep, "delete-runner", a->name, "",
		                   delete_reason_name(a->why), r == 0, r == 0 ? "ok" : e.msg);
}

static int registration_token(struct exec_ctx *x, char **ret, struct err *e)
{
	int r = 0;
	pthread_mutex_lock(&x->token_lock);
	if (!x->reg_token) {
		struct github_token t = {0};
		r = github_registration_token(x->m->gh, &t, e);
		if (r == 0) {
			x->reg_token = t.token;
			t.token = NULL;
		}
		github_token_release(&t);
	}
	if (r == 0) {
		*ret = strdup(x->reg_token);
		if (!*ret)
			r = err_set(e, -ENOMEM, "out of memory");
	}
	pthread_mutex_unlock(&x->token_lock);
	return r;
}

/*
 * With a repo-policy check configured, a one-time token for this runner from
 * the compliance service, added to the secret environment: without it every
 * job of the runner would be refused, so no token, no runner.
 */
static int policy_token_env(struct manager *m, struct buf *env, struct err *e)
{
	const struct config_runner *rc = &m->cfg->runner;
	char *tok = NULL;
	int r;

	if (!*rc->repo_policy_url)
		return 0;
	r = runner_policy_token(NULL, rc->repo_policy_url, rc->repo_policy_token.value, 0, &tok, e);
	if (r < 0)
		return r;
	r = runner_secret_env_var(RUNNER_REPO_POLICY_TOKEN_ENV, tok, env);
	explicit_bzero(tok, strlen(tok));
	free(tok);
	return r < 0 ? err_set(e, r, "secret env: the repo-policy token: %s", strerror(-r)) : 0;
}

static void do_create(struct exec_ctx *x, struct task *t)
{
	struct manager *m = x->m;
	const struct action *a = t->a;
	const struct config_flavor *f = config_flavor_find(m->cfg, a->flavor);
	struct provider *p = f ? manager_provider_named(m, f->provider) : NULL;
	const char *pv = f ? f->provider : ""; /* for the report */
	struct store_instance row = {0};
	struct github_jit jit = {0};
	struct strv labels = {0};
	struct buf script = BUF_INIT(1 << 20), env = BUF_INIT_SECRET(64 * 1024);
	struct instance inst = {0};
	char tarball[PATH_MAX] = "";
	char *secret = NULL;
	struct err e = {0};
	int r;

	if (!f || !p) {
		manager_report_add_on(m, x->rep, pv, "create", "", a->flavor, "", false,
		                      "no such flavor or provider");
		return;
	}
	if (provider_traits(p)->runner_from_host &&
	    !manager_runner_tarball(m, tarball, sizeof(tarball))) {
		/* nothing to run: do not spend a JIT registration on it */
		manager_report_add_on(
		        m, x->rep, pv, "create", "", a->flavor, "", false,
		        "no verified runner package yet (see the runner binary warning)");
		return;
	}
	if (m->cfg->runner.jit && !m->runner_group_id) {
		manager_report_add_on(m, x->rep, pv, "create", "", a->flavor, "", false,
		                      m->group_error[0] ? m->group_error
		                                        : "runner group not resolved");
		return;
	}
	if (new_runner_name(m->cfg->manager.name, t->name, sizeof(t->name)) < 0) {
		manager_report_add_on(m, x->rep, pv, "create", "", a->flavor, "", false,
		                      "no randomness for a name");
		return;
	}
	/* the name is durable before anything exists for it */
	str_copy(row.name, t->name, sizeof(row.name));
	str_copy(row.flavor, f->name, sizeof(row.flavor));
	str_copy(row.provider, f->provider, sizeof(row.provider));
	row.phase = PHASE_CREATING;
	row.created_at = clock_wall_ms() / 1000;
	row.cloud_state = CLOUD_CREATED;
	row.github_state = GH_ABSENT;
	r = store_instance_put(m->store, &row, &e);
	if (r < 0)
		goto fail;

	r = runner_labels(f, &labels);
	if (r < 0) {
		err_set(&e, r, "labels: out of memory");
		goto fail;
	}
	if (m->cfg->runner.jit) {
		char work[PATH_MAX];
		snprintf(work, sizeof(work), "_work");
		r = github_generate_jitconfig(m->gh, t->name, m->runner_group_id, &labels, work,
		                              &jit, &e);
		if (r < 0)
			goto fail;
		row.runner_id = jit.runner_id;
		if (store_instance_put(m->store, &row, &e) < 0)
			log_warn("store: %s: the runner id of %s is not recorded (learned from "
			         "GitHub's list next pass)",
			         e.msg, t->name);
		err_clear(&e);
		r = runner_secret_env(jit.encoded_jit_config, true, &env);
	} else {
		r = registration_token(x, &secret, &e);
		if (r < 0)
			goto fail;
		r = runner_secret_env(secret, false, &env);
	}
	if (r < 0) {
		err_set(&e, r, "secret env: %s", strerror(-r));
		goto fail;
	}
	r = policy_token_env(m, &env, &e);
	if (r < 0)
		goto fail;
	const struct provider_traits *traits = provider_traits(p);
	const struct github_runner_app *dl =
	        traits->runner_from_host ? NULL : manager_runner_download(m, f->arch);
	char floor[32] = "";
	manager_runner_image_floor(m, f->name, floor, sizeof(floor));
	r = runner_script_for(m->cfg, f, t->name, traits->host_process,
	                      dl ? dl->download_url : NULL, dl ? dl->sha256 : NULL, floor, &script,
	                      &e);
	if (r < 0)
		goto fail;

	struct instance_spec spec = {
	        .name = t->name,
	        .flavor = f,
	        .startup_script = buf_str(&script),
	        .secret_env = buf_str(&env),
	        .runner_tarball = traits->runner_from_host ? tarball : NULL,
	};
	r = provider_create(p, &spec, &inst, &e);
	manager_quota_noted(m, pv, r, e.msg);
	if (r < 0)
		goto fail;
	row.phase = PHASE_CREATED;
	row.cloud_state = inst.state;
	str_copy(row.provider_id, inst.provider_id, sizeof(row.provider_id));
	/* (void): a row left CREATING whose instance is listed becomes CREATED next pass,
	 * with the instance's state and id */
	(void)store_instance_put(m->store, &row, NULL);
	manager_report_add_on(m, x->rep, pv, "create", t->name, f->name, "", true, "ok");
	goto out;
fail:
	/* leave nothing behind: the instance, the JIT registration, then the row */
	{
		struct err e2 = {0};
		bool instance_gone = provider_delete(p, t->name, &e2) == 0;
		if (!instance_gone)
			log_warn(
			        "create %s: cleanup of the instance failed: %s (retried next pass)",
			        t->name, e2.msg);
		if (jit.runner_id && github_delete_runner(m->gh, jit.runner_id, &e2) < 0)
			log_warn(
			        "create %s: cleanup of the runner failed: %s (retried as dangling)",
			        t->name, e2.msg);
		if (instance_gone) {
			/* (void): a CREATING row with nothing behind it is a stale create
			 * the next pass removes */
			(void)store_instance_delete(m->store, t->name, NULL);
		} else if (row.name[0]) {
			/* the row stays, DELETING: the next pass deletes what is left
			 * instead of adopting it as a runner that holds a slot */
			row.phase = PHASE_DELETING;
			if (store_instance_put(m->store, &row, &e2) < 0)
				log_warn("store: %s: %s is not marked for deletion (its leftover "
				         "instance holds a slot until the bootstrap timeout)",
				         e2.msg, t->name);
		}
	}
	manager_report_add_on(m, x->rep, pv, "create", t->name, f->name, "", false, e.msg);
out:
	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	github_jit_release(&jit);
	buf_wipe(&env);
	buf_release(&script);
	strv_release(&labels);
}

/*
 * An instance of ours with no row (a crash before the row was written, or a
 * lost store): record it as it is -- its provider, its own creation time
 * (so the bootstrap timeout and the scale-down order still hold), its state.
 */
static void do_adopt(struct exec_ctx *x, const struct action *a)
{
	struct store_instance row = {0};
	const struct config_flavor *f = config_flavor_find(x->m->cfg, a->flavor);
	struct err e = {0};
	int r;

	str_copy(row.name, a->name, sizeof(row.name));
	str_copy(row.flavor, a->flavor, sizeof(row.flavor));
	str_copy(row.provider,
	         a->provider[0] ? a->provider
	         : f            ? f->provider
	                        : "",
	         sizeof(row.provider));
	row.phase = PHASE_CREATED;
	row.created_at = a->created_at > 0 ? a->created_at : clock_wall_ms() / 1000;
	row.cloud_state = a->cloud;
	r = store_instance_put(x->m->store, &row, &e);
	manager_report_add(x->m, x->rep, "adopt", a->name, a->flavor, "", r == 0,
	                   r == 0 ? "ok" : e.msg);
}

static void run_task(void *ctx, size_t i)
{
	struct lane_ctx *lc = ctx;
	struct exec_ctx *x = lc->x;
	struct task *t = &lc->tasks[i];
	struct err e = {0};

	switch (t->a->kind) {
	case ACTION_CREATE:
		do_create(x, t);
		break;
	case ACTION_DELETE:
		do_delete(x, t->a);
		break;
	case ACTION_DELETE_RUNNER:
		do_delete_runner(x, t->a);
		break;
	case ACTION_ADOPT:
		do_adopt(x, t->a);
		break;
	case ACTION_FORGET: {
		/*
		 * A row left DELETING once its instance went (a kill between the
		 * provider's delete and the storage's processing): its storage is
		 * processed while the row still names the flavor; after, it is an
		 * orphan's, whose events would name none.
		 */
		manager_events_process(x->m, t->a->name, t->a->flavor);
		int r = store_instance_delete(x->m->store, t->a->name, &e);
		manager_report_add(x->m, x->rep, "forget", t->a->name, "",
		                   delete_reason_name(t->a->why), r == 0, r == 0 ? "ok" : e.msg);
		break;
	}
	}
}

bool manager_stopping(struct manager *m, int r)
{
	return r == -ECANCELED && atomic_load(&m->cancel);
}

/*
 * Each provider's leftovers (stray processes, ...), once a pass after its
 * actions. One cut short by the daemon stopping is no failure: the next
 * start collects them.
 */
void manager_collect_leftovers(struct manager *m)
{
	for (size_t i = 0; i < m->n_providers && !atomic_load(&m->cancel); i++) {
		struct err e = {0};
		int r = provider_gc_peers(m->providers[i], m->cfg->providers, m->cfg->n_providers,
		                          &e);
		if (manager_stopping(m, r))
			log_debug("provider %s: leftovers: %s (stopping)",
			          provider_name(m->providers[i]), e.msg);
		else if (r < 0)
			log_warn("provider %s: leftovers: %s", provider_name(m->providers[i]),
			         e.msg);
	}
}

static enum lane lane_of(const struct action *a)
{
	return a->kind == ACTION_DELETE && a->delete_instance &&
	                       (a->extract_metrics || a->pull_logs)
	               ? LANE_COLLECT
	               : LANE_ACT;
}

int manager_execute(struct manager *m, const struct plan *plan, struct manager_report *rep)
{
	struct exec_ctx x = {.m = m, .rep = rep};
	struct lane_ctx lc[LANE_COUNT];
	struct executor_lane lanes[LANE_COUNT] = {0};
	struct task *tasks;
	size_t n = 0, k[LANE_COUNT] = {0};
	bool creates = false;

	/* adoptions first: every instance acted on below then has its row */
	for (size_t i = 0; i < plan->n_actions; i++)
		if (plan->actions[i].kind == ACTION_ADOPT)
			do_adopt(&x, &plan->actions[i]);
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct action *a = &plan->actions[i];
		size_t c = a->kind == ACTION_CREATE ? (size_t)a->count : 1;
		if (a->kind == ACTION_ADOPT)
			continue;
		n += c;
		lanes[lane_of(a)].n += c;
		creates = creates || a->kind == ACTION_CREATE;
	}
	if (n == 0)
		return 0;
	if (creates)
		manager_runner_pkg_prepare(m, plan);
	tasks = calloc(n, sizeof(*tasks));
	if (!tasks)
		return -ENOMEM;
	/* each lane's tasks in plan order, one lane after the other in tasks[] */
	for (size_t l = 0, at = 0; l < LANE_COUNT; at += lanes[l].n, l++) {
		lc[l] = (struct lane_ctx){&x, tasks + at};
		lanes[l].concurrency = (size_t)m->cfg->manager.create_concurrency;
		lanes[l].fn = run_task;
		lanes[l].ctx = &lc[l];
	}
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct action *a = &plan->actions[i];
		enum lane l = lane_of(a);
		int64_t c = a->kind == ACTION_CREATE ? a->count : a->kind == ACTION_ADOPT ? 0 : 1;
		for (int64_t j = 0; j < c; j++)
			lc[l].tasks[k[l]++].a = a;
	}
	pthread_mutex_init(&x.token_lock, NULL);
	size_t started = executor_run_lanes(lanes, LANE_COUNT, &m->cancel);
	if (started < n)
		log_info("stopping: %zu actions of this pass were not started", n - started);
	pthread_mutex_destroy(&x.token_lock);
	if (x.reg_token) {
		explicit_bzero(x.reg_token, strlen(x.reg_token));
		free(x.reg_token);
	}
	free(tasks);
	return 0;
}
