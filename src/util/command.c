/*
 * command_run (command.h): fork, exec, read the output and wait, all
 * within one deadline on the monotonic clock. It must never block in a
 * read or a waitpid that the deadline does not bound.
 */
#include "util/common.h"
#include "util/command.h"
#include "util/clock.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

/* How often the wait looks whether the command has exited. */
#define COMMAND_POLL_MS     20
#define COMMAND_DRAIN_READS 16

/* fd moved above 0-2 (close-on-exec), so the dup2()s onto 0-2 cannot clobber it. */
static int fd_above2(int fd)
{
	int nfd;

	if (fd < 0 || fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

static void child(const char *path, char *const argv[], char *const envp[], int w)
{
	int in = fd_above2(open("/dev/null", O_RDONLY | O_CLOEXEC));

	w = fd_above2(w);
	if (in < 0 || w < 0 || dup2(in, 0) < 0 || dup2(w, 1) < 0 || dup2(w, 2) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	execve(path, argv, envp);
	_exit(127);
}

/*
 * What the pipe holds now, kept while out has room (the rest is read and
 * dropped, so the command never blocks on a full pipe); at most
 * COMMAND_DRAIN_READS reads, so a writer that never stops cannot hold the
 * caller past its deadline. False at the pipe's end (EOF or an error).
 */
static bool drain(int fd, char *out, size_t cap, size_t *len)
{
	for (int k = 0; k < COMMAND_DRAIN_READS; k++) {
		char tmp[4096];
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		for (ssize_t i = 0; i < n && *len + 1 < cap; i++)
			out[(*len)++] = tmp[i] == '\n' ? ' ' : tmp[i];
		if (cap > 0)
			out[*len] = '\0';
	}
	return true;
}

int command_run(const char *path, char *const argv[], char *const envp[], int64_t timeout_ms,
                char *out, size_t cap, int *ret_status, struct err *e)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	int pfd[2], status = 0, r = 0;
	size_t len = 0;
	bool open_end = true;
	pid_t pid, w;

	if (cap > 0)
		out[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_set(e, -errno, "%s: pipe: %s", path, strerror(errno));
	pid = fork();
	if (pid < 0) {
		r = err_set(e, -errno, "%s: fork: %s", path, strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return r;
	}
	if (pid == 0) {
		/* the child's end blocks as a plain stdout would */
		(void)fcntl(pfd[1], F_SETFL, 0);
		child(path, argv, envp, pfd[1]);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = {.fd = open_end ? pfd[0] : -1, .events = POLLIN};
		int64_t left;

		if (open_end)
			open_end = drain(pfd[0], out, cap, &len);
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		left = deadline - clock_mono_ms();
		if (left <= 0) {
			(void)kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			r = err_set(e, -ETIMEDOUT, "%s: still running after %" PRId64 " ms: killed",
			            path, timeout_ms);
			goto out;
		}
		(void)poll(&p, 1, (int)(left < COMMAND_POLL_MS ? left : COMMAND_POLL_MS));
	}
	/* what it wrote just before it exited */
	if (open_end)
		drain(pfd[0], out, cap, &len);
	if (w < 0)
		r = err_set(e, -ECHILD, "%s: waitpid: %s", path, strerror(errno));
	else
		*ret_status = status;
out:
	close(pfd[0]);
	return r;
}
