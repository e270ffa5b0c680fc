/*
 * runnerd metrics extract: the daemon's extraction of runners' metrics
 * storages, run by hand on folders (each named after its runner, as
 * state_dir/metrics/<name>/ is), printing on stdout the events the events
 * log would get, one JSON line each; what was quarantined or failed goes to
 * stderr. For operators looking at a runner's files, and for tests. It
 * asks GitHub for the runner's job (the config's credentials and scope)
 * unless --no-github, and needs no config then.
 */
#include "util/common.h"
#include "cmd.h"
#include "github/github.h"
#include "metrics/metrics_storage.h"
#include "util/strutil.h"

#include <getopt.h>

static const char usage_text[] =
        "usage: runnerd metrics extract [-c FILE] [--flavor NAME] [--quarantine DIR] [--keep]\n"
        "                               [--no-github] DIR...\n";

static int print_event(void *ctx, const struct metrics_event *ev, struct err *e)
{
	char line[METRICS_EVENT_LINE_MAX];
	int n = metrics_event_json(ev, line, sizeof(line));

	if (n < 0)
		return err_set(e, n, "a %s event does not fit a line",
		               metrics_event_name(ev->kind));
	if (fwrite(line, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0)
		return err_set(e, -EIO, "stdout: %s", strerror(errno));
	return 0;
}

/* The last component of dir, without trailing slashes, into out. */
static bool runner_name(const char *dir, char *out, size_t cap)
{
	size_t n = strlen(dir);
	const char *start;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	start = dir + n;
	while (start > dir && start[-1] != '/')
		start--;
	n = (size_t)(dir + n - start);
	if (n == 0 || n >= cap || *start == '.')
		return false;
	memcpy(out, start, n);
	out[n] = '\0';
	return !strchr(out, '/');
}

static int extract(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"flavor", required_argument, NULL, 'f'},
	                                     {"quarantine", required_argument, NULL, 'q'},
	                                     {"keep", no_argument, NULL, 'k'},
	                                     {"no-github", no_argument, NULL, 'n'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *cpath = NULL, *flavor = "", *qdir = NULL;
	bool keep = false, no_github = false;
	struct config *cfg = NULL;
	struct github *gh = NULL;
	struct metrics_github mg = {0};
	struct err e = {0};
	int c, rc = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cpath = optarg;
			break;
		case 'f':
			flavor = optarg;
			break;
		case 'q':
			qdir = optarg;
			break;
		case 'k':
			keep = true;
			break;
		case 'n':
			no_github = true;
			break;
		default:
			fputs(usage_text, c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (strlen(flavor) >= FLAVOR_NAME_MAX) {
		fprintf(stderr, "runnerd metrics extract: --flavor: at most %d characters\n",
		        FLAVOR_NAME_MAX - 1);
		return 2;
	}
	if (!no_github) {
		if (cmd_load_config(cpath, &cfg) < 0)
			return 1;
		if (github_new(cfg, NULL, &gh, &e) < 0) {
			fprintf(stderr, "runnerd metrics extract: github: %s\n", e.msg);
			config_free(cfg);
			return 1;
		}
		mg = (struct metrics_github){.gh = gh};
	}
	for (int i = optind; i < argc; i++) {
		struct metrics_processed p;
		char name[INSTANCE_NAME_MAX + 16];
		struct metrics_process_opts o = {
		        .flavor = flavor,
		        .quarantine_dir = qdir,
		        .keep = keep,
		        .lookup = gh ? metrics_github_lookup : NULL,
		        .emit = print_event,
		        .ctx = NULL,
		};
		int r;

		err_clear(&e);
		if (!runner_name(argv[i], name, sizeof(name))) {
			fprintf(stderr, "runnerd metrics extract: %s: not a runner's folder name\n",
			        argv[i]);
			rc = 1;
			continue;
		}
		/* the lookup and the printer share the context: the printer needs none */
		o.ctx = gh ? (void *)&mg : NULL;
		r = metrics_storage_process(argv[i], name, &o, &p, &e);
		if (r < 0) {
			fprintf(stderr, "runnerd metrics extract: %s: %s%s\n", argv[i], e.msg,
			        r == -EBADMSG && !qdir ? " (not quarantined: no --quarantine)"
			                               : "");
			rc = 1;
		}
	}
	github_free(gh);
	config_free(cfg);
	return rc;
}

int cmd_metrics(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "extract") == 0)
		return extract(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(usage_text, stdout);
		return 0;
	}
	fputs(usage_text, stderr);
	return 2;
}
