/*
 * The instances table: one row per name this manager reserved, written
 * before anything exists for it (see store.h). Enumerations are stored by
 * their names (util/words.h), so the file reads well in the sqlite3 shell.
 */
#include "util/common.h"
#include "store/store_internal.h"

static const char *const phase_names[] = {
        [PHASE_CREATING] = "creating",
        [PHASE_CREATED] = "created",
        [PHASE_DELETING] = "deleting",
};

const char *store_phase_name(enum store_phase p)
{
	if ((unsigned)p < ARRAY_SIZE(phase_names))
		return phase_names[p];
	return "invalid";
}

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (s && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

int store_instance_put(struct store *s, const struct store_instance *in, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	if (!store_field_terminated(in->name, sizeof(in->name)) || !in->name[0] ||
	    !store_field_terminated(in->flavor, sizeof(in->flavor)) ||
	    !store_field_terminated(in->provider, sizeof(in->provider)) ||
	    !store_field_terminated(in->provider_id, sizeof(in->provider_id)))
		return err_set(e, -EINVAL,
		               "state store: instance with an empty or unterminated field");
	if ((unsigned)in->phase >= ARRAY_SIZE(phase_names) ||
	    (unsigned)in->cloud_state >= CLOUD_STATE_COUNT ||
	    (unsigned)in->github_state >= GITHUB_STATE_COUNT ||
	    (unsigned)in->health >= HEALTH_COUNT)
		return err_set(e, -EINVAL, "state store: %s: state out of range", in->name);

	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_INSTANCE_PUT, &st, e);
	if (r < 0)
		goto out;
	store_bind_text(st, 1, in->name);
	store_bind_text(st, 2, in->flavor);
	store_bind_text(st, 3, in->provider);
	store_bind_text(st, 4, in->provider_id);
	store_bind_text(st, 5, phase_names[in->phase]);
	sqlite3_bind_int64(st, 6, in->created_at);
	store_bind_text(st, 7, cloud_state_name(in->cloud_state));
	sqlite3_bind_int64(st, 8, in->runner_id);
	sqlite3_bind_int(st, 9, in->seen_on_github ? 1 : 0);
	store_bind_text(st, 10, github_state_name(in->github_state));
	store_bind_text(st, 11, health_name(in->health));
	sqlite3_bind_int64(st, 12, in->last_seen);
	sqlite3_bind_int64(st, 13, in->busy_since);
	r = store_stmt_exec(s, st, e, "put instance");
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

static int column_enum(sqlite3_stmt *st, int col, const char *const *names, size_t n)
{
	return name_index(names, n, (const char *)sqlite3_column_text(st, col));
}

/* One row of INSTANCE_COLUMNS into *ret; -EBADMSG for a row we cannot read. */
static int row_to_instance(sqlite3_stmt *st, struct store_instance *ret)
{
	struct store_instance in;
	int phase, cloud, gh, health;

	memset(&in, 0, sizeof(in));
	if (store_column_copy(st, 0, in.name, sizeof(in.name)) < 0 ||
	    store_column_copy(st, 1, in.flavor, sizeof(in.flavor)) < 0 ||
	    store_column_copy(st, 2, in.provider, sizeof(in.provider)) < 0 ||
	    store_column_copy(st, 3, in.provider_id, sizeof(in.provider_id)) < 0)
		return -EBADMSG;
	phase = column_enum(st, 4, phase_names, ARRAY_SIZE(phase_names));
	cloud = cloud_state_from_name((const char *)sqlite3_column_text(st, 6));
	gh = github_state_from_name((const char *)sqlite3_column_text(st, 9));
	health = health_from_name((const char *)sqlite3_column_text(st, 10));
	if (phase < 0 || cloud < 0 || gh < 0 || health < 0)
		return -EBADMSG;
	in.phase = (enum store_phase)phase;
	in.created_at = sqlite3_column_int64(st, 5);
	in.cloud_state = (enum cloud_state)cloud;
	in.runner_id = sqlite3_column_int64(st, 7);
	in.seen_on_github = sqlite3_column_int(st, 8) != 0;
	in.github_state = (enum github_state)gh;
	in.health = (enum health)health;
	in.last_seen = sqlite3_column_int64(st, 11);
	in.busy_since = sqlite3_column_int64(st, 12);
	*ret = in;
	return 0;
}

int store_instance_get(struct store *s, const char *name, struct store_instance *ret, struct err *e)
{
	struct store_instance in;
	sqlite3_stmt *st;
	int rc, r;

	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_INSTANCE_GET, &st, e);
	if (r < 0)
		goto out;
	store_bind_text(st, 1, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = err_set(e, -ENOENT, "state store: no instance %s", name);
	} else if (rc != SQLITE_ROW) {
		r = store_db_err(s->db, rc, e, "get instance");
	} else if (row_to_instance(st, &in) < 0) {
		r = err_set(e, -EBADMSG, "state store: instance %s: unreadable row", name);
	} else {
		*ret = in;
	}
	store_stmt_done(st);
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_instance_list(struct store *s, struct store_instance_list *ret, struct err *e)
{
	struct store_instance_list l = {NULL, 0};
	size_t cap = 0;
	sqlite3_stmt *st;
	int rc, r;

	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_INSTANCE_LIST, &st, e);
	if (r < 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (l.n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct store_instance *v;
			if (ncap > STORE_LIST_MAX) {
				r = err_set(e, -E2BIG, "state store: more than %d instances",
				            STORE_LIST_MAX);
				break;
			}
			v = realloc(l.v, ncap * sizeof(*v));
			if (!v) {
				r = err_set(e, -ENOMEM, "state store: out of memory");
				break;
			}
			l.v = v;
			cap = ncap;
		}
		if (row_to_instance(st, &l.v[l.n]) < 0) {
			r = err_set(e, -EBADMSG, "state store: unreadable instance row");
			break;
		}
		l.n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(s->db, rc, e, "list instances");
	store_stmt_done(st);
out:
	pthread_mutex_unlock(&s->mu);
	if (r < 0) {
		free(l.v);
		return r;
	}
	store_instance_list_release(ret);
	*ret = l;
	return 0;
}

void store_instance_list_release(struct store_instance_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int store_instance_delete(struct store *s, const char *name, struct err *e)
{
	return store_exec_with_text(s, ST_INSTANCE_DELETE, name, e, "delete instance");
}
