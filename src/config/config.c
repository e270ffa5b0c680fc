/* STUB: replaced by the config module. */
#include "util/common.h"
#include "config/config.h"
int config_load(const char *path, struct config **ret, struct config_errors *errs) { return -ENOSYS; }
void config_errors_release(struct config_errors *errs) {}
const char *config_path(const char *p) { return p ? p : CONFIG_DEFAULT_PATH; }
