/*
 * The listen sockets the server starts from:
 * a TCP address parsed strictly, or a unix socket created with its mode
 * set before anyone can connect, never replacing a live server's socket.
 */
#include "util/common.h"
#include "http/http_internal.h"
#include "util/strutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

/* ---- sockets ------------------------------------------------------------ */

int http_parse_listen(const char *addr, struct sockaddr_storage *ret, socklen_t *ret_len,
                      struct err *e)
{
	struct sockaddr_storage ss;
	char host[64];
	const char *port_s, *colon;
	size_t host_len;
	int64_t port;

	if (!addr || !*addr)
		return err_set(e, -EINVAL, "listen address is empty");
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return err_set(e, -EINVAL, "listen address %s: expected [IPV6]:PORT", addr);
		host_len = (size_t)(close - addr - 1);
		if (host_len >= sizeof(host))
			return err_set(e, -EINVAL, "listen address %s: host too long", addr);
		memcpy(host, addr + 1, host_len);
		host[host_len] = '\0';
		port_s = close + 2;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || colon == addr)
			return err_set(e, -EINVAL, "listen address %s: expected HOST:PORT", addr);
		host_len = (size_t)(colon - addr);
		if (host_len >= sizeof(host))
			return err_set(e, -EINVAL, "listen address %s: host too long", addr);
		memcpy(host, addr, host_len);
		host[host_len] = '\0';
		if (strchr(host, ':'))
			return err_set(e, -EINVAL,
			               "listen address %s: write an IPv6 host in brackets", addr);
		port_s = colon + 1;
	}
	if (parse_int64(port_s, 0, 65535, &port) < 0 || port_s[0] == '+')
		return err_set(e, -EINVAL, "listen address %s: port must be 0..65535", addr);

	memset(&ss, 0, sizeof(ss));
	if (addr[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return err_set(e, -EINVAL, "listen address %s: not a numeric IPv6 address",
			               addr);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*ret_len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
		if (strcmp(host, "localhost") == 0)
			str_copy(host, "127.0.0.1", sizeof(host));
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return err_set(e, -EINVAL, "listen address %s: not a numeric IPv4 address",
			               addr);
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*ret_len = sizeof(*a4);
	}
	*ret = ss;
	return 0;
}

int http_tcp_listen(const char *addr, int *ret_fd, int *ret_port, struct err *e)
{
	struct sockaddr_storage ss, bound;
	socklen_t len, blen = sizeof(bound);
	int fd = -1, one = 1, r;

	r = http_parse_listen(addr, &ss, &len, e);
	if (r < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(e, -errno, "listen %s: socket: %s", addr, strerror(errno));
	/* Restart without waiting out TIME_WAIT; v6 sockets serve v6 only. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		r = err_set(e, -errno, "listen %s: setsockopt: %s", addr, strerror(errno));
		goto out;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		r = err_set(e, -errno, "listen %s: bind: %s", addr, strerror(errno));
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&bound, &blen) < 0) {
		r = err_set(e, -errno, "listen %s: getsockname: %s", addr, strerror(errno));
		goto out;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		r = err_set(e, -errno, "listen %s: listen: %s", addr, strerror(errno));
		goto out;
	}
	*ret_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
	                                              : ((struct sockaddr_in *)&bound)->sin_port);
	*ret_fd = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * An existing socket file is only replaced when nobody answers on it: a
 * second daemon must not silently steal the first one's control socket.
 */
static int unix_clear_stale(const char *path, struct err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return err_set(e, -errno, "socket %s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return err_set(e, -EEXIST, "socket %s: exists and is not a socket", path);
	str_copy(sa.sun_path, path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, -errno, "socket %s: %s", path, strerror(errno));
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r == 0 || errno != ECONNREFUSED) {
		r = err_set(e, -EADDRINUSE, "socket %s: another server is listening on it", path);
		close(fd);
		return r;
	}
	close(fd);
	if (unlink(path) < 0 && errno != ENOENT)
		return err_set(e, -errno, "socket %s: unlink: %s", path, strerror(errno));
	return 0;
}

int http_unix_listen(const char *path, mode_t mode, int *ret_fd, dev_t *ret_dev, ino_t *ret_ino,
                     struct err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd = -1, r;
	bool bound = false;

	if (!path || !*path)
		return err_set(e, -EINVAL, "socket path is empty");
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, -ENAMETOOLONG, "socket %s: path too long", path);
	str_copy(sa.sun_path, path, sizeof(sa.sun_path));
	r = unix_clear_stale(path, e);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(e, -errno, "socket %s: %s", path, strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = err_set(e, -errno, "socket %s: bind: %s", path, strerror(errno));
		goto out;
	}
	bound = true;
	/* Nobody can connect before listen(), so the umask's mode never serves. */
	if (chmod(path, mode) < 0 || lstat(path, &st) < 0) {
		r = err_set(e, -errno, "socket %s: chmod: %s", path, strerror(errno));
		goto out;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		r = err_set(e, -errno, "socket %s: listen: %s", path, strerror(errno));
		goto out;
	}
	*ret_fd = fd;
	*ret_dev = st.st_dev;
	*ret_ino = st.st_ino;
	fd = -1;
	r = 0;
out:
	if (fd >= 0) {
		close(fd);
		if (bound)
			(void)unlink(path);
	}
	return r;
}
