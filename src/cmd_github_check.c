/* STUB */
#include "util/common.h"
#include "cmd.h"
int cmd_github_check(int argc, char **argv) { return 1; }
