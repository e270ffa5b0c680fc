/*
 * Reactive mode's lifetime: the queue, the intake's listener, the secret in
 * its secret buffer, reloads and counters. It must never start a listener
 * that cannot authenticate what it hears (no secret: no intake), nor keep a
 * copy of the secret outside rx->secret.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"
#include "util/log.h"
#include "util/strutil.h"

#define SECRET_MAX (64 * 1024)

/* rx->secret := the config's secret (empty when none). */
static int take_secret(struct reactive *rx, const struct config *cfg)
{
	const char *v = cfg->webhook.secret.value;

	buf_release(&rx->secret);
	if (!v || !*v)
		return 0;
	return buf_puts(&rx->secret, v);
}

/* webhook.max_connections_per_address: 0 is none (every delivery comes from a proxy's address) */
static unsigned per_address(const struct config *cfg)
{
	return cfg->webhook.max_connections_per_address > 0
	               ? (unsigned)cfg->webhook.max_connections_per_address
	               : HTTP_NO_LIMIT;
}

int reactive_start(const struct config *cfg, struct store *store, const struct reactive_triggers *t,
                   struct reactive **ret, struct err *e)
{
	struct http_server_options hopts = {0};
	struct http_route routes[8];
	struct reactive *rx;
	int r;

	rx = calloc(1, sizeof(*rx));
	if (!rx)
		return err_set(e, -ENOMEM, "reactive: out of memory");
	pthread_rwlock_init(&rx->cfg_lock, NULL);
	pthread_mutex_init(&rx->stats_lock, NULL);
	buf_init_secret(&rx->secret, SECRET_MAX);
	rx->cfg = cfg;
	rx->store = store;
	rx->trigger = t->now;
	rx->trigger_later = t->later;
	rx->trigger_ctx = t->ctx;
	rx->max_body = cfg->webhook.max_body;
	r = queue_open(cfg, store, &rx->q, e);
	if (r < 0)
		goto fail;
	/* what the journal holds of an earlier run goes into the store before anything reads it */
	if (queue_sqlite_store(rx->q) &&
	    (*cfg->webhook.listen || reactive_journal_exists(store_dir(store)))) {
		r = reactive_journal_open(rx, store_dir(store), &rx->journal, e);
		if (r < 0)
			goto fail;
	}
	reactive_catch_up_plan(rx, cfg);
	/* jobs another manager published (amqp) wake the pass loop as a webhook does */
	if (t->now)
		queue_set_notify(rx->q, t->now, t->ctx);
	r = take_secret(rx, cfg);
	if (r < 0) {
		err_set(e, r, "reactive: the webhook secret: %s", strerror(-r));
		goto fail;
	}
	if (*cfg->webhook.listen && rx->secret.len > 0) {
		r = group_commit_start(reactive_write_batch, rx, REACTIVE_BATCH_MAX, &rx->gc);
		if (r < 0) {
			err_set(e, r, "reactive: the intake's committer: %s", strerror(-r));
			goto fail;
		}
		_Static_assert(ARRAY_SIZE(routes) >= 2, "routes");
		memcpy(routes, reactive_routes_template, reactive_n_routes * sizeof(routes[0]));
		routes[0].max_body = (size_t)cfg->webhook.max_body;
		hopts.max_connections = (unsigned)cfg->webhook.max_connections;
		hopts.max_per_ip = per_address(cfg);
		r = http_server_start_tcp_opts(cfg->webhook.listen, routes, reactive_n_routes, rx,
		                               &hopts, &rx->http, e);
		if (r < 0) {
			err_prefix(e, "webhook.listen %s", cfg->webhook.listen);
			goto fail;
		}
		str_copy(rx->listen, cfg->webhook.listen, sizeof(rx->listen));
	}
	*ret = rx;
	return 0;
fail:
	reactive_stop(rx);
	return r;
}

int reactive_port(const struct reactive *rx)
{
	return rx && rx->http ? http_server_port(rx->http) : 0;
}

void reactive_manager_hooks(struct reactive *rx, struct manager_hooks *ret)
{
	*ret = (struct manager_hooks){
	        .waiting_jobs = reactive_waiting_jobs, .spooled = reactive_spooled, .ctx = rx};
}

void reactive_reload(struct reactive *rx, const struct config *cfg)
{
	struct err e = {0};
	int r;

	pthread_rwlock_wrlock(&rx->cfg_lock);
	rx->cfg = cfg;
	/* flavor indexes may mean other flavors now: every job asks for a pass until the next */
	atomic_store(&rx->full, 0);
	r = take_secret(rx, cfg);
	pthread_rwlock_unlock(&rx->cfg_lock);
	reactive_catch_up_mark(rx, cfg);
	/* the amqp queue consumes the new flavors' queues, and no longer the removed ones' */
	if (queue_reload(rx->q, cfg, &e) < 0)
		log_error("reload: the queue keeps its flavors: %s", e.msg);
	if (r < 0)
		log_error("reload: the webhook secret: %s: every delivery is refused until a "
		          "reload that can take it",
		          strerror(-r));
	if (rx->http && rx->secret.len == 0)
		log_warn("reload: no webhook secret any more: every delivery is refused (401)");
	if (strcmp(cfg->webhook.listen, rx->listen) != 0 || cfg->webhook.max_body != rx->max_body ||
	    (!rx->http && rx->secret.len > 0 && *cfg->webhook.listen))
		log_warn("reload: webhook.listen, webhook.max_body and turning the intake on take "
		         "effect at a restart");
}

void reactive_get_stats(struct reactive *rx, struct reactive_stats *ret)
{
	struct group_commit_stats gs = {0};
	struct reactive_journal_counts jc;

	pthread_mutex_lock(&rx->stats_lock);
	*ret = rx->stats;
	pthread_mutex_unlock(&rx->stats_lock);
	if (rx->gc)
		group_commit_get_stats(rx->gc, &gs);
	/* the intake's commits: the group commit's (flush) and the journal's applier's (write) */
	reactive_journal_counts(rx->journal, &jc);
	ret->written = gs.items + jc.written;
	ret->commits = gs.batches + jc.commits;
	ret->commit_max = gs.max_batch > jc.commit_max ? gs.max_batch : jc.commit_max;
	ret->commit_us = gs.busy_us + jc.commit_us;
	ret->journal_behind = jc.behind;
	ret->journal_failed = jc.failed;
}

void reactive_stop(struct reactive *rx)
{
	if (!rx)
		return;
	http_server_stop(rx->http);
	/* after the server: what the handlers handed in is written (its answers go nowhere) */
	group_commit_stop(rx->gc);
	reactive_journal_close(rx->journal);
	queue_free(rx->q);
	free(rx->runs_settled);
	buf_release(&rx->secret);
	pthread_rwlock_destroy(&rx->cfg_lock);
	pthread_mutex_destroy(&rx->stats_lock);
	free(rx);
}
