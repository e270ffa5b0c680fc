/*
 * The Prometheus registry and its text rendering (prom.h). Series of a
 * family are kept sorted by their label values, so a lookup is a binary
 * search and the output order never depends on the order of updates.
 * It must never write a line the text format does not allow.
 */
#include "util/common.h"
#include "metrics/prom.h"

#include <math.h>
#include <pthread.h>

struct prom_series {
	char *values[PROM_MAX_LABELS];
	double value;      /* counter, gauge */
	double sum;        /* histogram */
	uint64_t count;    /* histogram */
	uint64_t *buckets; /* histogram: per bound, not cumulative */
};

struct prom_family {
	struct prom_registry *reg;
	enum prom_type type;
	char *name;
	char *help;
	char *labels[PROM_MAX_LABELS];
	size_t n_labels;
	double bounds[PROM_MAX_BUCKETS];
	size_t n_bounds;
	struct prom_series **series; /* sorted by values */
	size_t n, cap;
	struct prom_family *next;
};

struct prom_registry {
	pthread_mutex_t lock;
	struct prom_family *first, *last;
};

static const char *const type_names[] = {"counter", "gauge", "histogram"};

int prom_registry_new(struct prom_registry **ret)
{
	struct prom_registry *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	*ret = r;
	return 0;
}

static void series_free(struct prom_series *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < PROM_MAX_LABELS; i++)
		free(s->values[i]);
	free(s->buckets);
	free(s);
}

static void family_free(struct prom_family *f)
{
	for (size_t i = 0; i < f->n; i++)
		series_free(f->series[i]);
	free(f->series);
	for (size_t i = 0; i < f->n_labels; i++)
		free(f->labels[i]);
	free(f->name);
	free(f->help);
	free(f);
}

void prom_registry_free(struct prom_registry *r)
{
	if (!r)
		return;
	for (struct prom_family *f = r->first, *next; f; f = next) {
		next = f->next;
		family_free(f);
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static bool name_ok(const char *s, bool colon)
{
	if (!s || !*s)
		return false;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		          (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int check_family(struct prom_registry *r, enum prom_type type, const char *name,
                        const char *const *labels, const double *bounds, size_t n_bounds)
{
	size_t n = 0;

	if (type > PROM_HISTOGRAM || !name_ok(name, true) ||
	    (type == PROM_COUNTER && !ends_with(name, "_total")))
		return -EINVAL;
	for (; labels && labels[n]; n++) {
		if (n == PROM_MAX_LABELS || !name_ok(labels[n], false) ||
		    strncmp(labels[n], "__", 2) == 0 ||
		    (type == PROM_HISTOGRAM && strcmp(labels[n], "le") == 0))
			return -EINVAL;
		for (size_t k = 0; k < n; k++)
			if (strcmp(labels[k], labels[n]) == 0)
				return -EINVAL;
	}
	if (type == PROM_HISTOGRAM) {
		if (n_bounds == 0 || n_bounds > PROM_MAX_BUCKETS || !bounds)
			return -EINVAL;
		for (size_t i = 0; i < n_bounds; i++)
			if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
				return -EINVAL;
	}
	for (struct prom_family *f = r->first; f; f = f->next)
		if (strcmp(f->name, name) == 0)
			return -EEXIST;
	return 0;
}

static struct prom_series *series_new(const struct prom_family *f, const char *const *values)
{
	struct prom_series *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	for (size_t i = 0; i < f->n_labels; i++) {
		s->values[i] = strdup(values[i]);
		if (!s->values[i])
			goto fail;
	}
	if (f->type == PROM_HISTOGRAM) {
		s->buckets = calloc(f->n_bounds, sizeof(*s->buckets));
		if (!s->buckets)
			goto fail;
	}
	return s;
fail:
	series_free(s);
	return NULL;
}

/* Index of the first series whose values are not below values; *found when equal. */
static size_t series_search(const struct prom_family *f, const char *const *values, bool *found)
{
	size_t lo = 0, hi = f->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = 0;
		for (size_t i = 0; i < f->n_labels && c == 0; i++)
			c = strcmp(f->series[mid]->values[i], values[i]);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The series of values (made when absent), under the lock. */
static int series_get(struct prom_family *f, const char *const *values, struct prom_series **ret)
{
	struct prom_series *s;
	bool found;
	size_t at;

	for (size_t i = 0; i < f->n_labels; i++)
		if (!values || !values[i] || strlen(values[i]) > PROM_LABEL_VALUE_MAX)
			return values && values[i] ? -E2BIG : -EINVAL;
	at = series_search(f, values, &found);
	if (found) {
		*ret = f->series[at];
		return 0;
	}
	if (f->n == PROM_MAX_SERIES)
		return -E2BIG;
	if (f->n == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 8;
		struct prom_series **nv = realloc(f->series, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		f->series = nv;
		f->cap = ncap;
	}
	s = series_new(f, values);
	if (!s)
		return -ENOMEM;
	memmove(f->series + at + 1, f->series + at, (f->n - at) * sizeof(*f->series));
	f->series[at] = s;
	f->n++;
	*ret = s;
	return 0;
}

int prom_family_new(struct prom_registry *r, enum prom_type type, const char *name,
                    const char *help, const char *const *labels, const double *bounds,
                    size_t n_bounds, struct prom_family **ret)
{
	struct prom_family *f;
	struct prom_series *s;
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = check_family(r, type, name, labels, bounds, n_bounds);
	if (rc < 0)
		goto out;
	rc = -ENOMEM;
	f = calloc(1, sizeof(*f));
	if (!f)
		goto out;
	f->reg = r;
	f->type = type;
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	for (; labels && labels[f->n_labels]; f->n_labels++)
		if (!(f->labels[f->n_labels] = strdup(labels[f->n_labels])))
			break;
	if (type == PROM_HISTOGRAM) {
		memcpy(f->bounds, bounds, n_bounds * sizeof(*bounds));
		f->n_bounds = n_bounds;
	}
	if (!f->name || !f->help || (labels && labels[f->n_labels]) ||
	    (f->n_labels == 0 && series_get(f, NULL, &s) < 0)) {
		family_free(f);
		goto out;
	}
	if (r->last)
		r->last->next = f;
	else
		r->first = f;
	r->last = f;
	*ret = f;
	rc = 0;
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

struct prom_family *prom_family_find(struct prom_registry *r, const char *name)
{
	struct prom_family *f;

	pthread_mutex_lock(&r->lock);
	for (f = r->first; f && strcmp(f->name, name) != 0; f = f->next)
		;
	pthread_mutex_unlock(&r->lock);
	return f;
}

enum op { OP_ADD, OP_SET, OP_OBSERVE };

static int update(struct prom_family *f, const char *const *values, double v, enum op op)
{
	struct prom_series *s;
	int rc;

	if (isnan(v) && f->type != PROM_GAUGE)
		return -EINVAL;
	if ((op == OP_OBSERVE) != (f->type == PROM_HISTOGRAM))
		return -EINVAL;
	if (f->type == PROM_COUNTER && (v < 0 || isinf(v)))
		return -EINVAL;
	pthread_mutex_lock(&f->reg->lock);
	rc = series_get(f, values, &s);
	if (rc == 0) {
		if (op == OP_ADD) {
			s->value += v;
		} else if (op == OP_SET) {
			s->value = v;
		} else {
			/* the first bound not below v; above them all: +Inf only */
			for (size_t i = 0; i < f->n_bounds; i++)
				if (v <= f->bounds[i]) {
					s->buckets[i]++;
					break;
				}
			s->count++;
			s->sum += v;
		}
	}
	pthread_mutex_unlock(&f->reg->lock);
	return rc;
}

int prom_add(struct prom_family *f, const char *const *values, double v)
{
	return update(f, values, v, OP_ADD);
}

int prom_set(struct prom_family *f, const char *const *values, double v)
{
	return update(f, values, v, OP_SET);
}

int prom_observe(struct prom_family *f, const char *const *values, double v)
{
	return update(f, values, v, OP_OBSERVE);
}

int prom_histogram_set(struct prom_family *f, const char *const *values, const uint64_t *buckets,
                       uint64_t count, double sum)
{
	struct prom_series *s;
	uint64_t in = 0;
	int rc;

	if (f->type != PROM_HISTOGRAM || isnan(sum))
		return -EINVAL;
	for (size_t i = 0; i < f->n_bounds; i++) {
		if (buckets[i] > count - in)
			return -EINVAL;
		in += buckets[i];
	}
	pthread_mutex_lock(&f->reg->lock);
	rc = series_get(f, values, &s);
	if (rc == 0) {
		memcpy(s->buckets, buckets, f->n_bounds * sizeof(*buckets));
		s->count = count;
		s->sum = sum;
	}
	pthread_mutex_unlock(&f->reg->lock);
	return rc;
}

int prom_get(struct prom_family *f, const char *const *values, double *ret)
{
	bool found = false;
	size_t at;

	if (f->type == PROM_HISTOGRAM)
		return -EINVAL;
	for (size_t i = 0; i < f->n_labels; i++)
		if (!values || !values[i])
			return -EINVAL;
	pthread_mutex_lock(&f->reg->lock);
	at = series_search(f, values, &found);
	if (found)
		*ret = f->series[at]->value;
	pthread_mutex_unlock(&f->reg->lock);
	return found ? 0 : -ENOENT;
}

/* ---- rendering ---------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* s escaped: \\ and \n always, \" too when quote (label values; not help). */
static int escape(struct buf *out, const char *s, bool quote)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, run = 0;
	int rc = 0;

	while (i < n && rc == 0) {
		size_t k = utf8_seq(p + i, n - i);
		const char *rep = NULL;
		if (k == 0)
			rep = "\xef\xbf\xbd"; /* U+FFFD */
		else if (p[i] == '\\')
			rep = "\\\\";
		else if (p[i] == '\n')
			rep = "\\n";
		else if (quote && p[i] == '"')
			rep = "\\\"";
		if (!rep) {
			i += k;
			run += k;
			continue;
		}
		if (run)
			rc = buf_append(out, p + i - run, run);
		if (rc == 0)
			rc = buf_puts(out, rep);
		run = 0;
		i += k ? k : 1;
	}
	if (rc == 0 && run)
		rc = buf_append(out, p + i - run, run);
	return rc;
}

int prom_escape_label(struct buf *out, const char *s)
{
	return escape(out, s, true);
}

void prom_format_value(double v, char *out, size_t cap)
{
	if (isnan(v)) {
		snprintf(out, cap, "NaN");
	} else if (isinf(v)) {
		snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
	} else if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, cap, "%" PRId64, (int64_t)v);
	} else {
		/* the shortest of these that reads back as the same double */
		snprintf(out, cap, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, cap, "%.17g", v);
	}
}

/* {a="x",b="y"} (le too when given); nothing at all without labels. */
static int put_labels(struct buf *out, const struct prom_family *f, const struct prom_series *s,
                      const char *le)
{
	int rc = 0;

	if (f->n_labels == 0 && !le)
		return 0;
	rc = buf_puts(out, "{");
	for (size_t i = 0; i < f->n_labels && rc == 0; i++) {
		rc = buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
		if (rc == 0)
			rc = prom_escape_label(out, s->values[i]);
		if (rc == 0)
			rc = buf_puts(out, "\"");
	}
	if (rc == 0 && le)
		rc = buf_printf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
	if (rc == 0)
		rc = buf_puts(out, "}");
	return rc;
}

/* name+suffix{labels} value\n */
static int put_sample(struct buf *out, const struct prom_family *f, const char *suffix,
                      const struct prom_series *s, const char *le, double v)
{
	char num[40];
	int rc = buf_printf(out, "%s%s", f->name, suffix);

	if (rc == 0)
		rc = put_labels(out, f, s, le);
	prom_format_value(v, num, sizeof(num));
	if (rc == 0)
		rc = buf_printf(out, " %s\n", num);
	return rc;
}

static int render_histogram(struct buf *out, const struct prom_family *f,
                            const struct prom_series *s)
{
	uint64_t cum = 0;
	char le[40];
	int rc = 0;

	for (size_t i = 0; i < f->n_bounds && rc == 0; i++) {
		cum += s->buckets[i];
		prom_format_value(f->bounds[i], le, sizeof(le));
		rc = put_sample(out, f, "_bucket", s, le, (double)cum);
	}
	if (rc == 0)
		rc = put_sample(out, f, "_bucket", s, "+Inf", (double)s->count);
	if (rc == 0)
		rc = put_sample(out, f, "_sum", s, NULL, s->sum);
	if (rc == 0)
		rc = put_sample(out, f, "_count", s, NULL, (double)s->count);
	return rc;
}

static int render_family(struct buf *out, const struct prom_family *f)
{
	int rc = buf_printf(out, "# HELP %s ", f->name);

	if (rc == 0)
		rc = escape(out, f->help, false);
	if (rc == 0)
		rc = buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
	for (size_t i = 0; i < f->n && rc == 0; i++)
		rc = f->type == PROM_HISTOGRAM
		             ? render_histogram(out, f, f->series[i])
		             : put_sample(out, f, "", f->series[i], NULL, f->series[i]->value);
	return rc;
}

int prom_render(struct prom_registry *r, struct buf *out)
{
	size_t start = out->len;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	for (const struct prom_family *f = r->first; f && rc == 0; f = f->next)
		rc = render_family(out, f);
	pthread_mutex_unlock(&r->lock);
	if (rc < 0 && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}
