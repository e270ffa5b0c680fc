/*
 * What /proc's files say, parsed: /proc/<pid>/stat and the Uid and Gid
 * lines of /proc/<pid>/status.
 * Pure: callers (proc.c) hand it the bytes they read, so a unit test and a
 * fuzzer reach it without processes. A process chooses its command name:
 * this file must never read past what it is given, nor take a value it
 * could not bound.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"

int local_proc_parse_stat(const char *data, struct local_proc_info *ret)
{
	struct local_proc_info pi = {0};
	const char *p;
	char *end;

	/* The command name may hold spaces and parentheses: fields start after the last ')'. */
	p = strrchr(data, ')');
	if (!p)
		return -EIO;
	p++;
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -EIO;
		if (field == 3) {
			pi.state = *p;
		} else if (field == 6 || field == 22) {
			unsigned long long v;
			errno = 0;
			v = strtoull(p, &end, 10);
			if (errno || end == p)
				return -EIO;
			if (field == 6)
				pi.session = (pid_t)v;
			else
				pi.starttime = v;
		}
		while (*p && *p != ' ')
			p++;
	}
	*ret = pi;
	return 0;
}

/* The four numbers of a "\n<key>" line of /proc/<pid>/status; -EIO when missing or malformed. */
static int parse_four(const char *data, const char *key, unsigned long v[4])
{
	const char *p = strstr(data, key);
	char *end;

	if (!p)
		return -EIO;
	p += strlen(key);
	for (int i = 0; i < 4; i++) {
		errno = 0;
		v[i] = strtoul(p, &end, 10);
		if (errno || end == p || v[i] > UINT32_MAX)
			return -EIO;
		p = end;
	}
	return 0;
}

int local_proc_parse_uid(const char *data, uid_t *ret)
{
	unsigned long v[4];

	if (parse_four(data, "\nUid:", v) < 0)
		return -EIO;
	if (v[1] != v[0] || v[2] != v[0] || v[3] != v[0])
		return -EPERM;
	*ret = (uid_t)v[0];
	return 0;
}

int local_proc_parse_ids(const char *data, struct local_proc_ids *ret)
{
	unsigned long u[4], g[4];

	if (parse_four(data, "\nUid:", u) < 0 || parse_four(data, "\nGid:", g) < 0)
		return -EIO;
	for (int i = 0; i < 4; i++) {
		ret->uid[i] = (uid_t)u[i];
		ret->gid[i] = (gid_t)g[i];
	}
	return 0;
}

bool local_proc_dead_state(char s)
{
	return s == 'Z' || s == 'X' || s == 'x';
}
