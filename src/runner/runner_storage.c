/*
 * runner.storage in the startup script: with memory, the runner's work
 * directory (_work, where jobs check out and build) is a tmpfs of its own,
 * sized by runner.storage_size and owned by the user that runs the runner,
 * mounted before the runner starts. A failed mount ends the instance before
 * its runner (unhealthy, the reason in its log): jobs must never silently
 * fill a disk the operator sized on the promise of memory. It never mounts
 * on the local provider (its runners are unprivileged, and the host's
 * mounts are not ours); check-config refuses memory there.
 */
#include "util/common.h"
#include "runner/runner_internal.h"

/* clang-format off */
static const char sh_disk[] =
	"\n"
	"# runner.storage: disk (the runner's _work is on this machine's disk).\n"
	"runnerd_storage() {\n"
	"	:\n"
	"}\n";

static const char sh_memory[] =
	"\n"
	"# runner.storage: memory. _work (jobs' checkouts and builds) on a tmpfs of\n"
	"# RUNNERD_STORAGE_SIZE bytes, owned by the user that runs the runner; what\n"
	"# the image has there is hidden. RUNNERD_MOUNT: tests' stand-in for mount.\n"
	"runnerd_storage() {\n"
	"	runnerd_work=$runnerd_runner_dir/_work\n"
	"	if [ \"$RUNNERD_END\" != poweroff ] && [ -z \"${RUNNERD_MOUNT-}\" ]; then\n"
	"		runnerd_log \"runner.storage memory: not on the local provider (its runners cannot mount)\"\n"
	"		return 1\n"
	"	fi\n"
	"	if [ -L \"$runnerd_work\" ] || ! mkdir -p \"$runnerd_work\"; then\n"
	"		runnerd_log \"runner.storage memory: $runnerd_work is not a directory we can make\"\n"
	"		return 1\n"
	"	fi\n"
	"	if ! \"${RUNNERD_MOUNT:-mount}\" -t tmpfs \\\n"
	"		-o \"size=$RUNNERD_STORAGE_SIZE,mode=0755,uid=$(id -u),gid=$(id -g)\" \\\n"
	"		runnerd-work \"$runnerd_work\"; then\n"
	"		runnerd_log \"runner.storage memory: could not mount a tmpfs of $RUNNERD_STORAGE_SIZE bytes on $runnerd_work\"\n"
	"		return 1\n"
	"	fi\n"
	"	runnerd_log \"runner.storage memory: $runnerd_work is a tmpfs of $RUNNERD_STORAGE_SIZE bytes\"\n"
	"}\n";
/* clang-format on */

int runner_render_storage(const struct config_runner *rc, struct buf *b)
{
	if (rc->storage != RUNNER_STORAGE_MEMORY)
		return buf_puts(b, sh_disk);
	if (rc->storage_size <= 0)
		return -EINVAL;
	int r = buf_printf(b, "\nRUNNERD_STORAGE_SIZE=%" PRId64 "\n", rc->storage_size);
	return r < 0 ? r : buf_puts(b, sh_memory);
}
