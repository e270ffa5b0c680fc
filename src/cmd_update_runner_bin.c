/* STUB */
#include "util/common.h"
#include "cmd.h"
int cmd_update_runner_bin(int argc, char **argv) { return 1; }
