/*
 * libFuzzer target: the rest of what the lxd backend reads from LXD and
 * from instances, from untrusted bytes: the answer envelope (sync, async,
 * error, at several statuses), operation objects, an exec's return code
 * and log paths, the listing script's output, the files API's directory
 * listing, an ACL's used_by and a network's security.acls list. Each
 * either fills its result or returns a clean error; an operation id or a
 * log path handed back is one that may go into a URL; nothing crashes or
 * leaks.
 */
#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_plain(const char *s)
{
	for (; *s; s++)
		if (!lxd_url_plain((unsigned char)*s) && *s != '/')
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 202, 404, 500};
	char logs[2][LXD_LOG_PATH_MAX], nets[16][LXD_NET_NAME_MAX];
	struct buf text = BUF_INIT(LXD_RESPONSE_MAX);
	static const char *const prefer[] = {"Runner_", "Worker_", NULL};
	const struct provider_list_query q = {.max = 64, .prefer = prefer};
	struct provider_file_list files = {0};
	struct strv v = {0};
	size_t n;
	int rc;

	if (size > LXD_RESPONSE_MAX)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(statuses); i++) {
		struct lxd_answer a = {0};
		struct err e = {0};
		if (lxd_parse_answer("GET", "/1.0/x", statuses[i], data, size, &a, &e) < 0)
			continue;
		if (a.op[0]) /* a UUID's characters only */
			for (const char *c = a.op; *c; c++)
				if (!strchr("0123456789abcdef-", *c))
					abort();
		(void)lxd_parse_operation(a.meta, "fuzz", &e);
		if (lxd_parse_exec_return(a.meta, &rc) == 0)
			(void)rc;
		lxd_parse_exec_logs(a.meta, "lxdt-000000000001", logs);
		for (int k = 0; k < 2; k++) {
			if (logs[k][0] &&
			    !str_has_prefix(logs[k], "/1.0/instances/lxdt-000000000001/logs/"))
				abort();
			check_plain(logs[k]);
			if (strstr(logs[k], ".."))
				abort();
		}
		lxd_parse_used_by(json_object_get(a.meta, "used_by"), nets, ARRAY_SIZE(nets), &n);
		for (size_t k = 0; k < n; k++)
			if (!nets[k][0] || strchr(nets[k], '/') || strchr(nets[k], '?'))
				abort();
		lxd_answer_release(&a);
	}
	if (lxd_parse_listing(data, size, &q, &files) == 0) {
		if (files.n > q.max || files.total < files.n)
			abort();
		for (size_t i = 0; i < files.n; i++)
			if (strchr(files.v[i].name, '/') || !files.v[i].name[0] ||
			    strlen(files.v[i].name) > 255 || files.v[i].size < 0 ||
			    files.v[i].mtime < 0)
				abort();
	}
	provider_file_list_release(&files);
	if (lxd_parse_dir(data, size, &v) == 0)
		for (size_t i = 0; i < v.n; i++)
			if (strchr(v.v[i], '/') || !v.v[i][0])
				abort();
	strv_release(&v);
	/* a security.acls value: the text as it is, up to its first NUL */
	if (buf_append(&text, data, size) == 0 && buf_str(&text)) {
		struct buf out = BUF_INIT(1 << 20);
		const char *s = buf_str(&text);
		if (lxd_list_edit(s, "runnerd-lxdt-deny", true, &out) == 0 &&
		    !lxd_list_has(buf_str(&out), "runnerd-lxdt-deny"))
			abort();
		if (lxd_list_edit(s, "runnerd-lxdt-deny", false, &out) == 0 && out.len &&
		    lxd_list_has(buf_str(&out), "runnerd-lxdt-deny"))
			abort();
		buf_release(&out);
	}
	buf_release(&text);
	return 0;
}
