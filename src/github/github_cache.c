/*
 * What the GitHub client remembers between calls so that an unchanged list
 * costs neither rate limit nor parsing: the ETag cache (the last body of
 * each conditional URL, sent back on a 304) and the runner-page memo (a
 * parsed page, kept with the exact bytes it came from). Both are bounded
 * and best effort: a failure here only costs a full answer or a parse, and
 * it must never hand back a body or a page for bytes it was not made from.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

#define ETAG_MAX_BODY (4u << 20) /* larger pages are not worth keeping */

/* n bytes as a NUL-terminated copy (bodies are used as strings too); NULL without memory. */
static char *bytes_dup(const char *p, size_t n)
{
	char *c = malloc(n + 1);

	if (c) {
		memcpy(c, p, n);
		c[n] = '\0';
	}
	return c;
}

void github_etag_clear(struct github_etag *t)
{
	free(t->url);
	free(t->etag);
	free(t->body);
	free(t->link);
	memset(t, 0, sizeof(*t));
}

static void memo_clear(struct github_page_memo *m)
{
	free(m->url);
	free(m->manager);
	free(m->body);
	github_runner_list_release(&m->runners);
	memset(m, 0, sizeof(*m));
}

static int runner_copy(const struct github_runner *src, struct github_runner *dst)
{
	*dst = *src;
	dst->labels = NULL;
	dst->n_labels = 0;
	if (src->n_labels) {
		dst->labels = calloc(src->n_labels, sizeof(*dst->labels));
		if (!dst->labels)
			return -ENOMEM;
		for (size_t i = 0; i < src->n_labels; i++) {
			dst->labels[i] = strdup(src->labels[i]);
			if (!dst->labels[i]) {
				dst->n_labels = i;
				github_runner_release(dst);
				return -ENOMEM;
			}
		}
		dst->n_labels = src->n_labels;
	}
	return 0;
}

/* Append copies of n runners to acc; on failure acc is as it was. */
static int runner_list_append(struct github_runner_list *acc, const struct github_runner *v,
                              size_t n)
{
	size_t n0 = acc->n;
	struct github_runner *nv;
	int r = 0;

	if (!n)
		goto out;
	nv = realloc(acc->v, (acc->n + n) * sizeof(*nv));
	if (!nv) {
		r = -ENOMEM;
		goto out;
	}
	acc->v = nv;
	for (size_t i = 0; i < n && r == 0; i++) {
		r = runner_copy(&v[i], &acc->v[acc->n]);
		if (r == 0)
			acc->n++;
	}
	if (r < 0) {
		for (size_t j = n0; j < acc->n; j++)
			github_runner_release(&acc->v[j]);
		acc->n = n0;
	}
out:
	return r;
}

/* A page seen before with exactly these bytes: append its runners. 1 = hit. */
int github_memo_lookup(struct github *gh, const char *url, const char *manager,
                       const struct buf *body, struct github_runner_list *acc, int64_t *ret_total,
                       size_t *ret_seen)
{
	int hit = 0;

	pthread_mutex_lock(&gh->mu);
	for (size_t i = 0; i < gh->n_memos; i++) {
		struct github_page_memo *m = &gh->memos[i];
		if (strcmp(m->url, url) != 0 || strcmp(m->manager, manager) != 0 ||
		    m->len != body->len || memcmp(m->body, buf_str(body), body->len) != 0)
			continue;
		if (runner_list_append(acc, m->runners.v, m->runners.n) == 0) {
			m->used = ++gh->etag_clock;
			*ret_total = m->total;
			*ret_seen = m->seen;
			hit = 1;
		}
		break;
	}
	pthread_mutex_unlock(&gh->mu);
	return hit;
}

/* Remember a parsed page (best effort: a failure only costs a parse next time). */
void github_memo_store(struct github *gh, const char *url, const char *manager,
                       const struct buf *body, const struct github_runner *page, size_t n,
                       int64_t total, size_t seen)
{
	struct github_page_memo m = {0}, *slot = NULL;

	m.url = strdup(url);
	m.manager = strdup(manager);
	m.body = bytes_dup(buf_str(body), body->len);
	if (!m.url || !m.manager || !m.body || runner_list_append(&m.runners, page, n) < 0) {
		memo_clear(&m);
		return;
	}
	m.len = body->len;
	m.total = total;
	m.seen = seen;
	pthread_mutex_lock(&gh->mu);
	m.used = ++gh->etag_clock;
	for (size_t i = 0; i < gh->n_memos && !slot; i++)
		if (strcmp(gh->memos[i].url, url) == 0 &&
		    strcmp(gh->memos[i].manager, manager) == 0)
			slot = &gh->memos[i];
	if (!slot && gh->n_memos < GITHUB_ETAG_ENTRIES) {
		struct github_page_memo *nv = realloc(gh->memos, (gh->n_memos + 1) * sizeof(*nv));
		if (nv) {
			gh->memos = nv;
			slot = &gh->memos[gh->n_memos++];
			memset(slot, 0, sizeof(*slot));
		}
	}
	if (!slot && gh->n_memos) { /* full: the least recently used goes */
		slot = &gh->memos[0];
		for (size_t i = 1; i < gh->n_memos; i++)
			if (gh->memos[i].used < slot->used)
				slot = &gh->memos[i];
	}
	if (slot) {
		memo_clear(slot);
		*slot = m;
	}
	pthread_mutex_unlock(&gh->mu);
	if (!slot)
		memo_clear(&m);
}

/* A copy of the cached page for url; false when there is none. */
bool github_etag_lookup(struct github *gh, const char *url, struct github_etag *ret)
{
	bool found = false;

	pthread_mutex_lock(&gh->mu);
	for (size_t i = 0; i < GITHUB_ETAG_ENTRIES; i++) {
		struct github_etag *t = &gh->etags[i];
		if (!t->url || strcmp(t->url, url) != 0)
			continue;
		ret->url = NULL;
		ret->etag = strdup(t->etag);
		ret->body = bytes_dup(t->body, t->len);
		ret->link = strdup(t->link);
		ret->len = t->len;
		if (ret->etag && ret->body && ret->link) {
			t->used = ++gh->etag_clock;
			found = true;
		} else {
			github_etag_clear(ret);
		}
		break;
	}
	pthread_mutex_unlock(&gh->mu);
	return found;
}

void github_etag_store(struct github *gh, const char *url, const char *etag, const struct buf *body,
                       const char *link)
{
	struct github_etag n = {0};
	size_t slot = 0;

	if (!etag || !etag[0] || body->len > ETAG_MAX_BODY)
		return;
	n.url = strdup(url);
	n.etag = strdup(etag);
	n.body = bytes_dup(buf_str(body), body->len);
	n.link = strdup(link ? link : "");
	if (!n.url || !n.etag || !n.body || !n.link) {
		github_etag_clear(&n); /* a cache miss later, nothing worse */
		return;
	}
	n.len = body->len;
	pthread_mutex_lock(&gh->mu);
	for (size_t i = 0; i < GITHUB_ETAG_ENTRIES; i++) {
		struct github_etag *t = &gh->etags[i];
		if (t->url && strcmp(t->url, url) == 0) {
			slot = i;
			break;
		}
		if (!t->url) {
			if (gh->etags[slot].url)
				slot = i;
		} else if (gh->etags[slot].url && t->used < gh->etags[slot].used) {
			slot = i;
		}
	}
	github_etag_clear(&gh->etags[slot]);
	n.used = ++gh->etag_clock;
	gh->etags[slot] = n;
	pthread_mutex_unlock(&gh->mu);
}

void github_cache_release(struct github *gh)
{
	for (size_t i = 0; i < GITHUB_ETAG_ENTRIES; i++)
		github_etag_clear(&gh->etags[i]);
	for (size_t i = 0; i < gh->n_memos; i++)
		memo_clear(&gh->memos[i]);
	free(gh->memos);
	gh->memos = NULL;
	gh->n_memos = 0;
}
