/*
 * A small Prometheus registry: counter, gauge and histogram families, each
 * with a fixed list of label names and any number of series (one per set
 * of label values, up to PROM_MAX_SERIES), rendered in the text exposition
 * format 0.0.4 into a bounded buffer. It knows nothing of runnerd: names,
 * help and what is counted are its callers'. It must never render text a
 * scraper could misread: names are checked when a family is made, label
 * values and help are escaped (and bytes that are not UTF-8 replaced), a
 * counter's name ends in "_total", and histogram buckets are cumulative
 * with a last bucket "+Inf" equal to the count.
 *
 * Every function that touches series takes the registry's own mutex for
 * as long as it runs: updates and renders from several threads are safe,
 * and a render holds that mutex only while it writes text.
 */
#ifndef RUNNERD_PROM_H
#define RUNNERD_PROM_H

#include "util/common.h"
#include "util/buf.h"

#define PROM_MAX_LABELS      6    /* label names of one family ("le" is never one) */
#define PROM_MAX_BUCKETS     32   /* upper bounds of one histogram, +Inf not counted */
#define PROM_MAX_SERIES      4096 /* series of one family */
#define PROM_LABEL_VALUE_MAX 256  /* bytes of one label value; longer is refused */
/* Content-Type of what prom_render writes. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum prom_type { PROM_COUNTER = 0, PROM_GAUGE, PROM_HISTOGRAM };

struct prom_registry;
struct prom_family;

int prom_registry_new(struct prom_registry **ret);
/* Frees every family with it. NULL-safe. */
void prom_registry_free(struct prom_registry *r);

/*
 * A new family in r, rendered after those made before it. name matches
 * [a-zA-Z_:][a-zA-Z0-9_:]* and is not in r yet; a counter's ends in
 * "_total". labels is NULL or a NULL-terminated list of at most
 * PROM_MAX_LABELS names matching [a-zA-Z_][a-zA-Z0-9_]*, none starting
 * with "__", none "le" for a histogram. A histogram has 1..PROM_MAX_BUCKETS
 * finite, strictly rising bounds (others ignore bounds). help is any text.
 * A family without labels has its one series from the start (at 0), so it
 * is rendered before anything is counted. *ret belongs to r.
 * -EINVAL for a bad argument, -EEXIST, -ENOMEM.
 */
int prom_family_new(struct prom_registry *r, enum prom_type type, const char *name,
                    const char *help, const char *const *labels, const double *bounds,
                    size_t n_bounds, struct prom_family **ret);
/* The family called name, NULL when there is none. */
struct prom_family *prom_family_find(struct prom_registry *r, const char *name);

/*
 * values: one label value per label name, in the family's order (NULL when
 * it has none). The series is made on first use (a new one starts at 0).
 * -EINVAL: a counter given a negative amount or a value that is not a
 * number, the wrong type of family; -E2BIG: a value over
 * PROM_LABEL_VALUE_MAX or the family full; -ENOMEM.
 */
/* counter or gauge: value += v */
int prom_add(struct prom_family *f, const char *const *values, double v);
/* gauge: value = v; counter: value = v for a total kept elsewhere (never lower it) */
int prom_set(struct prom_family *f, const char *const *values, double v);
/* histogram: one observation */
int prom_observe(struct prom_family *f, const char *const *values, double v);
/*
 * histogram: the series set to counts kept elsewhere (never lower them):
 * buckets[i] the observations in bound i (not cumulative: at most bound
 * i, above bound i - 1), one for each of the family's bounds; count all
 * of them (those above every bound too), sum their total. -EINVAL when
 * the buckets add up to more than count, or sum is not a number.
 */
int prom_histogram_set(struct prom_family *f, const char *const *values, const uint64_t *buckets,
                       uint64_t count, double sum);
/* The value of a series of a counter or gauge; -ENOENT when it has none. */
int prom_get(struct prom_family *f, const char *const *values, double *ret);

/*
 * The registry as text, appended to out: each family's "# HELP" and
 * "# TYPE" lines then its series, in label-value order. A family with no
 * series yet has its two lines only. -E2BIG when out's bound would be
 * passed, -ENOMEM: out is then as it was.
 */
int prom_render(struct prom_registry *r, struct buf *out);

/* Helpers the renderer uses, exposed for tests. */
/* A label value with \\, \" and \n escaped, invalid UTF-8 bytes as U+FFFD. */
int prom_escape_label(struct buf *out, const char *s);
/* A sample value as Prometheus reads it: "1", "0.25", "+Inf", "-Inf", "NaN". */
void prom_format_value(double v, char *out, size_t cap);

#endif
