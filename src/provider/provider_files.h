/*
 * Listings of files inside an instance (provider_list_files in provider.h,
 * which includes this): what a query asks for and what a listing holds.
 * The instance wrote these names, sizes and times, so the front checks
 * every listing a backend returns before the manager sees it.
 */
#ifndef RUNNERD_PROVIDER_FILES_H
#define RUNNERD_PROVIDER_FILES_H

#include "util/common.h"

/* The most entries list_files may be asked for. */
#define PROVIDER_LIST_FILES_MAX 4096
/* The longest plain file name a listing holds. */
#define PROVIDER_FILE_NAME_MAX 255
/* A list_files query's preferred name prefixes: at most this many, each at most this long. */
#define PROVIDER_PREFER_MAX     8
#define PROVIDER_PREFER_LEN_MAX 32

/* One regular file of a directory inside an instance (provider_list_files). */
struct provider_file {
	char name[PROVIDER_FILE_NAME_MAX + 1]; /* a plain file name */
	int64_t size;                          /* bytes, -1 when the backend cannot tell */
	int64_t mtime;                         /* last change, unix s; 0 when it cannot tell */
	bool preferred; /* its name has a preferred prefix (set by the front) */
};

/*
 * A directory's listing: the most useful of its files, most useful first
 * (below). The instance wrote these names, sizes and times: they say what
 * the job let them say.
 */
struct provider_file_list {
	struct provider_file *v;
	size_t n;
	/* the regular files the directory holds (at most, where the backend cannot tell) */
	size_t total;
	bool cut;   /* total > n: files were left out, the least useful ones */
	size_t cap; /* entries allocated in v */
};

/*
 * What list_files is asked for: at most max entries (1 to
 * PROVIDER_LIST_FILES_MAX), the most useful ones: files whose name starts
 * with one of prefer (NULL-terminated, or NULL; [A-Za-z0-9._-], at most
 * PROVIDER_PREFER_MAX of at most PROVIDER_PREFER_LEN_MAX characters) first,
 * then the newest, then the largest, then by name.
 */
struct provider_list_query {
	size_t max;
	const char *const *prefer;
};

void provider_file_list_release(struct provider_file_list *l);

#endif
